"""What Leadbot remembers of leads in backends that do not keep (or return) it.

Capillary leads carry no name or contact; the REST leads API has no owner or
follow-up schedule. Leadbot keeps what it set through its own writes here
(the ``remote_leads`` table), so cards, lists and reminders still work.
"""

from __future__ import annotations

from typing import Any

from bot.store import Store, to_db_time, utcnow

COLUMNS = ("name", "email", "phone", "owner", "customer", "next_follow_up", "archived")


class LeadMemory:
    def __init__(self, store: Store, backend: str) -> None:
        self.store = store
        self.backend = backend

    def remember(self, lead_id: str, **values: Any) -> None:
        """Store the given fields (None clears ``next_follow_up`` only when passed explicitly)."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"not remembered: {unknown}")
        with self.store.transaction() as db:
            db["remote_leads"].upsert(
                {"backend": self.backend, "lead_id": lead_id, **values, "updated_at": to_db_time(utcnow())},
                pk=("backend", "lead_id"),
            )

    def recall(self, lead_id: str) -> dict[str, Any]:
        row = self.store.db.execute(
            f"select {', '.join(COLUMNS)} from remote_leads where backend = ? and lead_id = ?",
            [self.backend, lead_id],
        ).fetchone()
        return dict(zip(COLUMNS, row, strict=True)) if row else {}

    def recall_all(self) -> dict[str, dict[str, Any]]:
        rows = self.store.db.execute(
            f"select lead_id, {', '.join(COLUMNS)} from remote_leads where backend = ?", [self.backend]
        ).fetchall()
        return {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in rows}

    def staff_for(self, suffix: str) -> str | None:
        """The linked staff ID that ends with ``/suffix`` (Capillary's ``USERNAME/ENTITY_ID``)."""
        row = self.store.db.execute(
            "select staff_id from staff_links where backend = ? and staff_id like ?", [self.backend, f"%/{suffix}"]
        ).fetchone()
        return row[0] if row else None
