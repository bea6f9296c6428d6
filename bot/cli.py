"""The ``leadbot`` command: ``run`` (the default), ``console``, and for operators ``doctor``, ``outbox``, ``export``."""

from __future__ import annotations

import enum
import logging
import sys
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.config import ConfigError, Settings, load_settings
from services.ports import Store, StoreUnavailable

DRAIN_SECONDS = 20  # how long a stop waits for acked work (docker stop waits 10 s by default: raise it)

cli = typer.Typer(add_completion=False, no_args_is_help=False, help="Leadbot: lead handling from Slack.")
# A str, not a Path: a Path would make postgresql://host/db of postgresql://host/db.
DbOption = Annotated[
    str | None, typer.Option(help="SQLite file or postgresql:// URL (default: LEADBOT_DB or ./leadbot.db)")
]


def _settings(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"leadbot: {message}", err=True)
    raise typer.Exit(code)


def _open_store(settings: Settings, **options: bool) -> Store:
    """The store ``settings`` name; a file that cannot be opened stops the command with one line (exit 2)."""
    from bot.stores import open_store
    from bot.stores.sqlite import LOCK_WAIT

    try:
        return open_store(settings.leadbot_db, lock_wait=LOCK_WAIT, **options)
    except StoreUnavailable as exc:
        _fail(str(exc))


@cli.callback(invoke_without_command=True)
def main_callback(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        run()


@cli.command()
def run() -> None:
    """Start the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT."""
    settings = _settings()
    try:
        settings.require_slack()
    except ConfigError as exc:
        _fail(str(exc))
    store = _open_store(settings)  # before the rest is imported and built: a bad file is said at once
    from bot import logs, telemetry

    logs.configure(settings.leadbot_log_level, settings.leadbot_log_format, settings.secrets())
    # Before prometheus-client is imported: the work process counts into the same directory.
    metrics_dir = telemetry.use_multiprocess_dir()
    from slack_bolt.error import BoltError

    from bot.app import build_app, build_digest_scheduler, build_outbox_runner, build_runtime
    from bot.executor import TrackedExecutor
    from bot.journal import open_journal
    from bot.workproc import WorkProcess

    socket_mode = settings.slack_app_token is not None
    # auth.test failing is said once, below, as one line: not also by slack_sdk's own ERROR line.
    sdk_log = logging.getLogger("slack_sdk.web.base_client")
    sdk_level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)
    journal = None
    if settings.leadbot_journal != "off":
        journal = open_journal(str(settings.leadbot_db), fsync=settings.leadbot_journal == "full")
    try:
        if settings.leadbot_work_process:
            executor: TrackedExecutor | WorkProcess = WorkProcess(settings, threads=settings.leadbot_workers)
        else:
            executor = TrackedExecutor(settings.leadbot_workers, journal=journal)
        runtime = build_runtime(settings, store=store, background=executor)
        service = runtime.service
        app = build_app(runtime)
        outbox = build_outbox_runner(runtime)
        pruned = (runtime.store.writes.prune, journal.prune) if journal else (runtime.store.writes.prune,)
        digests = build_digest_scheduler(runtime, pruned=pruned)
    except ConfigError as exc:
        _fail(str(exc))
    except BoltError:
        _fail("Slack rejected SLACK_BOT_TOKEN (auth.test failed): check the token and SLACK_API_URL")
    except OSError as exc:  # auth.test never got an answer: a wrong SLACK_API_URL, no network, DNS
        reason = getattr(exc, "reason", None)
        why = getattr(reason, "strerror", None) or reason or exc.strerror or type(exc).__name__
        where = settings.slack_api_url or "https://slack.com/api/"
        _fail(f"Slack cannot be reached at {where} ({why}): check SLACK_API_URL and the network")
    finally:
        sdk_log.setLevel(sdk_level)  # also when start-up fails: a caller in this process logs as before
    log = logging.getLogger("leadbot")
    outbox.start()  # picks up writes a previous run left queued
    digests.start()  # sends today's digests that are due and not sent yet, then one each morning
    # The server's imports before the recovery below puts work on threads (they would compete for the GIL).
    if socket_mode:
        import bot.socketmode  # noqa: F401
    else:
        import bot.server  # noqa: F401
    mode = "in Socket Mode" if socket_mode else "over HTTP"
    log.info("Leadbot starting %s (backends: %s)", mode, ", ".join(b.name for b in service.backends))
    if isinstance(executor, WorkProcess):
        executor.start()

    def recover(entries: list) -> None:
        if isinstance(executor, WorkProcess):
            executor.recover(entries)
        else:
            executor.recover(entries, build_app(runtime, verify_requests=False))

    unfinished = journal.unfinished() if journal is not None else []
    if unfinished:
        log.info("running again %d acked request(s) an earlier run did not finish", len(unfinished))
        recover(unfinished)
    if hasattr(journal, "sweep"):
        journal.sweep(recover)  # several replicas on PostgreSQL: what a dead one acked is run by a live one
    try:
        if socket_mode:
            _serve_socket_mode(settings, app, executor, journal)
        else:
            _serve_http(settings, app, runtime, executor, journal)
    finally:
        # SIGTERM or Ctrl-C: no new requests (uvicorn has stopped, or every link is closed);
        # finish what was acked, for a while.
        if not executor.drain(DRAIN_SECONDS):
            log.warning("work still running after %d s; the journal keeps it for the next start", DRAIN_SECONDS)
        outbox.stop()
        digests.stop()
        if journal is not None:
            journal.close()
        telemetry.end_multiprocess_dir(metrics_dir)
    log.info("Leadbot stopped")


def _serve_http(settings: Settings, app: Any, runtime: Any, executor: Any, journal: Any) -> None:
    from bot.server import serve_http

    try:
        serve_http(
            app,
            runtime.store,
            executor,
            settings.port,
            host=settings.leadbot_host,
            journal=journal,
            telemetry=runtime.telemetry,
            backends=[backend.name for backend in runtime.service.backends if backend.name != "local"],
        )
    except OSError as exc:
        _fail(f"{settings.leadbot_host}:{settings.port} (LEADBOT_HOST, PORT) cannot be used ({exc.strerror})")


def _serve_socket_mode(settings: Settings, app: Any, executor: Any, journal: Any) -> None:
    """Socket Mode (bot/socketmode.py) until SIGTERM or SIGINT; a refused app token is one line, exit 2."""
    from slack_sdk import WebClient

    from bot.socketmode import AppTokenRefused, serve_socket_mode

    assert settings.slack_app_token is not None
    try:
        serve_socket_mode(
            app,
            executor,
            settings.slack_app_token.get_secret_value(),
            settings.slack_api_url or WebClient.BASE_URL,
            journal=journal,
        )
    except AppTokenRefused as exc:
        _fail(str(exc))


@cli.command()
def console(
    user: Annotated[str, typer.Option(help="Your Slack user name in the console")] = "you",
    tz: Annotated[str, typer.Option(help="Your time zone, e.g. Asia/Kolkata")] = "UTC",
    admin: Annotated[bool, typer.Option(help="Act as a Leadbot admin")] = True,
    db: Annotated[Path | None, typer.Option(help="SQLite file (default: LEADBOT_DB or ./leadbot.db)")] = None,
) -> None:
    """Drive the bot's real handlers from a terminal, with no Slack workspace."""
    overrides = {"leadbot_db": db} if db else {}
    settings = _settings(**overrides)
    store = _open_store(settings)  # before the console's imports: a bad file is said at once
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    from bot.console import Console

    try:
        session = Console(settings, user_name=user, admin=admin, tz=tz, store=store)
    except ConfigError as exc:
        _fail(str(exc))
    interactive = sys.stdin.isatty()
    history = Path.home() / ".leadbot_history"
    if interactive:
        _start_line_editing(history)
    try:
        code = session.run(iter(sys.stdin.readline, ""), interactive=interactive, typed=interactive)
    finally:
        session.close()
        if interactive:
            _keep_history(history)
    raise typer.Exit(code)


def _start_line_editing(history: Path) -> None:
    """Arrow keys edit the line and go through earlier lines, this session's and the last ones'."""
    try:
        import readline
    except ImportError:  # no readline on this Python (Windows): plain lines
        return
    with suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)


def _keep_history(history: Path) -> None:
    try:
        import readline
    except ImportError:
        return
    with suppress(OSError):
        readline.write_history_file(history)


# -- the operator's commands -------------------------------------------------------------------


def _table_console() -> Any:
    from rich.console import Console as RichConsole

    out = RichConsole(highlight=False)
    if not out.is_terminal:
        out.width = max(out.width, 160)  # a log or a pipe: long rows stay whole instead of wrapping at 80
    return out


@cli.command()
def doctor(db: DbOption = None) -> None:
    """Check the settings, the database, each backend and the Slack token; say how to fix what is wrong.

    Exit status 0 when every check passes, 1 when one fails, 2 when the database cannot be opened.
    """
    from bot.doctor import diagnose, render

    report = diagnose({"leadbot_db": db} if db else {})
    render(report, _table_console())
    if report.store_error:
        typer.echo(f"leadbot: {report.store_error}", err=True)
    raise typer.Exit(report.exit_code)


outbox_cli = typer.Typer(help="Writes queued for a backend: list them, retry them now, or drop one.")
cli.add_typer(outbox_cli, name="outbox")


def _existing_store(db: str | None) -> Store:
    """The database for an operator's command: never created here, so a mistyped path is said, not made."""
    return _open_store(_settings(**({"leadbot_db": db} if db else {})), create=False)


@outbox_cli.callback(invoke_without_command=True)
def outbox_list(ctx: typer.Context, db: DbOption = None) -> None:
    """List the queued writes, oldest first."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = db  # `leadbot outbox --db X retry 1` means X too
        return
    from rich.table import Table
    from rich.text import Text

    from bot.ops import outbox_rows
    from services.clock import utcnow

    store = _existing_store(db)
    try:
        rows = outbox_rows(store, utcnow())
    finally:
        store.close()
    out = _table_console()
    if not rows:
        out.print("No writes are queued.")
        return
    table = Table(title=f"{len(rows)} queued write(s)", title_justify="left")
    for column in rows[0]:
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "attempts"))
    for row in rows:
        table.add_row(*(Text(value) for value in row.values()))
    out.print(table)


@outbox_cli.command("retry")
def outbox_retry(
    ctx: typer.Context,
    write_id: Annotated[
        int | None, typer.Argument(metavar="ID", help="The write's id (leadbot outbox lists them)")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every queued write")] = False,
    db: DbOption = None,
) -> None:
    """Make a queued write (or --all) due now; a running leadbot tries it within seconds."""
    from bot.ops import NotWaiting, retry

    if (write_id is None) == (not all_):
        _fail("name one write (leadbot outbox retry ID) or --all, not both")
    store = _existing_store(db or ctx.obj)
    try:
        made_due = retry(store, write_id)
    except NotWaiting as exc:
        _fail(str(exc), 1)
    finally:
        store.close()
    typer.echo(
        f"{len(made_due)} write(s) due now: {', '.join(map(str, made_due)) or 'none was waiting'}."
        " A running leadbot tries them within seconds; one whose last try may have landed is looked for first."
    )


@outbox_cli.command("drop")
def outbox_drop(
    ctx: typer.Context,
    write_id: Annotated[int, typer.Argument(metavar="ID", help="The write's id (leadbot outbox lists them)")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    db: DbOption = None,
) -> None:
    """Give up a queued write for good (recorded in the audit trail as done by "cli")."""
    from bot.ops import NotWaiting, describe, drop

    store = _existing_store(db or ctx.obj)
    with ExitStack() as stack:
        stack.callback(store.close)
        write = store.outbox.get(write_id)
        if write is not None and write.state in ("pending", "running") and not yes:
            typer.confirm(f"Drop {describe(write)}? It will never be sent", abort=True)
        try:
            dropped = drop(store, write_id)
        except NotWaiting as exc:
            _fail(str(exc), 1)
    typer.echo(f"Dropped write {write_id}: {describe(dropped)}. Leadbot does not tell {dropped.slack_user}; tell them.")


class ExportFormat(enum.StrEnum):
    csv = "csv"
    json = "json"


@cli.command()
def export(
    format_: Annotated[ExportFormat, typer.Option("--format", help="csv or json")] = ExportFormat.csv,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout)")] = None,
    db: DbOption = None,
) -> None:
    """Write the local backend's leads, every field as stored, as CSV or JSON."""
    from bot.ops import local_leads, write_export

    store = _existing_store(db)
    try:
        with ExitStack() as stack:
            if output is None:
                out = sys.stdout
            else:
                try:
                    out = stack.enter_context(output.open("w", encoding="utf-8", newline=""))
                except OSError as exc:
                    _fail(f"cannot write {output} ({exc.strerror})")
            count = write_export(local_leads(store), out, format_.value)
    finally:
        store.close()
    if output is not None:
        typer.echo(f"{count} lead(s) written to {output}", err=True)


@cli.command("migrate-store")
def migrate_store(
    source: Annotated[Path, typer.Option("--from", help="the SQLite file to copy (Leadbot stopped)")],
    target: Annotated[str, typer.Option("--to", help="an empty PostgreSQL database: postgresql://user@host/db")],
) -> None:
    """Copy a SQLite store into an empty PostgreSQL database, every table, and check the counts."""
    from bot.stores.migrate import MigrationRefused, copy_store
    from bot.stores.postgres import described, is_postgres

    if not is_postgres(target):
        _fail("--to must be a postgresql:// URL (postgresql://user:password@host/db)")  # never echoed: a password
    if not source.exists():
        _fail(f"{source} does not exist: --from names the SQLite file LEADBOT_DB named")
    try:
        copied = copy_store(str(source), target, say=typer.echo)
    except (MigrationRefused, StoreUnavailable) as exc:
        _fail(f"{exc}")
    typer.echo(f"{sum(copied.values())} row(s) copied from {source} to {described(target)}; the counts match")
    typer.echo(f"Now set LEADBOT_DB={described(target)} (with its password) and start Leadbot.")


def main() -> None:
    cli()
