"""What ``leadbot outbox`` and ``leadbot export`` do, apart from the command line itself.

Both work on the database alone (no Slack, no backend), so an operator can
run them beside a live ``leadbot run``: the outbox runner there picks up a
write made due within its interval, and never takes a dropped one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from services.audit import Actor, Audit
from services.clock import Clock, utcnow
from services.models import Lead
from services.outbox import what
from services.ports import QueuedWrite, Store

CLI = Actor(slack_user="cli")  # who the audit trail says acted, for what an operator does from the shell
EXPORT_FIELDS = (
    "ref",
    "id",
    "name",
    "email",
    "phone",
    "lead_for",
    "type",
    "source",
    "status",
    "owner",
    "next_follow_up",
    "created_at",
    "created_by",
    "last_activity_at",
)


def ago(delta: timedelta) -> str:
    """A duration the way an operator reads it at a glance: 45 s, 12 min, 3 h, 2 d."""
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def next_try(write: QueuedWrite, now: datetime) -> str:
    if write.state == "running" and write.next_at > now:
        return "being tried now"
    if write.next_at <= now:
        return "due now"
    return f"in {ago(write.next_at - now)}"


def outbox_rows(store: Store, now: datetime) -> list[dict[str, str]]:
    """The queued writes, oldest first, as the table shows them."""
    return [
        {
            "id": str(w.id),
            "backend": w.backend,
            "op": what(w.op),
            "lead": w.ref or "(new lead)",
            "attempts": str(w.attempts),
            "next try": next_try(w, now),
            "last error": w.last_error or "",
            "age": ago(now - w.created_at),
        }
        for w in store.outbox.pending()
    ]


class NotWaiting(Exception):
    """The write named is not one an operator can act on now; the message says why."""


def _why_not(store: Store, write_id: int, now: datetime) -> str:
    write = store.outbox.get(write_id)
    if write is None:
        return f"there is no queued write {write_id} (leadbot outbox lists them)"
    if write.state == "running" and write.next_at > now:
        return f"write {write_id} is being tried right now; look again in a minute"
    ended = {"done": "it landed", "failed": "it failed for good", "dropped": "it was dropped"}.get(write.state, "")
    return f"write {write_id} is no longer queued ({ended or write.state})"


def retry(store: Store, write_id: int | None, clock: Clock = utcnow) -> list[int]:
    """Make one waiting write, or all of them, due now; ``NotWaiting`` when the one named is not waiting."""
    now = clock()
    made_due = store.outbox.retry_now(now, write_id)
    if write_id is not None and not made_due:
        raise NotWaiting(_why_not(store, write_id, now))
    return made_due


def describe(write: QueuedWrite) -> str:
    lead = f" for {write.ref}" if write.ref else ""  # a new lead has no ref until it lands
    return f"the {what(write.op)}{lead} on {write.backend}, queued by {write.slack_user}"


def drop(store: Store, write_id: int, clock: Clock = utcnow) -> QueuedWrite:
    """Give the write up, and say so in the audit trail (who: ``cli``); ``NotWaiting`` when it cannot be."""
    now = clock()
    write = store.outbox.get(write_id)
    with store.atomic():
        if write is None or not store.outbox.drop(write_id, now):
            raise NotWaiting(_why_not(store, write_id, now))
        Audit(store.audit, clock).record(CLI, "outbox_drop", write.ref, "ok", f"write {write_id}: {describe(write)}")
    return write


# -- export -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_record(lead: Lead) -> dict[str, Any]:
    """One lead, every field the local store keeps, text exactly as stored."""
    record = lead.model_dump(
        include={"id", "name", "email", "phone", "lead_for", "type", "source", "status", "owner", "created_by"}
    )
    return {
        "ref": lead.ref,
        **record,
        "id": int(lead.id),  # the store's number (the domain carries every backend's ids as text)
        "next_follow_up": _time(lead.next_follow_up),
        "created_at": _time(lead.created_at),
        "last_activity_at": _time(lead.last_activity),
    }


def local_leads(store: Store, page: int = 500) -> Iterator[dict[str, Any]]:
    """Every local lead by number, read a page at a time so a large store is never all in memory."""
    after = 0
    while leads := store.local.every(after, page):
        for lead in leads:
            yield export_record(lead)
        after = int(leads[-1].id)


def write_export(records: Iterator[dict[str, Any]], out: IO[str], fmt: str) -> int:
    """Write ``records`` as CSV (a header row, then one row each) or a JSON array; return how many."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
            count += 1
        return count
    out.write("[")
    for record in records:
        out.write(
            ("," if count else "") + "\n  " + json.dumps({k: record[k] for k in EXPORT_FIELDS}, ensure_ascii=False)
        )
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
