"""The lead vocabulary shared by the service, the backends and the handlers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.errors import Invalid


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Activity(Model):
    """One line of a lead's history, newest first on cards."""

    kind: str  # "follow_up" | "note" | "status"
    at: AwareDatetime
    by: str | None
    text: str


class Lead(Model):
    backend: str
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    lead_for: str | None = None
    type: str | None = None
    source: str | None = None
    status: str
    sub_status: str | None = None
    owner: str | None = None
    next_follow_up: AwareDatetime | None = None
    last_activity: AwareDatetime | None = None
    created_at: AwareDatetime | None = None
    department: str | None = None  # where the backend hands leads to departments (Getlead)
    created_by: str | None = None  # the staff ID that created it, where the backend keeps it (local)

    @property
    def ref(self) -> str:
        return f"{self.backend}:{self.id}"

    notices: list[str] = Field(default_factory=list)  # the backend's warnings about this lead, to show
    # The lead's history when the backend's reply carried it (newest first); None: not read with the lead.
    history: tuple[Activity, ...] | None = None
    # A backend that cannot be read (Getlead): every field is what Leadbot sent, as Leadbot recorded it,
    # so a card says "as recorded by Leadbot". False: the backend itself answered.
    as_recorded: bool = False


# The one set of limits on what people type, whichever way they type it (a command, a modal, the
# console): the modals' inputs are capped at the same lengths (handlers/blocks.py), and Slack's own
# input holds at most 3,000 characters.
NAME_MAX = 150
NOTE_MAX = 3000
FIELD_MAX = 150  # for, type, source, status, sub-status, customer id
DEPARTMENT_MAX = 100


class NewLead(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    email: str | None = None
    phone: str | None = None
    lead_for: str | None = Field(None, max_length=FIELD_MAX)
    type: str | None = Field(None, max_length=FIELD_MAX)
    source: str | None = Field(None, max_length=FIELD_MAX)
    status: str | None = Field(None, max_length=FIELD_MAX)
    owner: str | None = None
    next_follow_up: AwareDatetime | None = None
    note: str | None = Field(None, max_length=NOTE_MAX)
    sub_status: str | None = Field(None, max_length=FIELD_MAX)  # backends with reasons and sub-statuses (Capillary)
    customer: str | None = Field(None, max_length=FIELD_MAX)  # the backend's own customer id, instead of email/phone
    receipt: str | None = None  # Leadbot's mark on this write, so a retry can tell whether it landed


# The fields `/lead edit` and the Edit form change: the word typed, and the Lead field it sets.
EDITABLE_FIELDS = MappingProxyType(
    {"name": "name", "email": "email", "phone": "phone", "company": "lead_for", "source": "source", "type": "type"}
)


class LeadEdit(Model):
    """New values for some of a lead's own fields (``EDITABLE_FIELDS``); None: left as it is."""

    name: str | None = Field(None, min_length=1, max_length=150)
    email: str | None = None
    phone: str | None = None
    lead_for: str | None = Field(None, max_length=150)
    source: str | None = Field(None, max_length=150)
    type: str | None = Field(None, max_length=150)
    by: str
    receipt: str | None = None

    def changes(self) -> dict[str, str]:
        """The Lead fields this edit sets, with their new values."""
        return {f: v for f in EDITABLE_FIELDS.values() if (v := getattr(self, f)) is not None}


class FollowUp(Model):
    done_at: AwareDatetime
    notes: str | None = Field(None, max_length=NOTE_MAX)
    next_follow_up: AwareDatetime | None = None
    by: str
    receipt: str | None = None


class Note(Model):
    text: str = Field(min_length=1, max_length=NOTE_MAX)
    by: str
    at: AwareDatetime
    receipt: str | None = None


class Deal(Model):
    """A deal on a lead (Getlead): what it is worth and is called, how it stands, when it starts and should close."""

    amount: Decimal = Field(ge=0, max_digits=15)
    name: str | None = Field(None, max_length=NAME_MAX)
    status: str | None = Field(None, max_length=60)  # None: the backend's default deal status
    start: date | None = None
    end: date | None = None  # the expected close
    note: str | None = Field(None, max_length=NOTE_MAX)
    by: str
    at: AwareDatetime
    receipt: str | None = None


class StatusChange(Model):
    status: str
    reason: str | None = None
    sub_status: str | None = None
    by: str
    at: AwareDatetime
    receipt: str | None = None


class StaffLink(Model):
    slack_user: str
    backend: str
    staff_id: str


class StatusModel(StrEnum):
    FIXED = "fixed"  # a closed list of statuses
    CONFIGURABLE = "configurable"  # statuses are objects the CRM admin defines
    WITH_REASONS = "with_reasons"  # a status change needs a reason id / sub-status


class Colour(StrEnum):
    """A status's colour: each surface draws it its own way (an emoji in Slack, a colour in a terminal)."""

    BLUE = "blue"
    GREEN = "green"
    RED = "red"
    YELLOW = "yellow"
    ORANGE = "orange"
    PURPLE = "purple"
    BROWN = "brown"
    BLACK = "black"
    WHITE = "white"
    GREY = "grey"


class StatusOption(Model):
    value: str
    label: str
    colour: Colour | None = None
    open: bool = True  # open leads are listed and reminded; closed ones are done


class Capabilities(Model):
    """What a backend can do, so that handlers ask instead of guessing."""

    read: bool = True
    search: bool = True
    create: bool = True
    assign: bool = True
    follow_up: bool = True
    note: bool = True
    status: bool = True
    status_model: StatusModel = StatusModel.FIXED
    deals: bool = False  # Backend.add_deal
    departments: bool = False  # Backend.set_department
    opportunities: bool = False  # Backend.opportunities: a lead's opportunities, paged (LeadSquared)
    # A card's two reads (the lead, its history) may go out at once: an API without a call budget.
    card_reads_at_once: bool = False
    notes_how: str = ""  # how notes are stored where the API has no note endpoint
    snooze_how: str = ""  # how a snooze (moving the next follow-up) is stored, where it is not plain
    staff_ids: str = ""  # what a staff ID looks like in this backend, for /lead link
    queues_writes: bool = False  # a write it cannot take now goes to the outbox (remote backends)
    # Whether ``applied()`` can see a write: a write-only API cannot, so a write whose try may have
    # landed is never sent again blindly (it could double); the person is told it may have landed.
    verifiable: bool = True
    customer_ids: bool = False  # a new lead can name an existing customer by the backend's id
    limits: str = ""  # what the backend cannot do, in a sentence, for /lead backends (a write-only API)
    # How `/lead find` searches it where the API has no search of its own ("" : an index of its own).
    search_how: str = ""
    editable: tuple[str, ...] = ()  # the fields Backend.edit can change (EDITABLE_FIELDS names)


class Choice(Model):
    """One option the backend offers (a reason, a sub-status)."""

    value: str
    label: str


class LeadQuery(Model):
    owner: str | None = None
    unassigned: bool = False  # only leads with no owner
    text: str | None = None  # words of a name, email, phone or company (services/search.py); any status
    status: str | None = None
    sub_status: str | None = None
    due_before: datetime | None = None
    offset: int = 0
    limit: int = 10


class LeadPage(Model):
    leads: list[Lead]
    total: int  # at least this many; exact unless ``more`` says the backend could not count
    offset: int
    more: bool | None = None  # None: total is exact


class Unread(Model):
    """A backend a list or search could not read, and why."""

    backend: str  # its title
    why: str


class LeadsAcross(Model):
    """One page of leads gathered from several backends (``/lead list``, ``/lead find``)."""

    leads: list[Lead]
    total: int  # at least this many; exact unless ``more``
    offset: int
    more: bool = False  # a backend could not count: there may be more than ``total``
    backends: list[str] = Field(default_factory=list)  # the titles of the backends read
    unread: list[Unread] = Field(default_factory=list)
    not_searchable: list[str] = Field(default_factory=list)  # titles that cannot answer this query at all


class Opportunity(Model):
    """One opportunity of a lead, with the fields a card shows (each account names its own columns for them)."""

    id: str
    name: str
    stage: str | None = None  # the account's own stage column (LeadSquared: mx_Custom_2 by default)
    status: str | None = None  # Open, Won, Lost …
    owner: str | None = None  # the staff ID Leadbot links its owner by, when known, else the backend's
    owner_name: str | None = None  # the owner's name as the backend shows it (they may not be linked)
    value: str | None = None  # as the account shows it ("2500000", "200,000"): formats differ by account
    created_at: AwareDatetime | None = None


class OpportunityPage(Model):
    """One page of a lead's opportunities, newest first; ``page`` counts from 1."""

    opportunities: list[Opportunity]
    total: int  # every opportunity of the lead, on all pages
    page: int
    size: int

    @property
    def more(self) -> bool:
        """Whether a later page has more (a More button)."""
        return self.page * self.size < self.total


M = TypeVar("M", bound=BaseModel)
FIELD_WORDS = {
    "text": "the note",
    "notes": "the notes",
    "name": "the name",
    "note": "the note",
    "lead_for": "for=",
    "type": "type=",
    "source": "source=",
    "status": "the status",
    "sub_status": "sub=",
    "customer": "customer=",
}


def too_long(field: str, text: str, limit: int) -> Invalid:
    """The one way a field that is too long is said, wherever it was typed."""
    return Invalid(
        "{what} is {length} characters long; the limit is {limit}",
        field=field,
        what=FIELD_WORDS.get(field, field),
        length=f"{len(text):,}",
        limit=f"{limit:,}",
    )


def validated(model: type[M], /, **values: Any) -> M:
    """``model(**values)``, where what fails validation is the user's to fix: ``Invalid``, naming the field."""
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        field = str(error["loc"][0]) if error["loc"] else None
        limit = (error.get("ctx") or {}).get("max_length")
        if error.get("type") == "string_too_long" and field and isinstance(values.get(field), str) and limit:
            raise too_long(field, values[field], limit) from None
        said = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        for noun in ("String ", "Input ", "Value "):
            said = said.removeprefix(noun)
        what = FIELD_WORDS.get(field or "", field or "a value")
        raise Invalid("{what} {said}", field=field, what=what, said=said[:1].lower() + said[1:]) from None
