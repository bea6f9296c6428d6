"""The outbox runner: retries queued writes in the background until each lands or fails for good.

Due-ness lives in the store (the outbox's ``next_at``), so a restart resumes
where the last run stopped; several runners on one database never take the
same write (``Outbox.claim_due``). How a write ended is published by the
LeadService (``settled``) and told to people by the notifier.
"""

from __future__ import annotations

import logging

from bot.loop import Loop
from services.errors import LeadError, Unreachable
from services.leads import LeadService
from services.ports import QueuedWrite

log = logging.getLogger("leadbot.outbox")


class OutboxRunner(Loop):
    name = "outbox"

    def __init__(self, service: LeadService, *, interval: float = 5.0) -> None:
        self.service = service
        self.interval = interval

    def run_due(self) -> int:
        """Try every write that is due now; return how many were tried."""
        items = self.service.outbox.claim_due(self.service.clock())
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
            self.service.settled(item, None, why)
        except LeadError as exc:
            outbox.failed(item, now, exc.message)
            self.service.settled(item, None, exc.message)
        except Exception:
            log.exception("queued %s for %s: unexpected error; will try again", item.op, item.backend)
            outbox.retry_later(item, now, "unexpected error")
        else:
            outbox.done(item, now, lead.ref)
            self.service.settled(item, lead, None)
