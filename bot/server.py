"""The HTTP face of Leadbot: ``POST /slack/events``, ``GET /healthz`` and ``GET /metrics``.

A request to ``/slack/events`` is read at most ``MAX_BODY`` bytes far (413
beyond, counted as it arrives, with or without a Content-Length), its signature
is checked on those bytes before anything parses them (401, logged without the
body), and only then is it decoded (400 unless UTF-8), parsed (400 unless it
reads as Slack's form or JSON) and dispatched. Nothing here logs a body.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import BoltRequest
from slack_bolt.adapter.starlette.handler import to_starlette_response
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import LeadbotApp
from bot.executor import HeldWork
from bot.journal import Journal
from bot.telemetry import Telemetry
from services.ports import Store, StoreUnavailable
from services.trace import note, tracing

OUTCOMES = {200: "acked", 400: "malformed", 401: "unsigned", 404: "unhandled", 413: "too large", 503: "unavailable"}

SLOW_ACK = 1.0  # seconds: an ack this slow is logged whatever it was

log = logging.getLogger("leadbot")
BOLT_LOG = logging.getLogger("leadbot.bolt")

# Slack's payloads are small: a slash command is under 1 KB, a button press carries its message
# (Leadbot's cards are a few KB), a modal submission Leadbot's own form (well under 100 KB). The
# biggest is a message shortcut on a long message: at Slack's 40,000 characters, with its rich-text
# blocks, URL-encoded, 80 KB of ASCII or 0.5 MB of accented letters (README.md, "Running").
MAX_BODY = 1 << 20


class TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, or ``TooLarge`` as soon as it is known to pass ``limit`` (declared, or counted while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise TooLarge
        return await request.body()  # the server reads no more than the declared length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def ssl_check(body: bytes) -> bool:
    """Slack's certificate check (``ssl_check=1&token=…``), which does nothing and is answered 200."""
    return (
        len(body) < 512 and b"ssl_check=1" in body and dict(parse_qsl(body.decode("latin-1"))).get("ssl_check") == "1"
    )


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def asgi_app(
    app: LeadbotApp,
    store: Store,
    executor: HeldWork,
    journal: Journal | None = None,
    *,
    telemetry: Telemetry | None = None,
    backends: Sequence[str] = (),
) -> Starlette:
    """``executor`` must be the one the app's listeners hand their work to.

    With a ``journal``, a request whose listener handed work off is written to it
    (durably) before its ack is sent, so the work survives the process (bot/journal.py).
    """

    telemetry = telemetry or Telemetry()

    async def events(request: Request) -> Response:
        started = time.perf_counter()
        with tracing(request=os.urandom(4).hex()) as trace:  # 8 hex digits, as uuid4's first 8, without the UUID
            response = await answer(request)
            kind = trace.get("kind", "unknown")
            outcome = OUTCOMES.get(response.status_code, str(response.status_code))
            seconds = time.perf_counter() - started
            telemetry.request(kind, outcome, seconds)
            ms = round(seconds * 1000, 1)
            # A request answered whole in its ack (help, a usage mistake) is a DEBUG line: at thousands a
            # second the INFO line was 15 % of the ack path. Work handed off (its journal entry ties it
            # to the "work done" line), anything not acked and any slow ack are INFO.
            quiet = response.status_code == 200 and trace.get("entry") is None and seconds < SLOW_ACK
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s in %.1f ms",
                kind,
                outcome,
                ms,
                extra={"status": response.status_code, "latency_ms": ms},
            )
        return response

    async def answer(request: Request) -> Response:
        try:
            body = await read_body(request)
        except TooLarge:
            # Closing the connection: what is left of the body is never read.
            return _error(413, f"request bodies are limited to {MAX_BODY} bytes", connection="close")
        except ClientDisconnect:
            return _error(400, "the client went away")
        headers = request.headers
        if ssl_check(body):
            return Response(status_code=200)  # Slack checking the certificate; Bolt answers these unsigned too
        if not app.signed(body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")):
            return _error(401, "invalid request")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "the body is not UTF-8")
        try:
            # A logger in the context from the start: Bolt logs while it builds the request (two response_urls).
            context = {"logger": BOLT_LOG}
            bolt_request = BoltRequest(body=text, query=request.query_params, headers=headers, context=context)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
            # Bolt's parser: JSON that does not parse (or nests too deep), or a shape it cannot index.
            return _error(400, "the body is neither Slack's form nor its JSON")
        with executor.holding() as held:
            try:
                response = to_starlette_response(app.dispatch_signed(bolt_request))
            except Exception:
                # Bolt answers a listener's failure itself; this is Bolt failing on a shape the envelope
                # check (handlers/payloads.py) did not foresee. The traceback is for us, not for Slack.
                # (Work a listener took in before that is still released below, so none is leaked.)
                ref = uuid.uuid4().hex[:8]
                log.exception("a request Bolt could not handle (ref %s)", ref)
                response = _error(400, f"the request could not be read (ref {ref})")
        if held:
            entry = None
            if journal is not None:
                try:
                    entry = await journal.accept(body, headers)
                    note(entry=entry)
                except StoreUnavailable:
                    executor.discard(held)
                    # Not acked: Slack tells the user it failed (a command) or sends it again (an event).
                    return JSONResponse({"ok": False, "error": "Leadbot cannot save work right now"}, 503)

            async def start_work() -> None:
                executor.release(held, body, headers, entry)

            response.background = BackgroundTask(start_work)
        return response

    async def healthz(request: Request) -> Response:
        # Only the store makes this replica unhealthy: a backend that is down is down for every replica,
        # and its writes wait in the outbox; it is reported so an operator sees it.
        called = telemetry.backend_health()
        now = time.time()
        report = {
            name: {"last_call": called[name][0], "seconds_ago": round(now - called[name][1])}
            if name in called
            else {"last_call": None}
            for name in backends
        }
        try:
            store.ping()
        except StoreUnavailable:
            return JSONResponse({"ok": False, "store": "unavailable", "backends": report}, status_code=503)
        return JSONResponse({"ok": True, "store": "ok", "backends": report})

    def live() -> list[tuple[str, str, float]]:
        gauges: list[tuple[str, str, float]] = []
        try:
            waiting = store.outbox.pending()
        except StoreUnavailable:
            return gauges
        oldest = min((write.created_at for write in waiting), default=None)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        gauges += [
            ("leadbot_outbox_depth", "Queued writes not landed nor given up", float(len(waiting))),
            ("leadbot_outbox_oldest_age_seconds", "Age of the oldest queued write", max(age, 0.0)),
        ]
        if journal is not None:
            gauges.append(("leadbot_journal_depth", "Acked requests whose work is not done", float(journal.depth())))
        return gauges

    async def metrics(request: Request) -> Response:
        text, content_type = telemetry.exposition(live)
        return Response(text, media_type=content_type)

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def serve_http(
    app: LeadbotApp,
    store: Store,
    executor: HeldWork,
    port: int,
    host: str = "127.0.0.1",
    journal: Journal | None = None,
    **options: Any,
) -> None:
    """Serve with uvicorn on a socket bound before we say we are listening.

    Connections that arrive before uvicorn's loop runs wait in the listen backlog,
    so "listening" in the log is true the moment it is written.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config(
        asgi_app(app, store, executor, journal, **options),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)

    # uvicorn stops on SIGTERM/SIGINT and then raises the signal again, which would kill the
    # process before the acked work is finished; these handlers take that second one quietly,
    # so the caller drains and exits 0 (a signal during the drain is ignored too: it is bounded).
    # Set before "listening" is said: a stop asked before uvicorn takes the signals over stops it too.
    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    logging.getLogger("leadbot").info("Leadbot listening on %s:%s", *sock.getsockname()[:2])
    server.run(sockets=[sock])
