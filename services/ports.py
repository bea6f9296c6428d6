"""What the domain needs from a store, one small port per concern.

The services speak only to these interfaces; ``bot/stores/`` implements
them (SQLite, in memory) and the app factory wires one in. Every port
speaks the domain's own types and datetimes (aware, UTC), never rows or
SQL. A unique rule broken by a concurrent writer is ``Conflict``, whatever
the engine calls it.

``Store.atomic()`` makes several port calls one transaction, so that, for
example, a request's claim and the write it guards commit together.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Protocol

from services.models import Activity, FollowUp, Lead, LeadPage, NewLead, Note, StaffLink, StatusChange
from services.search import Terms


class Conflict(Exception):
    """A unique rule of the store was broken: someone else got there first."""


class StoreUnavailable(Exception):
    """The store cannot be opened or used (missing directory, read-only, not a database, locked)."""


class StoreBusy(StoreUnavailable):
    """Another writer held the store past every retry: nothing was written, and it may be tried again."""


# -- staff links --------------------------------------------------------------------------------


class StaffLinks(Protocol):
    def staff_id(self, slack_user: str, backend: str) -> str | None: ...

    def holder(self, backend: str, staff_id: str) -> str | None:
        """The Slack user linked to ``staff_id`` on ``backend``, if anyone is."""
        ...

    def of_user(self, slack_user: str) -> list[StaffLink]:
        """Ordered by backend."""
        ...

    def of_backend(self, backend: str) -> list[StaffLink]: ...

    def users(self) -> list[str]:
        """Everyone linked on at least one backend, sorted."""
        ...

    def put(self, link: StaffLink, *, by: str, at: datetime) -> None:
        """Link (or re-link) ``link.slack_user`` on ``link.backend``; ``Conflict`` if the staff ID is someone else's."""
        ...

    def delete(self, slack_user: str, backend: str) -> bool: ...

    def held_by(self, backend: str, staff_id: str) -> list[str]:
        """Everyone ever linked to ``staff_id`` on ``backend`` (unlinked or not), sorted."""
        ...


# -- requests handled once ----------------------------------------------------------------------


class RequestLedger(Protocol):
    def claim(self, key: str, *, until_done: bool = False) -> bool:
        """Record ``key`` as handled; False when it already was (a Slack retry, a replay).

        ``until_done``: the claim stays "started" until ``finish``; if the process that
        started it has died meanwhile, the next claim of the key takes it over (once).
        """
        ...

    def finish(self, keys: list[str]) -> None: ...

    def prune(self, older_than: datetime) -> int: ...


# -- people's and channels' settings ------------------------------------------------------------


@dataclass(frozen=True)
class UserPrefs:
    assignment_dms: bool = True
    home_opened: bool = False
    reminders: bool = True
    remind_at: str | None = None  # "HH:MM" in the user's time zone; None: the default
    tz: str | None = None  # the user's Slack time zone, as last read
    tz_checked_at: datetime | None = None


@dataclass(frozen=True)
class ChannelPrefs:
    previews: bool = False


class Preferences(Protocol):
    def user(self, slack_user: str) -> UserPrefs: ...

    def users(self, slack_users: list[str]) -> dict[str, UserPrefs]:
        """Several at once (people without settings get the defaults)."""
        ...

    def set_user(self, slack_user: str, **values: Any) -> None:
        """Change some fields of ``UserPrefs``; an unknown field is a ``ValueError``."""
        ...

    def channel(self, channel: str) -> ChannelPrefs: ...

    def set_channel(self, channel: str, **values: Any) -> None: ...


# -- writes waiting for a backend ---------------------------------------------------------------


# -- the writes of one acked request ------------------------------------------------------------


@dataclass(frozen=True)
class RequestWrite:
    """One write a request's work made, by its place in that work (``key``), so a re-run never repeats it."""

    key: str
    backend: str
    op: str
    args: dict[str, Any]
    state: str  # "sent": it left, and nobody heard back; "landed" (on ``ref``); "queued" (outbox ``queued_key``)
    at: datetime
    ref: str | None = None
    queued_key: str | None = None


class RequestWrites(Protocol):
    def get(self, key: str) -> RequestWrite | None: ...

    def record(self, write: RequestWrite) -> None:
        """Insert or replace the record of ``write.key``."""
        ...

    def forget(self, key: str) -> None:
        """The write was refused: a re-run makes it again (and is told the same)."""
        ...

    def prune(self, older_than: datetime) -> int: ...


@dataclass(frozen=True)
class QueuedWrite:
    id: int
    key: str  # unique per queued write, however often it is tried
    backend: str
    op: str
    args: dict[str, Any]
    ref: str | None
    slack_user: str
    origin: dict[str, Any]  # where the user asked (opaque to the domain)
    state: str  # pending, running, done, failed, dropped (by an operator)
    attempts: int
    next_at: datetime
    created_at: datetime
    last_error: str | None = None
    result_ref: str | None = None
    finished_at: datetime | None = None
    # Since when its last try's outcome is unknown (a timeout, a reply lost): it may have landed.
    unknown_since: datetime | None = None


class OutboxQueue(Protocol):
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
    ) -> QueuedWrite: ...

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedWrite]:
        """Writes due by ``now``, each leased (state running, next_at ``lease_until``) to exactly one caller."""
        ...

    def update(self, write_id: int, **values: Any) -> None:
        """Change any of ``OUTBOX_UPDATABLE`` (state, attempts, next_at, last_error, result_ref, …)."""
        ...

    def get(self, write_id: int) -> QueuedWrite | None: ...

    def pending(self) -> list[QueuedWrite]:
        """Not yet landed nor given up (pending or running), oldest first."""
        ...

    def retry_now(self, now: datetime, write_id: int | None = None) -> list[int]:
        """Make waiting writes (state pending; one, or every one) due at ``now``; return their ids.

        A write being tried right now (running, its lease not over) is left alone.
        """
        ...

    def drop(self, write_id: int, now: datetime) -> bool:
        """Give up a write that nobody is trying right now (state ``dropped``); False when it is not waiting."""
        ...


# -- one digest per owner and day ---------------------------------------------------------------


@dataclass(frozen=True)
class DigestRecord:
    slack_user: str
    day: date  # the owner's local date
    state: str  # claimed, sent, empty, unknown (the send's outcome is not known), failed
    claimed_at: datetime
    channel: str | None = None
    ts: str | None = None
    sent_at: datetime | None = None
    leads: int | None = None


class DigestLedger(Protocol):
    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        """Take (owner, day); False when it is taken already (by this or another process)."""
        ...

    def record(self, slack_user: str, day: date, state: str, **values: Any) -> None: ...

    def get(self, slack_user: str, day: date) -> DigestRecord | None: ...

    def taken_since(self, day: date) -> set[tuple[str, date]]: ...

    def unsettled(self, claimed_before: datetime) -> list[DigestRecord]:
        """Outcome unknown, or claimed before ``claimed_before`` and never settled (a crash)."""
        ...


# -- who did what -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    slack_user: str
    action: str
    lead_ref: str | None
    result: str  # ok, refused, queued, error
    detail: str = ""


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...

    def entries(self, **where: str) -> list[AuditEntry]:
        """Oldest first, filtered on fields of ``AuditEntry`` (``action="assign"``)."""
        ...


# -- what Leadbot knows of leads in other systems -----------------------------------------------


@dataclass(frozen=True)
class RemoteLead:
    """Fields a remote backend does not keep or return, as Leadbot last set them."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    owner: str | None = None
    customer: str | None = None  # the backend's customer id (Capillary userId)
    next_follow_up: datetime | None = None
    archived: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # a backend's own fields, JSON-safe


class RemoteLeads(Protocol):
    def remember(self, backend: str, lead_id: str, **values: Any) -> None:
        """Set the given fields of the ``RemoteLead`` (others are kept)."""
        ...

    def recall(self, backend: str, lead_id: str) -> RemoteLead | None: ...

    def recall_all(self, backend: str) -> dict[str, RemoteLead]: ...


# -- the local backend's own leads --------------------------------------------------------------


class LocalLeads(Protocol):
    def insert(self, lead: NewLead, *, status: str, owner: str | None, by: str, at: datetime) -> Lead:
        """A new lead (with ``lead.note`` as its first note), numbered by the store."""
        ...

    def get(self, lead_id: int) -> Lead | None: ...

    def every(self, after: int = 0, limit: int = 500) -> list[Lead]:
        """Every lead numbered above ``after``, by number (an export reads them page by page)."""
        ...

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
        """Leads in ``statuses``, due first (soonest), then undated, newest first (``unassigned``: no owner)."""
        ...

    def find(self, wanted: Terms, *, statuses: list[str], offset: int, limit: int) -> LeadPage:
        """Leads in ``statuses`` matching ``wanted`` as ``services.search`` rules, best first (an index, not a scan)."""
        ...

    def matching_contact(self, *, email: str | None, phone: str | None, statuses: list[str]) -> list[Lead]:
        """Leads in ``statuses`` with this exact email (case-insensitive) or phone (E.164), oldest first."""
        ...

    def update(self, lead_id: int, *, at: datetime, **values: Any) -> bool:
        """Change any of ``LOCAL_UPDATABLE``; False when there is no such lead."""
        ...

    def add_follow_up(self, lead_id: int, follow_up: FollowUp, *, at: datetime) -> None: ...

    def add_note(self, lead_id: int, note: Note) -> None: ...

    def add_status(self, lead_id: int, change: StatusChange, *, status: str) -> None: ...

    def activity(self, lead_id: int, limit: int) -> list[Activity]:
        """Newest first."""
        ...


# -- calls a rate-limited API may take --------------------------------------------------------


class RateBudget(Protocol):
    def take(self, key: str, *, limit: int, window: float, now: datetime) -> float:
        """Reserve one call of at most ``limit`` per ``window`` seconds for ``key``; how long to wait first.

        The answer is the seconds after ``now`` at which the call may be made (0: at
        once). Reservations are handed out in the order they are asked for, atomically
        across every process on the store, so callers that each wait what they are
        told never make more than ``limit`` calls in any ``window``, and a burst is
        served first come, first served. ``key`` names the budget (a hash of an API
        key, never the key itself).
        """
        ...


# -- all of them --------------------------------------------------------------------------------


class Store(Protocol):
    links: StaffLinks
    requests: RequestLedger
    writes: RequestWrites
    prefs: Preferences
    outbox: OutboxQueue
    digests: DigestLedger
    audit: AuditLog
    remote: RemoteLeads
    local: LocalLeads
    rates: RateBudget

    def atomic(self) -> AbstractContextManager[None]:
        """One transaction over every port call inside it; nested calls join the outer one."""
        ...

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers now (for health checks)."""
        ...

    def close(self) -> None: ...


# What each port lets a caller change, the same for every implementation.
USER_FIELDS = frozenset(f.name for f in fields(UserPrefs))
CHANNEL_FIELDS = frozenset(f.name for f in fields(ChannelPrefs))
OUTBOX_UPDATABLE = frozenset(
    {"state", "attempts", "next_at", "last_error", "result_ref", "finished_at", "unknown_since"}
)
DIGEST_UPDATABLE = frozenset({"claimed_at", "channel", "ts", "sent_at", "leads"})
AUDIT_FIELDS = frozenset(f.name for f in fields(AuditEntry))
REMOTE_FIELDS = frozenset(f.name for f in fields(RemoteLead))
LOCAL_UPDATABLE = frozenset(
    {"owner", "status", "next_follow_up", "name", "email", "phone", "lead_for", "type", "source"}
)
