"""The ``leadbot`` command: ``run`` (the default) and ``console``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import ConfigError, Settings, load_settings

DRAIN_SECONDS = 20  # how long a stop waits for acked work (docker stop waits 10 s by default: raise it)

cli = typer.Typer(add_completion=False, no_args_is_help=False, help="Leadbot: lead handling from Slack.")


def _settings(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    typer.echo(f"leadbot: {message}", err=True)
    raise typer.Exit(2)


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
    logging.basicConfig(level=settings.leadbot_log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from slack_bolt.error import BoltError

    from bot.app import build_app, build_digest_scheduler, build_outbox_runner, build_runtime
    from bot.executor import TrackedExecutor
    from bot.journal import Journal
    from bot.workproc import WorkProcess

    socket_mode = settings.slack_app_token is not None
    journal = None
    if not socket_mode and settings.leadbot_journal != "off":
        journal = Journal(str(settings.leadbot_db), fsync=settings.leadbot_journal == "full")
    try:
        if settings.leadbot_work_process and not socket_mode:
            executor: TrackedExecutor | WorkProcess = WorkProcess(settings, threads=settings.leadbot_workers)
        else:
            executor = TrackedExecutor(settings.leadbot_workers, journal=journal)
        runtime = build_runtime(settings, background=executor)
        service = runtime.service
        app = build_app(runtime)
        outbox = build_outbox_runner(runtime)
        pruned = (runtime.store.writes.prune, journal.prune) if journal else (runtime.store.writes.prune,)
        digests = build_digest_scheduler(runtime, pruned=pruned)
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
    unfinished = journal.unfinished() if journal is not None else []
    if unfinished:
        log.info("running again %d acked request(s) an earlier run did not finish", len(unfinished))
        if isinstance(executor, WorkProcess):
            executor.recover(unfinished)
        else:
            executor.recover(unfinished, build_app(runtime, verify_requests=False))
    try:
        serve_http(app, runtime.store, executor, settings.port, journal=journal)
    except OSError as exc:
        _fail(f"PORT {settings.port} cannot be used ({exc.strerror})")
    finally:
        # SIGTERM or Ctrl-C: no new requests (uvicorn has stopped); finish what was acked, for a while.
        if not executor.drain(DRAIN_SECONDS):
            log.warning("work still running after %d s; the journal keeps it for the next start", DRAIN_SECONDS)
        outbox.stop()
        digests.stop()
        if journal is not None:
            journal.close()
    log.info("Leadbot stopped")


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
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    from bot.console import Console

    try:
        session = Console(settings, user_name=user, admin=admin, tz=tz)
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
