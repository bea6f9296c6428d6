"""The embedded lead store: leads live in Leadbot's own store (``LocalLeads``).

The default backend, with every capability and no network. Its staff IDs
are whatever the admin links people as (a name, an email); nothing checks
them against a directory.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.backends.base import Backend, BackendContext, BackendSpec
from services.backends.common import numeric_id
from services.clock import Clock
from services.errors import Code, LeadGone
from services.models import (
    Activity,
    Capabilities,
    Colour,
    FollowUp,
    Lead,
    LeadEdit,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    StatusChange,
    StatusOption,
)
from services.ports import LocalLeads
from services.search import terms

STATUSES = (
    StatusOption(value="new", label="New", colour=Colour.BLUE),
    StatusOption(value="contacted", label="Contacted", colour=Colour.YELLOW),
    StatusOption(value="qualified", label="Qualified", colour=Colour.PURPLE),
    StatusOption(value="won", label="Won", colour=Colour.GREEN, open=False),
    StatusOption(value="lost", label="Lost", colour=Colour.RED, open=False),
)


class LocalBackend(Backend):
    name = "local"
    title = "Local store"
    capabilities = Capabilities(editable=("name", "email", "phone", "company", "source", "type"))

    def __init__(self, leads: LocalLeads, clock: Clock) -> None:
        self.leads = leads
        self.clock = clock

    def statuses(self) -> list[StatusOption]:
        return list(STATUSES)

    def create(self, lead: NewLead, *, by: str) -> Lead:
        status = self.status_option(lead.status).value if lead.status else "new"
        return self.leads.insert(lead, status=status, owner=lead.owner or by, by=by, at=self.clock())

    def duplicates(self, lead: NewLead) -> list[Lead]:
        return self.leads.matching_contact(
            email=lead.email, phone=lead.phone, statuses=[s.value for s in STATUSES if s.open]
        )

    def get(self, lead_id: str) -> Lead:
        found = self.leads.get(self._id(lead_id))
        if found is None:
            raise LeadGone("there is no lead {ref}", ref=Code(f"local:{lead_id}"))
        return found

    def search(self, query: LeadQuery) -> LeadPage:
        if query.text is not None:  # a search by text looks through every status
            statuses = [self.status_option(query.status).value] if query.status else [s.value for s in STATUSES]
            return self.leads.find(terms(query.text), statuses=statuses, offset=query.offset, limit=query.limit)
        statuses = [self.status_option(query.status).value] if query.status else [s.value for s in STATUSES if s.open]
        return self.leads.search(
            statuses=statuses,
            owner=query.owner,
            due_before=query.due_before,
            offset=query.offset,
            limit=query.limit,
            unassigned=query.unassigned,
        )

    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead:
        self._update(lead_id, owner=owner)
        return self.get(lead_id)

    def edit(self, lead_id: str, edit: LeadEdit) -> Lead:
        self._update(lead_id, **edit.changes())
        return self.get(lead_id)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        self.get(lead_id)
        self.leads.add_follow_up(self._id(lead_id), follow_up, at=self.clock())
        return self.get(lead_id)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        self.get(lead_id)
        self.leads.add_note(self._id(lead_id), note)
        return self.get(lead_id)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        self.get(lead_id)
        status = self.status_option(change.status)
        self.leads.add_status(self._id(lead_id), change, status=status.value)
        if not status.open:  # a closed lead is followed up no more (nor shown as overdue)
            self.leads.update(self._id(lead_id), at=change.at, next_follow_up=None)
        return self.get(lead_id)

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        self._update(lead_id, next_follow_up=when)
        return self.get(lead_id)

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        return self.leads.activity(self._id(lead_id), limit)

    def _update(self, lead_id: str, **values: object) -> None:
        if not self.leads.update(self._id(lead_id), at=self.clock(), **values):
            raise LeadGone("there is no lead {ref}", ref=Code(f"local:{lead_id}"))

    @staticmethod
    def _id(lead_id: str) -> int:
        return numeric_id("local", lead_id)


class LocalOptions(BaseModel):
    """The local backend takes no settings."""

    model_config = ConfigDict(extra="forbid")


def build(options: LocalOptions, context: BackendContext) -> LocalBackend:
    return LocalBackend(context.store.local, context.clock)


SPEC = BackendSpec(
    name="local",
    title=LocalBackend.title,
    options=LocalOptions,
    build=build,
    always=True,
    summary="leads in Leadbot's own store; no network",
)
