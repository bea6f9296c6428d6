"""The fake Slack Web API in a process of its own, so that its threads never take
the load client's GIL (which would inflate the acks the client measures).

Prints its base URL, then answers lines on stdin: ``count`` (replies received),
``dump`` (JSON: response-URL key -> time.monotonic() of arrival), ``clear``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.fakeslack import FakeSlack  # noqa: E402

if __name__ == "__main__":
    fake = FakeSlack().start()
    fake.add_user(sys.argv[1] if len(sys.argv) > 1 else "UBENCH", "bench", "UTC")
    print(fake.url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            print(len(fake.received("response")), flush=True)
        elif command == "dump":
            print(json.dumps({c.name: c.received_at for c in fake.received("response")}), flush=True)
        elif command == "clear":
            fake.clear()
            print("ok", flush=True)
    fake.stop()
