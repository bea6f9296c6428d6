"""Every message Leadbot posts: evenly paced, 429s waited out, server errors tried again, never twice.

A 429 (``ratelimited``) means Slack did not take the message, so it is sent
again after ``Retry-After``; nothing is dropped. The pace then drops to just
under what got through in the last second, so a pace set too high costs one
pause, not one per second.

A 5xx or a timeout may hide a message Slack did post. Every message carries a
marker in its metadata (``leadbot_post``); before sending one again, after the
pause between tries, the poster looks for it in the channel (or the thread) and
stops if it is there. If it cannot look, it does not resend: a message missing
is logged by the caller, a message twice would be seen by everyone. Views (App Home) and in-place card
updates replace what is there, so they are simply sent again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.slots import waiting
from services.backends.common import retry_after_seconds

log = logging.getLogger("leadbot.pacing")

MARKER_EVENT = "leadbot_post"  # message metadata: which post this is, to find it after a lost answer
MARKER_KEY = "leadbot_post_id"


class PacedPoster:
    def __init__(
        self,
        client: WebClient,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        tries: int = 3,
        backoff: float = 1.0,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.tries = tries  # for a 5xx or a timeout; a 429 is waited out however often it comes
        self.backoff = backoff
        self.pause = pause  # the wait before trying a failed call again (the pace has its own ``sleep``)
        self.interval = 1.0 / per_second
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0
        self.held_until = 0.0  # after a 429, no post before this
        self.rate_limited = 0
        self._recent: deque[float] = deque()  # when each of the last second's messages went out
        self._lock = threading.Lock()

    def _slot(self, paced: bool = True) -> None:
        """Wait for this post's turn: a paced post's place in the even pace, any post past a 429's pause."""
        with self._lock:
            now = self.clock()
            if paced:
                start = max(now, self.next_at)
                self.next_at = start + self.interval
            else:
                start = max(now, self.held_until)
        if start > now:
            with waiting():
                self.sleep(start - now)

    def post(
        self, *, once: str | None = None, maybe_posted: bool = False, paced: bool = True, **message: Any
    ) -> Mapping[str, Any]:
        """``chat.postMessage``, delivered once; its answer (``channel``, ``ts``).

        ``paced``: in the even pace (digests, the morning's burst of DMs); a post answering
        what someone just did goes out at once, each to its own channel, and waits only
        while Slack has asked Leadbot to (a 429).

        ``once`` names the post for good (else each call is a post of its own);
        ``maybe_posted``: an earlier run (a process that died) may have posted it, so the
        channel's last hour is looked through for it first.
        """
        marker = once or uuid.uuid4().hex
        metadata = dict(message.get("metadata") or {"event_type": MARKER_EVENT, "event_payload": {}})
        metadata["event_payload"] = {**(metadata.get("event_payload") or {}), MARKER_KEY: marker}
        message = {**message, "metadata": metadata}
        if once and maybe_posted:
            try:
                found = self._posted(message, marker, time.time() - 3600, None)
            except Exception:  # nothing to look in: posting twice beats never posting
                found = None
            if found is not None:
                return found
        since = time.time() - 1  # Slack's clock, near enough: the lookup's window starts before the first try
        tries = 0
        while True:
            self._slot(paced)
            tries += 1
            try:
                answer = self.client.chat_postMessage(**message)
            except SlackApiError as exc:
                if _rate_limited(exc):
                    self._paused(exc)
                    continue
                if exc.response.status_code < 500 or tries >= self.tries:
                    raise
                error: BaseException = exc
            except Exception as exc:  # a timeout or a broken connection: it may have been posted
                if tries >= self.tries:
                    raise
                error = exc
            else:
                self._sent()
                return answer
            # Looked for after the pause, not before: a post whose answer timed out can still be on its
            # way in, and land after a look made at once (then it was sent twice).
            log.info("chat.postMessage failed (%s); trying again unless it was posted", _why(error))
            with waiting():
                self.pause(self.backoff * 2 ** (tries - 1))
            found = self._posted(message, marker, since, error)
            if found is not None:
                return found

    def call(self, method: str, *, paced: bool = True, **arguments: Any) -> SlackResponse:
        """A Web API call that replaces what is there (``views.publish``, ``chat.update``): sent until it lands."""
        tries = 0
        while True:
            self._slot(paced)
            tries += 1
            try:
                return getattr(self.client, method.replace(".", "_"))(**arguments)
            except SlackApiError as exc:
                if _rate_limited(exc):
                    self._paused(exc)
                    continue
                if exc.response.status_code < 500 or tries >= self.tries:
                    raise
                error: BaseException = exc
            except Exception as exc:
                if tries >= self.tries:
                    raise
                error = exc
            log.info("%s failed (%s); trying again", method, _why(error))
            with waiting():
                self.pause(self.backoff * 2 ** (tries - 1))

    def _paused(self, exc: SlackApiError) -> None:
        headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
        value = headers.get("retry-after")
        found = retry_after_seconds(value[0] if isinstance(value, list) and value else value)
        retry_after = 1.0 if found is None else found
        self.rate_limited += 1
        log.info("Slack rate-limited Leadbot; pausing %.1fs", retry_after)
        with self._lock:
            now = self.clock()
            got_through = sum(1 for t in self._recent if now - t < 1.0)
            if got_through:
                self.interval = max(self.interval, 1.0 / (got_through * 0.95))
            self.next_at = max(self.next_at, now + retry_after)
            self.held_until = max(self.held_until, now + retry_after)

    def _sent(self) -> None:
        with self._lock:
            now = self.clock()
            self._recent.append(now)
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()

    def _posted(
        self, message: dict[str, Any], marker: str, since: float, error: BaseException | None
    ) -> dict[str, Any] | None:
        """The message, if Slack posted it after all; raises ``error`` (or the lookup's) when that cannot be known."""
        channel = str(message.get("channel", ""))
        try:
            if channel.startswith(("U", "W")):  # a DM by user ID: its channel is found first
                channel = self.client.conversations_open(users=channel)["channel"]["id"]
            window = {"channel": channel, "oldest": f"{since:.6f}", "include_all_metadata": True, "limit": 100}
            if message.get("thread_ts"):
                found = self.client.conversations_replies(ts=message["thread_ts"], **window)
            else:
                found = self.client.conversations_history(**window)
        except Exception:
            if error is None:
                raise
            log.warning("could not look for a message that may have been posted; not sending it again")
            raise error from None
        for posted in found.get("messages") or []:
            payload = (posted.get("metadata") or {}).get("event_payload") or {}
            if payload.get(MARKER_KEY) == marker:
                self._sent()
                log.info("a message whose answer was lost had been posted; not sending it again")
                return {"ok": True, "channel": channel, "ts": posted.get("ts"), "message": posted}
        return None


def _rate_limited(exc: SlackApiError) -> bool:
    return exc.response.status_code == 429 or exc.response.get("error") == "ratelimited"


def _why(error: BaseException) -> str:
    if isinstance(error, SlackApiError):
        return f"HTTP {error.response.status_code} {error.response.get('error')}"
    return type(error).__name__
