"""Anthropic Messages through the anthropic SDK. MODE: json | stream."""

import anthropic

from _harness import args, delta_times, emit, timed_stream

TOOLS = [
    {
        "name": "send_email",
        "description": "Sends an e-mail on the user's behalf.",
        "input_schema": {
            "type": "object",
            "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
            "required": ["to", "subject"],
        },
    }
]


def blocks(message):
    out = []
    for b in message.content:
        if b.type == "text":
            out.append({"type": "text", "text": b.text})
        elif b.type == "tool_use":
            out.append({"type": "tool_use", "name": b.name, "input": b.input})
    return out


def once(client, kw):
    m = client.messages.create(**kw)
    return {"id": m.id, "content": blocks(m), "stop_reason": m.stop_reason}


def streamed(client, kw, clock):
    deltas = []
    text = ""
    partial_json = ""
    types = []
    times = []
    # The SDK's stream helper: it accumulates the message, parsing tool input from the
    # input_json_delta pieces as they come.
    with client.messages.stream(**kw) as stream:
        opened = clock.now()
        for ev in stream:
            types.append(ev.type)
            times.append(clock.now())
            if ev.type == "content_block_delta":
                if ev.delta.type == "text_delta":
                    deltas.append([clock.now(), ev.delta.text])
                    text += ev.delta.text
                elif ev.delta.type == "input_json_delta":
                    deltas.append([clock.now(), ev.delta.partial_json])
                    partial_json += ev.delta.partial_json
        final = stream.get_final_message()
    end = clock.now()
    return {
        "text": text,
        "partial_json": partial_json,
        "content": blocks(final),
        "stop_reason": final.stop_reason,
        "event_types": types,
        "event_times": times,
        "opened_at": opened,
        **delta_times(deltas, end),
    }


def main():
    mode, prompt = args()
    client = anthropic.Anthropic(max_retries=0, timeout=60.0)
    kw = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are a helpful assistant.",
        "tools": TOOLS,
        "messages": [{"role": "user", "content": prompt}],
    }
    if mode == "json":
        emit(once(client, kw))
    elif mode == "stream":
        emit(timed_stream(lambda clock: streamed(client, kw, clock)))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
