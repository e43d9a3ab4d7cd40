"""The Responses API through the openai SDK. MODE: json | stream."""

import json

import openai

from _harness import args, delta_times, emit, timed_stream


def calls_of(response):
    return [
        {"name": o.name, "arguments": o.arguments, "parsed": json.loads(o.arguments)}
        for o in response.output
        if o.type == "function_call"
    ]


def once(client, kw):
    r = client.responses.create(**kw)
    return {"id": r.id, "text": r.output_text, "tool_calls": calls_of(r), "status": r.status}


def streamed(client, kw, clock):
    deltas = []
    text = ""
    args_text = ""
    done_text = None
    final = None
    types = []
    times = []
    with client.responses.create(stream=True, **kw) as stream:
        opened = clock.now()
        for ev in stream:
            types.append(ev.type)
            times.append(clock.now())
            if ev.type == "response.output_text.delta":
                deltas.append([clock.now(), ev.delta])
                text += ev.delta
            elif ev.type == "response.function_call_arguments.delta":
                deltas.append([clock.now(), ev.delta])
                args_text += ev.delta
            elif ev.type == "response.output_text.done":
                done_text = ev.text
            elif ev.type == "response.completed":
                final = ev.response
    end = clock.now()
    return {
        "text": text,
        "done_text": done_text,
        "arguments": json.loads(args_text) if args_text else None,
        "final_text": final.output_text if final else None,
        "final_tool_calls": calls_of(final) if final else [],
        "event_types": types,
        "event_times": times,
        "opened_at": opened,
        **delta_times(deltas, end),
    }


def main():
    mode, prompt = args()
    client = openai.OpenAI(max_retries=0, timeout=60.0)
    kw = {
        "model": "gpt-4o",
        "instructions": "You are a helpful assistant.",
        "input": [{"role": "user", "content": prompt}],
    }
    if mode == "json":
        emit(once(client, kw))
    elif mode == "stream":
        emit(timed_stream(lambda clock: streamed(client, kw, clock)))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
