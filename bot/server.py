"""The HTTP face of Leadbot: ``POST /slack/events`` and ``GET /healthz``."""

from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.store import Store


def asgi_app(app: App, store: Store) -> Starlette:
    handler = SlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        try:
            store.db.execute("select 1").fetchone()
        except Exception:
            return JSONResponse({"ok": False, "store": "unavailable"}, status_code=503)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
