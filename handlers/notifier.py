"""The Slack side of what happened to leads: one subscriber to the domain's events.

After every write that reached a backend (at once, or later from the
outbox) it tells the people concerned, best effort, never undoing the write:

- the card's thread gets who did what (when the write came from a card people can see);
- the new owner gets a DM with the card (unless they assigned it themselves or said no);
- a new lead's card goes to its backend's feed channel, once per lead;
- a lead made from a message is said in that message's thread;
- the App Home of everyone concerned is redrawn (for those who have opened it);
- the author of a queued write gets a DM when it lands or fails for good, and
  the card it was asked from is redrawn.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.respond import Respond

from handlers import said
from handlers.blocks import text_blocks
from handlers.context import Deps, MessageAt
from handlers.home import publish_home
from handlers.render import escape
from handlers.slackio import post_message
from services.events import LeadAssigned, LeadCreated, LeadEvent, WriteSettled
from services.outbox import what

log = logging.getLogger("leadbot")


class SlackNotifier:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def __call__(self, event: object) -> None:
        if isinstance(event, WriteSettled):
            self._settled(event)
        elif isinstance(event, LeadEvent):
            self._thread_log(event)
            if isinstance(event, LeadCreated | LeadAssigned):
                self._tell_owner(event)
            if isinstance(event, LeadAssigned):
                self._tell_previous_owner(event)
            if isinstance(event, LeadCreated):
                self._feed(event)
                self._from_message(event)
            self._homes(event)

    # -- who did what ---------------------------------------------------------------------

    def _thread_log(self, event: LeadEvent) -> None:
        origin = event.origin
        if not origin.get("card") or not origin.get("channel") or not origin.get("ts"):
            return
        text = said.describe(event, self.deps.people)
        post_message(self.deps, MessageAt(origin["channel"], origin["ts"]), text, what="thread reply")

    def _from_message(self, event: LeadCreated) -> None:
        origin = event.origin
        if not origin.get("from_message") or not origin.get("channel") or not origin.get("ts"):
            return
        lead = event.lead
        text = f"<@{event.by_user}> made a lead of this message: {escape(lead.name)} (`{escape(lead.ref)}`)"
        post_message(self.deps, MessageAt(origin["channel"], origin["ts"]), text, what="thread reply")

    # -- the owner, the feed, App Homes -----------------------------------------------------

    def _tell_owner(self, event: LeadEvent) -> None:
        lead, people = event.lead, self.deps.people
        if not lead.owner:
            return
        owner = people.slack_user_for(lead.backend, lead.owner)
        if owner is None or owner == event.by_user or not people.assignment_dms(owner):
            return
        text = f"<@{event.by_user}> assigned you {escape(lead.name)} ({escape(lead.ref)})"
        head = {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f":inbox_tray: {text} · `/lead notify off` stops these messages"}],
        }
        post_message(
            self.deps,
            owner,
            text,
            [head, *self.deps.private_card(lead, user=owner, viewer=owner)],
            what="assignment DM",
        )

    def _tell_previous_owner(self, event: LeadAssigned) -> None:
        """The lead left them: whoever took or gave it, they hear it (unless they did it themselves)."""
        lead, people = event.lead, self.deps.people
        if not event.previous_owner or event.previous_owner == lead.owner:
            return
        previous = people.slack_user_for(lead.backend, event.previous_owner)
        if previous is None or previous == event.by_user or not people.assignment_dms(previous):
            return
        now = people.slack_user_for(lead.backend, lead.owner) if lead.owner else None
        to = f"<@{now}>" if now else (f"`{escape(lead.owner)}`" if lead.owner else "nobody")
        verb = "took" if now == event.by_user else f"gave {to}"
        text = f"<@{event.by_user}> {verb} your lead {escape(lead.name)} ({escape(lead.ref)})"
        head = {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f":outbox_tray: {text} · `/lead notify off` stops these messages"}],
        }
        post_message(
            self.deps,
            previous,
            text,
            [head, *self.deps.private_card(lead, user=previous, viewer=previous)],
            what="assignment DM",
        )

    def _feed(self, event: LeadCreated) -> None:
        lead = event.lead
        channel = self.deps.feeds.get(lead.backend)
        if channel is None or not self.deps.claims.claim(f"feed:{lead.ref}"):
            return
        # Taken for good at once (not "until done"): when it is taken already, an earlier run of this
        # request got as far as posting before its process died, so its card is looked for first.
        maybe_posted = not self.deps.claims.ledger.claim(f"feed-posting:{lead.ref}")
        text = f"New lead {escape(lead.name)} ({escape(lead.ref)})"
        blocks = self.deps.channel_card(lead, said.created(event.by_user), channel=channel)
        post_message(
            self.deps, channel, text, blocks, what="lead feed", once=f"feed:{lead.ref}", maybe_posted=maybe_posted
        )

    def _homes(self, event: LeadEvent) -> None:
        people = self.deps.people
        concerned = {event.by_user}
        for staff in (event.lead.owner, getattr(event, "previous_owner", None)):
            user = people.slack_user_for(event.lead.backend, staff) if staff else None
            if user:
                concerned.add(user)
        if event.origin.get("home") and event.settled is None:
            concerned.discard(event.by_user)  # their tab is redrawn with the outcome anyway
        opened = self.deps.prefs.users(sorted(concerned))
        for user in sorted(concerned):
            if opened[user].home_opened:
                publish_home(self.deps, user)

    # -- queued writes that ended -----------------------------------------------------------

    def _settled(self, event: WriteSettled) -> None:
        item, lead = event.write, event.lead
        tries = f" after {item.attempts + 1} tries" if item.attempts else ""
        if lead is None:
            on = f" on `{escape(item.ref)}`" if item.ref else ""
            if event.uncertain:
                text = f":warning: Your queued {what(item.op)}{on} may or may not have reached"
                text += f" {escape(event.backend_title)}: "
            else:
                text = f":x: Your queued {what(item.op)}{on} could not be saved in {escape(event.backend_title)}: "
            text += escape(event.why or "it was refused")
            detail = _what_was_written(item.args)
            post_message(self.deps, item.slack_user, text, text_blocks(text + detail), what="queued-write report")
            return
        text = f":white_check_mark: Your queued {what(item.op)} on `{escape(lead.ref)}` reached"
        text += f" {escape(event.backend_title)}{tries}."
        line = f"<@{item.slack_user}>'s {what(item.op)} reached {escape(event.backend_title)}{tries}"
        dm = self.deps.private_card(lead, line, user=item.slack_user)
        post_message(self.deps, item.slack_user, text, [*text_blocks(text), *dm], what="queued-write report")
        card = self.deps.channel_card(lead, line, channel=item.origin.get("channel"))  # wherever it was, masked
        response_url = item.origin.get("response_url")
        if item.origin.get("card") and response_url:
            try:  # the card it was asked from; its response URL may have expired (30 minutes)
                self.deps.responder(Respond(response_url=response_url))(text=text, blocks=card, replace_original=True)
            except Exception:
                log.warning("card for %s not redrawn through its response URL", lead.ref, exc_info=True)


def _what_was_written(args: dict[str, Any]) -> str:
    """So that nothing typed is lost: the text of the write that failed."""
    text = (
        (args.get("note") or {}).get("text")
        or (args.get("follow_up") or {}).get("notes")
        or (args.get("lead") or {}).get("name")
    )
    return f"\nWhat you wrote: “{escape(text[:2500])}”" if text else ""
