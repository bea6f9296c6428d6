"""Messages Leadbot sends on its own: assignment DMs and lead feed cards.

Both are best effort after the action itself succeeded: a failure is logged,
never shown to the person who acted as if their action had failed.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from handlers.cards import card_blocks
from handlers.context import Deps
from services.models import Lead

log = logging.getLogger("leadbot")


def _post(deps: Deps, channel: str, text: str, blocks: list[dict], what: str) -> bool:
    try:
        deps.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
    except SlackApiError as exc:
        log.warning("%s to %s not sent: %s", what, channel, exc.response.get("error"))
        return False
    except Exception as exc:
        log.warning("%s to %s not sent: %s", what, channel, type(exc).__name__)
        return False
    return True


def tell_new_owner(deps: Deps, lead: Lead, by_user: str) -> None:
    """DM the lead's owner that ``by_user`` gave it to them, unless they did it themselves or said no."""
    if not lead.owner:
        return
    owner_user = deps.service.slack_user_for(lead.backend, lead.owner)
    if owner_user is None or owner_user == by_user or not deps.service.assignment_dms(owner_user):
        return
    said = f"<@{by_user}> assigned you {lead.name} ({lead.ref})"
    head = ContextBlock(
        elements=[MarkdownTextObject(text=f":inbox_tray: {said} · `/lead notify off` stops these messages")]
    )
    _post(deps, owner_user, said, [head.to_dict(), *card_blocks(deps.service, lead)], "assignment DM")


def post_to_feed(deps: Deps, lead: Lead, by_user: str) -> None:
    """Post a new lead's card to its backend's feed channel, once per lead whatever retries happen."""
    channel = deps.feeds.get(lead.backend)
    if channel is None or not deps.service.claim(f"feed:{lead.ref}"):
        return
    text = f"New lead {lead.name} ({lead.ref})"
    _post(deps, channel, text, card_blocks(deps.service, lead, last_action=f"Created by <@{by_user}>"), "lead feed")
