"""Digest throughput: 1,000 owners x 10 due leads on the local backend, against a posting limit.

The fake Slack Web API runs in its own process and answers ``chat.postMessage``
beyond ``--limit`` messages per second with 429 and ``Retry-After: 1``, so
the floor is owners / limit seconds. Leadbot's scheduler runs in this process
with its pace set just under the limit (``--pace``, a fraction of it), as an
operator would set ``LEADBOT_DIGEST_RATE``. Prints the total time against the
floor, messages delivered, duplicates, dropped and 429s, and peak RSS.

    .venv/bin/python bench/reminders.py                 # 1,000 owners, 100/s: about 15 s
    .venv/bin/python bench/reminders.py --owners 200    # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build_digest_scheduler, build_runtime  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.executor import InlineExecutor  # noqa: E402
from bot.stores.sqlite import SqliteStore  # noqa: E402
from services.models import NewLead, StaffLink  # noqa: E402


class RemoteFake:
    def __init__(self, limit: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_web_api.py"), f"--limit=chat.postMessage={limit}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.api_url = self.process.stdout.readline().strip() + "/api/"

    def digests(self) -> dict[str, int]:
        self.process.stdin.write("digests\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


def seed(db: Path, owners: int, leads_each: int, now: datetime) -> None:
    """Owners linked on local with their time zone already known today (as after the first day)."""
    store = SqliteStore(db)
    with store.atomic():  # one transaction: seeding 11,000 rows one commit each would take minutes
        for n in range(owners):
            user, staff = f"U{n:08d}", f"staff{n}"
            store.links.put(StaffLink(slack_user=user, backend="local", staff_id=staff), by="UBENCH", at=now)
            store.prefs.set_user(user, tz="UTC", tz_checked_at=now)
            for k in range(leads_each):
                lead = NewLead(
                    name=f"Lead {n}-{k}",
                    email=f"lead{n}.{k}@example.com",
                    next_follow_up=now - timedelta(hours=k + 1),
                )
                store.local.insert(lead, status="new", owner=staff, by=staff, at=now - timedelta(days=3))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--leads", type=int, default=10)
    parser.add_argument("--limit", type=int, default=100, help="the fake's chat.postMessage limit per second")
    parser.add_argument("--pace", type=float, default=0.98, help="Leadbot's pace as a fraction of the limit")
    args = parser.parse_args()

    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    fake = RemoteFake(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        seed(db, args.owners, args.leads, now)
        settings = load_settings(
            slack_bot_token="xoxb-bench",
            slack_signing_secret="bench",
            slack_api_url=fake.api_url,
            leadbot_db=db,
            leadbot_digest_rate=args.limit * args.pace,
        )
        runtime = build_runtime(settings, background=InlineExecutor(), clock=lambda: now)
        scheduler = build_digest_scheduler(runtime)
        started = time.perf_counter()
        outcome = scheduler.run_due()
        elapsed = time.perf_counter() - started
        again = scheduler.run_due()  # a second pass (a restart) must send nothing
        seen = fake.digests()
    fake.stop()

    floor = args.owners / args.limit
    sent = outcome.get("sent", 0)
    duplicates = seen["delivered"] - seen["distinct"]
    dropped = args.owners - seen["distinct"]
    print(f"owners {args.owners} x {args.leads} due leads, limit {args.limit}/s, pace {args.limit * args.pace:.0f}/s")
    print(f"total {elapsed:.2f} s against a floor of {floor:.2f} s: {elapsed / floor:.3f}x (target <= 1.10x)")
    print(f"messages delivered {seen['delivered']} (reported sent {sent}), duplicates {duplicates}, dropped {dropped}")
    print(f"429s answered {seen['rate_limited']}, second pass sent {again.get('sent', 0)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (this process: seeding and scheduler)")


if __name__ == "__main__":
    main()
