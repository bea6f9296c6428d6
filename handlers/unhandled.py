"""Requests no other listener takes: acked all the same, never a 404.

An old card's button after an upgrade, an event the app is subscribed to and does not use:
Slack shows the person an error for anything but a 2xx, and sends an unacked event again.
Registered after every other listener, since Bolt gives a request to the first that matches.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers.context import Deps, error_reply
from handlers.home import HomeResponder, from_home
from handlers.payloads import mapping_of, slack_id, text_of

log = logging.getLogger("leadbot")

OUT_OF_DATE = "this card is out of date: press Refresh on it, or run `/lead show REF` for a new one"


def register(app: App, deps: Deps) -> None:
    @app.action(re.compile(".*"))
    def out_of_date(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        log.info("no listener for this request (type block_actions)")
        user = slack_id(mapping_of(body.get("user")).get("id"))
        if from_home(body) and user:
            deps.after_ack(HomeResponder(deps, user), lambda: error_reply(OUT_OF_DATE), home=True)
        elif text_of(body.get("response_url")):
            deps.after_ack(respond, lambda: error_reply(OUT_OF_DATE))

    @app.event(re.compile(".*"))
    def not_used(ack: Ack) -> None:
        ack()  # silently: an event is nobody's request, and unacked Slack sends it again
