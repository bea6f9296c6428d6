"""``leadbot migrate-store``: a SQLite store into an empty PostgreSQL database, all of it, counted; never over data."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.journal import Journal
from bot.stores.postgres import TABLES, PostgresStore
from bot.stores.sqlite import SqliteStore
from services.models import FollowUp, NewLead, Note, StaffLink, StatusChange
from services.ports import AuditEntry, RequestWrite
from services.search import terms

NOW = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)


def _fill(path) -> None:
    """Something in every table the store holds, through its ports."""
    store = SqliteStore(path)
    store.links.put(StaffLink(slack_user="UA", backend="local", staff_id="ada"), by="UA", at=NOW)
    store.links.put(StaffLink(slack_user="UB", backend="capillary", staff_id="bob/1"), by="UA", at=NOW)
    for name in ("Ada", "Bob", "Cy"):
        store.local.insert(
            NewLead(name=name, email=f"{name.lower()}@example.com", note=f"met {name}", next_follow_up=NOW),
            status="new",
            owner="ada",
            by="UA",
            at=NOW,
        )
    store.local.add_follow_up(1, FollowUp(done_at=NOW, notes="called", next_follow_up=NOW, by="ana"), at=NOW)
    store.local.add_note(2, Note(text="likes tea ☕ <@U1>", by="bob", at=NOW + timedelta(minutes=1)))
    store.local.add_status(3, StatusChange(status="Won", reason="budget", by="ana", at=NOW), status="won")
    store.requests.claim("command:1")
    store.requests.claim("feed:local:1", until_done=True)
    store.writes.record(RequestWrite(key="j1#1", backend="local", op="create", args={"a": [1]}, state="landed", at=NOW))
    store.prefs.set_user("UA", assignment_dms=False, home_opened=True, remind_at="08:30", tz="Asia/Kolkata")
    store.prefs.set_channel("C1", previews=True)
    store.outbox.add(
        key="k1",
        backend="capillary",
        op="add_note",
        args={"note": {"text": "café"}},
        ref="capillary:19",
        slack_user="UA",
        origin={"channel": "C1"},
        next_at=NOW,
        created_at=NOW,
        unknown_since=NOW,
    )
    store.digests.claim("UA", date(2026, 12, 1), NOW)
    store.digests.record("UA", date(2026, 12, 1), "sent", channel="DUA", ts="1.2", sent_at=NOW, leads=3)
    store.audit.record(AuditEntry(at=NOW, slack_user="UA", action="create", lead_ref="local:1", result="ok"))
    store.remote.remember("capillary", "19", name="Tom", archived=True, next_follow_up=NOW, extra={"deals": [5]})
    store.rates.take("lsq:x", limit=3, window=5.0, now=NOW)
    store.close()
    journal = Journal(str(path))
    entry = journal.accept_now(b"command=%2Flead", {"Content-Type": "application/x-www-form-urlencoded"})
    journal.start(entry)
    journal.finish(entry)
    journal.close()


def _migrate(source, target) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["migrate-store", "--from", str(source), "--to", target])
    return result.exit_code, result.stdout, result.stderr


def _seen(store) -> dict:
    """What the store holds, as the ports give it."""
    return {
        "links": [store.links.of_user(u) for u in store.links.users()],
        "leads": store.local.every(0, 100),
        "activity": [store.local.activity(n, 10) for n in (1, 2, 3)],
        "writes": store.writes.get("j1#1"),
        "prefs": (store.prefs.users(["UA", "UB"]), store.prefs.channel("C1")),
        "outbox": store.outbox.pending(),
        "digest": store.digests.get("UA", date(2026, 12, 1)),
        "audit": store.audit.entries(),
        "remote": store.remote.recall_all("capillary"),
        "held": store.links.held_by("capillary", "bob/1"),
        "found": store.local.find(terms("example"), statuses=["new", "won"], offset=0, limit=10),  # index rebuilt
    }


def test_a_sqlite_store_is_copied_whole_and_counted(tmp_path, postgres):
    source = tmp_path / "leadbot.db"
    _fill(source)
    code, out, err = _migrate(source, postgres)
    assert code == 0, err
    assert "the counts match" in out and "local_leads: 3" in out and "journal: 1" in out
    before, after = SqliteStore(source), PostgresStore(postgres)
    try:
        assert _seen(after) == _seen(before)
        assert all(after.counts()[t] > 0 for t in TABLES), after.counts()  # every table had something to copy
        assert after.requests.claim("command:1") is False  # handled before the move: not again after it
        assert after.rates.take("lsq:x", limit=1, window=5.0, now=NOW) == 5.0  # the budget went along
        # Numbering goes on after what was copied.
        lead = after.local.insert(NewLead(name="Di"), status="new", owner=None, by="UA", at=NOW)
        assert lead.id == "4"
        queued = after.outbox.add(
            key="k2",
            backend="local",
            op="x",
            args={},
            ref=None,
            slack_user="UA",
            origin={},
            next_at=NOW,
            created_at=NOW,
        )
        assert queued.id == 2
    finally:
        before.close()
        after.close()
    code, _, err = _migrate(source, postgres)  # again: the target holds data now
    assert code == 2 and "is not empty (staff_links (2), local_leads (4)" in err
    check = PostgresStore(postgres)
    try:
        assert check.local.get(4).name == "Di" and len(check.local.every(0, 100)) == 4  # nothing overwritten
    finally:
        check.close()


def test_a_table_it_does_not_know_is_refused_and_nothing_is_written(tmp_path, postgres):
    source = tmp_path / "leadbot.db"
    _fill(source)
    with sqlite3.connect(source) as conn:
        conn.execute("create table backend_health (backend text)")
    code, _, err = _migrate(source, postgres)
    assert code == 2 and "has tables this Leadbot cannot copy (backend_health)" in err
    store = PostgresStore(postgres)
    try:
        assert not any(store.counts().values())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--to", "mysql://u:s3cret@h/db"], "--to must be a postgresql:// URL"),
        (["--to", "postgresql://u:s3cret@127.0.0.1:1/db"], "cannot open the database postgresql://u@127.0.0.1:1/db"),
    ],
)
def test_a_wrong_target_is_said_without_its_password(tmp_path, args, said):
    source = tmp_path / "leadbot.db"
    SqliteStore(source).close()
    result = CliRunner().invoke(cli, ["migrate-store", "--from", str(source), *args])
    assert result.exit_code == 2 and said in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def test_a_missing_source_is_not_created(tmp_path, postgres):
    code, _, err = _migrate(tmp_path / "nope.db", postgres)
    assert code == 2 and "does not exist" in err and not (tmp_path / "nope.db").exists()
