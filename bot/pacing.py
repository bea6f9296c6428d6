"""Posting many messages within Slack's limits: evenly paced, and paused as long as a 429 asks.

A 429 (``ratelimited``) means Slack did not take the message, so it is sent
again after ``Retry-After``; nothing is dropped. Other failures are the
caller's to judge (a timeout may have been delivered).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

log = logging.getLogger("leadbot.pacing")


class PacedPoster:
    def __init__(
        self,
        client: WebClient,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.interval = 1.0 / per_second
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0
        self.waited_for_429 = 0.0
        self.rate_limited = 0
        self._lock = threading.Lock()

    def _slot(self) -> None:
        with self._lock:
            now = self.clock()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            self.sleep(start - now)

    def post(self, **message: Any) -> SlackResponse:
        while True:
            self._slot()
            try:
                return self.client.chat_postMessage(**message)
            except SlackApiError as exc:
                if exc.response.status_code != 429 and exc.response.get("error") != "ratelimited":
                    raise
                headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
                retry_after = _seconds(headers.get("retry-after"))
                self.rate_limited += 1
                self.waited_for_429 += retry_after
                log.info("chat.postMessage rate-limited; pausing %.1fs", retry_after)
                with self._lock:
                    self.next_at = max(self.next_at, self.clock() + retry_after)


def _seconds(value: Any) -> float:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0
