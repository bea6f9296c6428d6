"""The journal of acked requests: durable before the ack, one taker at a time, secrets left out."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from bot.journal import MAX_TRIES, Journal, journal_path, open_journal, without_token
from bot.stores.sqlite import SqliteStore
from tests.slack import SIGNING_SECRET, signed_headers


@pytest.fixture(params=["sqlite", "postgres"])
def journal(request, tmp_path):
    if request.param == "postgres":
        kept = open_journal(request.getfixturevalue("postgres"))  # the store's migrations made the table
    else:
        SqliteStore(tmp_path / "j.db").close()
        kept = open_journal(str(tmp_path / "j.db"))
    yield kept
    kept.close()


@pytest.fixture
def sqlite_journal(tmp_path):
    SqliteStore(tmp_path / "j.db").close()
    kept = open_journal(str(tmp_path / "j.db"))
    yield kept
    kept.close()


def test_slacks_verification_token_is_never_stored():
    form = b"token=LEGACYSECRET&command=%2Flead&text=new+Ada+%26+Co&user_id=U1"
    kept = parse_qs(without_token(form, "application/x-www-form-urlencoded"))
    assert "token" not in kept and kept["text"] == ["new Ada & Co"]
    payload = json.dumps({"type": "block_actions", "token": "LEGACYSECRET", "user": {"id": "U1"}})
    kept = parse_qs(without_token(f"payload={payload}".encode(), "application/x-www-form-urlencoded"))
    assert json.loads(kept["payload"][0]) == {"type": "block_actions", "user": {"id": "U1"}}
    event = json.dumps({"token": "LEGACYSECRET", "type": "event_callback", "event": {"type": "app_home_opened"}})
    assert "LEGACYSECRET" not in without_token(event.encode(), "application/json")


def test_what_is_accepted_is_on_disk_with_only_the_headers_the_work_needs(sqlite_journal, tmp_path):
    journal = sqlite_journal
    body = "token=LEGACYSECRET&command=%2Flead&text=help"
    headers = {**signed_headers(body, secret=SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}

    async def accept_many() -> list[int]:
        return await asyncio.gather(*(journal.accept(body.encode(), headers) for _ in range(25)))

    ids = asyncio.run(accept_many())
    assert sorted(ids) == list(range(1, 26))  # one id each, whether or not they shared a commit
    other = sqlite3.connect(journal_path(str(tmp_path / "j.db")))  # another connection (another process) sees them all
    rows = other.execute("select body, headers, state from journal").fetchall()
    assert len(rows) == 25 and {state for _, _, state in rows} == {"accepted"}
    stored = json.loads(rows[0][1])
    assert "x-slack-signature" not in stored and stored["content-type"] == "application/x-www-form-urlencoded"
    assert all("LEGACYSECRET" not in b for b, _, _ in rows)
    assert other.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_what_is_accepted_on_postgresql_is_committed_for_every_replica(postgres):
    import psycopg

    journal = open_journal(postgres)
    body = "token=LEGACYSECRET&command=%2Flead&text=help"
    headers = {**signed_headers(body, secret=SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}

    async def accept_many() -> list[int]:
        return await asyncio.gather(*(journal.accept(body.encode(), headers) for _ in range(25)))

    try:
        ids = asyncio.run(accept_many())
    finally:
        journal.close()
    assert sorted(ids) == list(range(1, 26))
    with psycopg.connect(postgres) as other:  # another connection (another replica) sees them all
        rows = other.execute("select body, headers, state, accepted_by from journal").fetchall()
    assert len(rows) == 25 and {state for _, _, state, _ in rows} == {"accepted"}
    assert "x-slack-signature" not in rows[0][1] and rows[0][1]["content-type"] == "application/x-www-form-urlencoded"
    assert all("LEGACYSECRET" not in b for b, _, _, _ in rows)
    assert {by for _, _, _, by in rows} == {journal.me} and "/" in journal.me  # host/pid@start: seen from any host


def test_a_replica_on_another_host_is_alive_while_its_connection_lives(postgres):
    """Liveness across hosts is PostgreSQL's to say: a process holds its lock while it runs."""
    import subprocess
    import sys

    import psycopg

    from bot.stores.postgres import _key64

    journal = open_journal(postgres)
    code = (
        "import sys; from bot.journal import open_journal;"
        f"j = open_journal({postgres!r}); e = j.accept_now(b'command=%2Flead', {{}}); j.start(e);"
        "print(j.me, e, flush=True); sys.stdin.read()"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        token, entry = other.stdout.readline().split()
        entry = int(entry)
        mine = journal.accept_now(b"command=%2Flead", {})
        assert journal.unfinished() == [] or [e.id for e in journal.unfinished()] == [mine]
        assert journal.start(entry) is False and journal.orphaned() == []  # the other replica has it
        with psycopg.connect(postgres, autocommit=True) as conn:
            foreign = "elsewhere/" + token.split("/", 1)[1]  # the same pid on another host: not alive here
            conn.execute("update journal set started_by = %s where id = %s", [foreign, entry])
            assert [e.id for e in journal.unfinished()] == [entry, mine]  # no process holds that host's lock
            assert journal.orphaned() == []  # but a live replica accepted it: its own to recover
            conn.execute("update journal set started_by = %s where id = %s", [token, entry])
            other.kill()
            other.wait()
            # Its backend lets the lock go once it sees the connection closed: wait for exactly that.
            conn.execute("set statement_timeout = '10s'")
            conn.execute("select pg_advisory_lock(%s), pg_advisory_unlock(%s)", [_key64(token)] * 2)
        assert [e.id for e in journal.orphaned()] == [entry]  # a live replica's sweep takes it up
        assert journal.start(entry) is True and journal.orphaned() == []
    finally:
        other.kill()
        other.wait()
        journal.close()


def test_an_entry_is_taken_once_and_taken_over_only_from_a_dead_process(journal, dead_pid):
    first = journal.accept_now(b"command=%2Flead", {})
    assert journal.start(first, "1") is True  # pid 1 is alive: it has it now
    assert journal.start(first, "2") is False
    assert journal.unfinished() == []  # a live process has it
    second = journal.accept_now(b"command=%2Flead", {})
    assert journal.start(second, str(dead_pid)) is True
    assert [e.id for e in journal.unfinished()] == [second]  # its taker died: a restart runs it
    assert journal.start(second) is True  # taken over, once
    journal.finish(second)
    assert journal.start(second) is False and journal.unfinished() == []


def test_a_request_that_keeps_killing_its_process_is_given_up(journal, dead_pid):
    entry = journal.accept_now(b"command=%2Flead", {})
    for _ in range(MAX_TRIES):
        assert journal.start(entry, str(dead_pid)) is True
    assert journal.start(entry) is False
    assert journal.unfinished() == [] and journal.depth() == 0


def test_finished_entries_are_pruned_by_age(journal):
    old, new = journal.accept_now(b"a=1", {}), journal.accept_now(b"a=2", {})
    for entry in (old, new):
        journal.start(entry)
        journal.finish(entry)
    assert journal.prune(datetime.now(UTC) + timedelta(seconds=1)) == 2
    left = journal.accept_now(b"a=3", {})
    assert journal.prune(datetime.now(UTC) + timedelta(seconds=1)) == 0  # not done: kept
    assert journal.depth() == 1 and left


def test_a_killed_process_not_yet_reaped_is_dead_and_a_reused_pid_is_not_its_owner():
    import signal
    import subprocess

    from bot.stores.common import alive, process_token

    child = subprocess.Popen(["sleep", "30"])
    token = process_token(child.pid)
    assert alive(token)
    child.send_signal(signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, and left unreaped: a zombie
    assert not alive(token)
    assert child.wait() == -signal.SIGKILL
    assert not alive(f"{process_token(1).split('@')[0]}@1")  # pid 1, but not the pid 1 that started then


def test_a_request_the_journal_cannot_keep_is_not_acked(bot, linked, fake_slack, monkeypatch):
    from tests.conftest import ADMIN, leads

    def disk_full(rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(bot.journal, "_insert", disk_full)
    answer = bot.slack.command("new Ada ada@example.com", user=ADMIN, wait=False)
    assert answer.status_code == 503  # Slack tells the person the command failed; nothing was half-done
    assert bot.executor.wait_idle(5) and leads(linked) == [] and fake_slack.received("response") == []
    monkeypatch.undo()
    assert bot.slack.command("new Ada ada@example.com", user=ADMIN).status_code == 200
    assert [lead.name for lead in leads(linked)] == ["Ada"]


def test_accepting_never_waits_for_the_stores_write_lock(tmp_path):
    db = str(tmp_path / "leadbot.db")
    SqliteStore(db).close()
    journal = open_journal(db)
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the work process, in the middle of a write to the store
    try:
        entry = journal.accept_now(b"command=%2Flead&text=help", {"Content-Type": "application/x-www-form-urlencoded"})
        assert writer.in_transaction  # accepted while the store was still locked
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [e.id for e in journal.unfinished()] == [entry]
    journal.close()


def test_entries_the_store_file_held_before_the_journal_had_a_file_are_moved_and_run(tmp_path):
    db = str(tmp_path / "leadbot.db")
    SqliteStore(db).close()  # the store's migrations made the old journal table
    old = Journal(db)  # as Leadbot kept it before: in the store's file
    done = old.accept_now(b"command=%2Flead&text=one", {})
    old.finish(done)
    left = old.accept_now(b"command=%2Flead&text=two", {})
    started = old.accept_now(b"command=%2Flead&text=three", {})
    old.start(started, worker="gone-host/1@0")  # a process that died half-way through it
    old.close()
    journal = open_journal(db)
    assert [e.body for e in journal.unfinished()] == ["command=%2Flead&text=two", "command=%2Flead&text=three"]
    assert journal.depth() == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("select id, state from journal").fetchall() == [(done, "done")]
    journal.close()
    again = open_journal(db)
    assert [e.body for e in again.unfinished()] == ["command=%2Flead&text=two", "command=%2Flead&text=three"]
    again.close()  # moved once
    assert left
