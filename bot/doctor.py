"""``leadbot doctor``: is everything ``leadbot run`` needs in place, and if not, what to do.

Each check does the least that proves the point and changes nothing: the
settings are loaded as ``run`` loads them, the database is opened without
creating or migrating it (and its write lock taken and let go), each backend
gets one harmless read, and Slack one ``auth.test``. A row says what was found
and how to fix it, in Leadbot's own words: never a token, a secret or a URL
(URLs can carry credentials), whatever a setting holds.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, load_settings
from bot.journal import UNFINISHED, journal_path
from bot.ops import ago
from bot.stores.files import file_problem
from services.backends import REGISTRY
from services.backends.base import Backend
from services.clock import utcnow
from services.models import LeadQuery
from services.ports import Store, StoreUnavailable

SKIPPED_SETTINGS = "not checked: the settings did not load"
# Slack's errors for a token that is wrong, revoked or of the wrong kind (api.slack.com/methods/auth.test).
TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "not_allowed_token_type"}
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    store_error: str | None = None  # the one line ``run`` would stop with: the database cannot be opened

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """2 when the database cannot be opened (as ``run`` and ``console`` exit), 1 when a check failed."""
        return 2 if self.store_error else 0 if self.ok else 1


def _expected(message: str) -> tuple[str, str]:
    """A ``ConfigError`` line split into what is wrong and what was expected."""
    wrong, sep, expected = message.partition(": expected ")
    return (wrong, f"expected {expected}") if sep else (message, "see Running in the README")


def check_settings(overrides: dict[str, Any]) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        wrong, fix = _expected(str(exc))
        return Check("settings", False, wrong, fix), None
    config = "a LEADBOT_CONFIG file" if settings.leadbot_config else "no LEADBOT_CONFIG file"
    backends = ", ".join(settings.backends)
    return Check("settings", True, f"loaded, with {config}; backends: {backends}"), settings


def check_store(settings: Settings) -> tuple[Check, Store | None, str | None]:
    """The database row, the store if it opened, and the line ``run`` would stop with if it cannot."""
    from bot.stores.sqlite import LOCK_WAIT, SqliteStore

    location = str(settings.leadbot_db)
    if location == "memory:":
        return Check("database", True, "in memory (LEADBOT_DB=memory:): nothing is kept when Leadbot stops"), None, None
    if location.startswith(("postgresql://", "postgres://")):
        return _check_postgres(location)
    path = Path(location.removeprefix("sqlite:///"))
    if not path.exists() and file_problem(path) is None:
        return Check("database", True, f"{path} does not exist yet; leadbot run creates it"), None, None
    try:
        store = SqliteStore(path, create=False, migrate=False, lock_wait=LOCK_WAIT)
    except StoreUnavailable as exc:
        line = str(exc)
        wrong, _, fix = line.partition("; ")
        return Check("database", False, wrong, fix), None, line
    try:
        store.ping()
        pending, unknown = store.schema()
        if unknown:
            return (
                Check(
                    "database",
                    False,
                    f"{path} was written by a newer Leadbot (schema changes {', '.join(unknown)} are unknown here)",
                    "run the Leadbot version that wrote it, or restore a backup made before the upgrade",
                ),
                store,
                None,
            )
        found = f"{path}: writable, nobody holds it locked"
        if pending:
            found += f"; {len(pending)} schema change(s) to apply at the next start ({', '.join(pending)})"
            return Check("database", True, found), store, None
        found += "; schema current"
        queued = store.outbox.pending()
        if queued:
            oldest = ago(utcnow() - min(w.created_at for w in queued))
            found += f"; {len(queued)} write(s) queued for a backend, the oldest {oldest} old (leadbot outbox)"
        unfinished = _journal_depth(path)
        if unfinished:
            found += f"; {unfinished} acked request(s) not finished (the next leadbot run finishes them)"
        return Check("database", True, found), store, None
    except (sqlite3.Error, StoreUnavailable) as exc:
        store.close()
        return Check("database", False, f"{path} cannot be read ({exc})", "restore it from a backup"), None, None


def _check_postgres(dsn: str) -> tuple[Check, Store | None, str | None]:
    from bot.stores.postgres import PostgresStore, described

    try:
        store = PostgresStore(dsn, migrate_schema=False)
        store.ping()
    except StoreUnavailable as exc:
        line = str(exc)
        return Check("database", False, line, "check LEADBOT_DB and that PostgreSQL answers from this host"), None, line
    try:
        pending, unknown = store.schema()
    except Exception:  # no leadbot_migrations yet: nothing has been applied
        pending, unknown = ["all"], []
    name = described(dsn)
    if unknown:
        store.close()
        return (
            Check(
                "database",
                False,
                f"{name} was written by a newer Leadbot (schema changes {', '.join(unknown)} are unknown here)",
                "run the Leadbot version that wrote it",
            ),
            None,
            None,
        )
    if pending:
        store.close()
        return Check("database", True, f"{name} answers; schema changes to apply at the next start"), None, None
    return Check("database", True, f"{name} answers; schema current"), store, None


def _journal_depth(path: Any) -> int:
    """Acked requests whose work is not done (bot/journal.py), read without writing anything:
    in the journal's file, and in the store's own table, where they were before it had one."""
    count = 0
    for file in (Path(journal_path(str(path))), Path(path)):
        if not file.exists():
            continue
        with closing(sqlite3.connect(file.resolve().as_uri() + "?mode=ro", uri=True)) as db:
            if db.execute("select 1 from sqlite_master where name = 'journal'").fetchone():
                count += int(db.execute(f"select count(*) from journal where {UNFINISHED}").fetchone()[0])
    return count


def check_backend(backend: Backend, options: Any = None) -> Check:
    """One harmless read; a failure names the variables that configure it (those that are set)."""
    name = f"backend {backend.name}"
    spec = REGISTRY[backend.name]
    variables = ", ".join(v.name for v in spec.env if getattr(options, v.option, None) is not None)
    try:
        if backend.name == "local":
            page = backend.search(LeadQuery(limit=1))
            return Check(name, True, f"{backend.title}: {page.total} open lead(s)")
        down = backend.reachable()
    except Exception as exc:  # a check must report, not crash the report; the type says enough
        down = f"the check failed ({type(exc).__name__})"
    if down is None:
        return Check(name, True, f"{backend.title} answers")
    fix = f"check {variables}, and that {backend.title} answers from this host" if variables else "see the database row"
    return Check(name, False, down, fix)


def check_slack_credentials(settings: Settings) -> Check:
    try:
        settings.require_slack()
    except ConfigError as exc:
        wrong, fix = _expected(str(exc))
        return Check("Slack credentials", False, wrong, fix)
    mode = "Socket Mode (SLACK_APP_TOKEN)" if settings.slack_app_token else f"HTTP on PORT {settings.port}"
    return Check("Slack credentials", True, f"set, for {mode}")


def check_slack_token(settings: Settings) -> Check:
    name = "Slack token"
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        return Check(name, False, "not checked: SLACK_BOT_TOKEN is not set", "set SLACK_BOT_TOKEN")
    from slack_sdk.errors import SlackApiError

    from bot.app import build_client

    client = build_client(settings)
    client.timeout = 10
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        if error in TOKEN_REFUSED:
            return Check(
                name,
                False,
                f"Slack refused SLACK_BOT_TOKEN ({error})",
                "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page;"
                " reinstall the app if it was revoked",
            )
        return Check(name, False, f"Slack's auth.test answered {error}", "check SLACK_BOT_TOKEN and SLACK_API_URL")
    except Exception as exc:  # urllib's errors carry the reason, never the token (it travels in a header)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        return Check(
            name, False, f"Slack's Web API cannot be reached ({reason})", "check the network, or SLACK_API_URL"
        )
    return Check(name, True, f"accepted: bot {answer.get('user')} in {answer.get('team')} ({answer.get('team_id')})")


def diagnose(overrides: dict[str, Any] | None = None) -> Report:
    """Every check, in the order an operator fixes things."""
    report = Report()
    settings_check, settings = check_settings(dict(overrides or {}))
    report.checks.append(settings_check)
    if settings is None:
        report.checks += [Check(n, False, SKIPPED_SETTINGS) for n in ("database", "backends", "Slack")]
        return report
    store_check, store, report.store_error = check_store(settings)
    report.checks.append(store_check)
    try:
        from bot.app import build_backends
        from bot.stores.memory import MemoryStore

        try:
            # Leadbot's own database when it opened, else a throwaway one: a remote backend's read needs neither.
            backends = build_backends(settings, store or MemoryStore())
        except ConfigError as exc:
            wrong, fix = _expected(str(exc))
            report.checks.append(Check("backends", False, wrong, fix))
        else:
            for backend in backends:
                if backend.name == "local" and store is None:
                    report.checks.append(Check("backend local", store_check.ok, "in the database (row above)"))
                    continue
                report.checks.append(check_backend(backend, settings.backends.get(backend.name)))
                backend.close()
        report.checks.append(check_slack_credentials(settings))
        report.checks.append(check_slack_token(settings))
    finally:
        if store is not None:
            store.close()
    return report


def render(report: Report, console: Any) -> None:
    """The report as a table on a rich ``Console``."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("what was found", overflow="fold")
    table.add_column("how to fix it", overflow="fold")
    for check in report.checks:
        status = "[green]OK[/green]" if check.ok else "[bold red]FAIL[/bold red]"
        table.add_row(check.name, status, Text(check.found), Text(check.fix))  # Text: "[backends.x]" is no markup
    console.print(table)
    failed = sum(not c.ok for c in report.checks)
    console.print("All checks passed." if not failed else f"{failed} check(s) failed.")
