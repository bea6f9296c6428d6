"""Posting many messages within Slack's limits: evenly paced, and paused as long as a 429 asks.

A 429 (``ratelimited``) means Slack did not take the message, so it is sent
again after ``Retry-After``; nothing is dropped. The pace then drops to just
under what got through in the last second, so a pace set too high costs one
pause, not one per second. Other failures are the caller's to judge (a
timeout may have been delivered).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from services.backends.common import retry_after_seconds

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
        self.rate_limited = 0
        self._recent: deque[float] = deque()  # when each of the last second's messages went out
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
                answer = self.client.chat_postMessage(**message)
            except SlackApiError as exc:
                if exc.response.status_code != 429 and exc.response.get("error") != "ratelimited":
                    raise
                headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
                value = headers.get("retry-after")
                found = retry_after_seconds(value[0] if isinstance(value, list) and value else value)
                retry_after = 1.0 if found is None else found
                self.rate_limited += 1
                log.info("chat.postMessage rate-limited; pausing %.1fs", retry_after)
                with self._lock:
                    now = self.clock()
                    got_through = sum(1 for t in self._recent if now - t < 1.0)
                    if got_through:
                        self.interval = max(self.interval, 1.0 / (got_through * 0.95))
                    self.next_at = max(self.next_at, now + retry_after)
                continue
            with self._lock:
                now = self.clock()
                self._recent.append(now)
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
            return answer
