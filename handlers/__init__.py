"""Slack listeners: parse commands and payloads, call services, render Block Kit."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError

from handlers import actions, command, home, previews, shortcuts, unhandled, views
from handlers.context import Deps
from handlers.render import error_plain

log = logging.getLogger("leadbot")

EVENT_TYPES = (*home.EVENTS, *previews.EVENTS)
EVENT_SCOPES = previews.SCOPES


def register(app: App, deps: Deps) -> None:
    """Every listener (the notifier that tells people what happened is subscribed by the app factory)."""
    app.error(failed_before_the_ack)
    command.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)
    shortcuts.register(app, deps)
    previews.register(app, deps)
    unhandled.register(app, deps)  # last: what no listener above takes is still acked


def failed_before_the_ack(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """A listener failed before it acked (a bug): ack anyway, log it with its traceback.

    Slack shows an error for anything but a 2xx, and would retry events; the
    request was signed and well formed (``handlers.payloads``), so the fault is ours.
    A request no listener takes (actions and events have catch-alls in ``handlers.unhandled``;
    this is a modal, shortcut or command Leadbot does not have) is acked all the same, and
    logged by its kind only: Bolt's own warning quoted the payload.
    """
    if isinstance(error, BoltUnhandledRequestError):
        log.info("no listener for this request (type %s)", _kind(body))
        if isinstance(body, dict) and body.get("command"):
            text = error_plain("Leadbot does not have this command; its command is `/lead` (try `/lead help`)")
            return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": text}), headers=JSON)
        return BoltResponse(status=200, body="")
    ref = uuid.uuid4().hex[:8]
    log.error("a listener failed before acking (ref %s)", ref, exc_info=error)
    if isinstance(body, dict) and body.get("command"):
        text = error_plain(f"something went wrong on our side (ref `{ref}`); an admin can look it up in the log")
        return BoltResponse(
            status=200,
            body=json.dumps({"response_type": "ephemeral", "text": text}),
            headers=JSON,
        )
    return BoltResponse(status=200, body="")


JSON = {"content-type": "application/json"}


def _kind(body: Any) -> str:
    if not isinstance(body, dict):
        return "?"
    if "command" in body:
        return "command"
    kind = str(body.get("type"))[:40]
    event = body.get("event")
    return f"{kind}/{str(event.get('type'))[:40]}" if isinstance(event, dict) else kind
