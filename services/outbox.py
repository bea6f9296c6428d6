"""The outbox: writes a backend could not take yet, kept in the store until they land.

A write that fails for a transient reason (timeout, refused connection, 5xx,
429) is queued here with a key of its own and retried with backoff by the
outbox runner; the user is told at once that it is queued and told again
when it lands or fails for good. A permanent rejection is never queued.
Because a timed-out write may have reached the backend after all, each retry
first asks the backend whether it landed (``Backend.applied``).
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

WHAT = MappingProxyType(
    {
        "create": "new lead",
        "assign": "assignment",
        "log_follow_up": "follow-up",
        "add_note": "note",
        "change_status": "status change",
        "reschedule": "snooze",
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
        )

    def claim_due(self, now: datetime, limit: int = 20) -> list[QueuedWrite]:
        """Writes whose retry is due, each taken by one runner (however many processes run one)."""
        return self.queue.claim_due(now, now + LEASE, limit)

    def done(self, item: QueuedWrite, now: datetime, result_ref: str | None) -> None:
        self.queue.update(item.id, state="done", attempts=item.attempts + 1, finished_at=now, result_ref=result_ref)

    def failed(self, item: QueuedWrite, now: datetime, why: str) -> None:
        self.queue.update(item.id, state="failed", attempts=item.attempts + 1, finished_at=now, last_error=why)

    def retry_later(self, item: QueuedWrite, now: datetime, why: str, retry_after: float | None = None) -> bool:
        """Schedule the next try; False when it has been failing too long and should be given up."""
        if now - item.created_at >= GIVE_UP_AFTER:
            return False
        delay = min(FIRST_RETRY * 2**item.attempts, MAX_RETRY)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        self.queue.update(item.id, state="pending", attempts=item.attempts + 1, next_at=now + delay, last_error=why)
        return True

    def pending(self, backend: str | None = None) -> list[QueuedWrite]:
        return [w for w in self.queue.pending() if backend is None or w.backend == backend]
