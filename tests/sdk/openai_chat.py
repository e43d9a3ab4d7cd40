"""Chat Completions through the openai SDK. MODE: json | stream | tools | tools_stream."""

import json

import openai

from _harness import Clock, args, delta_times, emit, timed_stream

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "send_email",
            "description": "Sends an e-mail on the user's behalf.",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": {"type": "string"},
                    "subject": {"type": "string"},
                    "cc": {"type": "string"},
                },
                "required": ["to", "subject"],
            },
        },
    }
]


def once(client, kw):
    r = client.chat.completions.create(**kw)
    msg = r.choices[0].message
    calls = [
        {
            "id": c.id,
            "name": c.function.name,
            "arguments": c.function.arguments,
            "parsed": json.loads(c.function.arguments),
        }
        for c in (msg.tool_calls or [])
    ]
    return {
        "id": r.id,
        "text": msg.content,
        "tool_calls": calls,
        "finish_reason": r.choices[0].finish_reason,
    }


def streamed(client, kw, clock):
    text = ""
    deltas = []
    calls = {}
    finish = None
    with client.chat.completions.create(stream=True, **kw) as stream:
        opened = clock.now()
        for chunk in stream:
            for choice in chunk.choices:
                d = choice.delta
                if d.content:
                    deltas.append([clock.now(), d.content])
                    text += d.content
                for tc in d.tool_calls or []:
                    c = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                    if tc.id:
                        c["id"] = tc.id
                    if tc.function and tc.function.name:
                        c["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        deltas.append([clock.now(), tc.function.arguments])
                        c["arguments"] += tc.function.arguments
                if choice.finish_reason:
                    finish = choice.finish_reason
    end = clock.now()
    tool_calls = []
    for i in sorted(calls):
        c = calls[i]
        c["parsed"] = json.loads(c["arguments"])
        tool_calls.append(c)
    return {
        "text": text,
        "tool_calls": tool_calls,
        "finish_reason": finish,
        "opened_at": opened,
        **delta_times(deltas, end),
    }


def main():
    mode, prompt = args()
    client = openai.OpenAI(max_retries=0, timeout=60.0)
    kw = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": prompt},
        ],
    }
    if mode.startswith("tools"):
        kw["tools"] = TOOLS
    if mode in ("json", "tools"):
        emit(once(client, kw))
    elif mode in ("stream", "tools_stream"):
        emit(timed_stream(lambda clock: streamed(client, kw, clock)))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
