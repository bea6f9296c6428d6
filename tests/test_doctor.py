"""``leadbot doctor``: one row per check, what is wrong and how to fix it; 0, 1 or 2; never a secret."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.stores.sqlite import SqliteStore
from tests.fakes.capillary import PASSWORD, USERNAME, FakeCapillary
from tests.fakes.leadsapi import FakeLeadsApi
from tests.fakes.testing import free_port

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-doctor-bot-token-1f2e3d",
    "SLACK_SIGNING_SECRET": "doctor-signing-secret-9a8b7c",
}
LEADSAPI = (
    "[backends.leadsapi]\nbusiness = [1]\ntimeout = 2\nconnect_timeout = 1\n"
    'defaults = { photo = "p.png", location = "-", position = "-" }\n'
)
CAPILLARY = "[backends.capillary]\ntill_id = 4242\ntimeout = 2\nconnect_timeout = 1\n"


@pytest.fixture
def doctor(monkeypatch, tmp_path, fake_slack):
    """``leadbot doctor`` in this process with exactly ``env`` (over good Slack settings and a fresh database)."""

    def run(env: dict[str, str] | None = None, config: str | None = None) -> tuple[int, str, str]:
        for name in list(os.environ):
            if name.startswith(("SLACK_", "LEADBOT_", "PORT")):
                monkeypatch.delenv(name)
        values = {**SECRETS, "SLACK_API_URL": fake_slack.api_url, "LEADBOT_DB": str(tmp_path / "leadbot.db")}
        monkeypatch.setenv("COLUMNS", "1000")  # rows on one line each, to read them back
        if config is not None:
            (tmp_path / "leadbot.toml").write_text(config)
            values["LEADBOT_CONFIG"] = str(tmp_path / "leadbot.toml")
        for name, value in {**values, **(env or {})}.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(cli, ["doctor"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.stdout, result.stderr

    return run


def row(output: str, name: str) -> str:
    """The table's line for check ``name`` (its first line, when the text wraps)."""
    found = [line for line in output.splitlines() if line.startswith(f"│ {name} ")]
    assert len(found) == 1, output
    return found[0]


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "leadbot.db"
    SqliteStore(path).close()
    return path


def test_all_checks_pass(doctor, database, fake_slack):
    code, out, err = doctor()
    assert code == 0, out
    for name in ("settings", "database", "backend local", "Slack credentials", "Slack token"):
        assert "│ OK " in row(out, name)
    assert "writable, nobody holds it locked; schema current" in row(out, "database")
    assert "accepted: bot leadbot in Test (T" in row(out, "Slack token")
    assert "All checks passed." in out and err == ""
    assert fake_slack.received("api", "auth.test")


def test_a_settings_error_is_a_row_and_nothing_else_is_checked(doctor, database, fake_slack):
    code, out, err = doctor({"LEADBOT_ADMINS": "alice"})
    assert code == 1 and err == ""
    settings = row(out, "settings")
    assert "FAIL" in settings and "LEADBOT_ADMINS is invalid" in settings and "comma-separated Slack user IDs" in out
    assert "not checked: the settings did not load" in row(out, "database")
    assert not fake_slack.received("api", "auth.test")


def test_a_missing_database_is_fine_and_not_created(doctor, tmp_path):
    code, out, _ = doctor()
    assert code == 0
    assert "does not exist yet; leadbot run creates it" in out
    assert not (tmp_path / "leadbot.db").exists()


def test_a_database_that_cannot_be_opened_is_a_row_and_the_start_up_line(doctor, tmp_path, fake_slack):
    (tmp_path / "leadbot.db").write_bytes(b"garbage" * 200)
    code, out, err = doctor()
    assert code == 2
    assert "FAIL" in row(out, "database") and "not a SQLite database" in out and "restore it from a backup" in out
    assert err.count("\n") == 1 and err.startswith(f"leadbot: cannot open the database {tmp_path / 'leadbot.db'}: ")
    assert "│ OK " in row(out, "Slack token")  # the rest is still checked


def test_schema_changes_to_come_are_said_not_made_and_a_newer_schema_fails(doctor, database):
    with sqlite3.connect(database) as db:
        db.execute("delete from _sqlite_migrations where name = 'm009_outbox_unknown_since'")
    code, out, _ = doctor()
    assert code == 0
    assert "1 schema change(s) to apply at the next start (m009_outbox_unknown_since)" in out
    with sqlite3.connect(database) as db:  # doctor only looked
        assert not db.execute("select 1 from _sqlite_migrations where name = 'm009_outbox_unknown_since'").fetchall()
        db.execute(
            "insert into _sqlite_migrations (migration_set, name, applied_at) values ('leadbot', 'm099_future', 'x')"
        )
    code, out, _ = doctor()
    assert code == 1
    assert "FAIL" in row(out, "database") and "written by a newer Leadbot" in out and "m099_future" in out


def test_queued_writes_are_counted(doctor, database):
    from datetime import UTC, datetime, timedelta

    store = SqliteStore(database)
    store.outbox.add(
        key="k",
        backend="capillary",
        op="add_note",
        args={},
        ref="capillary:19",
        slack_user="UA",
        origin={},
        next_at=datetime.now(UTC),
        created_at=datetime.now(UTC) - timedelta(hours=3),
    )
    store.close()
    code, out, _ = doctor()
    assert code == 0 and "1 write(s) queued for a backend, the oldest 3 h old (leadbot outbox)" in out


def test_a_refused_slack_token(doctor, database, fake_slack):
    fake_slack.fail("auth.test", error="invalid_auth")
    code, out, err = doctor()
    assert code == 1
    token = row(out, "Slack token")
    assert "FAIL" in token and "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in token
    assert "OAuth & Permissions" in out
    assert SECRETS["SLACK_BOT_TOKEN"] not in out + err


def test_slack_out_of_reach(doctor, database):
    code, out, _ = doctor({"SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"})
    assert code == 1
    assert "Slack's Web API cannot be reached" in row(out, "Slack token") and "SLACK_API_URL" in out


def test_missing_slack_credentials(doctor, database, fake_slack):
    code, out, _ = doctor({"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""})
    assert code == 1
    assert "SLACK_BOT_TOKEN is not set" in row(out, "Slack credentials")
    assert "not checked: SLACK_BOT_TOKEN is not set" in row(out, "Slack token")
    assert not fake_slack.received("api", "auth.test")


def test_backends_that_answer_and_backends_that_refuse_without_a_secret_shown(doctor, database):
    capillary, leadsapi = FakeCapillary().start(), FakeLeadsApi().start()
    try:
        good = {
            "LEADBOT_CAPILLARY_URL": capillary.url,
            "LEADBOT_CAPILLARY_USERNAME": USERNAME,
            "LEADBOT_CAPILLARY_PASSWORD": PASSWORD,
            "LEADBOT_LEADSAPI_URL": leadsapi.url,
            "LEADBOT_LEADSAPI_TOKEN": "leadsapi-token",
        }
        code, out, _ = doctor(good, config=CAPILLARY + LEADSAPI)
        assert code == 0, out
        assert "Capillary" in row(out, "backend capillary") and "answers" in row(out, "backend capillary")
        assert "│ OK " in row(out, "backend leadsapi")
        assert capillary.requests("GET", "/v2/leads/reasons") and leadsapi.requests("GET", "/leads/statuses")

        wrong = {
            **good,
            "LEADBOT_CAPILLARY_PASSWORD": "wrong-till-password-5e6f",
            "LEADBOT_LEADSAPI_TOKEN": "wrong-leadsapi-token-7a8b",
        }
        code, out, err = doctor(wrong, config=CAPILLARY + LEADSAPI)
        assert code == 1
        assert "FAIL" in row(out, "backend capillary") and "FAIL" in row(out, "backend leadsapi")
        assert "LEADBOT_LEADSAPI_TOKEN" in out and "LEADBOT_CAPILLARY_PASSWORD" in out
        for secret in (*SECRETS.values(), *wrong.values()):
            if "wrong" in secret or secret in SECRETS.values():
                assert secret not in out + err

        leadsapi.stop()  # refuses connections from now on
        code, out, _ = doctor(good, config=CAPILLARY + LEADSAPI)
        assert code == 1 and "FAIL" in row(out, "backend leadsapi") and "│ OK " in row(out, "backend capillary")
    finally:
        capillary.stop()
        leadsapi.stop()


def test_a_default_backend_that_is_not_configured(doctor, database):
    code, out, _ = doctor({"LEADBOT_DEFAULT_BACKEND": "capillary"})
    assert code == 1
    assert "LEADBOT_DEFAULT_BACKEND is 'capillary', which is not configured" in row(out, "backends")


def test_the_doctor_checks_a_postgresql_database_without_migrating_it(postgres, worker_id, doctor):
    from tests.test_postgres import fresh_database, tables

    code, out, _ = doctor({"LEADBOT_DB": postgres})
    assert code == 0, out
    assert "answers; schema current" in out
    fresh = fresh_database(postgres, f"leadbot_doctor_{worker_id}")
    code, out, _ = doctor({"LEADBOT_DB": fresh})
    assert code == 0 and "schema changes to apply at the next start" in out
    assert "leadbot_migrations" not in tables(fresh)  # looked at, not changed
    code, out, err = doctor({"LEADBOT_DB": "postgresql://leadbot:s3cret@127.0.0.1:1/leadbot"})
    assert code == 2 and "cannot open the database postgresql://leadbot@127.0.0.1:1/leadbot" in err
    assert "s3cret" not in out + err


def test_acked_requests_not_finished_are_counted(doctor, database):
    from bot.journal import open_journal

    SqliteStore(database).close()
    journal = open_journal(str(database))
    journal.accept_now(b"command=%2Flead&text=help", {"content-type": "application/x-www-form-urlencoded"})
    journal.close()
    code, out, _ = doctor()
    assert code == 0 and "1 acked request(s) not finished (the next leadbot run finishes them)" in out


def test_acked_requests_left_in_the_stores_old_journal_table_are_counted_too(doctor, database):
    from bot.journal import Journal

    SqliteStore(database).close()
    old = Journal(str(database))  # before the journal had a file of its own
    old.accept_now(b"command=%2Flead&text=help", {"content-type": "application/x-www-form-urlencoded"})
    old.close()
    code, out, _ = doctor()
    assert code == 0 and "1 acked request(s) not finished" in out
