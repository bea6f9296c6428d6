"""100 LeadSquared actions against the fake on a real clock, at LeadSquared's 25 calls per 5 s: time against the floor.

The fake (tests/fakes/leadsquared.py) runs in this process with its rate limit on
and answers a 26th call in any 5 s with 429. Two Leadbot processes (``--processes``)
on one SQLite file run the actions through the LeadService on 8 threads each, so
every call takes a slot from the one rate budget they share
(tests/lsq_burst.py): a mix of new leads, notes, follow-ups with a next one, stage
changes with a reason, and card reads (the lead and its activity). Prints the time
from the start to the last action done, every call the actions made (by endpoint),
the rate-limit floor (those calls at 25 per 5 s), how many 429s the fake sent, and
whether every write landed exactly once.

    .venv/bin/python bench/leadsquared.py                    # 100 actions, 2 processes: about a minute
    .venv/bin/python bench/leadsquared.py --actions 50 --processes 1
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.leadsquared import FakeLeadSquared  # noqa: E402
from tests.lsq_burst import burst, landed_once  # noqa: E402

LIMIT, WINDOW = 25, 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=100, help="in all, shared among the processes")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--mix", choices=("mixed", "notes"), default="mixed")
    args = parser.parse_args()
    per_process = args.actions // args.processes
    with FakeLeadSquared(rate_limit=LIMIT, rate_window=WINDOW) as fake, tempfile.TemporaryDirectory() as tmp:
        seconds, summaries = burst(
            fake.url,
            Path(tmp) / "leadbot.db",
            per_process=per_process,
            mix=args.mix,
            limit=LIMIT,
            window=WINDOW,
            processes=args.processes,
        )
        calls = len(fake.received)
        errors = [e for s in summaries for e in s["errors"]]
        landed_once(fake, summaries, args.mix)
        by_endpoint = Counter(r.path.removeprefix("/v2/").replace(".svc/", ".") for r in fake.received)
        floor = calls * WINDOW / LIMIT
        window_minimum = (math.ceil(calls / LIMIT) - 1) * WINDOW
        print(f"{per_process * args.processes} {args.mix} actions from {args.processes} process(es), 8 threads each")
        print(f"calls made: {calls} ({', '.join(f'{name} {n}' for name, n in by_endpoint.most_common())})")
        print(f"time: {seconds:.2f} s")
        print(f"floor ({calls} calls at {LIMIT} per {WINDOW:g} s): {floor:.2f} s -> {seconds / floor:.3f}x the floor")
        print(f"(a sliding window lets the first {LIMIT} go at once: {window_minimum:.1f} s at the very least)")
        print(f"429s: {fake.throttled}; errors: {len(errors)}; every write landed exactly once: yes")
        for error in errors[:5]:
            print(f"  {error}")


if __name__ == "__main__":
    main()
