"""Slack requests handled once: a retry or a replayed payload finds its key taken and does nothing.

Inside ``until_done()`` (the work after one request's ack), a claim stays
"started" until the work ends, so a request cut off half-way by a dying
process is taken over when it is sent again instead of skipped as handled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from services.ports import RequestLedger

_CLAIMS: ContextVar[list[str] | None] = ContextVar("leadbot_claims", default=None)


class RequestClaims:
    def __init__(self, ledger: RequestLedger) -> None:
        self.ledger = ledger

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is claimed (or when its first taker died half-way)."""
        pending = _CLAIMS.get()
        if not self.ledger.claim(key, until_done=pending is not None):
            return False
        if pending is not None:
            pending.append(key)
        return True

    @contextmanager
    def until_done(self) -> Iterator[None]:
        token = _CLAIMS.set([])
        try:
            yield
        finally:
            keys = _CLAIMS.get() or []
            _CLAIMS.reset(token)
            if keys:
                self.ledger.finish(keys)
