"""The outbox: writes a backend could not take yet, kept in the store until they land.

A write that fails for a transient reason (timeout, refused connection, 5xx,
429) is queued here with an idempotency key and retried with backoff by the
outbox runner; the user is told at once that it is queued and told again
when it lands or fails for good. A permanent rejection is never queued.
Because a timed-out write may have reached the backend after all, each retry
first asks the backend whether it landed (``Backend.applied``).
"""

from __future__ import annotations

import json
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.store import Store, from_db_time, to_db_time

# Where the user asked for the write (opaque here: handlers put a response URL in it), so
# the outcome can be shown there. Set by whoever runs the request.
ORIGIN: ContextVar[dict[str, Any] | None] = ContextVar("leadbot_origin", default=None)

FIRST_RETRY = timedelta(seconds=15)
MAX_RETRY = timedelta(minutes=15)
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = timedelta(minutes=2)  # a retry still "running" after this was cut off (a restart): try again

WHAT = {
    "create": "new lead",
    "assign": "assignment",
    "log_follow_up": "follow-up",
    "add_note": "note",
    "change_status": "status change",
    "reschedule": "snooze",
}


@dataclass(frozen=True)
class QueuedWrite:
    id: int
    key: str
    backend: str
    op: str
    args: dict[str, Any]
    ref: str | None
    slack_user: str
    origin: dict[str, Any]
    attempts: int
    created_at: datetime

    @property
    def what(self) -> str:
        return WHAT.get(self.op, self.op)


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        *,
        backend: str,
        op: str,
        args: dict[str, Any],
        ref: str | None,
        slack_user: str,
        now: datetime,
        retry_after: float | None = None,
    ) -> str:
        key = uuid.uuid4().hex
        wait = max(FIRST_RETRY, timedelta(seconds=retry_after or 0))
        with self.store.transaction() as db:
            db["outbox"].insert(
                {
                    "key": key,
                    "backend": backend,
                    "op": op,
                    "args": json.dumps(args),
                    "ref": ref,
                    "slack_user": slack_user,
                    "origin": json.dumps(ORIGIN.get() or {}),
                    "state": "pending",
                    "attempts": 1,  # the first try, which failed, counts
                    "next_at": to_db_time(now + wait),
                    "created_at": to_db_time(now),
                }
            )
        return key

    def claim_due(self, now: datetime, limit: int = 20) -> list[QueuedWrite]:
        """Writes whose retry is due, each taken by one runner (however many processes run one)."""
        taken = []
        rows = self.store.db.execute(
            "select id from outbox where state in ('pending', 'running') and next_at <= ? order by next_at limit ?",
            [to_db_time(now), limit],
        ).fetchall()
        for (row_id,) in rows:
            with self.store.transaction() as db:
                cursor = db.execute(
                    "update outbox set state = 'running', next_at = ? where id = ?"
                    " and state in ('pending', 'running') and next_at <= ?",
                    [to_db_time(now + LEASE), row_id, to_db_time(now)],
                )
                if cursor.rowcount != 1:
                    continue  # another runner took it
            taken.append(self._item(row_id))
        return taken

    def done(self, item: QueuedWrite, now: datetime, result_ref: str | None) -> None:
        self._finish(item, "done", now, result_ref=result_ref)

    def failed(self, item: QueuedWrite, now: datetime, why: str) -> None:
        self._finish(item, "failed", now, last_error=why)

    def retry_later(self, item: QueuedWrite, now: datetime, why: str, retry_after: float | None = None) -> bool:
        """Schedule the next try; False when it has been failing too long and should be given up."""
        if now - item.created_at >= GIVE_UP_AFTER:
            return False
        delay = min(FIRST_RETRY * 2**item.attempts, MAX_RETRY)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        with self.store.transaction() as db:
            db["outbox"].update(
                item.id,
                {
                    "state": "pending",
                    "attempts": item.attempts + 1,
                    "next_at": to_db_time(now + delay),
                    "last_error": why,
                },
            )
        return True

    def pending(self) -> list[dict[str, Any]]:
        return list(self.store.db["outbox"].rows_where("state in ('pending', 'running')", order_by="id"))

    def _finish(self, item: QueuedWrite, state: str, now: datetime, **values: Any) -> None:
        with self.store.transaction() as db:
            db["outbox"].update(
                item.id, {"state": state, "attempts": item.attempts + 1, "finished_at": to_db_time(now), **values}
            )

    def _item(self, row_id: int) -> QueuedWrite:
        row = self.store.db["outbox"].get(row_id)
        return QueuedWrite(
            id=row["id"],
            key=row["key"],
            backend=row["backend"],
            op=row["op"],
            args=json.loads(row["args"]),
            ref=row["ref"],
            slack_user=row["slack_user"],
            origin=json.loads(row["origin"] or "{}"),
            attempts=row["attempts"],
            created_at=from_db_time(row["created_at"]),
        )
