"""``leadbot outbox`` (list, retry, drop) and ``leadbot export``, on a real database file."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.ops import EXPORT_FIELDS, local_leads
from bot.stores.sqlite import SqliteStore
from services.models import NewLead, Note

NOW = datetime.now(UTC)  # data for the exports (any moment will do)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "leadbot.db"


@pytest.fixture
def store(db):
    made = SqliteStore(db)
    yield made
    made.close()


@pytest.fixture
def leadbot(monkeypatch, db):
    """The command in this process, on ``db`` (LEADBOT_DB, or ``env_db``), answering prompts with ``input``."""

    def run(*args: str, input: str | None = None, env_db: Path | None = None):
        for name in list(os.environ):
            if name.startswith(("SLACK_", "LEADBOT_", "PORT")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("LEADBOT_DB", str(env_db or db))
        monkeypatch.setenv("COLUMNS", "1000")  # table rows on one line each, to read them back
        result = CliRunner().invoke(cli, list(args), input=input)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return run


def queue(store, key: str, *, next_at: datetime, created_at: datetime | None = None, **extra):
    return store.outbox.add(
        key=key,
        backend=extra.pop("backend", "capillary"),
        op=extra.pop("op", "add_note"),
        args={"lead_id": "19"},
        ref=extra.pop("ref", "capillary:19"),
        slack_user="UREP1",
        origin={},
        next_at=next_at,
        created_at=created_at or datetime.now(UTC),
    )


# -- leadbot outbox -----------------------------------------------------------------------------


def test_the_outbox_lists_what_waits_oldest_first(leadbot, store):
    now = datetime.now(UTC)  # the command reads the real clock
    assert leadbot("outbox").stdout.strip() == "No writes are queued."
    first = queue(store, "a", next_at=now + timedelta(minutes=10, seconds=30), created_at=now - timedelta(hours=3))
    store.outbox.update(first.id, attempts=4, last_error="Capillary is not answering (HTTP 503)")
    queue(store, "b", next_at=now - timedelta(seconds=5), op="create", ref=None, backend="leadsapi")
    landed = queue(store, "c", next_at=now)
    store.outbox.update(landed.id, state="done")
    result = leadbot("outbox")
    assert result.exit_code == 0
    assert "2 queued write(s)" in result.stdout
    (header,) = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "id",
        "backend",
        "op",
        "lead",
        "attempts",
        "next try",
        "last error",
        "age",
    ]
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["1", "2"]  # the one that landed is not listed
    assert [cell.strip() for cell in lines[0].split("│")[1:-1]] == [
        "1",
        "capillary",
        "note",
        "capillary:19",
        "4",
        "in 10 min",
        "Capillary is not answering (HTTP 503)",
        "3 h",
    ]
    assert [cell.strip() for cell in lines[1].split("│")[1:4]] == ["2", "leadsapi", "new lead"]
    assert "due now" in lines[1] and "(new lead)" in lines[1]


def test_retry_makes_one_write_or_all_due_now(leadbot, store):
    now = datetime.now(UTC)  # the command reads the real clock
    one = queue(store, "a", next_at=now + timedelta(minutes=10))
    two = queue(store, "b", next_at=now + timedelta(minutes=20))
    result = leadbot("outbox", "retry", str(one.id))
    assert result.exit_code == 0 and "1 write(s) due now: 1." in result.stdout
    later = datetime.now(UTC)
    assert [w.id for w in store.outbox.claim_due(later, later + timedelta(minutes=2), 10)] == [one.id]
    assert leadbot("outbox", "retry", "--all").exit_code == 0
    assert [w.id for w in store.outbox.claim_due(datetime.now(UTC), later + timedelta(minutes=2), 10)] == [two.id]


def test_retry_says_why_it_cannot(leadbot, store):
    now = datetime.now(UTC)  # the command reads the real clock
    queue(store, "a", next_at=now)
    store.outbox.claim_due(now, now + timedelta(minutes=2), 10)  # a runner is trying it now
    result = leadbot("outbox", "retry", "1")
    assert result.exit_code == 1 and "write 1 is being tried right now" in result.stderr
    result = leadbot("outbox", "retry", "7")
    assert result.exit_code == 1 and "there is no queued write 7" in result.stderr
    for args in ((), ("1", "--all")):
        result = leadbot("outbox", "retry", *args)
        assert result.exit_code == 2 and "name one write (leadbot outbox retry ID) or --all" in result.stderr


def test_drop_asks_then_gives_the_write_up_and_audits_it(leadbot, store):
    now = datetime.now(UTC)  # the command reads the real clock
    write = queue(store, "a", next_at=now + timedelta(minutes=10))
    result = leadbot("outbox", "drop", str(write.id), input="n\n")
    assert result.exit_code == 1 and "Drop the note for capillary:19 on capillary, queued by UREP1?" in result.stdout
    assert store.outbox.get(write.id).state == "pending"
    result = leadbot("outbox", "drop", str(write.id), input="y\n")
    assert result.exit_code == 0 and "Dropped write 1" in result.stdout and "tell them" in result.stdout
    assert store.outbox.get(write.id).state == "dropped" and store.outbox.pending() == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.outbox.claim_due(later, later, 10) == []  # no runner ever sends it
    (entry,) = store.audit.entries(action="outbox_drop")
    assert (entry.slack_user, entry.lead_ref, entry.result) == ("cli", "capillary:19", "ok")
    assert entry.detail == "write 1: the note for capillary:19 on capillary, queued by UREP1"
    result = leadbot("outbox", "drop", str(write.id), "--yes")
    assert result.exit_code == 1 and "write 1 is no longer queued (it was dropped)" in result.stderr
    assert len(store.audit.entries(action="outbox_drop")) == 1


def test_the_database_can_be_named_before_or_after_the_subcommand(leadbot, store, db, tmp_path):
    now = datetime.now(UTC)
    queue(store, "a", next_at=now + timedelta(minutes=10))
    elsewhere = tmp_path / "elsewhere.db"
    SqliteStore(elsewhere).close()
    for args in (("outbox", "--db", str(db), "retry", "1"), ("outbox", "retry", "1", "--db", str(db))):
        result = leadbot(*args, env_db=elsewhere)
        assert result.exit_code == 0 and "1 write(s) due now: 1." in result.stdout, args
    result = leadbot("outbox", "--db", str(db), "drop", "1", "--yes", env_db=elsewhere)
    assert result.exit_code == 0 and store.outbox.get(1).state == "dropped"


def test_drop_with_yes_does_not_ask(leadbot, store):
    now = datetime.now(UTC)  # the command reads the real clock
    write = queue(store, "a", next_at=now + timedelta(minutes=10), op="create", ref=None, backend="leadsapi")
    result = leadbot("outbox", "drop", str(write.id), "--yes")
    assert result.exit_code == 0 and "Drop the" not in result.stdout
    assert "Dropped write 1: the new lead on leadsapi, queued by UREP1." in result.stdout
    assert store.outbox.get(write.id).state == "dropped"


def test_operator_commands_never_create_a_database(leadbot, db):
    for args in (("outbox",), ("outbox", "retry", "--all"), ("outbox", "drop", "1", "--yes"), ("export",)):
        result = leadbot(*args)
        assert result.exit_code == 2, args
        assert (
            result.stderr == f"leadbot: cannot open the database {db}: there is no database there;"
            " check LEADBOT_DB (leadbot run creates it), or set LEADBOT_DB to another file\n"
        )
    assert not db.exists()


# -- leadbot export -----------------------------------------------------------------------------

TRICKY = 'Zoë "Z" O\'Brien, <@U0123> & <!channel> *bold*\nsecond line'


def made_leads(store) -> None:
    store.local.insert(
        NewLead(name="Ada Lovelace", email="ada@example.com", source="expo", next_follow_up=NOW + timedelta(days=1)),
        status="new",
        owner="ana",
        by="ada",
        at=NOW - timedelta(days=2),
    )
    store.local.insert(
        NewLead(name=TRICKY, phone="+14155550123", lead_for="a > b", type="SKU"),
        status="new",
        owner=None,
        by="bob",
        at=NOW,
    )
    store.local.update(2, at=NOW + timedelta(minutes=5), status="won", owner="bob")
    store.local.add_note(1, Note(text="not exported: history stays in Leadbot", by="ana", at=NOW))


def expected(store) -> list[dict]:
    return [
        {
            "ref": "local:1",
            "id": 1,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": None,
            "lead_for": None,
            "type": None,
            "source": "expo",
            "status": "new",
            "owner": "ana",
            "next_follow_up": (NOW + timedelta(days=1)).isoformat(),
            "created_at": (NOW - timedelta(days=2)).isoformat(),
            "created_by": "ada",
            "last_activity_at": NOW.isoformat(),
        },
        {
            "ref": "local:2",
            "id": 2,
            "name": TRICKY,
            "email": None,
            "phone": "+14155550123",
            "lead_for": "a > b",
            "type": "SKU",
            "source": None,
            "status": "won",
            "owner": "bob",
            "next_follow_up": None,
            "created_at": NOW.isoformat(),
            "created_by": "bob",
            "last_activity_at": (NOW + timedelta(minutes=5)).isoformat(),
        },
    ]


def test_export_as_csv_to_stdout_keeps_every_field_as_stored(leadbot, store):
    made_leads(store)
    result = leadbot("export")
    assert result.exit_code == 0 and result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert rows == [{k: "" if v is None else str(v) for k, v in lead.items()} for lead in expected(store)]


def test_export_as_json_to_a_file(leadbot, store, tmp_path):
    made_leads(store)
    out = tmp_path / "leads.json"
    result = leadbot("export", "--format", "json", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == "" and f"2 lead(s) written to {out}" in result.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == expected(store)


def test_an_empty_export_is_still_well_formed(leadbot, store):
    assert json.loads(leadbot("export", "--format", "json").stdout) == []
    assert leadbot("export").stdout == ",".join(EXPORT_FIELDS) + "\n"


def test_export_reads_page_by_page(store):
    for n in range(7):
        store.local.insert(NewLead(name=f"Lead {n}"), status="new", owner=None, by="ada", at=NOW)
    assert [r["id"] for r in local_leads(store, page=3)] == [1, 2, 3, 4, 5, 6, 7]


def test_export_to_a_file_that_cannot_be_written(leadbot, store, tmp_path):
    result = leadbot("export", "--output", str(tmp_path / "no" / "such" / "dir.csv"))
    assert result.exit_code == 2 and "cannot write" in result.stderr and "No such file or directory" in result.stderr
