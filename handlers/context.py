"""What every listener needs: the service, who is acting, and a safe way to reply."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import error_text, show_button, text_blocks
from services.errors import Duplicate, LeadError, Queued
from services.leads import Actor, LeadService
from services.outbox import ORIGIN

log = logging.getLogger("leadbot")


class UserDirectory:
    """Slack users' time zones from ``users.info``, cached for an hour."""

    def __init__(self, ttl_seconds: float = 3600) -> None:
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def tz(self, client: WebClient, user_id: str) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user_id)
        if cached and cached[1] > now:
            return cached[0]
        try:
            tz = client.users_info(user=user_id)["user"].get("tz") or "UTC"
        except (SlackApiError, KeyError, TypeError):
            log.warning("users.info failed for %s; reading dates in UTC", user_id)
            return "UTC"
        with self._lock:
            self._cache[user_id] = (tz, now + self.ttl)
        return tz


class Background(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None: ...

    def saturated(self) -> bool: ...


BUSY = "Leadbot is busy right now and did not take this in; please try again in a moment"


@dataclass
class Deps:
    service: LeadService
    background: Background
    client: WebClient
    admins: frozenset[str] = frozenset()
    phone_region: str | None = None
    users: UserDirectory = field(default_factory=UserDirectory)
    feeds: dict[str, str] = field(default_factory=dict)  # backend -> lead feed channel
    poster: Any = None  # bot.pacing.PacedPoster for digests; built from ``client`` when not given

    def __post_init__(self) -> None:
        if self.poster is None:
            from bot.pacing import PacedPoster

            self.poster = PacedPoster(self.client, per_second=10)

    def actor(self, user_id: str) -> Actor:
        return Actor(slack_user=user_id, is_admin=user_id in self.admins)

    def after_ack(self, respond: Respond, work: Callable[[], Reply | None], *, card: bool = False) -> None:
        """Run ``work`` once the ack is on its way; its reply goes to ``respond``.

        This is what Bolt's lazy listeners do, without their deep copy of the whole
        request for every call, which costs more than the rest of the ack path
        (bench/ack.py measured 0.29x the bare app's acks/s with lazy listeners).
        """

        def claimed_until_done() -> Reply | None:
            with self.service.claims_until_done():
                return work()

        self.background.submit(run_safely, respond, claimed_until_done, self.client, card)


@dataclass(frozen=True)
class MessageAt:
    """A message people can see (not an ephemeral one), so it can have a thread."""

    channel: str
    ts: str

    @classmethod
    def of_action(cls, body: dict[str, Any]) -> MessageAt | None:
        container = body.get("container") or {}
        if container.get("type") != "message" or container.get("is_ephemeral"):
            return None
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        return cls(channel, ts) if channel and ts else None


@dataclass
class Reply:
    text: str
    blocks: list[dict[str, Any]] | None = None
    in_channel: bool = False
    replace_original: bool = False
    # Who did what, said in the card's thread so the channel keeps a history of the lead.
    thread_at: MessageAt | None = None
    thread_text: str | None = None

    def send(self, respond: Respond, client: WebClient | None = None) -> None:
        respond(
            text=self.text,
            blocks=self.blocks if self.blocks is not None else text_blocks(self.text),
            response_type="in_channel" if self.in_channel else "ephemeral",
            replace_original=self.replace_original,
        )
        if client is not None and self.thread_at is not None and self.thread_text:
            post_in_thread(client, self.thread_at, self.thread_text)

    def ack(self, ack: Ack) -> None:
        """Answer in the ack body itself (slash commands only)."""
        blocks = self.blocks if self.blocks is not None else text_blocks(self.text)
        ack(text=self.text, blocks=blocks, response_type="in_channel" if self.in_channel else "ephemeral")


class Silent:
    """Where work that nobody asked for (an event) would reply: there is no one to tell, so it is logged."""

    def __call__(self, text: str | None = None, **_: Any) -> None:
        log.info("not shown to anyone: %s", text)


def error_reply(message: str, usage: str | None = None) -> Reply:
    return Reply(text=error_text(message, usage))


# Where the bot may not post (a private channel it is not in, a DM between two people):
# the card itself still shows the last action, so the thread reply is only skipped.
CANNOT_POST_HERE = {
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "restricted_action",
    "cannot_reply_to_message",
}


def post_in_thread(client: WebClient, at: MessageAt, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """Best effort: the action itself has succeeded and the card shows it either way."""
    try:
        client.chat_postMessage(channel=at.channel, thread_ts=at.ts, text=text, blocks=blocks, unfurl_links=False)
    except SlackApiError as exc:
        error = exc.response.get("error")
        level = logging.INFO if error in CANNOT_POST_HERE else logging.WARNING
        log.log(level, "no thread reply in %s: %s", at.channel, error)
    except Exception as exc:
        log.warning("no thread reply in %s: %s", at.channel, type(exc).__name__)


QUEUED_MARK = ":hourglass_flowing_sand:"


def run_safely(
    respond: Respond, work: Callable[[], Reply | None], client: WebClient | None = None, card: bool = False
) -> None:
    """Run a listener's work after the ack; every outcome reaches the user.

    A ``LeadError`` is the user's to fix and is shown as it is. Anything else
    is logged with its traceback under a short reference the user can quote.
    ``card``: the work acts on a card, which a queued write updates when it lands.
    """
    origin = ORIGIN.set({"response_url": getattr(respond, "response_url", None), "card": card})
    try:
        reply = work()
    except Queued as exc:
        reply = Reply(text=f"{QUEUED_MARK} {exc.message[:1].upper()}{exc.message[1:]}")
    except Duplicate as exc:
        reply = error_reply(exc.message, exc.usage)
        if exc.existing_ref:
            reply.blocks = [*text_blocks(reply.text), show_button(exc.existing_ref)]
    except LeadError as exc:
        reply = error_reply(exc.message, exc.usage)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error (ref %s)", ref)
        reply = error_reply(f"something went wrong on our side (ref `{ref}`); an admin can look it up in the log")
    finally:
        ORIGIN.reset(origin)
    if reply is not None:
        reply.send(respond, client)
