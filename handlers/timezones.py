"""Each person's time zone: Slack's ``users.info``, kept in the store and read again once a day.

The one source of time zones in a process: dates people type are read in
it, and digests are sent by it. If Slack cannot say, the zone known so far
stands (UTC for someone never seen) and Slack is asked again next time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from services.ports import Preferences

log = logging.getLogger("leadbot")

FRESH = timedelta(days=1)


class TimeZones:
    def __init__(self, client: WebClient, prefs: Preferences, clock: Callable[[], datetime]) -> None:
        self.client = client
        self.prefs = prefs
        self.clock = clock

    def of(self, slack_user: str) -> str | None:
        """The user's zone name, asking Slack when the stored one is over a day old."""
        now = self.clock()
        known = self.prefs.user(slack_user)
        if known.tz_checked_at is not None and now - known.tz_checked_at < FRESH:
            return known.tz
        try:
            tz = self.client.users_info(user=slack_user)["user"].get("tz") or "UTC"
        except (SlackApiError, KeyError, TypeError) as exc:
            log.warning("users.info for %s failed (%s); keeping the time zone known so far", slack_user, exc)
            return known.tz
        self.prefs.set_user(slack_user, tz=tz, tz_checked_at=now)
        return tz

    def needs_check(self, slack_user: str) -> bool:
        checked = self.prefs.user(slack_user).tz_checked_at
        return checked is None or self.clock() - checked >= FRESH


class Names:
    """People's Slack names (``users.info``), for a mention that arrives without one (``<@U123>``).

    Kept in memory for an hour: a name is only used to write ``@ana`` into a CRM
    instead of an ID, never to decide anything.
    """

    TTL = 3600.0

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._known: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def of(self, slack_user: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._known.get(slack_user)
        if hit and hit[0] > now:
            return hit[1]
        try:
            user = self.client.users_info(user=slack_user)["user"]
        except (SlackApiError, KeyError, TypeError):
            log.info("users.info for %s failed; the mention keeps its ID", slack_user)
            return None
        profile = user.get("profile") or {}
        name = profile.get("display_name") or user.get("real_name") or user.get("name")
        if name:
            with self._lock:
                self._known[slack_user] = (now + self.TTL, str(name))
        return name
