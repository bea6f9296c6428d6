"""The interface every backend implements, and how a backend declares itself to the registry."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.clock import Clock, utcnow
from services.errors import Code, Invalid, Unsupported
from services.models import (
    Activity,
    Capabilities,
    Choice,
    Deal,
    FollowUp,
    Lead,
    LeadEdit,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    OpportunityPage,
    StatusChange,
    StatusOption,
)
from services.ports import Store


class Backend(ABC):
    """A lead-management system.

    Staff IDs passed in (``owner``, ``by``) are already the IDs this backend
    knows people by; the LeadService maps Slack users to them. Methods raise
    ``LeadError`` subclasses for failures a user can act on.
    """

    name: str
    title: str
    capabilities: Capabilities

    def check_staff_id(self, staff_id: str) -> None:
        """``Invalid`` if ``staff_id`` cannot be someone here: its shape, and whether the backend knows
        them where its API can say. Unreachable: the check is skipped, the link made as asked."""
        return None  # any one word: most backends cannot say who their staff are

    @abstractmethod
    def statuses(self) -> list[StatusOption]: ...

    @abstractmethod
    def create(self, lead: NewLead, *, by: str) -> Lead: ...

    @abstractmethod
    def get(self, lead_id: str) -> Lead: ...

    @abstractmethod
    def search(self, query: LeadQuery) -> LeadPage: ...

    @abstractmethod
    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead: ...

    @abstractmethod
    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead: ...

    @abstractmethod
    def add_note(self, lead_id: str, note: Note) -> Lead: ...

    @abstractmethod
    def change_status(self, lead_id: str, change: StatusChange) -> Lead: ...

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        return []

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        """Move the next follow-up without logging one (Snooze)."""
        raise Unsupported("{backend} cannot move a follow-up", backend=self.title)

    def edit(self, lead_id: str, edit: LeadEdit) -> Lead:
        """Change the lead's own fields (``capabilities.editable`` says which)."""
        raise Unsupported("{backend} cannot change a lead's details from Leadbot", backend=self.title)

    def duplicates(self, lead: NewLead) -> list[Lead]:
        """Open leads with this lead's email or phone, where the backend lets any number be made (local).

        A backend that refuses a duplicate itself (LeadSquared, the REST leads API) says so when asked to create.
        """
        return []

    def add_deal(self, lead_id: str, deal: Deal) -> Lead:
        """Record a deal on the lead (``capabilities.deals``)."""
        raise Unsupported("{backend} has no deals", backend=self.title)

    def set_department(self, lead_id: str, department: str, *, by: str, receipt: str | None = None) -> Lead:
        """Hand the lead to a department (``capabilities.departments``)."""
        raise Unsupported("{backend} has no departments", backend=self.title)

    def departments(self) -> list[Choice]:
        """The departments a lead can be handed to, where the backend knows them (else any name is sent)."""
        return []

    def opportunities(self, lead_id: str, page: int = 1, size: int = 5) -> OpportunityPage:
        """The lead's opportunities, newest first: page ``page`` (from 1) of ``size`` (capabilities.opportunities)."""
        raise Unsupported("{backend} has no opportunities", backend=self.title)

    def reasons(self) -> list[Choice]:
        """Reasons a status change may (``WITH_REASONS``: must) carry."""
        return []

    def sub_statuses(self, status: str) -> list[Choice]:
        return []

    def reachable(self) -> str | None:
        """None when the backend answers right now, else why not."""
        return None

    def applied(self, op: str, args: dict) -> Lead | None:
        """Whether a queued write reached the backend after all (a timeout can hide a success).

        The outbox asks before sending a write again. The answer must be exact: the
        write's own receipt (``args`` carry it) found in the backend, or every field
        the write sets as it set them, never a lookalike (an older comment, the same
        status set earlier). When the write is found, whatever Leadbot keeps of it
        (an owner, a next follow-up) is recorded as if the reply had come. None
        means "not there as far as can be seen", and the write is sent again.
        """
        return None

    def close(self) -> None:
        """Let go of connections (the process is stopping)."""
        return None

    def status_option(self, value: str) -> StatusOption:
        wanted = value.strip().casefold()
        for option in self.statuses():
            if wanted in (option.value.casefold(), option.label.casefold()):
                return option
        known = ", ".join(o.value for o in self.statuses())
        raise Invalid(
            "{value} is not a status in {backend}; use one of: {known}",
            field="status",
            value=Code(value),
            backend=self.name,
            known=known,
        )


@dataclass(frozen=True)
class EnvVar:
    """An environment variable a backend reads into its options (secrets come only from here)."""

    name: str  # LEADBOT_CAPILLARY_URL
    option: str  # the field of the backend's options model it fills
    expects: str  # what a good value looks like, for the one-line start-up error
    secret: bool = False


@dataclass(frozen=True)
class BackendContext:
    """What a backend may use from the process that builds it."""

    store: Store
    clock: Clock = utcnow
    sleep: Callable[[float], None] = time.sleep
    # Every request a backend sends: (backend, read or write, seconds, outcome), for metrics and /healthz.
    observe: Callable[[str, str, float, str], None] | None = None
    # Around each wait on a backend: the process's work slot is given to other work meanwhile (bot/slots.py).
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext

    def observer(self, backend: str) -> Callable[[str, float, str], None] | None:
        """``observe`` for one backend's client."""
        observe = self.observe
        if observe is None:
            return None
        return lambda kind, seconds, outcome: observe(backend, kind, seconds, outcome)


@dataclass(frozen=True)
class BackendSpec:
    """One backend, declared in its own module and listed once in ``services.backends.REGISTRY``.

    ``options`` validates everything the backend is configured with: the
    environment variables in ``env`` (by their ``option`` names) together with
    its ``[backends.NAME]`` table in ``LEADBOT_CONFIG``. A backend is configured
    when any of its variables is set, or always (``local``).
    """

    name: str
    title: str
    options: type[BaseModel]
    build: Callable[[Any, BackendContext], Backend]
    env: tuple[EnvVar, ...] = ()
    always: bool = False
    summary: str = ""  # one line for the README and /lead backends
    extra: dict[str, Any] = field(default_factory=dict)

    def env_var(self, option: str) -> EnvVar | None:
        return next((v for v in self.env if v.option == option), None)
