"""Start-up settings: one clear line and exit 2 for anything wrong; secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}


def leadbot(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**CLEAN_ENV, **(env or {})},
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SLACK_BOT_TOKEN is not set: expected the bot token (xoxb-…)"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN does not start with 'xoxb-'"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN does not start with 'xapp-'"),
        ({"PORT": "eighty"}, "PORT is invalid"),
        ({"PORT": "70000"}, "PORT is invalid"),
        ({"LEADBOT_ADMINS": "alice,bob"}, "LEADBOT_ADMINS is invalid (not Slack user IDs: alice, bob)"),
        ({"LEADBOT_DEFAULT_BACKEND": "salesforce"}, "LEADBOT_DEFAULT_BACKEND is invalid"),
        ({"LEADBOT_CONFIG": "/nonexistent/leadbot.toml"}, "LEADBOT_CONFIG cannot be read"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL is invalid"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(env, expected, tmp_path):
    result = leadbot("run", env={"LEADBOT_DB": str(tmp_path / "x.db"), **env})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_default_backend_must_be_configured(tmp_path):
    result = leadbot(
        "run",
        env={
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "LEADBOT_DEFAULT_BACKEND": "capillary",
            "LEADBOT_DB": str(tmp_path / "x.db"),
        },
    )
    assert result.returncode == 2
    assert "LEADBOT_DEFAULT_BACKEND is 'capillary', which is not configured" in result.stderr


def test_rejected_token_is_one_line_without_the_token(tmp_path, fake_slack):
    fake_slack.fail("auth.test", error="invalid_auth", times=5)
    result = leadbot(
        "run",
        env={
            "SLACK_BOT_TOKEN": "xoxb-very-secret-value",
            "SLACK_SIGNING_SECRET": "s3cr3t",
            "SLACK_API_URL": fake_slack.api_url,
            "LEADBOT_DB": str(tmp_path / "x.db"),
        },
    )
    assert result.returncode == 2
    assert "Slack rejected SLACK_BOT_TOKEN" in result.stderr
    assert "very-secret" not in result.stderr + result.stdout


def test_config_file_routes_channels(tmp_path, monkeypatch):
    config = tmp_path / "leadbot.toml"
    config.write_text('[channels]\nC0SALES = "local"\n')
    monkeypatch.setenv("LEADBOT_CONFIG", str(config))
    assert load_settings().file.channels == {"C0SALES": "local"}
    config.write_text('[channels]\nC0SALES = "salesforce"\n')
    with pytest.raises(ConfigError, match="channels: channel C0SALES routes to unknown backend 'salesforce'"):
        load_settings()
    config.write_text("channels = [")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings()


def test_secrets_never_appear_in_repr(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-should-not-leak")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-should-not-leak")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-should-not-leak")
    settings = load_settings()
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    assert "should-not-leak" not in shown
    assert settings.slack_bot_token.get_secret_value() == "xoxb-should-not-leak"


def test_bad_value_is_not_echoed(monkeypatch):
    monkeypatch.setenv("PORT", "secret-looking-value")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "secret-looking-value" not in str(err.value)


def test_admins_are_parsed(monkeypatch):
    monkeypatch.setenv("LEADBOT_ADMINS", " U012AB3CD , W045EF6GH ")
    assert load_settings().leadbot_admins == {"U012AB3CD", "W045EF6GH"}


def test_store_schema_is_created_once_and_in_wal_mode(tmp_path: Path):
    from bot.store import Store, migrations

    path = tmp_path / "s.db"
    store = Store(path)
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert {
        "staff_links",
        "local_leads",
        "local_follow_ups",
        "local_notes",
        "local_status_log",
        "processed_requests",
        "audit",
    } <= set(store.db.table_names())
    again = Store(path)  # re-opening applies nothing twice
    assert [m.name for m in migrations.applied(again.db)] == [
        "m001_initial",
        "m002_user_settings",
        "m003_home_opened",
        "m004_channel_settings",
        "m005_remote_leads_and_outbox",
        "m006_reminders",
        "m007_request_claims",
    ]
    assert migrations.pending(again.db) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"leadbot_capillary_url": "https://apac.api.capillarytech.com"},
            "LEADBOT_CAPILLARY_URL is set without credentials",
        ),
        ({"leadbot_capillary_token": "t"}, "LEADBOT_CAPILLARY_URL is not set"),
        (
            {"leadbot_capillary_url": "https://x.example", "leadbot_capillary_username": "till"},
            "LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD go together",
        ),
        ({"leadbot_capillary_url": "ftp://x", "leadbot_capillary_token": "t"}, "LEADBOT_CAPILLARY_URL is invalid"),
        (
            {"leadbot_leadsapi_url": "https://crm.example.com/api"},
            "LEADBOT_LEADSAPI_URL is set without LEADBOT_LEADSAPI_TOKEN",
        ),
        ({"leadbot_leadsapi_token": "t"}, "LEADBOT_LEADSAPI_URL is not set"),
    ],
)
def test_half_configured_backends_are_named(env, expected, monkeypatch):
    for name in list(os.environ):
        if name.startswith("LEADBOT_"):
            monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match=expected):
        load_settings(**env)


def test_backend_options_are_checked_at_start_up(tmp_path):
    config = tmp_path / "leadbot.toml"
    config.write_text("[backends.capillary]\ntill_id = 'the big one'\n")
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "LEADBOT_DB": str(tmp_path / "x.db"),
        "LEADBOT_CONFIG": str(config),
        "LEADBOT_CAPILLARY_URL": "https://apac.api.capillarytech.com",
        "LEADBOT_CAPILLARY_TOKEN": "secret-cap-token",
    }
    result = leadbot("run", env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "LEADBOT_CONFIG [backends.capillary] till_id:" in result.stderr
    assert "secret-cap-token" not in result.stderr
    config.write_text("[backends.getlead]\ntoken = 'x'\n")
    result = leadbot("run", env=env)
    assert "only capillary and leadsapi take settings here" in result.stderr


def test_backend_secrets_never_appear_in_repr(monkeypatch):
    settings = load_settings(
        leadbot_capillary_url="https://x.example",
        leadbot_capillary_username="till",
        leadbot_capillary_password="till-pass-123",
        leadbot_leadsapi_url="https://y.example",
        leadbot_leadsapi_token="api-token-456",
    )
    assert "till-pass-123" not in repr(settings) and "api-token-456" not in repr(settings)
