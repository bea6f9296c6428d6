"""The floor: a bare Bolt app that only acks `/lead`, served exactly as Leadbot is.

Sync App, ``process_before_response=True``, Bolt's Starlette adapter, uvicorn
(with uvloop/httptools when installed) — the fastest way Bolt allows on this
server (see ../shared/FLOOR.md).
"""

from __future__ import annotations

import os

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

app = App(
    client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    process_before_response=True,
)


@app.command("/lead")
def ack_only(ack):
    ack()


handler = SlackRequestHandler(app)


async def events(request: Request):
    return await handler.handle(request)


if __name__ == "__main__":
    asgi = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    uvicorn.run(asgi, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)
