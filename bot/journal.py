"""The journal: every request Leadbot acks with work behind it is on disk before the ack leaves.

Slack never sends an acked request again, so work that lived only in memory (the queue
to the work process, a thread pool) was lost with the process. Now the server writes
the request (its body, less Slack's verification token, and the headers the work needs)
to the journal (a SQLite file of its own beside the store's, or a table in PostgreSQL)
and only then answers; the work is taken from there, and its
entry is marked done when the work ends. At start-up, and when a work process dies,
whatever is not done is run again — once, by one process — and ``services/rerun.py``
makes sure its writes are not made twice.

fsync policy: accepting commits with ``PRAGMA synchronous = FULL`` on a connection of
its own (the WAL fsync'd at every commit), so an acked request survives power loss,
not just a killed process; marking an entry started or done does not wait for the
disk (lost, it only runs the request again). Requests that arrive while a commit is
in flight are committed together by one writer thread (group commit): one fsync for
all of them, and the event loop never waits on the disk. The rest of the store keeps
``NORMAL``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from bot.stores.common import alive, process_token
from bot.stores.files import cannot_open, explain
from bot.stores.sqlite import from_db_time, to_db_time
from services.ports import StoreUnavailable

log = logging.getLogger("leadbot")

# What the work needs of the headers; the signature is not among them (the work does not re-check it).
KEPT_HEADERS = ("content-type", "x-slack-request-timestamp", "x-slack-retry-num", "x-slack-retry-reason")
MAX_TRIES = 3  # a request that takes down this many processes is not tried again


@dataclass(frozen=True)
class JournalEntry:
    id: int
    body: str
    headers: dict[str, str]
    accepted_at: datetime
    tries: int


def without_token(body: bytes, content_type: str) -> str:
    """The body with Slack's legacy verification token taken out: a secret that must not be stored."""
    text = body.decode("utf-8")
    if "json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict):
            data.pop("token", None)
            return json.dumps(data)
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    payload = [(k, v) for k, v in pairs if k == "payload"]
    if payload:
        try:
            data = json.loads(payload[0][1])
        except ValueError:
            data = None
        if isinstance(data, dict):
            data.pop("token", None)
            pairs = [(k, json.dumps(data) if k == "payload" else v) for k, v in pairs]
    return urlencode([(k, v) for k, v in pairs if k != "token"])


SCHEMA = """
create table if not exists journal (
    id integer primary key,
    body text not null,
    headers text not null,
    accepted_at text not null,
    accepted_by text,
    state text not null,
    started_by text,
    tries integer not null,
    finished_at text
);
create index if not exists idx_journal_state on journal (state);
"""
UNFINISHED = "state in ('accepted', 'started')"
COLUMNS = "body, headers, accepted_at, accepted_by, state, started_by, tries"


def journal_path(db: str) -> str:
    """The journal's own SQLite file beside the store's ``db``: ``leadbot.db`` -> ``leadbot.db.acked``.

    Its own file, so that accepting a request never waits for the store's write lock, which the
    work process takes for every write it makes: in one file, at 100 requests/s, the ack p99 was
    98-122 ms against 9 ms with no journal (bench/load.py).
    """
    return f"{db}.acked"


class Journal:
    """The ``journal`` table, in a SQLite file of its own (``journal_path``).

    ``moved_from``: the store's file, whose ``journal`` table held the entries before they had a
    file of their own; what is unfinished there is moved here when the journal opens.
    """

    def __init__(self, path: str, *, fsync: bool = True, moved_from: str | None = None) -> None:
        self.path = path
        self.synchronous = "FULL" if fsync else "NORMAL"
        self.me = process_token()
        self._local = threading.local()
        self._pending: list[tuple[str, str, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._wake = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closing = False
        self._shared = threading.RLock()
        self._shared_conn: sqlite3.Connection | None = None
        self._prepare(moved_from)

    def _prepare(self, moved_from: str | None) -> None:
        try:
            with self._shared:
                conn = self._conn()
                conn.executescript(SCHEMA)
                if moved_from is not None and Path(moved_from).exists():
                    self._move_from(conn, moved_from)
        except sqlite3.Error as exc:
            self.close()
            raise StoreUnavailable(cannot_open(self.path, explain(Path(self.path), exc, lock_wait=10))) from None

    def _move_from(self, conn: sqlite3.Connection, store: str) -> None:
        conn.execute("attach database ? as store", [store])
        try:
            if not conn.execute("select 1 from store.sqlite_master where name = 'journal'").fetchone():
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                moved = conn.execute(
                    f"insert into journal ({COLUMNS}) select {COLUMNS} from store.journal where {UNFINISHED}"
                    " order by id"
                ).rowcount
                conn.execute(f"delete from store.journal where {UNFINISHED}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if moved:
                log.info("moved %d unfinished journal entries from %s to %s", moved, store, self.path)
        finally:
            conn.execute("detach database store")

    def _conn(self, *, durable: bool = False) -> sqlite3.Connection:
        """This thread's connection for accepting, which must reach the disk before the ack (``durable``);
        otherwise the one shared connection, used under ``self._shared`` (a lost start or finish just
        runs the request again, and its writes are not made twice). One, not one per work thread:
        64 threads' connections were 64 page caches and schemas (about 6 MB) for a few small writes."""
        if durable:
            conn = getattr(self._local, "durable", None)
            if conn is None:
                conn = self._connect(self.synchronous)
                self._local.durable = conn
            return conn
        if self._shared_conn is None:
            self._shared_conn = self._connect("NORMAL")
        return self._shared_conn

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        return conn

    # -- before the ack -----------------------------------------------------------------------

    async def accept(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Write the request durably; its entry id once the commit is on disk."""
        kept = {k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in KEPT_HEADERS}
        row = (without_token(body, kept.get("content-type", "")), json.dumps(kept))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._wake:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_batches, name="leadbot-journal", daemon=True)
                self._writer.start()
            self._pending.append((*row, loop, future))
            self._wake.notify()
        return await future

    def accept_now(self, body: bytes, headers: Mapping[str, str]) -> int:
        """The same, from a thread without an event loop (one commit of its own)."""
        kept = {k: v for k, v in ((k.lower(), v) for k, v in headers.items()) if k in KEPT_HEADERS}
        return self._insert([(without_token(body, kept.get("content-type", "")), json.dumps(kept))])[0]

    def _write_batches(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            try:
                ids = self._insert([(body, headers) for body, headers, _, _ in batch])
            except Exception as exc:
                log.exception("the journal could not be written")
                failure = StoreUnavailable(f"the journal could not be written: {exc}")
                for _, _, loop, future in batch:
                    loop.call_soon_threadsafe(_settle, future, None, failure)
                continue
            for (_, _, loop, future), entry_id in zip(batch, ids, strict=True):
                loop.call_soon_threadsafe(_settle, future, entry_id, None)

    def _insert(self, rows: list[tuple[str, str]]) -> list[int]:
        conn = self._conn(durable=True)
        now = to_db_time(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                conn.execute(
                    "insert into journal (body, headers, accepted_at, accepted_by, state, tries)"
                    " values (?, ?, ?, ?, 'accepted', 0)",
                    [body, headers, now, self.me],
                ).lastrowid
                for body, headers in rows
            ]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return [int(i) for i in ids if i is not None]

    # -- the work -----------------------------------------------------------------------------

    def start(self, entry_id: int, worker: str | None = None) -> bool:
        """Take the entry for ``worker`` (this process): False when it is done, or another live one has it."""
        worker = worker or self.me
        with self._shared:
            return self._start(self._conn(), entry_id, worker)

    def _start(self, conn: sqlite3.Connection, entry_id: int, worker: str) -> bool:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("select state, started_by, tries from journal where id = ?", [entry_id]).fetchone()
            if row is None or row[0] in ("done", "failed"):
                conn.execute("COMMIT")
                return False
            state, started_by, tries = row
            if state == "started" and started_by != worker and alive(started_by):
                conn.execute("COMMIT")
                return False
            if tries >= MAX_TRIES:
                conn.execute("update journal set state = 'failed' where id = ?", [entry_id])
                conn.execute("COMMIT")
                log.error("journal entry %s took down %s processes; it is not run again", entry_id, tries)
                return False
            conn.execute(
                "update journal set state = 'started', started_by = ?, tries = tries + 1 where id = ?",
                [worker, entry_id],
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def finish(self, entry_id: int) -> None:
        with self._shared:
            self._conn().execute(
                "update journal set state = 'done', finished_at = ? where id = ?",
                [to_db_time(datetime.now(UTC)), entry_id],
            )

    def unfinished(self) -> list[JournalEntry]:
        """Entries whose work is not done and no live process has: what a restart must run."""
        with self._shared:
            rows = (
                self._conn()
                .execute(
                    "select id, body, headers, accepted_at, accepted_by, state, started_by, tries from journal"
                    " where state in ('accepted', 'started') order by id"
                )
                .fetchall()
            )
        found = []
        for entry_id, body, headers, accepted_at, accepted_by, state, started_by, tries in rows:
            holder = started_by if state == "started" else accepted_by
            if holder != self.me and alive(holder):
                continue  # another running Leadbot on this file has it
            found.append(JournalEntry(entry_id, body, json.loads(headers), from_db_time(accepted_at), tries))
        return found

    def depth(self) -> int:
        """Entries not done yet (for /metrics and the doctor)."""
        with self._shared:
            row = self._conn().execute(f"select count(*) from journal where {UNFINISHED}").fetchone()
        return int(row[0])

    def prune(self, older_than: datetime) -> int:
        with self._shared:
            cursor = self._conn().execute(
                "delete from journal where state in ('done', 'failed') and accepted_at < ?", [to_db_time(older_than)]
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._writer is not None:
            self._writer.join(10)
        durable = getattr(self._local, "durable", None)
        if durable is not None:
            durable.close()
            self._local.durable = None
        with self._shared:
            if self._shared_conn is not None:
                self._shared_conn.close()
                self._shared_conn = None


def open_journal(location: str, *, fsync: bool = True) -> Journal:
    """The journal in the database ``location`` names (``LEADBOT_DB``): SQLite or PostgreSQL."""
    if location.startswith(("postgresql://", "postgres://")):
        from bot.stores.postgres import PostgresJournal

        return PostgresJournal(location, fsync=fsync)
    path = location.removeprefix("sqlite:///")
    return Journal(journal_path(path), fsync=fsync, moved_from=path)


def _settle(future: asyncio.Future, result: int | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
