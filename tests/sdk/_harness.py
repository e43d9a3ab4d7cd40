"""Shared helpers for the SDK client scripts run by tests/sdk_e2e.rs.

Each script is called as `python SCRIPT.py MODE PROMPT`, talks to the veilgate sidecar
through a real SDK (base URL and dummy key from OPENAI_BASE_URL / ANTHROPIC_BASE_URL and
OPENAI_API_KEY / ANTHROPIC_API_KEY), and prints ONE JSON object on its last stdout line:
what the SDK handed to the application (text, tool arguments) and, for streams, when each
delta arrived (seconds since the request started, monotonic clock).

Any exception (a response the SDK cannot parse, a connection error) ends the script with a
traceback on stderr and a non-zero exit code.
"""

import json
import sys
import time


class Clock:
    """Seconds since creation, monotonic."""

    def __init__(self):
        self.t0 = time.monotonic()

    def now(self):
        return round(time.monotonic() - self.t0, 4)


def args():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} MODE PROMPT")
    return sys.argv[1], sys.argv[2]


def emit(result):
    """Prints the result as the last line of stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def timed_stream(run):
    """Runs a streaming call twice and returns the second result, with the first one's
    under "warmup".

    The SDKs build their pydantic models lazily: the first event of a kind can take a
    second or more to parse on a busy machine (Responses API events above all), while the
    next events wait in the socket and then arrive in a burst. The warm-up call makes the
    measured call's timestamps tell when the sidecar delivered each delta, not how long
    the SDK took to warm up. `run(clock)` records times with `clock.now()`.
    """
    warmup = run(Clock())
    result = run(Clock())
    result["warmup"] = warmup
    return result


def delta_times(deltas, end):
    """First delta time and end of the stream, for the ordering assertions."""
    return {
        "deltas": deltas,
        "first_delta_at": deltas[0][0] if deltas else None,
        "end_at": end,
    }
