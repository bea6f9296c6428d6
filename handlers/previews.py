"""Reference previews: a message naming a lead (``capillary:19``) gets a compact card in its thread.

Only in channels where an admin turned previews on (``/lead previews on``).
Everyone in the channel sees a preview, so it shows name, status, owner and
next follow-up (the list row), never contact details.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App

from handlers.cards import row_blocks
from handlers.context import Deps, MessageAt, Silent
from handlers.payloads import slack_id, slack_ts, text_of
from handlers.render import escape
from handlers.slackio import post_message
from services.errors import LeadError

log = logging.getLogger("leadbot")

EVENTS = ("message.channels", "message.groups")  # public and private channels Leadbot is in
SCOPES = ("channels:history", "groups:history")  # what those two subscriptions need
# Message subtypes that are someone saying something (edits, joins and bots' posts are not).
SAID = frozenset({None, "thread_broadcast", "file_share"})


def post_previews(deps: Deps, channel: str, at: MessageAt, refs: list[str], message_ts: str | None = None) -> None:
    """Previews of ``refs`` in the thread ``at``; claimed per message (``message_ts``, default ``at.ts``),
    so that each message in a thread gets its own, and a Slack retry of one gets none."""
    claim = f"preview:{channel}:{message_ts or at.ts}"
    if not deps.prefs.channel(channel).previews or not deps.claims.claim(claim):
        return  # previews are off here, or this message (a Slack retry) was previewed already
    for ref in refs:
        try:
            lead = deps.service.get(ref)
        except LeadError as exc:
            log.info("no preview of %s in %s: %s", ref, channel, exc.message)
            continue
        row = row_blocks(deps.service, deps.people, lead)
        post_message(deps, at, f"{escape(lead.name)} ({lead.ref})", [row], what="preview")


def register(app: App, deps: Deps) -> None:
    @app.event("message")
    def said(ack: Ack, event: dict[str, Any]) -> None:
        ack()
        subtype, text = event.get("subtype"), text_of(event.get("text"))
        said_something = subtype is None or (isinstance(subtype, str) and subtype in SAID)
        if not said_something or event.get("bot_id") or not text:
            return
        # Most messages name no lead: find that out here, before any work is queued.
        refs = deps.service.backends.references_in(text)
        channel, ts = slack_id(event.get("channel")), slack_ts(event.get("ts"))
        thread = slack_ts(event.get("thread_ts")) or ts
        if not refs or not channel or not ts or not thread:
            return
        at = MessageAt(channel, thread)  # in the message's thread, or starting one on it
        deps.after_ack(Silent(), lambda: post_previews(deps, channel, at, refs, message_ts=ts))
