"""Start-up settings: one clear line and exit 2 for anything wrong; secrets never shown."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.config import ConfigError, Settings, load_settings

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def leadbot_process(*args: str, env: dict[str, str] | None = None) -> Ran:
    """The real command in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**CLEAN_ENV, **(env or {})},
    )
    return Ran(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def leadbot(monkeypatch):
    """The same command run in this process (faster), with exactly ``env`` for Leadbot's settings."""

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        for name in list(os.environ):
            if name.startswith(("SLACK_", "LEADBOT_", "PORT")):
                monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            result = CliRunner().invoke(cli, list(args))
        finally:  # ``run`` puts its log handler on the runner's stderr, which is closed after the call
            root.handlers[:] = handlers
            root.setLevel(level)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


def test_the_real_process_stops_with_one_line_and_exit_2(tmp_path):
    result = leadbot_process("run", env={"LEADBOT_DB": str(tmp_path / "x.db"), "PORT": "eighty"})
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert result.stderr.startswith("leadbot: PORT is invalid") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SLACK_BOT_TOKEN is not set: expected the bot token (xoxb-…)"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN does not start with 'xoxb-'"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN does not start with 'xapp-'"),
        ({"PORT": "eighty"}, "PORT is invalid"),
        ({"PORT": "70000"}, "PORT is invalid"),
        ({"LEADBOT_ADMINS": "alice,bob"}, "LEADBOT_ADMINS is invalid (entries 1, 2 are not Slack user IDs)"),
        (
            {"LEADBOT_ADMINS": "U012AB3CD,xoxb-123-456-secret"},
            "LEADBOT_ADMINS is invalid (entry 2 is not a Slack user ID)",
        ),
        ({"LEADBOT_DEFAULT_BACKEND": "salesforce"}, "LEADBOT_DEFAULT_BACKEND is invalid"),
        ({"LEADBOT_CONFIG": "/nonexistent/leadbot.toml"}, "LEADBOT_CONFIG cannot be read"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL is invalid"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(leadbot, env, expected, tmp_path):
    result = leadbot("run", env={"LEADBOT_DB": str(tmp_path / "x.db"), **env})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_default_backend_must_be_configured(leadbot, tmp_path):
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


def test_rejected_token_is_one_line_without_the_token(leadbot, tmp_path, fake_slack):
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
    with pytest.raises(
        ConfigError,
        match="LEADBOT_CONFIG channels: channel C0SALES routes to no known backend: expected one of local, capillary",
    ):
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


def test_backend_options_are_checked_at_start_up(leadbot, tmp_path):
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
    config.write_text("[backends.salesforce]\ntoken = 'x'\n")
    result = leadbot("run", env=env)
    known = "local, capillary, leadsapi, leadsquared, getlead"
    assert f"[backends.salesforce]: no such backend (known: {known})" in result.stderr
    config.write_text("[backends.capillary]\ntoken = 'in-the-file'\n")
    result = leadbot("run", env=env)
    assert "[backends.capillary] token: set it in the environment as LEADBOT_CAPILLARY_TOKEN" in result.stderr
    assert "in-the-file" not in result.stderr and "secret-cap-token" not in result.stderr


def test_backend_secrets_never_appear_in_repr(monkeypatch, tmp_path):
    config = tmp_path / "leadbot.toml"
    config.write_text(
        '[backends.leadsapi]\nbusiness = [1]\ndefaults = { photo = "p", location = "l", position = "p" }\n'
        "[backends.capillary]\ntill_id = 1\n"
    )
    settings = load_settings(
        leadbot_config=config,
        leadbot_capillary_url="https://x.example",
        leadbot_capillary_username="till",
        leadbot_capillary_password="till-pass-123",
        leadbot_leadsapi_url="https://y.example",
        leadbot_leadsapi_token="api-token-456",
    )
    assert set(settings.backends) == {"local", "capillary", "leadsapi"}
    shown = repr(settings) + repr(settings.backends) + str(settings.backends)
    assert "till-pass-123" not in shown and "api-token-456" not in shown


# -- a secret pasted into the wrong setting is never shown back ----------------------------------

PASTED = (
    "xoxb-2718281828-3141592653-AbCdEfGhIjKlMnOpQrStUvWx",
    "xapp-1-A0SECRET99-5772156649015-0123456789abcdef0123456789abcdef",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
)
GOOD_TABLES = {
    "capillary": {"till_id": "4242"},
    "leadsapi": {"business": "[1]", "defaults": '{ photo = "p", location = "l", position = "p" }'},
}


def config_file(tables: dict[str, dict[str, str]] = GOOD_TABLES, before: str = "") -> str:
    """A LEADBOT_CONFIG file: ``before`` (top-level keys and tables), then each backend's table."""
    return before + "".join(
        f"[backends.{name}]\n" + "".join(f"{key} = {value}\n" for key, value in table.items())
        for name, table in tables.items()
    )


def every_setting() -> list[str]:
    """Every environment variable Leadbot reads: the settings model's fields and each backend's variables."""
    from services.backends import REGISTRY

    names = {name.upper() for name in Settings.model_fields} | {v.name for s in REGISTRY.values() for v in s.env}
    return sorted(names)


def start_up_error(env: dict[str, str], monkeypatch, tmp_path: Path, file: str | None = None) -> str | None:
    """What ``leadbot run`` would stop with before serving (settings, credentials, backends), or None."""
    from bot.app import build_backends
    from bot.stores.memory import MemoryStore

    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_", "PORT")):
            monkeypatch.delenv(name)
    config = tmp_path / "leadbot.toml"
    config.write_text(config_file() if file is None else file)
    good = {
        "SLACK_BOT_TOKEN": "xoxb-good",
        "SLACK_SIGNING_SECRET": "good-secret",
        "LEADBOT_CONFIG": str(config),
        "LEADBOT_DB": str(tmp_path / "x.db"),
        "LEADBOT_CAPILLARY_URL": "http://127.0.0.1:9",
        "LEADBOT_CAPILLARY_TOKEN": "good-token",
        "LEADBOT_LEADSAPI_URL": "http://127.0.0.1:9",
        "LEADBOT_LEADSAPI_TOKEN": "good-token",
    }
    for name, value in {**good, **env}.items():
        monkeypatch.setenv(name, value)
    try:
        settings = load_settings()
        settings.require_slack()
        build_backends(settings, MemoryStore())
    except ConfigError as exc:
        return str(exc)
    return None


def test_a_token_pasted_into_any_setting_is_never_echoed(monkeypatch, tmp_path):
    assert start_up_error({}, monkeypatch, tmp_path) is None  # the base is a good configuration
    refused = set()
    for name in every_setting():
        for secret in PASTED:
            said = start_up_error({name: secret}, monkeypatch, tmp_path)
            if said is not None:
                refused.add(name)
                assert secret not in said and secret[:12] not in said, f"{name}: {said}"
                assert said.count("\n") == 0
    # The check bites: most settings refuse a token, and say which setting is wrong.
    assert {"PORT", "LEADBOT_ADMINS", "LEADBOT_WORKERS", "SLACK_API_URL", "LEADBOT_CAPILLARY_URL"} <= refused


def test_a_token_pasted_into_the_config_file_is_never_echoed(monkeypatch, tmp_path):
    from services.backends import REGISTRY

    files = []
    for secret in PASTED:
        quoted = json.dumps(secret)  # a TOML basic string
        for spec in REGISTRY.values():
            from_env = {v.option for v in spec.env}
            for option in spec.options.model_fields.keys() - from_env:
                tables = {name: dict(table) for name, table in GOOD_TABLES.items()}
                tables.setdefault(spec.name, {})[option] = quoted
                files.append((secret, config_file(tables)))
        for before in (f"channels = {quoted}\n", f"[channels]\nC0SALES = {quoted}\n", f"[feeds]\nlocal = {quoted}\n"):
            files.append((secret, config_file(before=before)))
    refused = 0
    for secret, file in files:
        said = start_up_error({}, monkeypatch, tmp_path, file=file)
        if said is not None:
            refused += 1
            assert secret not in said and secret[:12] not in said, f"{file}: {said}"
    # The check bites: every number, URL, country and time zone option refuses a token (free text may take one).
    assert refused >= 30, refused


def test_empty_admin_entries_are_dropped_and_an_override_beats_the_environment(monkeypatch):
    monkeypatch.setenv("LEADBOT_ADMINS", "U012AB3CD,,W045EF6GH,")
    assert load_settings().leadbot_admins == {"U012AB3CD", "W045EF6GH"}
    monkeypatch.setenv("PORT", "4000")
    assert load_settings(port=5000).port == 5000


@pytest.mark.parametrize("variable", ["PORT", "LEADBOT_WORKERS", "LEADBOT_LOG_FORMAT", "LEADBOT_JOURNAL"])
def test_a_setting_error_never_shows_the_value_given(monkeypatch, variable):
    monkeypatch.setenv(variable, "xoxb-123-SECRETVALUE")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert variable in str(raised.value) and "SECRETVALUE" not in str(raised.value)
