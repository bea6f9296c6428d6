"""Repeated presses are idempotent in what the user sees: one modal per trigger, one redraw per burst.

People press a slow button again, and again: five presses of Add note called
``views.open`` five times (Slack refuses all but the first: "Something went wrong"),
five of Refresh redrew the card five times. A press of a button that only shows
something (a modal, a redraw) is acted on when it is the first of its burst: the
same person, button, value and message (or view) within ``BURST_SECONDS`` of the
last press acted on, by Slack's own ``action_ts``. Presses that write (assign,
status) are not dropped here: their writes are idempotent and each trigger is
claimed once (``handlers.actions``).

The serving process decides (it runs every listener first); the work process sees
only the presses it was sent, which are a burst apart, so it decides the same.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from handlers.payloads import mapping_of

BURST_SECONDS = 2.0
KEPT = 10_000  # the most recent presses remembered (oldest forgotten first)


class RecentPresses:
    def __init__(self, window: float = BURST_SECONDS, kept: int = KEPT) -> None:
        self.window = window
        self.kept = kept
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def first_of_burst(self, body: dict[str, Any]) -> bool:
        actions = body.get("actions")
        action = mapping_of(actions[0]) if isinstance(actions, list) and actions else {}
        container = mapping_of(body.get("container"))
        where = container.get("message_ts") or container.get("view_id") or mapping_of(body.get("view")).get("id")
        key = (
            str(mapping_of(body.get("user")).get("id")),
            str(action.get("action_id")),
            str(action.get("value") or mapping_of(action.get("selected_option")).get("value") or ""),
            str(where or ""),
        )
        try:
            at = float(action.get("action_ts"))
        except (TypeError, ValueError):
            at = time.time()
        with self._lock:
            last = self._last.get(key)
            if last is not None and 0 <= at - last < self.window:
                return False
            self._last.pop(key, None)
            self._last[key] = at
            while len(self._last) > self.kept:
                del self._last[next(iter(self._last))]
        return True
