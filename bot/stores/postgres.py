"""Leadbot's store on PostgreSQL: every port of ``services.ports``, shared by several replicas.

Selected by ``LEADBOT_DB=postgresql://user@host/db``. One connection pool per store
(psycopg 3, ``psycopg_pool``); a statement outside ``atomic()`` takes a connection for
itself (autocommit), ``atomic()`` keeps one for the thread until it commits.

What must happen once across replicas is left to PostgreSQL: unique keys and
``ON CONFLICT`` for request, digest and feed claims, ``FOR UPDATE SKIP LOCKED`` for
outbox leases, a row lock for each rate budget, a counter row for lead numbers (a
rolled-back lead gives its number back, as SQLite does).

Which process holds a claim is a token ``host/pid@starttime``. Each process holds a
session advisory lock named by its token for as long as it lives (``_Liveness``): a
replica on another host cannot see our pids, but it can see our lock, and a killed
process's connection closes and lets it go. Tokens without a host (older rows, tests
playing other processes) are judged by ``alive`` on this host.

Schema changes are ``MIGRATIONS`` below: append one, never edit one that has shipped.
They are applied at start-up by one process at a time (an advisory lock), each in a
transaction with its row in ``leadbot_migrations``: a migration is all there or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.journal import MAX_TRIES, Journal, JournalEntry
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
from services.search import Terms, phone_suffixes, ranked, words_of

log = logging.getLogger("leadbot")

MAX_ID = 2**63 - 1
PING_TIMEOUT = 2.0  # seconds /healthz waits for a connection
CONNECT_TIMEOUT = 5  # seconds: a database that does not answer by then is down, not slow
POOL_SIZE = int(os.environ.get("LEADBOT_DB_POOL", "8"))  # per process; a replica is two processes
MIGRATION_LOCK = 0x1EAD_B075  # the advisory lock one replica holds while it migrates
SWEEP_SECONDS = float(os.environ.get("LEADBOT_SWEEP_SECONDS", "5"))  # how soon a dead replica's work is taken up
LIVENESS_INTERVAL = 5.0  # seconds between checks that this process's liveness lock is still held
FIND_AT_MOST = 500  # candidates /lead find ranks on the local backend (as the SQLite store)


def index_local_leads(conn: psycopg.Connection, lead_ids: list[int] | None = None) -> None:
    """``local_lead_words`` made anew for ``lead_ids`` (every lead when None) from the leads as they are now.

    The words are folded here, by ``services.search``, not by PostgreSQL: what SQL selects and what
    ``ranked`` scores then read the same words (no ``unaccent``, no text-search parser of its own)."""
    if lead_ids is None:
        conn.execute("delete from local_lead_words")
        rows = conn.execute("select id, name, email, phone, lead_for from local_leads").fetchall()
    else:
        conn.execute("delete from local_lead_words where lead_id = any(%s)", [lead_ids])
        rows = conn.execute(
            "select id, name, email, phone, lead_for from local_leads where id = any(%s)", [lead_ids]
        ).fetchall()
    entries = [
        (lead_id, word, phone)
        for lead_id, name, email, number, company in rows
        for phone, words in (
            (False, [*words_of(name), *words_of(email), *words_of(company)]),
            (True, phone_suffixes(number)),
        )
        for word in dict.fromkeys(words)
    ]
    if entries:
        with conn.cursor() as cursor:
            cursor.executemany("insert into local_lead_words (lead_id, word, phone) values (%s, %s, %s)", entries)


def _m003_local_search(conn: psycopg.Connection) -> None:
    # /lead find on the local backend: each lead's words (and its phone's endings) as rows under a
    # byte-ordered index, so "begins with" is an index range scan; the store keeps them.
    conn.execute(
        """
        create table local_lead_words (
            lead_id bigint not null references local_leads (id) on delete cascade,
            word text collate "C" not null, phone boolean not null,
            primary key (lead_id, phone, word));
        create index local_lead_words_word on local_lead_words (phone, word);
        """
    )
    index_local_leads(conn)


# Each is SQL, or a function given the migrating connection (inside the migration's transaction).
MIGRATIONS: list[tuple[str, str | Callable[[psycopg.Connection], None]]] = [
    (
        "m001_initial",
        # The SQLite store's m001–m011 as one schema, in PostgreSQL's own types.
        """
        create table staff_links (
            slack_user text not null, backend text not null, staff_id text not null,
            linked_by text, linked_at timestamptz,
            primary key (slack_user, backend), unique (backend, staff_id));
        create table local_leads (
            id bigint primary key, name text not null, email text, phone text, lead_for text, type text,
            source text, status text not null, owner text, next_follow_up timestamptz,
            created_at timestamptz not null, created_by text, last_activity_at timestamptz);
        create index local_leads_owner on local_leads (owner, next_follow_up);
        create index local_leads_email on local_leads (email);
        create table local_follow_ups (
            id bigserial primary key, lead_id bigint not null references local_leads (id),
            done_at timestamptz, notes text, next_follow_up timestamptz, "by" text, at timestamptz);
        create index local_follow_ups_lead on local_follow_ups (lead_id, at);
        create table local_notes (
            id bigserial primary key, lead_id bigint not null references local_leads (id),
            text text, "by" text, at timestamptz);
        create index local_notes_lead on local_notes (lead_id, at);
        create table local_status_log (
            id bigserial primary key, lead_id bigint not null references local_leads (id),
            status text, reason text, sub_status text, "by" text, at timestamptz);
        create index local_status_log_lead on local_status_log (lead_id, at);
        -- Lead numbers: a row, not a sequence, so a rolled-back insert gives its number back.
        create table counters (name text primary key, value bigint not null);
        create table processed_requests (
            key text primary key, at timestamptz not null, state text not null default 'done', pid text);
        create index processed_requests_at on processed_requests (at);
        create table audit (
            id bigserial primary key, at timestamptz, slack_user text, action text, lead_ref text,
            result text, detail text);
        create index audit_lead_ref on audit (lead_ref);
        create table user_settings (
            slack_user text primary key, assignment_dms boolean, home_opened boolean, reminders boolean,
            remind_at text, tz text, tz_checked_at timestamptz);
        create table channel_settings (channel text primary key, previews boolean not null default false);
        create table remote_leads (
            backend text not null, lead_id text not null, name text, email text, phone text, owner text,
            customer text, next_follow_up timestamptz, archived boolean, extra json, updated_at timestamptz,
            primary key (backend, lead_id));
        create table outbox (
            id bigserial primary key, key text not null unique, backend text not null, op text not null,
            args json not null, ref text, slack_user text, origin json, state text not null,
            attempts integer not null, next_at timestamptz not null, last_error text, result_ref text,
            created_at timestamptz not null, finished_at timestamptz, unknown_since timestamptz);
        create index outbox_due on outbox (state, next_at);
        create table digests (
            slack_user text not null, day date not null, state text not null, claimed_at timestamptz not null,
            channel text, ts text, sent_at timestamptz, leads integer, primary key (slack_user, day));
        create table rate_budget (key text primary key, slots double precision[] not null);
        create table journal (
            id bigserial primary key, body text not null, headers json not null,
            accepted_at timestamptz not null, accepted_by text, state text not null, started_by text,
            tries integer not null, finished_at timestamptz);
        create index journal_state on journal (state);
        create table request_writes (
            key text primary key, backend text not null, op text not null, args json not null,
            state text not null, at timestamptz not null, ref text, queued_key text);
        create index request_writes_at on request_writes (at);
        """,
    ),
    (
        "m002_staff_link_history",
        # Everyone who ever held each staff ID (SQLite's m013): one that was someone else's is re-linked
        # by an admin only. Today's links are the history so far.
        """
        create table staff_link_history (
            backend text not null, staff_id text not null, slack_user text not null, first_linked_at timestamptz,
            primary key (backend, staff_id, slack_user));
        insert into staff_link_history (backend, staff_id, slack_user, first_linked_at)
            select backend, staff_id, slack_user, linked_at from staff_links;
        """,
    ),
    ("m003_local_search", _m003_local_search),  # SQLite's m015
]

# Every table the store holds, parents before children (migrate-store copies them in this order).
TABLES = (
    "staff_links",
    "local_leads",
    "local_follow_ups",
    "local_notes",
    "local_status_log",
    "processed_requests",
    "audit",
    "user_settings",
    "channel_settings",
    "remote_leads",
    "outbox",
    "digests",
    "rate_budget",
    "journal",
    "request_writes",
    "staff_link_history",
)


def is_postgres(location: str) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def described(dsn: str) -> str:
    """The database as an operator names it, without its password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("set timezone to 'UTC'")


def connect(dsn: str, **options: Any) -> psycopg.Connection:
    """One connection of its own (migrations, the liveness lock, migrate-store), autocommit."""
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **options)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot open the database {described(dsn)}: {_reason(exc)}") from None
    _configure(conn)
    return conn


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def to_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _key64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


# -- which processes are alive, across hosts ---------------------------------------------------


class _Liveness:
    """This process's advisory lock on one database, held on a connection of its own while it lives."""

    _lock = threading.Lock()
    _held: dict[tuple[int, str], _Liveness] = {}

    def __init__(self, dsn: str, token: str) -> None:
        self.dsn, self.token, self.key = dsn, token, _key64(token)
        self.conn: psycopg.Connection | None = None
        self._stopped = threading.Event()
        self._take()
        self._thread = threading.Thread(target=self._keep, name="leadbot-liveness", daemon=True)
        self._thread.start()

    @classmethod
    def of_this_process(cls, dsn: str) -> str:
        """This process's token, its lock taken on ``dsn``'s database (once per process)."""
        token = f"{socket.gethostname()}/{process_token()}"
        with cls._lock:
            if (os.getpid(), dsn) not in cls._held:
                cls._held[(os.getpid(), dsn)] = cls(dsn, token)
        return token

    @classmethod
    def release(cls, dsn: str) -> None:
        """Let this process's lock on ``dsn``'s database go (before that database is dropped, say)."""
        with cls._lock:
            held = cls._held.pop((os.getpid(), dsn), None)
        if held is not None:
            held._stopped.set()
            held.conn.close()

    def _take(self) -> None:
        self.conn = connect(self.dsn, application_name=f"leadbot {self.token}")
        # try_: a second store of this process on the same database finds it held already, by us.
        self.conn.execute("select pg_try_advisory_lock(%s)", [self.key])

    def _keep(self) -> None:
        # A connection lost (the server restarted) loses the lock: take it again, or others take our work.
        said = False
        while not self._stopped.wait(LIVENESS_INTERVAL):
            try:
                self.conn.execute("select 1")
            except psycopg.Error:
                try:
                    self._take()
                    said = False
                except StoreUnavailable:
                    if not said:
                        log.warning("lost the database connection that says this process is alive; retrying")
                    said = True


def holder_alive(conn: psycopg.Connection, token: str | None) -> bool:
    """Whether the process named ``token`` still runs (see the module's docstring)."""
    if not token:
        return False
    if "/" not in token:
        return alive(token)
    key = _key64(token) & 0xFFFF_FFFF_FFFF_FFFF
    row = conn.execute(
        "select exists (select 1 from pg_locks where locktype = 'advisory' and granted and objsubid = 1"
        " and classid = %s::bigint::oid and objid = %s::bigint::oid"
        " and database = (select oid from pg_database where datname = current_database()))",
        [key >> 32, key & 0xFFFF_FFFF],
    ).fetchone()
    return bool(row[0])


# -- the store ---------------------------------------------------------------------------------


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations ``conn``'s database lacks, one process at a time; the names applied."""
    applied_now = []
    conn.execute("select pg_advisory_lock(%s)", [MIGRATION_LOCK])
    try:
        conn.execute(
            "create table if not exists leadbot_migrations (name text primary key, applied_at timestamptz not null)"
        )
        done = {r[0] for r in conn.execute("select name from leadbot_migrations").fetchall()}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with conn.transaction():
                if callable(sql):
                    sql(conn)
                else:
                    conn.execute(sql)
                conn.execute("insert into leadbot_migrations (name, applied_at) values (%s, now())", [name])
            applied_now.append(name)
    finally:
        conn.execute("select pg_advisory_unlock(%s)", [MIGRATION_LOCK])
    return applied_now


class PostgresStore:
    """A PostgreSQL database behind Leadbot; one object serves every port."""

    def __init__(self, dsn: str, *, migrate_schema: bool = True, pool_size: int = POOL_SIZE) -> None:
        self.dsn = dsn
        self.name = described(dsn)
        with connect(dsn) as conn:
            try:
                if migrate_schema:
                    migrate(conn)
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot migrate the database {self.name}: {_reason(exc)}") from None
        self.token = _Liveness.of_this_process(dsn)
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(2, pool_size),
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            configure=_configure,
            timeout=30,
            name="leadbot",
            open=True,
        )
        self._local = threading.local()
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
    def connection(self) -> Iterator[psycopg.Connection]:
        """The thread's transaction's connection, or one from the pool for one statement."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailable(f"the database {self.name} does not answer: {exc}") from None

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested ones become savepoints."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with conn.transaction():
                yield
            return
        with self.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._local.conn = None

    def execute(self, sql: str, params: Any = (), *, may_conflict: bool = False) -> psycopg.Cursor:
        """One statement (joining the caller's transaction, if any). A broken unique rule is ``Conflict``,
        and inside a transaction it leaves the transaction usable (a savepoint), as SQLite does."""
        with self.connection() as conn:
            try:
                if may_conflict and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with conn.transaction():
                        return conn.execute(sql, params)
                return conn.execute(sql, params)
            except psycopg.IntegrityError as exc:
                raise Conflict(_reason(exc)) from None

    def read(self, sql: str, params: Any = ()) -> list[tuple]:
        with self.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def alive(self, token: str | None) -> bool:
        with self.connection() as conn:
            return holder_alive(conn, token)

    def ping(self) -> None:
        # A short wait: a load balancer's health check gives up after a few seconds.
        try:
            with self.pool.connection(timeout=PING_TIMEOUT) as conn:
                conn.execute("select 1")
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(_reason(exc)) from None

    def schema(self) -> tuple[list[str], list[str]]:
        """Migrations this code would still apply, and those the database has that this code does not know."""
        known = [name for name, _ in MIGRATIONS]
        rows = self.read("select name from leadbot_migrations order by name")
        applied = [r[0] for r in rows]
        return [n for n in known if n not in applied], [n for n in applied if n not in known]

    def counts(self) -> dict[str, int]:
        return {table: self.read(f"select count(*) from {table}")[0][0] for table in TABLES}

    def close(self) -> None:
        self.pool.close()


class _Part:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store


class _Links(_Part):
    def staff_id(self, slack_user: str, backend: str) -> str | None:
        rows = self.store.read(
            "select staff_id from staff_links where slack_user = %s and backend = %s", [slack_user, backend]
        )
        return rows[0][0] if rows else None

    def holder(self, backend: str, staff_id: str) -> str | None:
        rows = self.store.read(
            "select slack_user from staff_links where backend = %s and staff_id = %s", [backend, staff_id]
        )
        return rows[0][0] if rows else None

    def of_user(self, slack_user: str) -> list[StaffLink]:
        rows = self.store.read(
            'select slack_user, backend, staff_id from staff_links where slack_user = %s order by backend collate "C"',
            [slack_user],
        )
        return [StaffLink(slack_user=u, backend=b, staff_id=s) for u, b, s in rows]

    def of_backend(self, backend: str) -> list[StaffLink]:
        rows = self.store.read(
            'select slack_user, backend, staff_id from staff_links where backend = %s order by slack_user collate "C"',
            [backend],
        )
        return [StaffLink(slack_user=u, backend=b, staff_id=s) for u, b, s in rows]

    def users(self) -> list[str]:
        rows = self.store.read('select distinct slack_user collate "C" from staff_links order by 1')
        return [r[0] for r in rows]

    def put(self, link: StaffLink, *, by: str, at: datetime) -> None:
        with self.store.atomic():
            self.store.execute(
                "insert into staff_links (slack_user, backend, staff_id, linked_by, linked_at)"
                " values (%s, %s, %s, %s, %s) on conflict (slack_user, backend) do update set"
                " staff_id = excluded.staff_id, linked_by = excluded.linked_by, linked_at = excluded.linked_at",
                [link.slack_user, link.backend, link.staff_id, by, at],
                may_conflict=True,
            )
            self.store.execute(
                "insert into staff_link_history (backend, staff_id, slack_user, first_linked_at)"
                " values (%s, %s, %s, %s) on conflict do nothing",
                [link.backend, link.staff_id, link.slack_user, at],
            )

    def held_by(self, backend: str, staff_id: str) -> list[str]:
        rows = self.store.read(
            "select slack_user from staff_link_history where backend = %s and staff_id = %s"
            ' order by slack_user collate "C"',
            [backend, staff_id],
        )
        return [r[0] for r in rows]

    def delete(self, slack_user: str, backend: str) -> bool:
        cursor = self.store.execute(
            "delete from staff_links where slack_user = %s and backend = %s", [slack_user, backend]
        )
        return cursor.rowcount == 1


class _Requests(_Part):
    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self.pid = store.token  # which process a "started" claim belongs to (tests play other processes)

    def claim(self, key: str, *, until_done: bool = False) -> bool:
        pid = str(self.pid)
        cursor = self.store.execute(
            "insert into processed_requests (key, at, state, pid) values (%s, now(), %s, %s)"
            " on conflict (key) do nothing",
            [key, "started" if until_done else "done", pid],
        )
        return cursor.rowcount == 1 or self._take_over(key, pid)

    def _take_over(self, key: str, pid: str) -> bool:
        found = self.store.read("select state, pid from processed_requests where key = %s", [key])
        if not found or found[0][0] != "started" or found[0][1] in (None, pid) or self.store.alive(found[0][1]):
            return False
        cursor = self.store.execute(
            "update processed_requests set pid = %s, at = now() where key = %s and state = 'started' and pid = %s",
            [pid, key, found[0][1]],
        )
        return cursor.rowcount == 1

    def finish(self, keys: list[str]) -> None:
        if keys:
            self.store.execute("update processed_requests set state = 'done' where key = any(%s)", [keys])

    def prune(self, older_than: datetime) -> int:
        return self.store.execute("delete from processed_requests where at < %s", [older_than]).rowcount


_USER_COLUMNS = ("assignment_dms", "home_opened", "reminders", "remind_at", "tz", "tz_checked_at")


def _user_prefs(row: Any) -> UserPrefs:
    dms, home, reminders, remind_at, tz, checked = row
    return UserPrefs(
        assignment_dms=dms is None or bool(dms),
        home_opened=bool(home),
        reminders=reminders is None or bool(reminders),
        remind_at=remind_at,
        tz=tz,
        tz_checked_at=to_utc(checked),
    )


class _Writes(_Part):
    def get(self, key: str) -> RequestWrite | None:
        rows = self.store.read(
            "select key, backend, op, args, state, at, ref, queued_key from request_writes where key = %s", [key]
        )
        if not rows:
            return None
        key, backend, op, args, state, at, ref, queued_key = rows[0]
        return RequestWrite(
            key=key, backend=backend, op=op, args=args, state=state, at=to_utc(at), ref=ref, queued_key=queued_key
        )

    def record(self, write: RequestWrite) -> None:
        self.store.execute(
            "insert into request_writes (key, backend, op, args, state, at, ref, queued_key)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict (key) do update set backend = excluded.backend,"
            " op = excluded.op, args = excluded.args, state = excluded.state, at = excluded.at, ref = excluded.ref,"
            " queued_key = excluded.queued_key",
            [write.key, write.backend, write.op, Json(write.args), write.state, write.at, write.ref, write.queued_key],
        )

    def forget(self, key: str) -> None:
        self.store.execute("delete from request_writes where key = %s", [key])

    def prune(self, older_than: datetime) -> int:
        return self.store.execute("delete from request_writes where at < %s", [older_than]).rowcount


class _Prefs(_Part):
    def user(self, slack_user: str) -> UserPrefs:
        return self.users([slack_user])[slack_user]

    def users(self, slack_users: list[str]) -> dict[str, UserPrefs]:
        rows = self.store.read(
            f"select slack_user, {', '.join(_USER_COLUMNS)} from user_settings where slack_user = any(%s)",
            [list(slack_users)],
        )
        found = {row[0]: _user_prefs(row[1:]) for row in rows}
        return {user: found.get(user, UserPrefs()) for user in slack_users}

    def set_user(self, slack_user: str, **values: Any) -> None:
        unknown = set(values) - USER_FIELDS
        if unknown or not values:
            raise ValueError(f"not user settings: {sorted(unknown) or 'none given'}")
        names = list(values)  # only our own field names, checked above, become SQL here
        self.store.execute(
            f"insert into user_settings (slack_user, {', '.join(names)}) values (%s{', %s' * len(names)})"
            f" on conflict (slack_user) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [slack_user, *(values[n] for n in names)],
        )

    def channel(self, channel: str) -> ChannelPrefs:
        rows = self.store.read("select previews from channel_settings where channel = %s", [channel])
        return ChannelPrefs(previews=bool(rows and rows[0][0]))

    def set_channel(self, channel: str, **values: Any) -> None:
        unknown = set(values) - CHANNEL_FIELDS
        if unknown or not values:
            raise ValueError(f"not channel settings: {sorted(unknown) or 'none given'}")
        names = list(values)
        self.store.execute(
            f"insert into channel_settings (channel, {', '.join(names)}) values (%s{', %s' * len(names)})"
            f" on conflict (channel) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [channel, *(bool(values[n]) for n in names)],
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
        args=args,
        ref=ref,
        slack_user=user,
        origin=origin or {},
        state=state,
        attempts=attempts,
        next_at=to_utc(next_at),
        created_at=to_utc(created_at),
        last_error=error,
        result_ref=result,
        finished_at=to_utc(done),
        unknown_since=to_utc(unknown),
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
        cursor = self.store.execute(
            "insert into outbox (key, backend, op, args, ref, slack_user, origin, state, attempts, next_at,"
            " created_at, unknown_since) values (%s, %s, %s, %s, %s, %s, %s, 'pending', 1, %s, %s, %s)"
            f" returning {_OUTBOX_COLUMNS}",
            [key, backend, op, Json(args), ref, slack_user, Json(origin), next_at, created_at, unknown_since],
            may_conflict=True,
        )
        return _queued(cursor.fetchone())

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedWrite]:
        # SKIP LOCKED: a write another runner is leasing right now is not waited for, it is theirs.
        cursor = self.store.execute(
            "with due as (select id, next_at from outbox where state in ('pending', 'running') and next_at <= %s"
            " order by next_at limit %s for update skip locked)"
            " update outbox set state = 'running', next_at = %s from due where outbox.id = due.id"
            f" returning due.next_at, {', '.join(f'outbox.{c.strip()}' for c in _OUTBOX_COLUMNS.split(','))}",
            [now, limit, lease_until],
        )
        rows = sorted(cursor.fetchall(), key=lambda r: (r[0], r[1]))
        return [_queued(r[1:]) for r in rows]

    def update(self, write_id: int, **values: Any) -> None:
        unknown = set(values) - OUTBOX_UPDATABLE
        if unknown or not values:
            raise ValueError(f"not outbox fields: {sorted(unknown) or 'none given'}")
        names = list(values)
        self.store.execute(
            f"update outbox set {', '.join(f'{n} = %s' for n in names)} where id = %s",
            [*(values[n] for n in names), write_id],
        )

    def get(self, write_id: int) -> QueuedWrite | None:
        if not 0 < write_id <= MAX_ID:
            return None
        rows = self.store.read(f"select {_OUTBOX_COLUMNS} from outbox where id = %s", [write_id])
        return _queued(rows[0]) if rows else None

    def pending(self) -> list[QueuedWrite]:
        rows = self.store.read(
            f"select {_OUTBOX_COLUMNS} from outbox where state in ('pending', 'running') order by id"
        )
        return [_queued(r) for r in rows]

    def retry_now(self, now: datetime, write_id: int | None = None) -> list[int]:
        if write_id is not None and not 0 < write_id <= MAX_ID:
            return []
        which, params = ("", []) if write_id is None else (" and id = %s", [write_id])
        cursor = self.store.execute(
            f"update outbox set next_at = least(next_at, %s) where state = 'pending'{which} returning id",
            [now, *params],
        )
        return sorted(r[0] for r in cursor.fetchall())

    def drop(self, write_id: int, now: datetime) -> bool:
        if not 0 < write_id <= MAX_ID:
            return False
        cursor = self.store.execute(
            "update outbox set state = 'dropped', finished_at = %s where id = %s"
            " and (state = 'pending' or (state = 'running' and next_at <= %s))",
            [now, write_id, now],
        )
        return cursor.rowcount == 1


_DIGEST_COLUMNS = "slack_user, day, state, claimed_at, channel, ts, sent_at, leads"


def _digest(row: Any) -> DigestRecord:
    user, day, state, claimed_at, channel, ts, sent_at, leads = row
    return DigestRecord(
        slack_user=user,
        day=day,
        state=state,
        claimed_at=to_utc(claimed_at),
        channel=channel,
        ts=ts,
        sent_at=to_utc(sent_at),
        leads=leads,
    )


class _Digests(_Part):
    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        cursor = self.store.execute(
            "insert into digests (slack_user, day, state, claimed_at) values (%s, %s, 'claimed', %s)"
            " on conflict (slack_user, day) do nothing",
            [slack_user, day, now],
        )
        return cursor.rowcount == 1

    def record(self, slack_user: str, day: date, state: str, **values: Any) -> None:
        unknown = set(values) - DIGEST_UPDATABLE
        if unknown:
            raise ValueError(f"not digest fields: {sorted(unknown)}")
        names = ["state", *values]
        self.store.execute(
            f"update digests set {', '.join(f'{n} = %s' for n in names)} where slack_user = %s and day = %s",
            [state, *(values[n] for n in values), slack_user, day],
        )

    def get(self, slack_user: str, day: date) -> DigestRecord | None:
        rows = self.store.read(
            f"select {_DIGEST_COLUMNS} from digests where slack_user = %s and day = %s", [slack_user, day]
        )
        return _digest(rows[0]) if rows else None

    def taken_since(self, day: date) -> set[tuple[str, date]]:
        return {(user, d) for user, d in self.store.read("select slack_user, day from digests where day >= %s", [day])}

    def unsettled(self, claimed_before: datetime) -> list[DigestRecord]:
        rows = self.store.read(
            f"select {_DIGEST_COLUMNS} from digests where state = 'unknown'"
            " or (state = 'claimed' and claimed_at <= %s) order by claimed_at, slack_user collate \"C\", day",
            [claimed_before],
        )
        return [_digest(r) for r in rows]


_AUDIT_COLUMNS = ("at", "slack_user", "action", "lead_ref", "result", "detail")


class _Audit(_Part):
    def record(self, entry: AuditEntry) -> None:
        self.store.execute(
            "insert into audit (at, slack_user, action, lead_ref, result, detail) values (%s, %s, %s, %s, %s, %s)",
            [entry.at, entry.slack_user, entry.action, entry.lead_ref, entry.result, entry.detail],
        )

    def entries(self, **where: str) -> list[AuditEntry]:
        unknown = set(where) - AUDIT_FIELDS
        if unknown:
            raise ValueError(f"not audit fields: {sorted(unknown)}")
        clause = " and ".join(f"{k} = %s" for k in where) or "true"
        rows = self.store.read(
            f"select {', '.join(_AUDIT_COLUMNS)} from audit where {clause} order by id", list(where.values())
        )
        return [
            AuditEntry(at=to_utc(at), slack_user=u, action=a, lead_ref=r, result=res, detail=d or "")
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
        next_follow_up=to_utc(next_at),
        archived=bool(archived),
        extra=extra or {},
    )


class _Remote(_Part):
    def remember(self, backend: str, lead_id: str, **values: Any) -> None:
        unknown = set(values) - REMOTE_FIELDS
        if unknown:
            raise ValueError(f"not remembered: {sorted(unknown)}")
        columns = {n: Json(v) if n == "extra" else v for n, v in values.items()}
        columns["updated_at"] = datetime.now(UTC)
        names = list(columns)
        self.store.execute(
            f"insert into remote_leads (backend, lead_id, {', '.join(names)}) values (%s, %s{', %s' * len(names)})"
            f" on conflict (backend, lead_id) do update set {', '.join(f'{n} = excluded.{n}' for n in names)}",
            [backend, lead_id, *columns.values()],
        )

    def recall(self, backend: str, lead_id: str) -> RemoteLead | None:
        rows = self.store.read(
            f"select {', '.join(_REMOTE_COLUMNS)} from remote_leads where backend = %s and lead_id = %s",
            [backend, lead_id],
        )
        return _remote(rows[0]) if rows else None

    def recall_all(self, backend: str) -> dict[str, RemoteLead]:
        rows = self.store.read(
            f"select lead_id, {', '.join(_REMOTE_COLUMNS)} from remote_leads where backend = %s", [backend]
        )
        return {row[0]: _remote(row[1:]) for row in rows}


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
        next_follow_up=to_utc(next_at),
        last_activity=to_utc(last),
        created_at=to_utc(created),
        created_by=by,
    )


def _id(lead_id: int) -> int | None:
    return lead_id if 0 < lead_id <= MAX_ID else None


def _like_prefix(text: str) -> str:
    """A LIKE pattern for what begins with ``text`` (search words hold none of its wildcards; escaped all the same)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _Local(_Part):
    def insert(self, lead: NewLead, *, status: str, owner: str | None, by: str, at: datetime) -> Lead:
        with self.store.atomic():
            # The counter row is locked until this commits: numbers go out in order, none lost to a rollback.
            (lead_id,) = self.store.execute(
                "insert into counters (name, value) values ('local_leads', 1)"
                " on conflict (name) do update set value = counters.value + 1 returning value"
            ).fetchone()
            row = self.store.execute(
                "insert into local_leads (id, name, email, phone, lead_for, type, source, status, owner,"
                " next_follow_up, created_at, created_by, last_activity_at)"
                f" values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning {_LEAD_COLUMNS}",
                [
                    lead_id,
                    lead.name,
                    lead.email,
                    lead.phone,
                    lead.lead_for,
                    lead.type,
                    lead.source,
                    status,
                    owner,
                    lead.next_follow_up,
                    at,
                    by,
                    at,
                ],
            ).fetchone()
            if lead.note:
                self.store.execute(
                    'insert into local_notes (lead_id, text, "by", at) values (%s, %s, %s, %s)',
                    [lead_id, lead.note, by, at],
                )
            with self.store.connection() as conn:
                index_local_leads(conn, [lead_id])
        return _local_lead(row)

    def get(self, lead_id: int) -> Lead | None:
        if _id(lead_id) is None:
            return None
        rows = self.store.read(f"select {_LEAD_COLUMNS} from local_leads where id = %s", [lead_id])
        return _local_lead(rows[0]) if rows else None

    def every(self, after: int = 0, limit: int = 500) -> list[Lead]:
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where id > %s order by id limit %s", [max(after, 0), limit]
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
        where = ["status = any(%s)"]
        params: list[Any] = [list(statuses)]
        if owner:
            where.append("owner = %s")
            params.append(owner)
        if unassigned:
            where.append("owner is null")
        if due_before:
            where.append("next_follow_up is not null and next_follow_up <= %s")
            params.append(due_before)
        clause = " and ".join(where)
        total = self.store.read(f"select count(*) from local_leads where {clause}", params)[0][0]
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where {clause}"
            " order by next_follow_up is null, next_follow_up, id desc limit %s offset %s",
            [*params, limit, offset],
        )
        return LeadPage(leads=[_local_lead(r) for r in rows], total=total, offset=offset)

    def update(self, lead_id: int, *, at: datetime, **values: Any) -> bool:
        unknown = set(values) - LOCAL_UPDATABLE
        if unknown:
            raise ValueError(f"not lead fields: {sorted(unknown)}")
        if _id(lead_id) is None:
            return False
        names = [*values, "last_activity_at"]
        with self.store.atomic():
            cursor = self.store.execute(
                f"update local_leads set {', '.join(f'{n} = %s' for n in names)} where id = %s",
                [*(values[n] for n in values), at, lead_id],
            )
            if cursor.rowcount == 1 and set(values) & {"name", "email", "phone", "lead_for"}:
                with self.store.connection() as conn:
                    index_local_leads(conn, [lead_id])
        return cursor.rowcount == 1

    def find(self, wanted: Terms, *, statuses: list[str], offset: int, limit: int) -> LeadPage:
        # SQL picks the leads where every term begins some word (or the phone's digits begin one of its
        # endings); services.search ranks them, so the order is the memory and SQLite stores' own.
        phone = wanted.digits is not None
        terms = [(True, wanted.digits)] if phone else [(False, word) for word in wanted.words]
        where = " and ".join(
            "id in (select lead_id from local_lead_words where phone = %s and word like %s)" for _ in terms
        )
        params: list[Any] = [p for phone, term in terms for p in (phone, _like_prefix(term))]
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where {where} and status = any(%s) order by id desc limit %s",
            [*params, list(statuses), FIND_AT_MOST],
        )
        found = ranked([_local_lead(r) for r in rows], wanted)
        return LeadPage(leads=found[offset : offset + limit], total=len(found), offset=offset)

    def matching_contact(self, *, email: str | None, phone: str | None, statuses: list[str]) -> list[Lead]:
        if not (email or phone):
            return []
        rows = self.store.read(
            f"select {_LEAD_COLUMNS} from local_leads where (lower(email) = lower(%s) or phone = %s)"
            " and status = any(%s) order by id",
            [email or "", phone or "", list(statuses)],
        )
        return [_local_lead(r) for r in rows]

    def add_follow_up(self, lead_id: int, follow_up: FollowUp, *, at: datetime) -> None:
        with self.store.atomic():
            self.store.execute(
                'insert into local_follow_ups (lead_id, done_at, notes, next_follow_up, "by", at)'
                " values (%s, %s, %s, %s, %s, %s)",
                [lead_id, follow_up.done_at, follow_up.notes, follow_up.next_follow_up, follow_up.by, at],
                may_conflict=True,
            )
            self.update(lead_id, at=at, next_follow_up=follow_up.next_follow_up)

    def add_note(self, lead_id: int, note: Note) -> None:
        with self.store.atomic():
            self.store.execute(
                'insert into local_notes (lead_id, text, "by", at) values (%s, %s, %s, %s)',
                [lead_id, note.text, note.by, note.at],
                may_conflict=True,
            )
            self.update(lead_id, at=note.at)

    def add_status(self, lead_id: int, change: StatusChange, *, status: str) -> None:
        with self.store.atomic():
            self.store.execute(
                'insert into local_status_log (lead_id, status, reason, sub_status, "by", at)'
                " values (%s, %s, %s, %s, %s, %s)",
                [lead_id, status, change.reason, change.sub_status, change.by, change.at],
                may_conflict=True,
            )
            self.update(lead_id, at=change.at, status=status)

    def activity(self, lead_id: int, limit: int) -> list[Activity]:
        if _id(lead_id) is None:
            return []
        rows = self.store.read(
            """
            select 'follow_up', coalesce(done_at, at), "by", 'follow-up' || coalesce(': ' || notes, ''), id
              from local_follow_ups where lead_id = %(id)s
            union all
            select 'note', at, "by", text, id from local_notes where lead_id = %(id)s
            union all
            select 'status', at, "by", 'status → ' || status || coalesce(' (' || reason || ')', ''), id
              from local_status_log where lead_id = %(id)s
            order by 2 desc, 5 desc limit %(limit)s
            """,
            {"id": lead_id, "limit": limit},
        )
        return [Activity(kind=k, at=to_utc(at), by=by, text=text) for k, at, by, text, _ in rows]


class _Rates(_Part):
    def take(self, key: str, *, limit: int, window: float, now: datetime) -> float:
        at_now = now.timestamp()
        with self.store.atomic():
            # The budget's row is locked until this commits: one taker at a time, on every replica.
            self.store.execute(
                "insert into rate_budget (key, slots) values (%s, '{}') on conflict (key) do nothing", [key]
            )
            (slots,) = self.store.execute("select slots from rate_budget where key = %s for update", [key]).fetchone()
            at = next_slot(list(slots), limit=limit, window=window, now=at_now)
            self.store.execute("update rate_budget set slots = %s where key = %s", [[*slots, at][-limit:], key])
        return at - at_now


# -- the journal of acked requests -------------------------------------------------------------


class PostgresJournal(Journal):
    """The ``journal`` table on PostgreSQL (made by the store's migrations).

    Accepting commits with ``synchronous_commit = on`` (the server's WAL flushed, and a
    synchronous standby's if there is one); starting and finishing an entry does not
    wait for the disk, as on SQLite. Which process holds an entry is a liveness token
    (see the module's docstring), so a replica recovers what a dead replica acked.
    """

    def __init__(self, dsn: str, *, fsync: bool = True) -> None:
        super().__init__(dsn, fsync=fsync)
        self.fsync = fsync
        self._swept = threading.Event()
        self.me = _Liveness.of_this_process(dsn)
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            configure=_configure,
            timeout=10,
            name="leadbot-journal",
            open=True,
        )

    def _prepare(self, moved_from: str | None) -> None:
        pass  # the store's migrations made the table

    def _insert(self, rows: list[tuple[str, str]]) -> list[int]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                if not self.fsync:
                    conn.execute("set local synchronous_commit = off")
                cursor = conn.cursor()
                cursor.executemany(
                    "insert into journal (body, headers, accepted_at, accepted_by, state, tries)"
                    " values (%s, %s, now(), %s, 'accepted', 0) returning id",
                    [(body, Json(json.loads(headers)), self.me) for body, headers in rows],
                    returning=True,
                )
                ids = []
                while True:
                    ids.append(int(cursor.fetchone()[0]))
                    if not cursor.nextset():
                        break
            return ids
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(f"the journal could not be written: {_reason(exc)}") from None

    def start(self, entry_id: int, worker: str | None = None) -> bool:
        worker = worker or self.me
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("set local synchronous_commit = off")
            row = conn.execute(
                "select state, started_by, tries from journal where id = %s for update", [entry_id]
            ).fetchone()
            if row is None or row[0] in ("done", "failed"):
                return False
            state, started_by, tries = row
            if state == "started" and started_by != worker and holder_alive(conn, started_by):
                return False
            if tries >= MAX_TRIES:
                conn.execute("update journal set state = 'failed' where id = %s", [entry_id])
                log.error("journal entry %s took down %s processes; it is not run again", entry_id, tries)
                return False
            conn.execute(
                "update journal set state = 'started', started_by = %s, tries = tries + 1 where id = %s",
                [worker, entry_id],
            )
            return True

    def finish(self, entry_id: int) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("set local synchronous_commit = off")
            conn.execute("update journal set state = 'done', finished_at = now() where id = %s", [entry_id])

    def unfinished(self) -> list[JournalEntry]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "select id, body, headers, accepted_at, accepted_by, state, started_by, tries from journal"
                " where state in ('accepted', 'started') order by id"
            ).fetchall()
            found = []
            for entry_id, body, headers, accepted_at, accepted_by, state, started_by, tries in rows:
                holder = started_by if state == "started" else accepted_by
                if holder != self.me and holder_alive(conn, holder):
                    continue  # another running Leadbot (on this host or another) has it
                found.append(JournalEntry(entry_id, body, headers, to_utc(accepted_at), tries))
        return found

    def orphaned(self) -> list[JournalEntry]:
        """Entries acked by a replica that has died since, and held by no live process: this one may run them.

        A live replica's own entries are its business (it recovers its work process's), so
        a sweep never races a replica for its own work; two sweeping replicas race only
        in ``start``, where the row lock lets one of them have each entry.
        """
        with self.pool.connection() as conn:
            rows = conn.execute(
                "select id, body, headers, accepted_at, accepted_by, state, started_by, tries from journal"
                " where state in ('accepted', 'started') and accepted_by is distinct from %s order by id",
                [self.me],
            ).fetchall()
            found = []
            for entry_id, body, headers, accepted_at, accepted_by, state, started_by, tries in rows:
                if holder_alive(conn, accepted_by) or (state == "started" and holder_alive(conn, started_by)):
                    continue
                found.append(JournalEntry(entry_id, body, headers, to_utc(accepted_at), tries))
        return found

    def sweep(self, recover: Callable[[list[JournalEntry]], None], every: float = SWEEP_SECONDS) -> None:
        """Every ``every`` seconds, ``recover`` what dead replicas acked (in a thread of its own)."""

        def run() -> None:
            while not self._swept.wait(every):
                try:
                    orphans = self.orphaned()
                    if orphans:
                        log.info("running %d acked request(s) of a replica that died", len(orphans))
                        recover(orphans)
                except Exception:
                    log.exception("the sweep for a dead replica's requests failed; trying again")

        threading.Thread(target=run, name="leadbot-journal-sweep", daemon=True).start()

    def depth(self) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("select count(*) from journal where state in ('accepted', 'started')").fetchone()
        return int(row[0])

    def prune(self, older_than: datetime) -> int:
        with self.pool.connection() as conn:
            cursor = conn.execute(
                "delete from journal where state in ('done', 'failed') and accepted_at < %s", [older_than]
            )
        return cursor.rowcount

    def close(self) -> None:
        self._swept.set()
        super().close()
        self.pool.close()
