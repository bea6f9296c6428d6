"""The outbox: writes a backend could not take yet, kept in the store until they land.

A write that fails for a transient reason (timeout, refused connection, 5xx,
429) is queued here with a key of its own and retried with backoff by the
outbox runner; the user is told at once that it is queued and told again
when it lands or fails for good. A permanent rejection is never queued.
Because a timed-out write may have reached the backend after all, each retry
first asks the backend whether it landed (``Backend.applied``), by the receipt
Leadbot put on the write. A write whose last try may have landed (a timeout,
a reply lost) is not sent again until it has gone unseen for ``SETTLE``: a
server that applies a request late then shows it to the next look instead of
getting it twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from services.ports import OutboxQueue, QueuedWrite

FIRST_RETRY = timedelta(seconds=15)
MAX_RETRY = timedelta(minutes=15)
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = timedelta(minutes=2)  # a retry still "running" after this was cut off (a restart): try again
SETTLE = timedelta(minutes=2)  # how long a write that may have landed is looked for before it is sent again

WHAT = MappingProxyType(
    {
        "create": "new lead",
        "assign": "assignment",
        "log_follow_up": "follow-up",
        "add_note": "note",
        "change_status": "status change",
        "reschedule": "snooze",
        "add_deal": "deal",
        "set_department": "department assignment",
        "edit": "edit",
    }
)


def what(op: str) -> str:
    """How the user would name the write ``op``."""
    return WHAT.get(op, op)


class Outbox:
    def __init__(self, queue: OutboxQueue) -> None:
        self.queue = queue

    def add(
        self,
        *,
        backend: str,
        op: str,
        args: dict[str, Any],
        ref: str | None,
        slack_user: str,
        origin: dict[str, Any],
        now: datetime,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> QueuedWrite:
        wait = max(FIRST_RETRY, timedelta(seconds=retry_after or 0))
        return self.queue.add(
            key=uuid.uuid4().hex,
            backend=backend,
            op=op,
            args=args,
            ref=ref,
            slack_user=slack_user,
            origin=origin,
            next_at=now + wait,
            created_at=now,
            unknown_since=now if maybe_applied else None,
        )

    def claim_due(self, now: datetime, limit: int = 20) -> list[QueuedWrite]:
        """Writes whose retry is due, each taken by one runner (however many processes run one)."""
        return self.queue.claim_due(now, now + LEASE, limit)

    def done(self, item: QueuedWrite, now: datetime, result_ref: str | None) -> None:
        self.queue.update(item.id, state="done", attempts=item.attempts + 1, finished_at=now, result_ref=result_ref)

    def failed(self, item: QueuedWrite, now: datetime, why: str) -> None:
        self.queue.update(item.id, state="failed", attempts=item.attempts + 1, finished_at=now, last_error=why)

    def retry_later(
        self,
        item: QueuedWrite,
        now: datetime,
        why: str,
        retry_after: float | None = None,
        *,
        unknown_since: datetime | None = None,
    ) -> bool:
        """Schedule the next try; False when it has been failing too long and should be given up."""
        if now - item.created_at >= GIVE_UP_AFTER:
            return False
        delay = min(FIRST_RETRY * 2**item.attempts, MAX_RETRY)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        self.queue.update(
            item.id,
            state="pending",
            attempts=item.attempts + 1,
            next_at=now + delay,
            last_error=why,
            unknown_since=unknown_since,
        )
        return True

    def look_again(self, item: QueuedWrite, now: datetime) -> None:
        """Not seen yet, and not sent again either: its last try may still land (see ``SETTLE``)."""
        settled_at = (item.unknown_since or now) + SETTLE
        delay = min(max(FIRST_RETRY, settled_at - now), FIRST_RETRY * 2**item.attempts)
        self.queue.update(item.id, state="pending", next_at=now + delay, last_error="looking for it before resending")

    @staticmethod
    def may_resend(item: QueuedWrite, now: datetime) -> bool:
        """A write whose last try may have landed is sent again only once it has gone unseen for ``SETTLE``."""
        return item.unknown_since is None or now - item.unknown_since >= SETTLE

    def pending(self, backend: str | None = None) -> list[QueuedWrite]:
        return [w for w in self.queue.pending() if backend is None or w.backend == backend]
