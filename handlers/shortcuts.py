"""The message shortcut "Create lead from message": the New lead modal, filled in from the message."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk.errors import SlackApiError

from handlers import blocks
from handlers.context import Deps, MessageAt
from handlers.parsing import plain
from handlers.payloads import mapping_of, slack_id, slack_ts, text_of
from handlers.views import open_new_lead_modal
from services.contact import find_contact

log = logging.getLogger("leadbot")


def permalink(deps: Deps, channel: str, ts: str) -> str | None:
    """The message's link; without it the lead is still made, only without the link note."""
    try:
        return deps.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except SlackApiError as exc:
        log.info("no permalink for a message in %s: %s", channel, exc.response.get("error"))
    except Exception:
        log.warning("no permalink for a message in %s", channel, exc_info=True)
    return None


def lead_from_message(deps: Deps, body: dict[str, Any]) -> None:
    if not deps.claims.claim(f"shortcut:{body.get('trigger_id')}"):
        return  # Slack's retry of this shortcut: its trigger_id opened the modal already (and opens no second)
    message = mapping_of(body.get("message"))
    channel = slack_id(mapping_of(body.get("channel")).get("id"))
    ts = slack_ts(message.get("ts")) or slack_ts(body.get("message_ts"))
    found = find_contact(plain(text_of(message.get("text")) or "", deps.names.of), deps.phone_region)
    initial = {"name": found.name or "", "email": found.email or "", "phone": found.phone or ""}
    at = MessageAt(channel, ts) if channel and ts else None
    open_new_lead_modal(
        deps,
        trigger_id=body["trigger_id"],
        channel=channel,
        response_url=body.get("response_url"),
        initial=initial,
        message=at,
        permalink=permalink(deps, channel, ts) if at else None,
    )


def add_to_lead(deps: Deps, body: dict[str, Any]) -> None:
    """Ask which lead the message goes on; the message's text and link travel in the form."""
    message = mapping_of(body.get("message"))
    channel = slack_id(mapping_of(body.get("channel")).get("id"))
    ts = slack_ts(message.get("ts")) or slack_ts(body.get("message_ts"))
    text = plain(text_of(message.get("text")) or "", deps.names.of)[:NOTE_TEXT]
    link = permalink(deps, channel, ts) if channel and ts else None
    metadata = {"text": text, "permalink": link, "response_url": body.get("response_url"), "channel": channel}
    view = blocks.add_to_lead_modal(text=text or "(no text)", private_metadata=json.dumps(metadata)[:3000])
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


NOTE_TEXT = 2000  # of the message, so the form's metadata (3,000 characters) holds it and its link


def register(app: App, deps: Deps) -> None:
    @app.shortcut(blocks.LEAD_FROM_MESSAGE)
    def from_message(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        deps.after_ack(respond, lambda: lead_from_message(deps, body))

    @app.shortcut(blocks.ADD_TO_LEAD)
    def to_lead(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        deps.after_ack(respond, lambda: add_to_lead(deps, body))
