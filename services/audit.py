"""The audit trail: every action a person asks for, and how it ended."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services.clock import Clock, utcnow
from services.errors import LeadError, Queued
from services.models import Model
from services.ports import AuditEntry, AuditLog


class Actor(Model):
    slack_user: str
    is_admin: bool = False


class Audit:
    def __init__(self, log: AuditLog, clock: Clock = utcnow) -> None:
        self.log = log
        self.clock = clock

    @contextmanager
    def action(self, actor: Actor, action: str, ref: str | None, detail: str = "") -> Iterator[dict[str, Any]]:
        """Record ``action`` as ok, queued, refused (a ``LeadError``) or error; the block may set ``["ref"]``."""
        record: dict[str, Any] = {"ref": ref}
        try:
            yield record
        except Queued as exc:
            self.record(actor, action, record["ref"], "queued", exc.message)
            raise
        except LeadError as exc:
            self.record(actor, action, record["ref"], "refused", exc.message)
            raise
        except Exception as exc:
            self.record(actor, action, record["ref"], "error", type(exc).__name__)
            raise
        self.record(actor, action, record["ref"], "ok", detail)

    def record(self, actor: Actor, action: str, ref: str | None, result: str, detail: str = "") -> None:
        """One entry: ``action`` writes them for a block of code; an operator's command calls it directly."""
        self.log.record(
            AuditEntry(
                at=self.clock(), slack_user=actor.slack_user, action=action, lead_ref=ref, result=result, detail=detail
            )
        )
