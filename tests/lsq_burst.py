"""One process of a LeadSquared burst: ``ACTIONS`` actions on many threads, through the LeadService, on a shared
SQLite file (so its rate budget is the one every process on that file takes slots from).

Run by ``tests/test_leadsquared_processes.py`` and ``bench/leadsquared.py``, two at a time (``burst``)::

    python -m tests.lsq_burst --url URL --db PATH --label p1 --actions 50 [--mix mixed|notes]

It links its actor, says ``ready`` on stdout and waits for a line on stdin before it
starts (so that both processes start together, without sleeping for it), then prints
one JSON line: what it did, how long it took, the calls it made and any errors.

The ``mixed`` mix, by action number: a new lead, a note, a follow-up with a next one,
a stage change with a reason, a card's reads (the lead and its activity); ``notes`` is
notes only. Every write carries ``LABEL-N`` so the caller can check each landed once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.stores.sqlite import SqliteStore
from services.audit import Actor, Audit
from services.backends.base import BackendContext
from services.backends.common import unmarked
from services.backends.leadsquared import LeadSquaredBackend, LeadSquaredOptions
from services.backends.local import LocalBackend
from services.events import Events
from services.leads import LeadService
from services.models import NewLead
from services.outbox import Outbox
from services.people import People
from services.routing import Backends
from tests.fakes.leadsquared import ACCESS_KEY, SAMPLE_LEAD, SECRET_KEY, FakeLeadSquared

ROOT = Path(__file__).resolve().parents[1]
ANA = "ana.silva@example.com"
STAGES = ("Prospect", "Qualified", "Opportunity")
LEAD = f"leadsquared:{SAMPLE_LEAD}"


def service_on(db: Path, url: str, *, limit: int, window: float) -> tuple[LeadService, LeadSquaredBackend]:
    store = SqliteStore(db)
    options = LeadSquaredOptions(
        url=url,
        access_key=SecretStr(ACCESS_KEY),
        secret_key=SecretStr(SECRET_KEY),
        rate_limit=limit,
        rate_window=window,
        timeout=30,
    )
    backend = LeadSquaredBackend(options, BackendContext(store=store))
    backends = Backends({"local": LocalBackend(store.local, lambda: datetime.now(UTC)), "leadsquared": backend})
    audit = Audit(store.audit)
    people = People(store.links, store.prefs, backends, audit)
    people.link(Actor(slack_user="UADMIN", is_admin=True), "UANA", ANA, backend="leadsquared")
    return LeadService(backends, people, Outbox(store.outbox), audit, Events()), backend


def action(service: LeadService, label: str, n: int, mix: str) -> Callable[[], object]:
    """The ``n``-th action of this process, tagged ``label-n``."""
    actor, tag = Actor(slack_user="UANA"), f"{label}-{n}"
    kind = n % 5 if mix == "mixed" else 1
    if kind == 0:
        lead = NewLead(name=f"Burst {tag}", email=f"burst-{tag}@example.com")
        return lambda: service.create(actor, lead, backend="leadsquared")
    if kind == 1:
        return lambda: service.add_note(actor, LEAD, f"note {tag}")
    if kind == 2:
        nxt = datetime.now(UTC) + timedelta(days=1 + n)
        return lambda: service.log_follow_up(actor, LEAD, notes=f"follow-up {tag}", next_follow_up=nxt)
    if kind == 3:
        stage = STAGES[n % len(STAGES)]
        return lambda: service.change_status(actor, LEAD, stage, reason=f"stage {tag}")
    return lambda: service.activity(service.get(LEAD), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--actions", type=int, default=50)
    parser.add_argument("--mix", choices=("mixed", "notes"), default="mixed")
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    service, backend = service_on(args.db, args.url, limit=args.limit, window=args.window)
    todo = [action(service, args.label, n, args.mix) for n in range(args.actions)]
    print("ready", flush=True)
    sys.stdin.readline()
    errors: list[str] = []

    def run(work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as exc:  # reported, not raised: the caller counts them
            errors.append(f"{type(exc).__name__}: {exc}")

    started = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(run, todo))
    summary = {"label": args.label, "actions": args.actions, "seconds": time.monotonic() - started}
    print(json.dumps(summary | {"calls": backend.calls, "errors": errors}), flush=True)


# -- the caller's side: two of these, and what must hold afterwards ----------------------------------


def burst(
    url: str, db: Path, *, per_process: int, mix: str, limit: int, window: float, processes: int = 2
) -> tuple[float, list[dict]]:
    """The processes started, ready, then told to go at once; (seconds from go to all done, their summaries)."""
    SqliteStore(db).close()  # the schema exists before either process opens the file
    options = ["--url", url, "--db", str(db), "--actions", str(per_process), "--mix", mix]
    options += ["--limit", str(limit), "--window", str(window)]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.lsq_burst", "--label", f"p{n + 1}", *options],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        summaries = [json.loads(child.stdout.readline()) for child in children]
        return time.monotonic() - started, summaries
    finally:
        for child in children:
            child.stdin.close()
            child.wait(30)


def landed_once(fake: FakeLeadSquared, summaries: list[dict[str, Any]], mix: str) -> None:
    """Every action's write is in the fake exactly once."""
    notes = Counter(unmarked(n["Note"]) for n in fake.notes.values())
    activities = Counter(unmarked(a["Data"]["ActivityEvent_Note"] or "") for a in fake.activities.values())
    emails = Counter(lead.get("EmailAddress") for lead in fake.leads.values())
    for summary in summaries:
        for n in range(summary["actions"]):
            tag, kind = f"{summary['label']}-{n}", n % 5 if mix == "mixed" else 1
            if kind == 0:
                assert emails[f"burst-{tag}@example.com"] == 1, tag
            elif kind == 1:
                assert notes[f"note {tag}"] == 1, tag
            elif kind == 2:
                assert activities[f"follow-up {tag}"] == 1, tag
            elif kind == 3:
                assert sum(count for text, count in notes.items() if text.endswith(f": stage {tag}")) == 1, tag


if __name__ == "__main__":
    main()
