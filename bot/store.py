"""Leadbot's one SQLite file: staff links, the local backend's leads, dedupe keys, audit.

Each thread gets its own connection (sqlite3 connections must not be shared
across threads), all in WAL mode so readers never wait on the writer.
Schema changes go through ``sqlite_utils.Migrations``: add a new function at
the end of ``migrations``, never edit one that has shipped.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("leadbot")


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


USER_SETTINGS = frozenset({"assignment_dms", "home_opened", "reminders", "remind_at", "tz", "tz_checked_at"})
CHANNEL_SETTINGS = frozenset({"previews"})


def _known_setting(name: str, known: frozenset[str] = USER_SETTINGS) -> None:
    # Setting names become column names in SQL: only ours, never a caller's string.
    if name not in known:
        raise ValueError(f"unknown setting {name!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value)


class Store:
    """The SQLite file behind Leadbot, opened lazily per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        migrations.apply(self.db)

    @property
    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            db = Database(conn)
            if self.path != ":memory:":
                db.enable_wal()
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction; nested ones become savepoints.

        ``BEGIN IMMEDIATE`` takes the write lock up front. sqlite-utils' plain
        ``BEGIN`` reads first (it checks the table exists) and then upgrades, and in
        WAL mode an upgrade after another connection's commit fails at once with
        "database is locked" instead of waiting: the work process and the serving
        process (or two threads) writing together hit exactly that.
        """
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()

    # -- dedupe -------------------------------------------------------------

    def claim_request(self, key: str, *, until_done: bool = False) -> bool:
        """Record ``key`` as handled; False when it already was (a Slack retry, a replay).

        ``until_done``: the claim stays "started" until ``finish_requests``. If the process
        that started it has died meanwhile, the next claim of the same key takes it over,
        so a request cut off half-way is done when it is sent again, not skipped.
        """
        pid = os.getpid()
        row = {"key": key, "at": to_db_time(utcnow()), "state": "started" if until_done else "done", "pid": pid}
        try:
            with self.transaction() as db:
                db["processed_requests"].insert(row)
        except sqlite3.IntegrityError:
            return self._take_over(key, pid)
        return True

    def _take_over(self, key: str, pid: int) -> bool:
        found = self.db.execute("select state, pid from processed_requests where key = ?", [key]).fetchone()
        if found is None or found[0] != "started" or found[1] in (None, pid) or _alive(found[1]):
            return False
        with self.transaction() as db:
            cursor = db.execute(
                "update processed_requests set pid = ?, at = ? where key = ? and state = 'started' and pid = ?",
                [pid, to_db_time(utcnow()), key, found[1]],
            )
            return cursor.rowcount == 1

    def finish_requests(self, keys: list[str]) -> None:
        with self.transaction() as db:
            db.conn.executemany("update processed_requests set state = 'done' where key = ?", [[k] for k in keys])

    def prune_requests(self, older_than: datetime) -> int:
        """Forget request keys older than any retry or double click could be (the table would grow forever)."""
        with self.transaction() as db:
            return db.execute("delete from processed_requests where at < ?", [to_db_time(older_than)]).rowcount

    # -- per-user settings ------------------------------------------------------

    def user_setting(self, slack_user: str, name: str, default: Any) -> Any:
        _known_setting(name)
        row = self.db.execute(f"select {name} from user_settings where slack_user = ?", [slack_user]).fetchone()
        return default if row is None or row[0] is None else row[0]

    def set_user_setting(self, slack_user: str, name: str, value: Any) -> None:
        _known_setting(name)
        with self.transaction() as db:
            db["user_settings"].upsert({"slack_user": slack_user, name: value}, pk="slack_user")

    # -- per-channel settings ---------------------------------------------------

    def channel_setting(self, channel: str, name: str, default: Any) -> Any:
        _known_setting(name, CHANNEL_SETTINGS)
        row = self.db.execute(f"select {name} from channel_settings where channel = ?", [channel]).fetchone()
        return default if row is None or row[0] is None else row[0]

    def set_channel_setting(self, channel: str, name: str, value: Any) -> None:
        _known_setting(name, CHANNEL_SETTINGS)
        with self.transaction() as db:
            db["channel_settings"].upsert({"channel": channel, name: value}, pk="channel")

    # -- audit --------------------------------------------------------------

    def audit(
        self,
        *,
        slack_user: str,
        action: str,
        lead_ref: str | None,
        result: str,
        detail: str = "",
    ) -> None:
        with self.transaction() as db:
            db["audit"].insert(
                {
                    "at": to_db_time(utcnow()),
                    "slack_user": slack_user,
                    "action": action,
                    "lead_ref": lead_ref,
                    "result": result,
                    "detail": detail,
                }
            )

    def audit_rows(self, **where: Any) -> list[dict[str, Any]]:
        clause = " and ".join(f"[{k}] = ?" for k in where) or None
        return list(self.db["audit"].rows_where(clause, list(where.values()), order_by="id"))
