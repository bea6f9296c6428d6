"""The outbox runner: retries queued writes in the background until each lands or fails for good.

Due-ness lives in the store (the outbox's ``next_at``), so a restart resumes
where the last run stopped; several runners on one database never take the
same write (``Outbox.claim_due``). How a write ended is published by the
LeadService (``settled``) and told to people by the notifier.
"""

from __future__ import annotations

import logging

from bot.loop import Loop
from services.errors import LeadError, MayHaveLanded, Unreachable
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
            # Whether a try may have landed: unchanged by a failed look, reset by each send.
            unknown = item.unknown_since if exc.checking else (now if exc.maybe_applied else None)
            if outbox.retry_later(item, now, exc.message, exc.retry_after, unknown_since=unknown):
                log.info("queued %s for %s: still unreachable (%s)", item.op, item.backend, exc.message)
                return
            self._give_up(item, exc.message, may_have_landed=unknown is not None)
        except MayHaveLanded as exc:
            outbox.failed(item, now, exc.message)
            self.service.settled(item, None, exc.message, uncertain=True)
        except LeadError as exc:
            outbox.failed(item, now, exc.message)
            self.service.settled(item, None, exc.message)
        except Exception:
            log.exception("queued %s for %s: unexpected error; will try again", item.op, item.backend)
            outbox.retry_later(item, now, "unexpected error", unknown_since=item.unknown_since)
        else:
            if lead is None:
                outbox.look_again(item, now)  # its last try may still land: not sent again yet
                return
            outbox.done(item, now, lead.ref)
            self.service.settled(item, lead, None)

    def _give_up(self, item: QueuedWrite, why: str, *, may_have_landed: bool) -> None:
        why = f"{why}, and has been for over a day, so Leadbot stopped trying"
        if may_have_landed:
            why += "; its last try may have reached it, so check there before writing it again"
        self.service.outbox.failed(item, self.service.clock(), why)
        self.service.settled(item, None, why, uncertain=may_have_landed)
