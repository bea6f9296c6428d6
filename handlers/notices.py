"""Messages Leadbot sends on its own: assignment DMs and lead feed cards.

Both are best effort after the action itself succeeded: a failure is logged,
never shown to the person who acted as if their action had failed.
"""

from __future__ import annotations

import logging

from slack_bolt.context.respond import Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from handlers.blocks import text_blocks
from handlers.cards import card_blocks
from handlers.context import Deps
from services.models import Lead
from services.outbox import QueuedWrite

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


def report_queued_write(deps: Deps, item: QueuedWrite, lead: Lead | None, why: str | None) -> None:
    """Tell the person whose write was queued how it ended: a DM, and their card updated where possible."""
    backend = deps.service.backend(item.backend).title
    tries = f" after {item.attempts + 1} tries" if item.attempts else ""
    if lead is None:
        said = (
            f":x: Your queued {item.what}"
            + (f" on `{item.ref}`" if item.ref else "")
            + f" could not be saved in {backend}: {why}"
        )
        detail = _what_was_written(item)
        _post(deps, item.slack_user, said, text_blocks(said + (f"\n{detail}" if detail else "")), "queued-write report")
        return
    said = f":white_check_mark: Your queued {item.what} on `{lead.ref}` reached {backend}{tries}."
    card = card_blocks(deps.service, lead, last_action=f"<@{item.slack_user}>'s {item.what} reached {backend}{tries}")
    _post(deps, item.slack_user, said, [*text_blocks(said), *card], "queued-write report")
    response_url = item.origin.get("response_url")
    if item.origin.get("card") and response_url:
        try:  # the card it was asked from, redrawn; its response URL may have expired (30 minutes)
            Respond(response_url=response_url)(text=said, blocks=card, replace_original=True)
        except Exception as exc:
            log.info("card for %s not updated: %s", lead.ref, type(exc).__name__)
    if item.op == "create":
        tell_new_owner(deps, lead, item.slack_user)
        post_to_feed(deps, lead, item.slack_user)
    elif item.op == "assign":
        tell_new_owner(deps, lead, item.slack_user)


def _what_was_written(item: QueuedWrite) -> str:
    """So that nothing typed is lost: the text of the write that failed."""
    args = item.args
    text = (
        (args.get("note") or {}).get("text")
        or (args.get("follow_up") or {}).get("notes")
        or (args.get("lead") or {}).get("name")
    )
    return f"What you wrote: “{text[:2500]}”" if text else ""
