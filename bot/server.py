"""The HTTP face of Leadbot: ``POST /slack/events`` and ``GET /healthz``."""

from __future__ import annotations

import logging
import signal
import socket

from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.executor import HeldWork
from bot.journal import Journal
from services.ports import Store, StoreUnavailable


def asgi_app(app: App, store: Store, executor: HeldWork, journal: Journal | None = None) -> Starlette:
    """``executor`` must be the one the app's listeners hand their work to.

    With a ``journal``, a request whose listener handed work off is written to it
    (durably) before its ack is sent, so the work survives the process (bot/journal.py).
    """
    handler = SlackRequestHandler(app)

    async def events(request: Request) -> Response:
        with executor.holding() as held:
            response = await handler.handle(request)
        if held:
            body = await request.body()  # already read by the handler; Starlette keeps it
            entry = None
            if journal is not None:
                try:
                    entry = await journal.accept(body, request.headers)
                except StoreUnavailable:
                    executor.discard(held)
                    # Not acked: Slack tells the user it failed (a command) or sends it again (an event).
                    return JSONResponse({"ok": False, "error": "Leadbot cannot save work right now"}, 503)

            async def start_work() -> None:
                executor.release(held, body, request.headers, entry)

            response.background = BackgroundTask(start_work)
        return response

    async def healthz(request: Request) -> Response:
        try:
            store.ping()
        except StoreUnavailable:
            return JSONResponse({"ok": False, "store": "unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def serve_http(
    app: App, store: Store, executor: HeldWork, port: int, host: str = "0.0.0.0", journal: Journal | None = None
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
    logging.getLogger("leadbot").info("Leadbot listening on %s:%s", host, sock.getsockname()[1])
    config = uvicorn.Config(
        asgi_app(app, store, executor, journal), log_level="warning", access_log=False, lifespan="off"
    )
    # uvicorn stops on SIGTERM/SIGINT and then raises the signal again, which would kill the
    # process before the acked work is finished; these handlers take that second one quietly,
    # so the caller drains and exits 0 (a signal during the drain is ignored too: it is bounded).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda signum, frame: None)
    uvicorn.Server(config).run(sockets=[sock])
