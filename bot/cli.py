"""The ``leadbot`` command: ``run`` (the default) and ``console``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import ConfigError, Settings, load_settings
from services.ports import Store, StoreUnavailable

cli = typer.Typer(add_completion=False, no_args_is_help=False, help="Leadbot: lead handling from Slack.")


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

    try:
        return open_store(settings.leadbot_db, **options)
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
    logging.basicConfig(level=settings.leadbot_log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from slack_bolt.error import BoltError

    from bot.app import build_app, build_digest_scheduler, build_outbox_runner, build_runtime
    from bot.executor import TrackedExecutor
    from bot.workproc import WorkProcess

    socket_mode = settings.slack_app_token is not None
    try:
        if settings.leadbot_work_process and not socket_mode:
            executor: TrackedExecutor | WorkProcess = WorkProcess(settings, threads=settings.leadbot_workers)
        else:
            executor = TrackedExecutor(settings.leadbot_workers)
        runtime = build_runtime(settings, store=store, background=executor)
        service = runtime.service
        app = build_app(runtime)
        outbox = build_outbox_runner(runtime)
        digests = build_digest_scheduler(runtime)
    except ConfigError as exc:
        _fail(str(exc))
    except BoltError:
        _fail("Slack rejected SLACK_BOT_TOKEN (auth.test failed): check the token and SLACK_API_URL")
    log = logging.getLogger("leadbot")
    outbox.start()  # picks up writes a previous run left queued
    digests.start()  # sends today's digests that are due and not sent yet, then one each morning
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        log.info("Leadbot starting in Socket Mode (backends: %s)", ", ".join(b.name for b in service.backends))
        SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()
        return
    from bot.server import serve_http

    log.info("Leadbot starting over HTTP (backends: %s)", ", ".join(b.name for b in service.backends))
    if isinstance(executor, WorkProcess):
        executor.start()
    try:
        serve_http(app, runtime.store, executor, settings.port)
    except OSError as exc:
        _fail(f"PORT {settings.port} cannot be used ({exc.strerror})")
    finally:
        executor.shutdown()
        outbox.stop()
        digests.stop()


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
    try:
        code = session.run(iter(sys.stdin.readline, ""), interactive=interactive)
    finally:
        session.close()
    raise typer.Exit(code)


def main() -> None:
    cli()
