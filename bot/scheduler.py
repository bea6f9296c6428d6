"""The digest scheduler: a small loop over the store, every ``interval`` seconds.

Each run settles digests whose send had an unknown outcome, then sends every
digest whose time has come today and has not been claimed. Due-ness is read
from the store each time, so a restart loses nothing and never repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.loop import Loop
from handlers.digests import DigestSender
from services.ports import RequestLedger
from services.reminders import Reminders

log = logging.getLogger("leadbot.digests")

KEEP_REQUEST_KEYS = timedelta(days=2)  # far beyond Slack's retries (minutes) and anyone's double click


class DigestScheduler(Loop):
    name = "digests"

    def __init__(
        self,
        sender: DigestSender,
        requests: RequestLedger,
        clock: Callable[[], datetime],
        *,
        interval: float = 30.0,
        pruned: tuple[Callable[[datetime], int], ...] = (),
        counted: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.sender = sender
        self.counted = counted  # each digest's outcome, for /metrics
        self.reminders: Reminders = sender.reminders
        self.requests = requests
        self.clock = clock
        self.interval = interval
        self.pruned = pruned  # more records kept KEEP_REQUEST_KEYS (the journal, a request's writes)

    def run_due(self) -> dict[str, int]:
        """One pass; returns how many digests ended each way (sent, empty, taken, failed, unknown, found)."""
        outcome: dict[str, int] = {}
        now = self.clock()
        self.requests.prune(now - KEEP_REQUEST_KEYS)
        for prune in self.pruned:
            prune(now - KEEP_REQUEST_KEYS)
        timezones = self.sender.deps.timezones
        for slack_user in self.reminders.owners():
            if timezones.needs_check(slack_user):
                timezones.of(slack_user)  # due-ness depends on it: read before deciding
        for row in self.reminders.unsettled(now):
            try:
                result = self.sender.settle(row, now)
            except Exception:
                log.exception("could not settle %s's digest for %s", row.slack_user, row.day)
                continue
            outcome[result] = outcome.get(result, 0) + 1
            self.counted(result)
        for slack_user, _day in self.reminders.due(now):
            try:
                result = self.sender.send_today(slack_user, self.clock())
            except Exception:
                log.exception("digest for %s failed", slack_user)
                continue
            outcome[result] = outcome.get(result, 0) + 1
            self.counted(result)
        return outcome
