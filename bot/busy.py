"""The "busy" notices sent when Leadbot turns a button press or a shortcut away (handlers/backpressure.py).

They cannot go through the work queue (it is full: that is why they are sent), nor be
posted in the ack's thread (that would hold up the acks), so one thread of their own
posts them, from a bounded queue: past ``max_waiting`` a notice is dropped and counted.
"""

from __future__ import annotations

import logging
import queue
import threading

from handlers.context import BUSY
from handlers.render import error_plain
from handlers.slackio import ResponseUrl

log = logging.getLogger("leadbot")


class BusyNotices:
    def __init__(self, max_waiting: int = 100) -> None:
        self._waiting: queue.Queue[str] = queue.Queue(maxsize=max_waiting)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def __call__(self, response_url: str) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._send, name="leadbot-busy", daemon=True)
                self._thread.start()
        try:
            self._waiting.put_nowait(response_url)
        except queue.Full:
            self.dropped += 1

    def _send(self) -> None:
        text = error_plain(BUSY)
        while True:
            url = self._waiting.get()
            try:
                ResponseUrl(url)(text=text, response_type="ephemeral", replace_original=False)
            except Exception as exc:
                log.info("a busy notice was not sent (%s)", type(exc).__name__)
