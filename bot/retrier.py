"""The outbox runner: retries queued writes in the background until each lands or fails for good.

Due-ness lives in the store (``outbox.next_at``), so a restart resumes where
the last run stopped; several runners on one database never take the same
write (``Outbox.claim_due``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.loop import Loop
from services.errors import LeadError, Unreachable
from services.leads import LeadService
from services.models import Lead
from services.outbox import QueuedWrite

log = logging.getLogger("leadbot.outbox")

# Told the outcome: (the write, the lead it produced, or why it failed for good).
Report = Callable[[QueuedWrite, Lead | None, str | None], None]


class OutboxRunner(Loop):
    name = "outbox"

    def __init__(self, service: LeadService, report: Report, *, interval: float = 5.0) -> None:
        self.service = service
        self.report = report
        self.interval = interval

    def run_due(self) -> int:
        """Try every write that is due now; return how many were tried."""
        now = self.service.clock()
        items = self.service.outbox.claim_due(now)
        for item in items:
            self._try(item)
        return len(items)

    def _try(self, item: QueuedWrite) -> None:
        outbox, now = self.service.outbox, self.service.clock()
        try:
            lead = self.service.replay(item)
        except Unreachable as exc:
            if outbox.retry_later(item, now, exc.message, exc.retry_after):
                log.info("queued %s for %s: still unreachable (%s)", item.op, item.backend, exc.message)
                return
            why = f"{exc.message}, and has been for over a day, so Leadbot stopped trying"
            outbox.failed(item, now, why)
            self._tell(item, None, why)
        except LeadError as exc:
            outbox.failed(item, now, exc.message)
            self._tell(item, None, exc.message)
        except Exception:
            log.exception("queued %s for %s: unexpected error; will try again", item.op, item.backend)
            outbox.retry_later(item, now, "unexpected error")
        else:
            outbox.done(item, now, lead.ref)
            self._tell(item, lead, None)

    def _tell(self, item: QueuedWrite, lead: Lead | None, why: str | None) -> None:
        try:
            self.report(item, lead, why)
        except Exception:
            log.exception("could not tell %s about their queued %s", item.slack_user, item.what)
