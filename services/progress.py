"""Telling the person who asked that their action is still under way, when a backend makes it wait.

The Slack side sets ``SAY`` around each piece of work after the ack (a function that
shows the person one line); a backend that must wait a while first — a rate limit
shared with everyone else — calls ``still_working`` once, so nobody stares at nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

SAY: ContextVar[Callable[[str], None] | None] = ContextVar("leadbot_progress", default=None)
WORTH_SAYING = 1.0  # seconds of waiting before the person is told


def still_working(seconds: float, why: str) -> None:
    """``why`` makes this action wait ``seconds``: say so, once per piece of work, if that is long enough."""
    say = SAY.get()
    if say is None or seconds < WORTH_SAYING:
        return
    SAY.set(None)  # once is enough
    say(f":hourglass_flowing_sand: Still working: {why}, so this takes about {round(seconds)} s more.")
