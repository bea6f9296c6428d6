"""The small interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from services.errors import Unsupported
from services.models import (
    Activity,
    Capabilities,
    Choice,
    FollowUp,
    Lead,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    StatusChange,
    StatusOption,
)


class Backend(ABC):
    """A lead-management system.

    Staff IDs passed in (``owner``, ``by``) are already the IDs this backend
    knows people by; the LeadService maps Slack users to them. Methods raise
    ``LeadError`` subclasses for failures a user can act on.
    """

    name: str
    title: str
    capabilities: Capabilities

    @abstractmethod
    def statuses(self) -> list[StatusOption]: ...

    @abstractmethod
    def create(self, lead: NewLead, *, by: str) -> Lead: ...

    @abstractmethod
    def get(self, lead_id: str) -> Lead: ...

    @abstractmethod
    def search(self, query: LeadQuery) -> LeadPage: ...

    @abstractmethod
    def assign(self, lead_id: str, owner: str, *, by: str) -> Lead: ...

    @abstractmethod
    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead: ...

    @abstractmethod
    def add_note(self, lead_id: str, note: Note) -> Lead: ...

    @abstractmethod
    def change_status(self, lead_id: str, change: StatusChange) -> Lead: ...

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        return []

    def reschedule(self, lead_id: str, when: datetime, *, by: str) -> Lead:
        """Move the next follow-up without logging one (Snooze)."""
        raise Unsupported(f"{self.title} cannot move a follow-up")

    def reasons(self) -> list[Choice]:
        """Reasons a status change may (``WITH_REASONS``: must) carry."""
        return []

    def sub_statuses(self, status: str) -> list[Choice]:
        return []

    def reachable(self) -> str | None:
        """None when the backend answers right now, else why not."""
        return None

    def applied(self, op: str, args: dict) -> Lead | None:
        """Whether a write whose outcome was unknown (a timeout) reached the backend after all.

        The outbox asks before sending such a write again; None means "not as
        far as can be seen", and the write is sent.
        """
        return None

    def status_option(self, value: str) -> StatusOption:
        wanted = value.strip().casefold()
        for option in self.statuses():
            if wanted in (option.value.casefold(), option.label.casefold()):
                return option
        known = ", ".join(o.value for o in self.statuses())
        raise Unsupported(f"`{value}` is not a status in {self.name}; use one of: {known}")
