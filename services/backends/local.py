"""The embedded lead store: leads live in Leadbot's own SQLite file.

The default backend, with every capability and no network. Its staff IDs
are whatever the admin links people as (a name, an email); nothing checks
them against a directory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.store import Store, from_db_time, to_db_time, utcnow
from services.backends.base import Backend
from services.errors import LeadGone, NotFound
from services.models import (
    Activity,
    Capabilities,
    FollowUp,
    Lead,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    StatusChange,
    StatusOption,
)

STATUSES = [
    StatusOption(value="new", label="New", emoji=":new:"),
    StatusOption(value="contacted", label="Contacted", emoji=":speech_balloon:"),
    StatusOption(value="qualified", label="Qualified", emoji=":star:"),
    StatusOption(value="won", label="Won", emoji=":trophy:", open=False),
    StatusOption(value="lost", label="Lost", emoji=":x:", open=False),
]


class LocalBackend(Backend):
    name = "local"
    title = "Local store"
    capabilities = Capabilities()

    def __init__(self, store: Store) -> None:
        self.store = store

    def statuses(self) -> list[StatusOption]:
        return STATUSES

    def create(self, lead: NewLead, *, by: str) -> Lead:
        now = to_db_time(utcnow())
        status = self.status_option(lead.status).value if lead.status else "new"
        with self.store.transaction() as db:
            table = db["local_leads"]
            table.insert(
                {
                    "name": lead.name,
                    "email": lead.email,
                    "phone": lead.phone,
                    "lead_for": lead.lead_for,
                    "type": lead.type,
                    "source": lead.source,
                    "status": status,
                    "owner": lead.owner or by,
                    "next_follow_up": to_db_time(lead.next_follow_up),
                    "created_at": now,
                    "created_by": by,
                    "last_activity_at": now,
                }
            )
            lead_id = table.last_pk
            if lead.note:
                db["local_notes"].insert({"lead_id": lead_id, "text": lead.note, "by": by, "at": now})
        return self.get(str(lead_id))

    def get(self, lead_id: str) -> Lead:
        row = self._row(lead_id)
        return _lead(row)

    def search(self, query: LeadQuery) -> LeadPage:
        where, params = [], []
        if query.owner:
            where.append("owner = ?")
            params.append(query.owner)
        if query.status:
            where.append("status = ?")
            params.append(self.status_option(query.status).value)
        else:
            open_values = [o.value for o in STATUSES if o.open]
            where.append(f"status in ({', '.join('?' * len(open_values))})")
            params.extend(open_values)
        if query.due_before:
            where.append("next_follow_up is not null and next_follow_up <= ?")
            params.append(to_db_time(query.due_before))
        clause = " and ".join(where)
        table = self.store.db["local_leads"]
        total = table.count_where(clause, params)
        rows = table.rows_where(
            clause,
            params,
            order_by="next_follow_up is null, next_follow_up, id desc",
            limit=query.limit,
            offset=query.offset,
        )
        return LeadPage(leads=[_lead(r) for r in rows], total=total, offset=query.offset)

    def assign(self, lead_id: str, owner: str, *, by: str) -> Lead:
        self._update(lead_id, {"owner": owner})
        return self.get(lead_id)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        self._row(lead_id)
        at = to_db_time(utcnow())
        with self.store.transaction() as db:
            db["local_follow_ups"].insert(
                {
                    "lead_id": int(lead_id),
                    "done_at": to_db_time(follow_up.done_at),
                    "notes": follow_up.notes,
                    "next_follow_up": to_db_time(follow_up.next_follow_up),
                    "by": follow_up.by,
                    "at": at,
                }
            )
            db["local_leads"].update(
                int(lead_id),
                {"next_follow_up": to_db_time(follow_up.next_follow_up), "last_activity_at": at},
            )
        return self.get(lead_id)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        self._row(lead_id)
        at = to_db_time(note.at)
        with self.store.transaction() as db:
            db["local_notes"].insert({"lead_id": int(lead_id), "text": note.text, "by": note.by, "at": at})
            db["local_leads"].update(int(lead_id), {"last_activity_at": at})
        return self.get(lead_id)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        self._row(lead_id)
        status = self.status_option(change.status).value
        at = to_db_time(change.at)
        with self.store.transaction() as db:
            db["local_status_log"].insert(
                {
                    "lead_id": int(lead_id),
                    "status": status,
                    "reason": change.reason,
                    "sub_status": change.sub_status,
                    "by": change.by,
                    "at": at,
                }
            )
            db["local_leads"].update(int(lead_id), {"status": status, "last_activity_at": at})
        return self.get(lead_id)

    def reschedule(self, lead_id: str, when: datetime, *, by: str) -> Lead:
        self._update(lead_id, {"next_follow_up": to_db_time(when)})
        return self.get(lead_id)

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        sql = """
            select 'follow_up' as kind, at, by,
                   'follow-up' || coalesce(': ' || notes, '') as text
              from local_follow_ups where lead_id = :id
            union all
            select 'note', at, by, text from local_notes where lead_id = :id
            union all
            select 'status', at, by,
                   'status → ' || status || coalesce(' (' || reason || ')', '')
              from local_status_log where lead_id = :id
            order by at desc limit :limit
        """
        rows = self.store.db.query(sql, {"id": _int_id(lead_id), "limit": limit})
        return [Activity(kind=r["kind"], at=from_db_time(r["at"]), by=r["by"], text=r["text"]) for r in rows]

    def _row(self, lead_id: str) -> dict[str, Any]:
        rows = list(self.store.db["local_leads"].rows_where("id = ?", [_int_id(lead_id)]))
        if not rows:
            raise LeadGone(f"there is no lead `local:{lead_id}`")
        return rows[0]

    def _update(self, lead_id: str, values: dict[str, Any]) -> None:
        self._row(lead_id)
        with self.store.transaction() as db:
            db["local_leads"].update(int(lead_id), {**values, "last_activity_at": to_db_time(utcnow())})


def _int_id(lead_id: str) -> int:
    if not lead_id.isdigit():
        raise NotFound(f"`local:{lead_id}` is not a lead reference: local leads are numbered, e.g. `local:7`")
    return int(lead_id)


def _lead(row: dict[str, Any]) -> Lead:
    return Lead(
        backend="local",
        id=str(row["id"]),
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        lead_for=row["lead_for"],
        type=row["type"],
        source=row["source"],
        status=row["status"],
        owner=row["owner"],
        next_follow_up=from_db_time(row["next_follow_up"]),
        last_activity=from_db_time(row["last_activity_at"]),
        created_at=from_db_time(row["created_at"]),
    )
