"""What every listener needs: the services, who is acting, and a safe way to reply after the ack."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from handlers.blocks import ask_owner_button, show_button, text_blocks
from handlers.cards import card_blocks
from handlers.claims import RequestClaims
from handlers.payloads import mapping_of, slack_id, slack_ts
from handlers.presses import RecentPresses
from handlers.render import error_mrkdwn, error_plain, queued_mrkdwn
from handlers.slackio import RetriedRespond
from handlers.timezones import Names, TimeZones
from services import trace
from services.audit import Actor
from services.errors import Duplicate, LeadError, OwnedElsewhere, Queued
from services.events import ORIGIN
from services.leads import LeadService
from services.models import Lead
from services.people import People
from services.ports import Preferences, StoreBusy
from services.progress import SAY
from services.reminders import Reminders

log = logging.getLogger("leadbot")


class Background(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None: ...

    def saturated(self) -> bool: ...


class Poster(Protocol):
    """Every message Leadbot posts goes through one of these (``bot.pacing.PacedPoster``)."""

    def post(
        self, *, once: str | None = None, maybe_posted: bool = False, paced: bool = True, **message: Any
    ) -> Mapping[str, Any]:
        """``chat.postMessage``: paced (or not), tried again on 429, 5xx and timeouts, never posted twice."""
        ...

    def call(self, method: str, *, paced: bool = True, **arguments: Any) -> Mapping[str, Any]:
        """A call that replaces what is there (``views.publish``): paced and tried again until it lands."""
        ...


BUSY = "Leadbot is busy right now and did not take this in; please try again in a moment"
STORE_BUSY = (
    "Leadbot's database was too busy to finish this, so it may not have been saved:"
    " look at the lead and try again in a moment"
)


@dataclass(frozen=True)
class MessageAt:
    """A message people can see (not an ephemeral one), so it can have a thread."""

    channel: str
    ts: str

    @classmethod
    def of_action(cls, body: dict[str, Any]) -> MessageAt | None:
        container = mapping_of(body.get("container"))
        if container.get("type") != "message" or container.get("is_ephemeral"):
            return None
        channel = slack_id(container.get("channel_id")) or slack_id(mapping_of(body.get("channel")).get("id"))
        ts = slack_ts(container.get("message_ts")) or slack_ts(mapping_of(body.get("message")).get("ts"))
        return cls(channel, ts) if channel and ts else None


@dataclass
class Deps:
    service: LeadService
    people: People
    reminders: Reminders
    prefs: Preferences
    claims: RequestClaims
    background: Background
    client: WebClient
    poster: Poster
    timezones: TimeZones
    names: Names
    pause: Callable[[float], None] = time.sleep  # before a reply that failed is sent again
    # Around every wait on Slack: the work slot is free for other requests meanwhile (bot/slots.py).
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext
    # Tells whoever pressed a button (by its response URL) that Leadbot is too busy to take it.
    busy_notice: Callable[[str], None] = lambda response_url: None
    presses: RecentPresses = field(default_factory=RecentPresses)
    admins: frozenset[str] = frozenset()
    phone_region: str | None = None
    date_order: str | None = None  # LEADBOT_DATE_ORDER; None: by each person's time zone
    feeds: dict[str, str] = field(default_factory=dict)  # backend -> lead feed channel
    # Channels whose cards show the customer's email and phone to everyone (LEADBOT_CONFIG contact_channels).
    contact_channels: frozenset[str] = frozenset()

    def actor(self, user_id: str) -> Actor:
        return Actor(slack_user=user_id, is_admin=user_id in self.admins)

    def responder(self, respond: Respond | Callable[..., Any]) -> RetriedRespond:
        """``respond`` with a short timeout, sent again only where that cannot show a reply twice."""
        if isinstance(respond, RetriedRespond):
            return respond
        return RetriedRespond(respond, self.pause, waiting=self.waiting)

    def card(
        self,
        lead: Lead,
        last_action: str | None = None,
        *,
        contacts: bool = False,
        opportunities_page: int = 1,
        viewer: str | None = None,
    ) -> list[dict[str, Any]]:
        """The lead's card; ``contacts``: with its email and phone (else a button that shows them to linked staff);
        ``viewer``: the one person it is shown to, when only one sees it (a DM)."""
        return card_blocks(
            self.service,
            self.people,
            lead,
            last_action,
            opportunities_page=opportunities_page,
            contacts=contacts,
            viewer=viewer,
        )

    def linked(self, slack_user: str | None, backend: str) -> bool:
        return slack_user is not None and self.people.staff_id(slack_user, backend) is not None

    def private_card(self, lead: Lead, last_action: str | None = None, *, user: str | None, **options: Any):
        """A card only ``user`` sees (ephemeral, their DM): contact details if they are linked on its backend."""
        return self.card(lead, last_action, contacts=self.linked(user, lead.backend), **options)

    def channel_card(self, lead: Lead, last_action: str | None = None, *, channel: str | None, **options: Any):
        """A card everyone in ``channel`` sees: contact details only where ``contact_channels`` says so."""
        return self.card(lead, last_action, contacts=channel in self.contact_channels, **options)

    def after_ack(
        self,
        respond: Respond | Callable[..., Any],
        work: Callable[[], Reply | None],
        *,
        card: bool = False,
        at: MessageAt | None = None,
        home: bool = False,
        from_message: bool = False,
    ) -> None:
        """Run ``work`` once the ack is on its way; its reply goes to ``respond``.

        This is what Bolt's lazy listeners do, without their deep copy of the whole
        request for every call, which costs more than the rest of the ack path
        (bench/README.md).
        ``card``, ``at``, ``home`` and ``from_message``: where the work was asked from
        (a card, in a visible message, on the App Home, a message made into a lead),
        for those told about the outcome, now or when a queued write lands.
        """
        origin = {
            "response_url": getattr(respond, "response_url", None),
            "card": card,
            "home": home,
            "from_message": from_message,
        }
        if at is not None:
            origin |= {"channel": at.channel, "ts": at.ts}

        retried = self.responder(respond)
        request = trace.current()  # the listener's thread's; the work runs in another

        def claimed_until_done() -> None:
            # Until the reply is out: work cut off before it is run again, and answers then.
            with self.claims.until_done(), trace.tracing(**request):
                run_safely(retried, work, origin)

        self.background.submit(claimed_until_done)


@dataclass
class Reply:
    text: str
    blocks: list[dict[str, Any]] | None = None
    in_channel: bool = False
    replace_original: bool = False

    def send(self, respond: Respond | Callable[..., Any]) -> None:
        respond(
            text=self.text,
            blocks=self.blocks if self.blocks is not None else text_blocks(self.text),
            response_type="in_channel" if self.in_channel else "ephemeral",
            replace_original=self.replace_original,
        )

    def ack(self, ack: Ack) -> None:
        """Answer in the ack body itself (slash commands only)."""
        blocks = self.blocks if self.blocks is not None else text_blocks(self.text)
        ack(text=self.text, blocks=blocks, response_type="in_channel" if self.in_channel else "ephemeral")


class Silent:
    """Where work that nobody asked for (an event) would reply: there is no one to tell, so it is logged."""

    def __call__(self, text: str | None = None, **_: Any) -> None:
        log.info("not shown to anyone: %s", text)


def error_reply(message: str, usage: str | None = None) -> Reply:
    """An error of the Slack side's own wording."""
    return Reply(text=error_plain(message, usage))


def lead_error_reply(exc: LeadError) -> Reply:
    reply = Reply(text=error_mrkdwn(exc))
    if isinstance(exc, Duplicate) and exc.existing_ref:
        reply.blocks = [*text_blocks(reply.text), show_button(exc.existing_ref, exc.again)]
    if isinstance(exc, OwnedElsewhere) and exc.owner and exc.ref:
        reply.blocks = [*text_blocks(reply.text), ask_owner_button(exc.ref)]
    return reply


def queued_reply(exc: Queued) -> Reply:
    return Reply(text=queued_mrkdwn(exc))


def _say(respond: Respond | Callable[..., Any], line: str) -> None:
    """A line while the work goes on: a new ephemeral message, never over the card the person acted on."""
    try:
        respond(text=line, response_type="ephemeral", replace_original=False)
    except Exception:
        log.warning("progress line not shown: %s", line)


def run_safely(respond: Respond | Callable[..., Any], work: Callable[[], Reply | None], origin: dict) -> None:
    """Run a listener's work after the ack; every outcome reaches the user.

    A ``LeadError`` is the user's to fix and is shown as it is. Anything else
    is logged with its traceback under a short reference the user can quote.
    """
    token = ORIGIN.set(origin)
    say = SAY.set(lambda line: _say(respond, line))
    started = time.monotonic()
    outcome = "ok"
    try:
        reply = work()
    except Queued as exc:
        reply, outcome = queued_reply(exc), "queued"
    except LeadError as exc:
        reply, outcome = lead_error_reply(exc), f"refused: {type(exc).__name__}"
    except StoreBusy:
        log.warning("a request was not done: the database stayed locked by another writer")
        reply, outcome = error_reply(STORE_BUSY), "refused: StoreBusy"
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error (ref %s)", ref)
        reply, outcome = (
            error_reply(f"something went wrong on our side (ref `{ref}`); an admin can look it up in the log"),
            "error",
        )
    finally:
        SAY.reset(say)
        ORIGIN.reset(token)
    if reply is not None:
        reply.send(respond)
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    log.info("work done: %s in %.1f ms", outcome, latency_ms, extra={"outcome": outcome, "latency_ms": latency_ms})
