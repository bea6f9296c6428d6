"""The fake Slack Web API in a process of its own, so that its threads never take
the load client's GIL (which would inflate the acks the client measures).

Prints its base URL, then answers lines on stdin: ``count`` (replies received),
``dump`` (JSON: response-URL key -> time.monotonic() of arrival), ``clear``,
``digests`` (JSON: digest messages delivered, distinct (channel, day) pairs, 429s answered).
``--limit METHOD=N`` answers 429 with ``Retry-After: 1`` beyond N calls of METHOD per second.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.fakeslack import FakeSlack  # noqa: E402


def digests(fake: FakeSlack) -> dict[str, int]:
    delivered = [
        (channel, m["metadata"]["event_payload"]["day"])
        for channel, messages in list(fake.messages.items())
        for m in list(messages)
        if (m.get("metadata") or {}).get("event_type") == "leadbot_digest"
    ]
    refused = sum(1 for c in fake.received("api", "chat.postMessage") if c.answer.get("error") == "ratelimited")
    return {"delivered": len(delivered), "distinct": len(set(delivered)), "rate_limited": refused}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--limit")]
    limits = [a.removeprefix("--limit=") for a in sys.argv[1:] if a.startswith("--limit=")]
    fake = FakeSlack().start()
    for limit in limits:
        method, _, per_second = limit.partition("=")
        fake.limit(method, int(per_second))
    fake.add_user(args[0] if args else "UBENCH", "bench", "UTC")
    print(fake.url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            print(len(fake.received("response")), flush=True)
        elif command == "dump":
            print(json.dumps({c.name: c.received_at for c in fake.received("response")}), flush=True)
        elif command == "digests":
            print(json.dumps(digests(fake)), flush=True)
        elif command == "clear":
            fake.clear()
            print("ok", flush=True)
    fake.stop()
