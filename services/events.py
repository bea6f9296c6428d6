"""What happened to leads, told to whoever listens (the Slack side sends DMs, feed posts, thread logs).

``LeadService`` publishes an event after every write that reached a backend,
whether at once or later from the outbox (``settled`` is then the queued
write). Subscribers run in the publishing thread, one after another; one
that fails is logged and does not stop the others or undo the write.

``ORIGIN`` is where the current request came from, opaque to the domain
(the Slack side puts a response URL and a message in it); it travels with
queued writes so their outcome can be shown where they were asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.models import Deal, Lead
from services.ports import QueuedWrite

log = logging.getLogger("leadbot.events")

ORIGIN: ContextVar[dict[str, Any] | None] = ContextVar("leadbot_origin", default=None)


@dataclass(frozen=True)
class LeadEvent:
    lead: Lead
    by_user: str
    origin: dict[str, Any] = field(default_factory=dict)
    settled: QueuedWrite | None = None  # the queued write this event is the landing of


@dataclass(frozen=True)
class LeadCreated(LeadEvent):
    pass


@dataclass(frozen=True)
class LeadAssigned(LeadEvent):
    previous_owner: str | None = None  # staff ID, as the backend knew it before


@dataclass(frozen=True)
class FollowUpLogged(LeadEvent):
    next_follow_up: datetime | None = None


@dataclass(frozen=True)
class NoteAdded(LeadEvent):
    pass


@dataclass(frozen=True)
class StatusChanged(LeadEvent):
    status_label: str = ""
    sub_status: str | None = None


@dataclass(frozen=True)
class FollowUpMoved(LeadEvent):
    to: datetime | None = None


@dataclass(frozen=True)
class DealAdded(LeadEvent):
    deal: Deal | None = None  # the deal as Leadbot sent it (its status None: the backend's default)


@dataclass(frozen=True)
class LeadEdited(LeadEvent):
    fields: tuple[str, ...] = ()  # the words of EDITABLE_FIELDS that changed


@dataclass(frozen=True)
class DepartmentSet(LeadEvent):
    department: str = ""


@dataclass(frozen=True)
class WriteSettled:
    """A queued write ended: ``lead`` when it landed, ``why`` when Leadbot gave up."""

    write: QueuedWrite
    lead: Lead | None
    why: str | None
    backend_title: str
    uncertain: bool = False  # given up on, but its last try may have landed: nobody can say which


Subscriber = Callable[[object], None]


class Events:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, event: object) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber failed on %s", type(event).__name__)
