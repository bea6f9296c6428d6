"""The HTTP face of Leadbot: ``POST /slack/events`` and ``GET /healthz``."""

from __future__ import annotations

import logging
import socket

from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.executor import HeldWork
from services.ports import Store, StoreUnavailable


def asgi_app(app: App, store: Store, executor: HeldWork) -> Starlette:
    """``executor`` must be the one the app's listeners hand their work to."""
    handler = SlackRequestHandler(app)

    async def events(request: Request) -> Response:
        with executor.holding() as held:
            response = await handler.handle(request)
        if held:
            body = await request.body()  # already read by the handler; Starlette keeps it

            async def start_work() -> None:
                executor.release(held, body, request.headers)

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


def serve_http(app: App, store: Store, executor: HeldWork, port: int, host: str = "0.0.0.0") -> None:
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
    config = uvicorn.Config(asgi_app(app, store, executor), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
