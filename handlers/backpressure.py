"""Saturated, Leadbot turns every kind of request away in the ack, the way Slack shows it.

Work after the ack is queued up to a bound (``Background.saturated``); beyond it,
queueing more would only grow memory and the wait of everyone behind. A slash
command says "busy" in its ack (``handlers.command``, which still answers what needs
no work, like ``help``); here, before any listener runs, everything else is refused:

- a modal submission: an error under its first field (the modal stays open, nothing lost);
- a button press or a message shortcut: acked, and an ephemeral "busy" is posted to its
  response URL by ``Deps.busy_notice`` (one small sender, not the work queue);
- an event (the App Home opened, a message to preview): acked and dropped, logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse

from handlers.context import BUSY, Deps
from handlers.payloads import http_url, mapping_of

log = logging.getLogger("leadbot")
JSON = {"content-type": "application/json"}


def refuse_when_busy(deps: Deps) -> Callable[[Any], BoltResponse | None]:
    """The refusal for a request while the work queue is full, or None to dispatch it.

    Run before Bolt's dispatch (``LeadbotApp.before_dispatch``), not as a Bolt middleware:
    Bolt builds a middleware's arguments afresh for every request, 5 % of the ack path.
    """

    def refusal(body: Any) -> BoltResponse | None:
        if not isinstance(body, dict) or "command" in body or not deps.background.saturated():
            return None
        kind = str(body.get("type"))
        if kind == "view_submission":
            field = _first_input(mapping_of(body.get("view")))
            if field is not None:
                errors = {field: BUSY[:150]}
                return BoltResponse(
                    status=200, body=json.dumps({"response_action": "errors", "errors": errors}), headers=JSON
                )
        elif kind in ("block_actions", "message_action", "shortcut"):
            url = http_url(body.get("response_url"))
            if url is not None:
                deps.busy_notice(url)
        log.info("busy: turned a %s away", kind if kind != "event_callback" else "Slack event")
        return BoltResponse(status=200, body="")

    return refusal


def _first_input(view: dict[str, Any]) -> str | None:
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and isinstance(block.get("block_id"), str):
            return block["block_id"]
    return None
