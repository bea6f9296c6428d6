"""Every port of ``services.ports`` in memory: for fast tests, and a reference for new stores.

One lock guards the whole state; ``atomic()`` snapshots it and restores the
snapshot if the block fails, which is all a transaction means here. Nothing
survives the process, and "another process" is simulated by ``pid``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from bot.stores.common import alive, next_slot, process_token
from services.models import Activity, FollowUp, Lead, LeadPage, NewLead, Note, StaffLink, StatusChange
from services.ports import (
    AUDIT_FIELDS,
    CHANNEL_FIELDS,
    DIGEST_UPDATABLE,
    LOCAL_UPDATABLE,
    OUTBOX_UPDATABLE,
    REMOTE_FIELDS,
    USER_FIELDS,
    AuditEntry,
    ChannelPrefs,
    Conflict,
    DigestRecord,
    QueuedWrite,
    RemoteLead,
    RequestWrite,
    StoreUnavailable,
    UserPrefs,
)
from services.search import Terms, ranked


@dataclass
class _LocalLead:
    lead: Lead
    follow_ups: list[Activity] = field(default_factory=list)
    notes: list[Activity] = field(default_factory=list)
    statuses: list[Activity] = field(default_factory=list)


@dataclass
class _State:
    links: dict[tuple[str, str], str] = field(default_factory=dict)  # (user, backend) -> staff id
    link_history: set[tuple[str, str, str]] = field(default_factory=set)  # (backend, staff id, user) ever linked
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: dict[str, RequestWrite] = field(default_factory=dict)
    users: dict[str, UserPrefs] = field(default_factory=dict)
    channels: dict[str, ChannelPrefs] = field(default_factory=dict)
    outbox: dict[int, QueuedWrite] = field(default_factory=dict)
    digests: dict[tuple[str, date], DigestRecord] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    remote: dict[tuple[str, str], RemoteLead] = field(default_factory=dict)
    local: dict[int, _LocalLead] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)
    next_outbox_id: int = 1
    next_lead_id: int = 1


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._state = _State()
        self._depth = 0
        self.down = False
        self.links = _Links(self)
        self.requests = _Requests(self)
        self.writes = _Writes(self)
        self.prefs = _Prefs(self)
        self.outbox = _Outbox(self)
        self.digests = _Digests(self)
        self.audit = _Audit(self)
        self.remote = _Remote(self)
        self.local = _Local(self)
        self.rates = _Rates(self)

    @property
    def state(self) -> _State:
        return self._state

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self._lock:
            snapshot = copy.deepcopy(self._state) if self._depth == 0 else None
            self._depth += 1
            try:
                yield
            except BaseException:
                if snapshot is not None:
                    self._state = snapshot
                raise
            finally:
                self._depth -= 1

    @contextmanager
    def locked(self) -> Iterator[_State]:
        with self._lock:
            if self.down:
                raise StoreUnavailable("the store is down")
            yield self._state

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("the store is down")

    def close(self) -> None:
        pass


class _Part:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store


class _Links(_Part):
    def staff_id(self, slack_user: str, backend: str) -> str | None:
        with self.store.locked() as s:
            return s.links.get((slack_user, backend))

    def holder(self, backend: str, staff_id: str) -> str | None:
        with self.store.locked() as s:
            return next((u for (u, b), sid in s.links.items() if b == backend and sid == staff_id), None)

    def of_user(self, slack_user: str) -> list[StaffLink]:
        with self.store.locked() as s:
            found = [StaffLink(slack_user=u, backend=b, staff_id=sid) for (u, b), sid in s.links.items()]
        return sorted((link for link in found if link.slack_user == slack_user), key=lambda link: link.backend)

    def of_backend(self, backend: str) -> list[StaffLink]:
        with self.store.locked() as s:
            found = [StaffLink(slack_user=u, backend=b, staff_id=sid) for (u, b), sid in s.links.items()]
        return sorted((link for link in found if link.backend == backend), key=lambda link: link.slack_user)

    def users(self) -> list[str]:
        with self.store.locked() as s:
            return sorted({u for u, _ in s.links})

    def put(self, link: StaffLink, *, by: str, at: datetime) -> None:
        with self.store.locked() as s:
            holder = next((u for (u, b), sid in s.links.items() if b == link.backend and sid == link.staff_id), None)
            if holder is not None and holder != link.slack_user:
                raise Conflict(f"{link.backend}:{link.staff_id} is linked to {holder}")
            s.links[(link.slack_user, link.backend)] = link.staff_id
            s.link_history.add((link.backend, link.staff_id, link.slack_user))

    def held_by(self, backend: str, staff_id: str) -> list[str]:
        with self.store.locked() as s:
            return sorted(u for b, sid, u in s.link_history if b == backend and sid == staff_id)

    def delete(self, slack_user: str, backend: str) -> bool:
        with self.store.locked() as s:
            return s.links.pop((slack_user, backend), None) is not None


class _Requests(_Part):
    pid = process_token()  # which process a "started" claim belongs to (tests play other processes)

    def claim(self, key: str, *, until_done: bool = False) -> bool:
        pid = self.pid
        with self.store.locked() as s:
            found = s.requests.get(key)
            if found is None:
                s.requests[key] = {
                    "at": datetime.now(UTC),
                    "state": "started" if until_done else "done",
                    "pid": pid,
                }
                return True
            if found["state"] != "started" or found["pid"] == pid or alive(found["pid"]):
                return False
            found |= {"pid": pid, "at": datetime.now(UTC)}
            return True

    def finish(self, keys: list[str]) -> None:
        with self.store.locked() as s:
            for key in keys:
                if key in s.requests:
                    s.requests[key]["state"] = "done"

    def prune(self, older_than: datetime) -> int:
        with self.store.locked() as s:
            old = [k for k, v in s.requests.items() if v["at"] < older_than]
            for key in old:
                del s.requests[key]
            return len(old)


class _Writes(_Part):
    def get(self, key: str) -> RequestWrite | None:
        with self.store.locked() as s:
            return s.writes.get(key)

    def record(self, write: RequestWrite) -> None:
        with self.store.locked() as s:
            s.writes[write.key] = replace(write, args=copy.deepcopy(write.args))

    def forget(self, key: str) -> None:
        with self.store.locked() as s:
            s.writes.pop(key, None)

    def prune(self, older_than: datetime) -> int:
        with self.store.locked() as s:
            old = [k for k, w in s.writes.items() if w.at < older_than]
            for key in old:
                del s.writes[key]
            return len(old)


class _Prefs(_Part):
    def user(self, slack_user: str) -> UserPrefs:
        with self.store.locked() as s:
            return s.users.get(slack_user, UserPrefs())

    def users(self, slack_users: list[str]) -> dict[str, UserPrefs]:
        with self.store.locked() as s:
            return {u: s.users.get(u, UserPrefs()) for u in slack_users}

    def set_user(self, slack_user: str, **values: Any) -> None:
        unknown = set(values) - USER_FIELDS
        if unknown or not values:
            raise ValueError(f"not user settings: {sorted(unknown) or 'none given'}")
        with self.store.locked() as s:
            s.users[slack_user] = replace(s.users.get(slack_user, UserPrefs()), **values)

    def channel(self, channel: str) -> ChannelPrefs:
        with self.store.locked() as s:
            return s.channels.get(channel, ChannelPrefs())

    def set_channel(self, channel: str, **values: Any) -> None:
        unknown = set(values) - CHANNEL_FIELDS
        if unknown or not values:
            raise ValueError(f"not channel settings: {sorted(unknown) or 'none given'}")
        with self.store.locked() as s:
            s.channels[channel] = replace(s.channels.get(channel, ChannelPrefs()), **values)


class _Outbox(_Part):
    def add(
        self,
        *,
        key: str,
        backend: str,
        op: str,
        args: dict[str, Any],
        ref: str | None,
        slack_user: str,
        origin: dict[str, Any],
        next_at: datetime,
        created_at: datetime,
        unknown_since: datetime | None = None,
    ) -> QueuedWrite:
        with self.store.locked() as s:
            if any(w.key == key for w in s.outbox.values()):
                raise Conflict(f"outbox key {key} exists")
            write = QueuedWrite(
                id=s.next_outbox_id,
                key=key,
                backend=backend,
                op=op,
                args=copy.deepcopy(args),
                ref=ref,
                slack_user=slack_user,
                origin=copy.deepcopy(origin),
                state="pending",
                attempts=1,
                next_at=next_at,
                created_at=created_at,
                unknown_since=unknown_since,
            )
            s.outbox[write.id] = write
            s.next_outbox_id += 1
            return write

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedWrite]:
        with self.store.locked() as s:
            due = sorted(
                (w for w in s.outbox.values() if w.state in ("pending", "running") and w.next_at <= now),
                key=lambda w: w.next_at,
            )[:limit]
            taken = []
            for write in due:
                s.outbox[write.id] = replace(write, state="running", next_at=lease_until)
                taken.append(s.outbox[write.id])
            return taken

    def update(self, write_id: int, **values: Any) -> None:
        unknown = set(values) - OUTBOX_UPDATABLE
        if unknown or not values:
            raise ValueError(f"not outbox fields: {sorted(unknown) or 'none given'}")
        with self.store.locked() as s:
            if write_id in s.outbox:
                s.outbox[write_id] = replace(s.outbox[write_id], **values)

    def get(self, write_id: int) -> QueuedWrite | None:
        with self.store.locked() as s:
            return s.outbox.get(write_id)

    def pending(self) -> list[QueuedWrite]:
        with self.store.locked() as s:
            return [w for _, w in sorted(s.outbox.items()) if w.state in ("pending", "running")]

    def retry_now(self, now: datetime, write_id: int | None = None) -> list[int]:
        with self.store.locked() as s:
            waiting = [w for i, w in sorted(s.outbox.items()) if w.state == "pending" and write_id in (None, i)]
            for write in waiting:
                s.outbox[write.id] = replace(write, next_at=min(write.next_at, now))
            return [w.id for w in waiting]

    def drop(self, write_id: int, now: datetime) -> bool:
        with self.store.locked() as s:
            write = s.outbox.get(write_id)
            if write is None or not (write.state == "pending" or (write.state == "running" and write.next_at <= now)):
                return False
            s.outbox[write_id] = replace(write, state="dropped", finished_at=now)
            return True


class _Digests(_Part):
    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        with self.store.locked() as s:
            if (slack_user, day) in s.digests:
                return False
            s.digests[(slack_user, day)] = DigestRecord(slack_user=slack_user, day=day, state="claimed", claimed_at=now)
            return True

    def record(self, slack_user: str, day: date, state: str, **values: Any) -> None:
        unknown = set(values) - DIGEST_UPDATABLE
        if unknown:
            raise ValueError(f"not digest fields: {sorted(unknown)}")
        with self.store.locked() as s:
            if (slack_user, day) in s.digests:
                s.digests[(slack_user, day)] = replace(s.digests[(slack_user, day)], state=state, **values)

    def get(self, slack_user: str, day: date) -> DigestRecord | None:
        with self.store.locked() as s:
            return s.digests.get((slack_user, day))

    def taken_since(self, day: date) -> set[tuple[str, date]]:
        with self.store.locked() as s:
            return {key for key in s.digests if key[1] >= day}

    def unsettled(self, claimed_before: datetime) -> list[DigestRecord]:
        with self.store.locked() as s:
            found = [
                r
                for r in s.digests.values()
                if r.state == "unknown" or (r.state == "claimed" and r.claimed_at <= claimed_before)
            ]
        return sorted(found, key=lambda r: r.claimed_at)


class _Audit(_Part):
    def record(self, entry: AuditEntry) -> None:
        with self.store.locked() as s:
            s.audit.append(entry)

    def entries(self, **where: str) -> list[AuditEntry]:
        unknown = set(where) - AUDIT_FIELDS
        if unknown:
            raise ValueError(f"not audit fields: {sorted(unknown)}")
        with self.store.locked() as s:
            return [e for e in s.audit if all(getattr(e, k) == v for k, v in where.items())]


class _Remote(_Part):
    def remember(self, backend: str, lead_id: str, **values: Any) -> None:
        unknown = set(values) - REMOTE_FIELDS
        if unknown:
            raise ValueError(f"not remembered: {sorted(unknown)}")
        with self.store.locked() as s:
            known = s.remote.get((backend, lead_id), RemoteLead())
            s.remote[(backend, lead_id)] = replace(known, **copy.deepcopy(values))

    def recall(self, backend: str, lead_id: str) -> RemoteLead | None:
        with self.store.locked() as s:
            return copy.deepcopy(s.remote.get((backend, lead_id)))

    def recall_all(self, backend: str) -> dict[str, RemoteLead]:
        with self.store.locked() as s:
            return {i: copy.deepcopy(r) for (b, i), r in s.remote.items() if b == backend}


class _Local(_Part):
    def insert(self, lead: NewLead, *, status: str, owner: str | None, by: str, at: datetime) -> Lead:
        with self.store.locked() as s:
            lead_id = s.next_lead_id
            s.next_lead_id += 1
            record = _LocalLead(
                Lead(
                    backend="local",
                    id=str(lead_id),
                    name=lead.name,
                    email=lead.email,
                    phone=lead.phone,
                    lead_for=lead.lead_for,
                    type=lead.type,
                    source=lead.source,
                    status=status,
                    owner=owner,
                    next_follow_up=lead.next_follow_up,
                    last_activity=at,
                    created_at=at,
                    created_by=by,
                )
            )
            if lead.note:
                record.notes.append(Activity(kind="note", at=at, by=by, text=lead.note))
            s.local[lead_id] = record
            return record.lead

    def get(self, lead_id: int) -> Lead | None:
        with self.store.locked() as s:
            record = s.local.get(lead_id)
            return record.lead if record else None

    def every(self, after: int = 0, limit: int = 500) -> list[Lead]:
        with self.store.locked() as s:
            return [s.local[i].lead for i in sorted(s.local) if i > after][:limit]

    def search(
        self,
        *,
        statuses: list[str],
        owner: str | None,
        due_before: datetime | None,
        offset: int,
        limit: int,
        unassigned: bool = False,
    ) -> LeadPage:
        with self.store.locked() as s:
            leads = [r.lead for r in s.local.values()]
        kept = [
            lead
            for lead in leads
            if lead.status in statuses
            and (owner is None or lead.owner == owner)
            and not (unassigned and lead.owner is not None)
            and (due_before is None or (lead.next_follow_up is not None and lead.next_follow_up <= due_before))
        ]
        far = datetime.max.replace(tzinfo=UTC)
        kept.sort(key=lambda lead: (lead.next_follow_up is None, lead.next_follow_up or far, -int(lead.id)))
        return LeadPage(leads=kept[offset : offset + limit], total=len(kept), offset=offset)

    def find(self, wanted: Terms, *, statuses: list[str], offset: int, limit: int) -> LeadPage:
        with self.store.locked() as s:
            leads = [r.lead for r in s.local.values() if r.lead.status in statuses]
        found = ranked(leads, wanted)
        return LeadPage(leads=found[offset : offset + limit], total=len(found), offset=offset)

    def matching_contact(self, *, email: str | None, phone: str | None, statuses: list[str]) -> list[Lead]:
        with self.store.locked() as s:
            leads = [s.local[i].lead for i in sorted(s.local)]
        return [
            lead
            for lead in leads
            if lead.status in statuses
            and (
                (email and lead.email and lead.email.casefold() == email.casefold()) or (phone and lead.phone == phone)
            )
        ]

    def update(self, lead_id: int, *, at: datetime, **values: Any) -> bool:
        unknown = set(values) - LOCAL_UPDATABLE
        if unknown:
            raise ValueError(f"not lead fields: {sorted(unknown)}")
        with self.store.locked() as s:
            record = s.local.get(lead_id)
            if record is None:
                return False
            record.lead = record.lead.model_copy(update={**values, "last_activity": at})
            return True

    def _log(self, lead_id: int, kind: str, activity: Activity) -> None:
        with self.store.locked() as s:
            record = s.local[lead_id]
            {"follow_up": record.follow_ups, "note": record.notes, "status": record.statuses}[kind].append(activity)

    def add_follow_up(self, lead_id: int, follow_up: FollowUp, *, at: datetime) -> None:
        text = "follow-up" + (f": {follow_up.notes}" if follow_up.notes else "")
        with self.store.atomic():
            self._log(
                lead_id, "follow_up", Activity(kind="follow_up", at=follow_up.done_at, by=follow_up.by, text=text)
            )
            self.update(lead_id, at=at, next_follow_up=follow_up.next_follow_up)

    def add_note(self, lead_id: int, note: Note) -> None:
        with self.store.atomic():
            self._log(lead_id, "note", Activity(kind="note", at=note.at, by=note.by, text=note.text))
            self.update(lead_id, at=note.at)

    def add_status(self, lead_id: int, change: StatusChange, *, status: str) -> None:
        text = f"status → {status}" + (f" ({change.reason})" if change.reason else "")
        with self.store.atomic():
            self._log(lead_id, "status", Activity(kind="status", at=change.at, by=change.by, text=text))
            self.update(lead_id, at=change.at, status=status)

    def activity(self, lead_id: int, limit: int) -> list[Activity]:
        with self.store.locked() as s:
            record = s.local.get(lead_id)
            if record is None:
                return []
            found = [*record.follow_ups, *record.notes, *record.statuses]
        return sorted(found, key=lambda a: a.at, reverse=True)[:limit]


class _Rates(_Part):
    def take(self, key: str, *, limit: int, window: float, now: datetime) -> float:
        at_now = now.timestamp()
        with self.store.locked() as s:
            slots = s.rates.get(key, [])
            at = next_slot(slots, limit=limit, window=window, now=at_now)
            s.rates[key] = [*slots, at][-limit:]
        return at - at_now
