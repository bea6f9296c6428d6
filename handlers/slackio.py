"""Posting messages: every one goes through the process's one poster (paced, waiting out 429s).

A post that fails is logged with what was lost; it never turns an action
that succeeded into an error for the person who acted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from slack_bolt.context.respond import Respond
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

if TYPE_CHECKING:
    from handlers.context import Deps, MessageAt

log = logging.getLogger("leadbot")

# A response URL answers in well under a second; one that has not in 5 s is not going to, and the
# thread waiting on it is one some other request's reply may need (bot/slots.py).
RESPONSE_URL_TIMEOUT = 5.0

# Where the bot may not post a thread reply (a private channel it is not in, a DM between two
# people): the card itself still shows the last action, so the reply is only skipped.
CANNOT_POST_HERE = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "cannot_reply_to_message",
    }
)


def post_message(
    deps: Deps,
    where: str | MessageAt,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    *,
    what: str,
    once: str | None = None,
    maybe_posted: bool = False,
) -> bool:
    """Post ``text`` (and ``blocks``) to a channel or DM (a user ID), or in a message's thread.

    ``once``/``maybe_posted``: see ``Poster.post`` (a post an earlier, dead run may have made).
    """
    message: dict[str, Any] = {"text": text, "unfurl_links": False, "paced": False}
    if once is not None:
        message |= {"once": once, "maybe_posted": maybe_posted}
    if isinstance(where, str):
        message["channel"] = where
    else:
        message |= {"channel": where.channel, "thread_ts": where.ts}
    if blocks is not None:
        message["blocks"] = blocks
    try:
        deps.poster.post(**message)
    except SlackApiError as exc:
        error = exc.response.get("error")
        # In a thread of a channel the bot is not in, not posting is expected; a DM or a feed that fails is not.
        expected = error in CANNOT_POST_HERE and "thread_ts" in message
        level = logging.INFO if expected else logging.WARNING
        log.log(level, "%s to %s not sent (%s): %.200s", what, message["channel"], error, text)
        return False
    except Exception:
        log.exception("%s to %s not sent: %.200s", what, message["channel"], text)
        return False
    return True


class ResponseUrl:
    """Posts a reply to a response URL with a stated timeout, and never again by itself.

    Bolt's ``respond`` waits 30 s and slack_sdk's webhook client sends again after a
    connection error, which posted a reply twice when the connection was reset after
    Slack had shown it. Whether to send again is ``RetriedRespond``'s to decide.
    """

    def __init__(self, response_url: str, timeout: float | None = None) -> None:
        self.response_url = response_url
        self.webhook = WebhookClient(url=response_url, timeout=timeout or RESPONSE_URL_TIMEOUT, retry_handlers=[])

    def __call__(self, **reply: Any) -> Any:
        message = {k: v for k, v in reply.items() if v is not None}
        if not message.get("blocks"):
            message.pop("blocks", None)
        return self.webhook.send_dict(message)


class RetriedRespond:
    """A reply through a response URL, tried again where that cannot show it twice.

    A 429 or a refused connection means Slack did not take it: sent again. A 5xx
    or a timeout may hide a reply Slack showed, so only a reply that replaces the
    card it came from (``replace_original``) is sent again then; a new ephemeral
    reply is logged as lost instead of risking two. Every wait (on Slack, or
    before trying again) is inside ``waiting``: the work slot is free meanwhile.
    """

    def __init__(
        self,
        respond: Callable[..., Any],
        pause: Callable[[float], None],
        tries: int = 3,
        *,
        waiting: Callable[[], AbstractContextManager[Any]] = nullcontext,
        timeout: float | None = None,
    ) -> None:
        self.response_url = getattr(respond, "response_url", None)
        # Bolt's own ``Respond``: replaced by one with a timeout and no retry of its own.
        own = isinstance(respond, Respond) and self.response_url
        self.respond = ResponseUrl(self.response_url, timeout) if own else respond
        self.pause = pause
        self.tries = tries
        self.waiting = waiting

    def __call__(self, **reply: Any) -> Any:
        replaces = bool(reply.get("replace_original") or reply.get("delete_original"))
        kind = "a card redrawn" if replaces else f"a new {reply.get('response_type') or 'ephemeral'} message"
        for attempt in range(1, self.tries + 1):
            last = attempt == self.tries
            try:
                with self.waiting():
                    answer = self.respond(**reply)
            except Exception as exc:
                refused = isinstance(getattr(exc, "reason", exc), ConnectionRefusedError)
                if last or not (refused or replaces):
                    _lost(kind, type(exc).__name__, reply)
                    return None
                self._pause(0.5 * 2 ** (attempt - 1))
                continue
            status = getattr(answer, "status_code", 200)
            if status < 400:
                return answer
            if status == 429 and not last:
                self._pause(_retry_after(answer))
                continue
            if status >= 500 and replaces and not last:
                self._pause(0.5 * 2 ** (attempt - 1))
                continue
            _lost(kind, f"HTTP {status}", reply)
            return answer
        return None

    def _pause(self, seconds: float) -> None:
        with self.waiting():
            self.pause(seconds)


def _lost(kind: str, why: str, reply: dict[str, Any]) -> None:
    """What a reply that never reached Slack would have shown (not its URL: it can post as the bot)."""
    log.warning("reply not sent (%s; %s): %.200s", why, kind, reply.get("text"))


def _retry_after(answer: Any) -> float:
    """Slack's ``Retry-After`` (whole seconds), at most 30; 1 s when it is missing or odd."""
    headers = {str(k).lower(): v for k, v in (getattr(answer, "headers", None) or {}).items()}
    value = headers.get("retry-after")
    value = value[0] if isinstance(value, list) and value else value
    try:
        return min(max(float(value), 0.0), 30.0)
    except (TypeError, ValueError):
        return 1.0
