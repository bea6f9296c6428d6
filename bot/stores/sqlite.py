"""Leadbot's store in one SQLite file: every port of ``services.ports``.

Each thread gets its own connection (sqlite3 connections must not be shared
across threads), all in WAL mode so readers never wait on the writer.
Schema changes go through ``sqlite_utils.Migrations``: add a function at the
end, never edit one that has shipped. Hot paths use plain SQL: sqlite-utils'
``db["table"]`` asks ``sqlite_master`` on every access.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bot.stores.common import alive, next_slot, process_token
from bot.stores.files import cannot_open, explain, file_problem
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
    StoreBusy,
    StoreUnavailable,
    UserPrefs,
)
from services.search import Terms, phone_suffixes, ranked, words_of

log = logging.getLogger("leadbot.store")
migrations = Migrations("leadbot")

MAX_ID = 2**63 - 1  # SQLite's integer range: a larger lead number names no lead
BUSY_TIMEOUT = 10.0  # seconds a statement waits for another connection's write lock
# At start-up a lock held this long is a stuck process, not a sibling's write (those take milliseconds).
LOCK_WAIT = 2.0
# A write that still finds the lock taken after BUSY_TIMEOUT is tried again after these pauses, then
# refused as StoreBusy ("try again"), never shown as "database is locked" (a bounded 30 s or so).
LOCKED_PAUSES = (0.2, 1.0)
IDLE_CONNECTIONS = 4  # kept open between uses (SqliteStore.leased)
FIND_AT_MOST = 500  # candidates /lead find ranks on the local backend


@migrations()
def m001_initial(db: Database) -> None:
    db["staff_links"].create(
        {"slack_user": str, "backend": str, "staff_id": str, "linked_by": str, "linked_at": str},
        pk=("slack_user", "backend"),
    )
    db["staff_links"].create_index(["backend", "staff_id"], unique=True)
    db["local_leads"].create(
        {
            "id": int,
            "name": str,
            "email": str,
            "phone": str,
            "lead_for": str,
            "type": str,
            "source": str,
            "status": str,
            "owner": str,
            "next_follow_up": str,
            "created_at": str,
            "created_by": str,
            "last_activity_at": str,
        },
        pk="id",
        not_null={"name", "status", "created_at"},
    )
    db["local_leads"].create_index(["owner", "next_follow_up"])
    db["local_leads"].create_index(["email"])
    for table, extra in {
        "local_follow_ups": {"done_at": str, "notes": str, "next_follow_up": str},
        "local_notes": {"text": str},
        "local_status_log": {"status": str, "reason": str, "sub_status": str},
    }.items():
        db[table].create(
            {"id": int, "lead_id": int, **extra, "by": str, "at": str},
            pk="id",
            foreign_keys=[("lead_id", "local_leads", "id")],
        )
        db[table].create_index(["lead_id", "at"])
    db["processed_requests"].create({"key": str, "at": str}, pk="key")
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "slack_user": str,
            "action": str,
            "lead_ref": str,
            "result": str,
            "detail": str,
        },
        pk="id",
    )
    db["audit"].create_index(["lead_ref"])


@migrations()
def m002_user_settings(db: Database) -> None:
    db["user_settings"].create(
        {"slack_user": str, "assignment_dms": int}, pk="slack_user", defaults={"assignment_dms": 1}
    )


@migrations()
def m003_home_opened(db: Database) -> None:
    # Only users who have opened the App Home get it redrawn after they act.
    db["user_settings"].add_column("home_opened", int)


@migrations()
def m004_channel_settings(db: Database) -> None:
    db["channel_settings"].create({"channel": str, "previews": int}, pk="channel", defaults={"previews": 0})


@migrations()
def m005_remote_leads_and_outbox(db: Database) -> None:
    # What Leadbot knows of leads in backends that do not store (or return) it: the name and
    # contact a lead was created with, its owner as last set through Leadbot.
    db["remote_leads"].create(
        {
            "backend": str,
            "lead_id": str,
            "name": str,
            "email": str,
            "phone": str,
            "owner": str,
            "customer": str,  # the backend's customer id, where a lead belongs to one (Capillary userId)
            "next_follow_up": str,  # where the backend has no follow-up schedule of its own
            "archived": int,
            "updated_at": str,
        },
        pk=("backend", "lead_id"),
    )
    # Writes a backend could not take yet, retried in the background until they land or fail for good.
    db["outbox"].create(
        {
            "id": int,
            "key": str,  # idempotency key: one queued write, however often it is tried
            "backend": str,
            "op": str,
            "args": str,  # JSON
            "ref": str,
            "slack_user": str,
            "origin": str,  # JSON: where the user asked (opaque to services)
            "state": str,  # pending, done, failed
            "attempts": int,
            "next_at": str,
            "last_error": str,
            "result_ref": str,
            "created_at": str,
            "finished_at": str,
        },
        pk="id",
        not_null={"key", "backend", "op", "args", "state", "attempts", "next_at", "created_at"},
    )
    db["outbox"].create_index(["key"], unique=True)
    db["outbox"].create_index(["state", "next_at"])


@migrations()
def m006_reminders(db: Database) -> None:
    users = db["user_settings"]
    users.add_column("reminders", int)  # None: on (the default)
    users.add_column("remind_at", str)  # "HH:MM" in the user's time zone; None: 09:00
    users.add_column("tz", str)  # from Slack's users.info, refreshed daily
    users.add_column("tz_checked_at", str)
    # One row per owner and local day: claimed before sending, so no day gets two digests.
    db["digests"].create(
        {
            "slack_user": str,
            "day": str,  # the owner's local date, YYYY-MM-DD
            "state": str,  # claimed, sent, empty (nothing due), unknown (the send's outcome is not known)
            "claimed_at": str,
            "channel": str,
            "ts": str,
            "sent_at": str,
            "leads": int,
        },
        pk=("slack_user", "day"),
        not_null={"state", "claimed_at"},
    )
    db["processed_requests"].create_index(["at"])  # pruned daily by age


@migrations()
def m007_request_claims(db: Database) -> None:
    # A claim is "started" by a process until its work is over, then "done": a request whose
    # process died half-way (a killed worker, a crash) can be taken over when it is sent again.
    db["processed_requests"].add_column("state", str, not_null_default="done")
    db["processed_requests"].add_column("pid", int)


@migrations()
def m008_remote_extra(db: Database) -> None:
    # A backend's own fields Leadbot keeps for it (JSON), e.g. what a write-only CRM was sent.
    db["remote_leads"].add_column("extra", str)


@migrations()
def m009_outbox_unknown_since(db: Database) -> None:
    # A queued write whose last try may have landed (a timeout): not sent again until Leadbot has
    # looked for it long enough, so a write the backend applies late is not doubled.
    db["outbox"].add_column("unknown_since", str)


@migrations()
def m010_rate_budget(db: Database) -> None:
    # Calls reserved against a rate-limited API, per budget (a hash of its key): the times of the
    # latest reservations, shared by every process on this file (LeadSquared: 25 calls per 5 s).
    db["rate_budget"].create({"key": str, "slots": str}, pk="key", not_null={"slots"})


@migrations()
def m011_journal_and_request_writes(db: Database) -> None:
    # The journal: every request acked with work behind it, written (fsync'd) before the ack and
    # kept until its work is done, so a restart after a crash finishes it (bot/journal.py).
    db["journal"].create(
        {
            "id": int,
            "body": str,
            "headers": str,
            "accepted_at": str,
            "accepted_by": str,
            "state": str,
            "started_by": str,
            "tries": int,
            "finished_at": str,
        },
        pk="id",
        not_null={"body", "headers", "accepted_at", "state", "tries"},
    )
    db["journal"].create_index(["state"])
    # The writes a request's work made, by their place in it: a re-run of the request (after its
    # process died half-way) finds them here instead of making them again.
    db["request_writes"].create(
        {
            "key": str,
            "backend": str,
            "op": str,
            "args": str,
            "state": str,
            "at": str,
            "ref": str,
            "queued_key": str,
        },
        pk="key",
        not_null={"backend", "op", "args", "state", "at"},
    )
    db["request_writes"].create_index(["at"])


@migrations()
def m013_staff_link_history(db: Database) -> None:
    # Everyone who ever held each staff ID: one that was someone else's is re-linked by an admin only
    # (a self-link must not inherit a leaver's leads). Today's links are the history so far.
    db["staff_link_history"].create(
        {"backend": str, "staff_id": str, "slack_user": str, "first_linked_at": str},
        pk=("backend", "staff_id", "slack_user"),
    )
    db.execute(
        "insert into staff_link_history (backend, staff_id, slack_user, first_linked_at)"
        " select backend, staff_id, slack_user, linked_at from staff_links"
    )


@migrations()
def m015_local_search(db: Database) -> None:
    # /lead find on the local backend: an FTS5 index of each lead's words, filled by the store
    # (already folded as services/search.py folds them) so SQLite and Python read words alike.
    db.execute("create virtual table local_leads_search using fts5(name, email, company, phone)")
    for row in db.execute("select id, name, email, phone, lead_for from local_leads").fetchall():
        db.execute(
            "insert into local_leads_search (rowid, name, email, company, phone) values (?, ?, ?, ?, ?)",
            [row[0], *_search_columns(row[1], row[2], row[3], row[4])],
        )


def to_db_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _id(lead_id: int) -> int | None:
    return lead_id if 0 < lead_id <= MAX_ID else None


class SqliteStore:
    """The SQLite file behind Leadbot, opened lazily per thread; one object serves every port.

    Opening checks the file the way an operator would want it checked: that it can be
    created or written, that it is a database, and that nobody holds a lock on it for
    longer than ``lock_wait`` seconds; any of these is a ``StoreUnavailable`` whose
    message names the file and the fix. The commands an operator starts pass
    ``LOCK_WAIT``; a process the bot starts itself (the work process) waits as long as
    any statement would. ``create=False`` refuses a file that does not exist yet
    (operator commands must not make an empty database at a mistyped path);
    ``migrate=False`` leaves the schema as it is (``leadbot doctor`` only looks).
    """

    def __init__(
        self, path: str | Path, *, create: bool = True, migrate: bool = True, lock_wait: float = BUSY_TIMEOUT
    ) -> None:
        self.path = str(path)
        self.pause = time.sleep  # between tries at a write lock another writer holds
        self._local = threading.local()  # the connection this thread holds, while it holds one
        self._idle: list[Database] = []
        self._idle_guard = threading.Lock()
        self._memory = threading.RLock() if str(path) == ":memory:" else None  # its one connection is the database
        self._closed = False
        self._busy_timeout = lock_wait  # while opening: a lock held longer than this is a fault, not a wait
        if self.path != ":memory:":
            problem = file_problem(Path(self.path), must_exist=not create)
            if problem:
                raise StoreUnavailable(cannot_open(self.path, problem))
        try:
            if migrate:
                with self.leased() as db:
                    migrations.apply(db)
            self.probe_write()
        except sqlite3.Error as exc:
            self.close()
            raise StoreUnavailable(cannot_open(self.path, explain(Path(self.path), exc, lock_wait=lock_wait))) from None
        self.lock_wait = BUSY_TIMEOUT
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

    @contextmanager
    def leased(self) -> Iterator[Database]:
        """A connection for one statement or one transaction, and the same one for what runs inside it.

        Connections are shared, not one per thread: forty work threads held forty page caches,
        schemas and statement caches (8 MB under ``bench/load.py``) for statements that take
        microseconds. ``IDLE_CONNECTIONS`` stay open between uses; a thread that finds none
        idle opens one rather than waiting, so no thread waits on another's transaction here.
        """
        held: Database | None = getattr(self._local, "db", None)
        if held is not None:
            yield held
            return
        with self._memory or nullcontext():
            db = self._take()
            self._local.db = db
            try:
                yield db
            finally:
                self._local.db = None
                self._give_back(db)

    def _take(self) -> Database:
        with self._idle_guard:
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, check_same_thread=False, isolation_level=None)
        db = Database(conn)
        if self.path != ":memory:":
            db.enable_wal()
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        return db

    def _give_back(self, db: Database) -> None:
        if db.conn.in_transaction:  # never left open by atomic(); a connection mid-transaction is not reused
            db.conn.close()
            return
        with self._idle_guard:
            if not self._closed and (len(self._idle) < IDLE_CONNECTIONS or self._memory is not None):
                self._idle.append(db)
                return
        db.conn.close()

    @property
    def lock_wait(self) -> float:
        """How long a statement waits for another connection's write lock, in seconds."""
        return self._busy_timeout

    @lock_wait.setter
    def lock_wait(self, seconds: float) -> None:
        self._busy_timeout = seconds
        with self._idle_guard:
            idle = list(self._idle)
        for db in idle:
            db.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction; nested ones become savepoints.

        ``BEGIN IMMEDIATE`` takes the write lock up front: a plain ``BEGIN`` reads first
        and upgrades later, and in WAL mode an upgrade after another connection's commit
        fails at once with "database is locked" instead of waiting.
        """
        with self.leased() as db, self._transaction(db.conn):
            yield

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        if conn.in_transaction:
            conn.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                if conn.in_transaction:  # an error can have ended the whole transaction already
                    conn.execute("ROLLBACK TO nested")
                    conn.execute("RELEASE nested")
                raise
            conn.execute("RELEASE nested")
            return
        self._begin(conn)
        try:
            yield
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _locked(exc):
                raise StoreBusy(f"the database stayed locked by another writer: {exc}") from None
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting out another writer (``busy_timeout``), then again after each pause."""
        for pause in (*LOCKED_PAUSES, None):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc):
                    raise
                if pause is None:
                    raise StoreBusy(f"the database stayed locked by another writer: {exc}") from None
                log.info("the database is locked by another writer; trying again in %.1f s", pause)
                self.pause(pause)

    def write(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """One statement in a write transaction (joining the caller's, if any)."""
        try:
            with self.atomic(), self.leased() as db:
                return db.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    def read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with self.leased() as db:
            return db.conn.execute(sql, params).fetchall()

    def ping(self) -> None:
        try:
            with self.leased() as db:
                db.conn.execute("select 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from None

    def probe_write(self) -> None:
        """Take the write lock and let it go, changing nothing: the file is writable and nobody holds it."""
        with self.leased() as db:
            db.conn.execute("BEGIN IMMEDIATE")
            db.conn.execute("ROLLBACK")

    def schema(self) -> tuple[list[str], list[str]]:
        """Migrations this code would still apply, and those the file has that this code does not know."""
        with self.leased() as db:
            applied = [m.name for m in migrations.applied(db)]
            known = {m.name for m in migrations.pending(Database(memory=True))}  # all of them: none applied there
            return [m.name for m in migrations.pending(db)], [name for name in applied if name not in known]

    def close(self) -> None:
        """Closes the idle connections; one in use is closed when it is given back."""
        with self._idle_guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.conn.close()

    def table_names(self) -> list[str]:
        with self.leased() as db:
            return db.table_names()


class _Part:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store


class _Links(_Part):
    def staff_id(self, slack_user: str, backend: str) -> str | None:
        rows = self.store.read(
            "select staff_id from staff_links where slack_user = ? and backend = ?", [slack_user, backend]
        )
        return rows[0][0] if rows else None

    def holder(self, backend: str, staff_id: str) -> str | None:
        rows = self.store.read(
            "select slack_user from staff_links where backend = ? and staff_id = ?", [backend, staff_id]
        )
        return rows[0][0] if rows else None

    def of_user(self, slack_user: str) -> list[StaffLink]:
        rows = self.store.read(
            "select slack_user, backend, staff_id from staff_links where slack_user = ? order by backend",
            [slack_user],
        )
        return [StaffLink(slack_user=u, backend=b, staff_id=s) for u, b, s in rows]

    def of_backend(self, backend: str) -> list[StaffLink]:
        rows = self.store.read(
            "select slack_user, backend, staff_id from staff_links where backend = ? order by slack_user", [backend]
        )
        return [StaffLink(slack_user=u, backend=b, staff_id=s) for u, b, s in rows]

    def users(self) -> list[str]:
        return [r[0] for r in self.store.read("select distinct slack_user from staff_links order by slack_user")]

    def put(self, link: StaffLink, *, by: str, at: datetime) -> None:
        self.store.write(
            "insert into staff_links (slack_user, backend, staff_id, linked_by, linked_at) values (?, ?, ?, ?, ?)"
            " on conflict (slack_user, backend) do update set staff_id = excluded.staff_id,"
            " linked_by = excluded.linked_by, linked_at = excluded.linked_at",
            [link.slack_user, link.backend, link.staff_id, by, to_db_time(at)],
        )
        self.store.write(
            "insert into staff_link_history (backend, staff_id, slack_user, first_linked_at) values (?, ?, ?, ?)"
            " on conflict do nothing",
            [link.backend, link.staff_id, link.slack_user, to_db_time(at)],
        )

    def held_by(self, backend: str, staff_id: str) -> list[str]:
        rows = self.store.read(
            "select slack_user from staff_link_history where backend = ? and staff_id = ? order by slack_user",
            [backend, staff_id],
        )
        return [r[0] for r in rows]

    def delete(self, slack_user: str, backend: str) -> bool:
        cursor = self.store.write("delete from staff_links where slack_user = ? and backend = ?", [slack_user, backend])
        return cursor.rowcount == 1


class _Requests(_Part):
    pid = process_token()  # which process a "started" claim belongs to (tests play other processes)

    def claim(self, key: str, *, until_done: bool = False) -> bool:
        pid = self.pid
        try:
            self.store.write(
                "insert into processed_requests (key, at, state, pid) values (?, ?, ?, ?)",
                [key, to_db_time(datetime.now(UTC)), "started" if until_done else "done", pid],
            )
        except Conflict:
            return self._take_over(key, pid)
        return True

    def _take_over(self, key: str, pid: int) -> bool:
        found = self.store.read("select state, pid from processed_requests where key = ?", [key])
        if not found or found[0][0] != "started" or found[0][1] in (None, pid) or alive(found[0][1]):
            return False
        cursor = self.store.write(
            "update processed_requests set pid = ?, at = ? where key = ? and state = 'started' and pid = ?",
            [pid, to_db_time(datetime.now(UTC)), key, found[0][1]],
        )
        return cursor.rowcount == 1

    def finish(self, keys: list[str]) -> None:
        if not keys:
            return
        with self.store.atomic(), self.store.leased() as db:
            db.conn.executemany("update processed_requests set state = 'done' where key = ?", [[k] for k in keys])

    def prune(self, older_than: datetime) -> int:
        return self.store.write("delete from processed_requests where at < ?", [to_db_time(older_than)]).rowcount


_USER_COLUMNS = ("assignment_dms", "home_opened", "reminders", "remind_at", "tz", "tz_checked_at")


def _user_prefs(row: Any) -> UserPrefs:
    dms, home, reminders, remind_at, tz, checked = row
    return UserPrefs(
        assignment_dms=dms is None or bool(dms),
        home_opened=bool(home),
        reminders=reminders is None or bool(reminders),
        remind_at=remind_at,
        tz=tz,
        tz_checked_at=from_db_time(checked),
    )


def _column_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return to_db_time(value)
    return value


class _Writes(_Part):
    def get(self, key: str) -> RequestWrite | None:
        rows = self.store.read(
            "select key, backend, op, args, state, at, ref, queued_key from request_writes where key = ?", [key]
        )
        if not rows:
            return None
        key, backend, op, args, state, at, ref, queued_key = rows[0]
        return RequestWrite(
            key=key,
            backend=backend,
            op=op,
            args=json.loads(args),
            state=state,
            at=from_db_time(at),
            ref=ref,
            queued_key=queued_key,
        )

    def record(self, write: RequestWrite) -> None:
        self.store.write(
            "insert or replace into request_writes (key, backend, op, args, state, at, ref, queued_key)"
            " values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                write.key,
                write.backend,
                write.op,
                json.dumps(write.args),
                write.state,
                to_db_time(write.at),
                write.ref,
                write.queued_key,
            ],
        )

    def forget(self, key: str) -> None:
        self.store.write("delete from request_writes where key = ?", [key])

    def prune(self, older_than: datetime) -> int:
        return self.store.write("delete from request_writes where at < ?", [to_db_time(older_than)]).rowcount


class _Prefs(_Part):
    def user(self, slack_user: str) -> UserPrefs:
        return self.users([slack_user])[slack_user]

    def users(self, slack_users: list[str]) -> dict[str, UserPrefs]:
        found: dict[str, UserPrefs] = {}
        for start in range(0, len(slack_users), 500):  # SQLite takes at most 999 parameters
            batch = slack_users[start : start + 500]
            rows = self.store.read(
                f"select slack_user, {', '.join(_USER_COLUMNS)} from user_settings"
                f" where slack_user in ({', '.join('?' * len(batch))})",
                batch,
            )
            found |= {row[0]: _user_prefs(row[1:]) for row in rows}
        return {user: found.get(user, UserPrefs()) for user in slack_users}

    def set_user(self, slack_user: str, **values: Any) -> None:
        unknown = set(values) - USER_FIELDS
        if unknown or not values:
            raise ValueError(f"not user settings: {sorted(unknown) or 'none given'}")
        names = list(values)  # only our own field names, checked above, become SQL here
        self.store.write(
            f"insert into user_settings (slack_user, {', '.join(names)}) values (?{', ?' * len(names)})"
            f" on conflict (slack_user) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [slack_user, *(_column_value(values[n]) for n in names)],
        )

    def channel(self, channel: str) -> ChannelPrefs:
        rows = self.store.read("select previews from channel_settings where channel = ?", [channel])
        return ChannelPrefs(previews=bool(rows and rows[0][0]))

    def set_channel(self, channel: str, **values: Any) -> None:
        unknown = set(values) - CHANNEL_FIELDS
        if unknown or not values:
            raise ValueError(f"not channel settings: {sorted(unknown) or 'none given'}")
        names = list(values)
        self.store.write(
            f"insert into channel_settings (channel, {', '.join(names)}) values (?{', ?' * len(names)})"
            f" on conflict (channel) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [channel, *(_column_value(values[n]) for n in names)],
        )


_OUTBOX_COLUMNS = (
    "id, key, backend, op, args, ref, slack_user, origin, state, attempts, next_at, created_at,"
    " last_error, result_ref, finished_at, unknown_since"
)


def _queued(row: Any) -> QueuedWrite:
    (row_id, key, backend, op, args, ref, user, origin, state, attempts, next_at, created_at, error, result, done,
     unknown) = row  # fmt: skip
    return QueuedWrite(
        id=row_id,
        key=key,
        backend=backend,
        op=op,
        args=json.loads(args),
        ref=ref,
        slack_user=user,
        origin=json.loads(origin or "{}"),
        state=state,
        attempts=attempts,
        next_at=from_db_time(next_at),
        created_at=from_db_time(created_at),
        last_error=error,
        result_ref=result,
        finished_at=from_db_time(done),
        unknown_since=from_db_time(unknown),
    )


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
        with self.store.atomic():
            cursor = self.store.write(
                "insert into outbox (key, backend, op, args, ref, slack_user, origin, state, attempts, next_at,"
                " created_at, unknown_since) values (?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?, ?)",
                [
                    key,
                    backend,
                    op,
                    json.dumps(args),
                    ref,
                    slack_user,
                    json.dumps(origin),
                    to_db_time(next_at),
                    to_db_time(created_at),
                    to_db_time(unknown_since),
                ],
            )
            return self.get(cursor.lastrowid)

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedWrite]:
        taken = []
        due = self.store.read(
            "select id from outbox where state in ('pending', 'running') and next_at <= ? order by next_at limit ?",
            [to_db_time(now), limit],
        )
        for (row_id,) in due:
            cursor = self.store.write(
                "update outbox set state = 'running', next_at = ? where id = ?"
                " and state in ('pending', 'running') and next_at <= ?",
                [to_db_time(lease_until), row_id, to_db_time(now)],
            )
            if cursor.rowcount == 1:  # else another runner took it first
                taken.append(self.get(row_id))
        return taken

    def update(self, write_id: int, **values: Any) -> None:
        unknown = set(values) - OUTBOX_UPDATABLE
        if unknown or not values:
            raise ValueError(f"not outbox fields: {sorted(unknown) or 'none given'}")
        names = list(values)
        self.store.write(
            f"update outbox set {', '.join(f'{n} = ?' for n in names)} where id = ?",
            [*(_column_value(values[n]) for n in names), write_id],
        )

    def get(self, write_id: int) -> QueuedWrite | None:
        rows = self.store.read(f"select {_OUTBOX_COLUMNS} from outbox where id = ?", [write_id])
        return _queued(rows[0]) if rows else None

    def pending(self) -> list[QueuedWrite]:
        rows = self.store.read(
            f"select {_OUTBOX_COLUMNS} from outbox where state in ('pending', 'running') order by id"
        )
        return [_queued(r) for r in rows]

    def retry_now(self, now: datetime, write_id: int | None = None) -> list[int]:
        which, params = ("", []) if write_id is None else (" and id = ?", [write_id])
        with self.store.atomic():
            ids = [
                r[0]
                for r in self.store.read(f"select id from outbox where state = 'pending'{which} order by id", params)
            ]
            self.store.write(
                f"update outbox set next_at = min(next_at, ?) where state = 'pending'{which}",
                [to_db_time(now), *params],
            )
        return ids

    def drop(self, write_id: int, now: datetime) -> bool:
        cursor = self.store.write(
            "update outbox set state = 'dropped', finished_at = ? where id = ?"
            " and (state = 'pending' or (state = 'running' and next_at <= ?))",
            [to_db_time(now), write_id, to_db_time(now)],
        )
        return cursor.rowcount == 1


_DIGEST_COLUMNS = "slack_user, day, state, claimed_at, channel, ts, sent_at, leads"


def _digest(row: Any) -> DigestRecord:
    user, day, state, claimed_at, channel, ts, sent_at, leads = row
    return DigestRecord(
        slack_user=user,
        day=date.fromisoformat(day),
        state=state,
        claimed_at=from_db_time(claimed_at),
        channel=channel,
        ts=ts,
        sent_at=from_db_time(sent_at),
        leads=leads,
    )


class _Digests(_Part):
    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        try:
            self.store.write(
                "insert into digests (slack_user, day, state, claimed_at) values (?, ?, 'claimed', ?)",
                [slack_user, day.isoformat(), to_db_time(now)],
            )
        except Conflict:
            return False
        return True

    def record(self, slack_user: str, day: date, state: str, **values: Any) -> None:
        unknown = set(values) - DIGEST_UPDATABLE
        if unknown:
            raise ValueError(f"not digest fields: {sorted(unknown)}")
        names = ["state", *values]
        self.store.write(
            f"update digests set {', '.join(f'{n} = ?' for n in names)} where slack_user = ? and day = ?",
            [state, *(_column_value(values[n]) for n in values), slack_user, day.isoformat()],
        )

    def get(self, slack_user: str, day: date) -> DigestRecord | None:
        rows = self.store.read(
            f"select {_DIGEST_COLUMNS} from digests where slack_user = ? and day = ?", [slack_user, day.isoformat()]
        )
        return _digest(rows[0]) if rows else None

    def taken_since(self, day: date) -> set[tuple[str, date]]:
        rows = self.store.read("select slack_user, day from digests where day >= ?", [day.isoformat()])
        return {(user, date.fromisoformat(d)) for user, d in rows}

    def unsettled(self, claimed_before: datetime) -> list[DigestRecord]:
        rows = self.store.read(
            f"select {_DIGEST_COLUMNS} from digests where state = 'unknown'"
            " or (state = 'claimed' and claimed_at <= ?) order by claimed_at",
            [to_db_time(claimed_before)],
        )
        return [_digest(r) for r in rows]


_AUDIT_COLUMNS = ("at", "slack_user", "action", "lead_ref", "result", "detail")


class _Audit(_Part):
    def record(self, entry: AuditEntry) -> None:
        self.store.write(
            "insert into audit (at, slack_user, action, lead_ref, result, detail) values (?, ?, ?, ?, ?, ?)",
            [to_db_time(entry.at), entry.slack_user, entry.action, entry.lead_ref, entry.result, entry.detail],
        )

    def entries(self, **where: str) -> list[AuditEntry]:
        unknown = set(where) - AUDIT_FIELDS
        if unknown:
            raise ValueError(f"not audit fields: {sorted(unknown)}")
        clause = " and ".join(f"{k} = ?" for k in where) or "1"
        rows = self.store.read(
            f"select {', '.join(_AUDIT_COLUMNS)} from audit where {clause} order by id", list(where.values())
        )
        return [
            AuditEntry(at=from_db_time(at), slack_user=u, action=a, lead_ref=r, result=res, detail=d or "")
            for at, u, a, r, res, d in rows
        ]


_REMOTE_COLUMNS = ("name", "email", "phone", "owner", "customer", "next_follow_up", "archived", "extra")


def _remote(row: Any) -> RemoteLead:
    name, email, phone, owner, customer, next_at, archived, extra = row
    return RemoteLead(
        name=name,
        email=email,
        phone=phone,
        owner=owner,
        customer=customer,
        next_follow_up=from_db_time(next_at),
        archived=bool(archived),
        extra=json.loads(extra) if extra else {},
    )


class _Remote(_Part):
    def remember(self, backend: str, lead_id: str, **values: Any) -> None:
        unknown = set(values) - REMOTE_FIELDS
        if unknown:
            raise ValueError(f"not remembered: {sorted(unknown)}")
        columns = {n: json.dumps(v) if n == "extra" else _column_value(v) for n, v in values.items()}
        columns["updated_at"] = to_db_time(datetime.now(UTC))
        names = list(columns)
        self.store.write(
            f"insert into remote_leads (backend, lead_id, {', '.join(names)}) values (?, ?{', ?' * len(names)})"
            f" on conflict (backend, lead_id) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [backend, lead_id, *columns.values()],
        )

    def recall(self, backend: str, lead_id: str) -> RemoteLead | None:
        rows = self.store.read(
            f"select {', '.join(_REMOTE_COLUMNS)} from remote_leads where backend = ? and lead_id = ?",
            [backend, lead_id],
        )
        return _remote(rows[0]) if rows else None

    def recall_all(self, backend: str) -> dict[str, RemoteLead]:
        rows = self.store.read(
            f"select lead_id, {', '.join(_REMOTE_COLUMNS)} from remote_leads where backend = ?", [backend]
        )
        return {row[0]: _remote(row[1:]) for row in rows}


def _search_columns(name: str | None, email: str | None, phone: str | None, company: str | None) -> list[str]:
    return [
        " ".join(words_of(name)),
        " ".join(words_of(email)),
        " ".join(words_of(company)),
        " ".join(phone_suffixes(phone)),
    ]


def _match_expression(wanted: Terms) -> str:
    """The FTS5 query for ``wanted``: each word a prefix in some text column, or the phone's digits."""
    if wanted.digits is not None:
        return f'phone : "{wanted.digits}"*'
    return " AND ".join(f'{{name email company}} : "{w}"*' for w in wanted.words)


_LEAD_COLUMNS = (
    "id, name, email, phone, lead_for, type, source, status, owner, next_follow_up, last_activity_at, created_at,"
    " created_by"
)


def _local_lead(row: Any) -> Lead:
    lead_id, name, email, phone, lead_for, lead_type, source, status, owner, next_at, last, created, by = row
    return Lead(
        backend="local",
        id=str(lead_id),
        name=name,
        email=email,
        phone=phone,
        lead_for=lead_for,
        type=lead_type,
        source=source,
        status=status,
        owner=owner,
        next_follow_up=from_db_time(next_at),
        last_activity=from_db_time(last),
        created_at=from_db_time(created),
        created_by=by,
    )


class _Local(_Part):
    def insert(self, lead: NewLead, *, status: str, owner: str | None, by: str, at: datetime) -> Lead:
        now = to_db_time(at)
        with self.store.atomic():
            cursor = self.store.write(
                "insert into local_leads (name, email, phone, lead_for, type, source, status, owner, next_follow_up,"
                " created_at, created_by, last_activity_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    lead.name,
                    lead.email,
                    lead.phone,
                    lead.lead_for,
                    lead.type,
                    lead.source,
                    status,
                    owner,
                    to_db_time(lead.next_follow_up),
                    now,
                    by,
                    now,
                ],
            )
            lead_id = cursor.lastrowid
            self._index(lead_id)
            if lead.note:
                self.store.write(
                    "insert into local_notes (lead_id, text, by, at) values (?, ?, ?, ?)", [lead_id, lead.note, by, now]
                )
            return self.get(lead_id)

    def get(self, lead_id: int) -> Lead | None:
        if _id(lead_id) is None:
            return None
        rows = self.store.read(f"select {_LEAD_COLUMNS} from local_leads where id = ?", [lead_id])
        return _local_lead(rows[0]) if rows else None

    def every(self, after: int = 0, limit: int = 500) -> list[Lead]:
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where id > ? order by id limit ?", [after, limit]
        )
        return [_local_lead(r) for r in rows]

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
        where = [f"status in ({', '.join('?' * len(statuses))})"]
        params: list[Any] = list(statuses)
        if owner:
            where.append("owner = ?")
            params.append(owner)
        if unassigned:
            where.append("owner is null")
        if due_before:
            where.append("next_follow_up is not null and next_follow_up <= ?")
            params.append(to_db_time(due_before))
        clause = " and ".join(where)
        total = self.store.read(f"select count(*) from local_leads where {clause}", params)[0][0]
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where {clause}"
            " order by next_follow_up is null, next_follow_up, id desc limit ? offset ?",
            [*params, limit, offset],
        )
        return LeadPage(leads=[_local_lead(r) for r in rows], total=total, offset=offset)

    def find(self, wanted: Terms, *, statuses: list[str], offset: int, limit: int) -> LeadPage:
        rows = self.store.read(
            f"select {', '.join('l.' + c.strip() for c in _LEAD_COLUMNS.split(','))}"
            " from local_leads_search s join local_leads l on l.id = s.rowid"
            f" where local_leads_search match ? and l.status in ({', '.join('?' * len(statuses))})"
            " order by s.rank limit ?",
            [_match_expression(wanted), *statuses, FIND_AT_MOST],
        )
        found = ranked([_local_lead(r) for r in rows], wanted)
        return LeadPage(leads=found[offset : offset + limit], total=len(found), offset=offset)

    def matching_contact(self, *, email: str | None, phone: str | None, statuses: list[str]) -> list[Lead]:
        if not (email or phone):
            return []
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where (lower(email) = lower(?) or phone = ?)"
            f" and status in ({', '.join('?' * len(statuses))}) order by id",
            [email or "", phone or "", *statuses],
        )
        return [_local_lead(r) for r in rows]

    def _index(self, lead_id: int) -> None:
        rows = self.store.read("select name, email, phone, lead_for from local_leads where id = ?", [lead_id])
        self.store.write("delete from local_leads_search where rowid = ?", [lead_id])
        if rows:
            self.store.write(
                "insert into local_leads_search (rowid, name, email, company, phone) values (?, ?, ?, ?, ?)",
                [lead_id, *_search_columns(*rows[0])],
            )

    def update(self, lead_id: int, *, at: datetime, **values: Any) -> bool:
        unknown = set(values) - LOCAL_UPDATABLE
        if unknown:
            raise ValueError(f"not lead fields: {sorted(unknown)}")
        if _id(lead_id) is None:
            return False
        names = [*values, "last_activity_at"]
        with self.store.atomic():
            cursor = self.store.write(
                f"update local_leads set {', '.join(f'{n} = ?' for n in names)} where id = ?",
                [*(_column_value(values[n]) for n in values), to_db_time(at), lead_id],
            )
            if cursor.rowcount == 1 and set(values) & {"name", "email", "phone", "lead_for"}:
                self._index(lead_id)
        return cursor.rowcount == 1

    def add_follow_up(self, lead_id: int, follow_up: FollowUp, *, at: datetime) -> None:
        with self.store.atomic():
            self.store.write(
                "insert into local_follow_ups (lead_id, done_at, notes, next_follow_up, by, at)"
                " values (?, ?, ?, ?, ?, ?)",
                [
                    lead_id,
                    to_db_time(follow_up.done_at),
                    follow_up.notes,
                    to_db_time(follow_up.next_follow_up),
                    follow_up.by,
                    to_db_time(at),
                ],
            )
            self.update(lead_id, at=at, next_follow_up=follow_up.next_follow_up)

    def add_note(self, lead_id: int, note: Note) -> None:
        with self.store.atomic():
            self.store.write(
                "insert into local_notes (lead_id, text, by, at) values (?, ?, ?, ?)",
                [lead_id, note.text, note.by, to_db_time(note.at)],
            )
            self.update(lead_id, at=note.at)

    def add_status(self, lead_id: int, change: StatusChange, *, status: str) -> None:
        with self.store.atomic():
            self.store.write(
                "insert into local_status_log (lead_id, status, reason, sub_status, by, at) values (?, ?, ?, ?, ?, ?)",
                [lead_id, status, change.reason, change.sub_status, change.by, to_db_time(change.at)],
            )
            self.update(lead_id, at=change.at, status=status)

    def activity(self, lead_id: int, limit: int) -> list[Activity]:
        if _id(lead_id) is None:
            return []
        rows = self.store.read(
            """
            select 'follow_up', coalesce(done_at, at), by, 'follow-up' || coalesce(': ' || notes, '')
              from local_follow_ups where lead_id = :id
            union all
            select 'note', at, by, text from local_notes where lead_id = :id
            union all
            select 'status', at, by, 'status → ' || status || coalesce(' (' || reason || ')', '')
              from local_status_log where lead_id = :id
            order by 2 desc limit :limit
            """,
            {"id": lead_id, "limit": limit},
        )
        return [Activity(kind=k, at=from_db_time(at), by=by, text=text) for k, at, by, text in rows]


class _Rates(_Part):
    def take(self, key: str, *, limit: int, window: float, now: datetime) -> float:
        at_now = now.timestamp()
        with self.store.atomic():  # BEGIN IMMEDIATE: one taker at a time across processes
            rows = self.store.read("select slots from rate_budget where key = ?", [key])
            slots = json.loads(rows[0][0]) if rows else []
            at = next_slot(slots, limit=limit, window=window, now=at_now)
            kept = [*slots, at][-limit:]
            self.store.write(
                "insert into rate_budget (key, slots) values (?, ?)"
                " on conflict (key) do update set slots = excluded.slots",
                [key, json.dumps(kept)],
            )
        return at - at_now
