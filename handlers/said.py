"""How Leadbot says who did what to a lead: the card's last line, the thread log, DMs.

One wording per action, used by the reply to the person who acted and by the
notifier telling everyone else, so the two never drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from handlers.blocks import slack_time
from handlers.render import escape
from services.events import (
    DealAdded,
    DepartmentSet,
    FollowUpLogged,
    FollowUpMoved,
    LeadAssigned,
    LeadCreated,
    LeadEdited,
    LeadEvent,
    NoteAdded,
    StatusChanged,
)
from services.people import People


def created(user: str) -> str:
    return f"Created by <@{user}>"


def assigned(user: str, assignee: str | None) -> str:
    if assignee == user:
        return f"<@{user}> took this lead"
    return f"<@{user}> assigned this lead to {f'<@{assignee}>' if assignee else 'someone'}"


def followed_up(user: str, next_at: datetime | None) -> str:
    return f"<@{user}> logged a follow-up" + (f" · next: {slack_time(next_at, relative=False)}" if next_at else "")


def noted(user: str) -> str:
    return f"<@{user}> added a note"


def status_set(user: str, label: str, sub_status: str | None = None) -> str:
    sub = f" · {escape(sub_status)}" if sub_status else ""
    return f"<@{user}> set the status to {escape(label)}{sub}"


def snoozed(user: str, ref: str, when: datetime) -> str:
    return f"<@{user}> snoozed `{escape(ref)}` to {slack_time(when, relative=False)}"


def deal_added(user: str, amount_of: Decimal | None, name: str | None = None, end: date | None = None) -> str:
    if amount_of is None:
        return f"<@{user}> recorded a deal"
    named = f" “{escape(name)}”" if name else ""
    closes = f" · closes {end:%d %b %Y}" if end else ""
    return f"<@{user}> recorded a deal{named} of {amount(amount_of)}{closes}"


def department_set(user: str, department: str) -> str:
    return f"<@{user}> handed this lead to {escape(department)}"


def edited(user: str, fields: tuple[str, ...] | list[str]) -> str:
    return f"<@{user}> changed the {', '.join(fields) or 'details'}"


def amount(value: object) -> str:
    """A deal's amount as people read it: 150000 → 150,000; 1500.5 → 1,500.50."""
    number = Decimal(str(value))
    return f"{number:,.2f}" if number != number.to_integral_value() else f"{number:,.0f}"


def describe(event: LeadEvent, people: People) -> str:
    """The words for ``event``, as the person who acted saw them."""
    user, lead = event.by_user, event.lead
    if isinstance(event, LeadCreated):
        return created(user)
    if isinstance(event, LeadAssigned):
        return assigned(user, people.slack_user_for(lead.backend, lead.owner) if lead.owner else None)
    if isinstance(event, FollowUpLogged):
        return followed_up(user, event.next_follow_up)
    if isinstance(event, NoteAdded):
        return noted(user)
    if isinstance(event, StatusChanged):
        return status_set(user, event.status_label, event.sub_status)
    if isinstance(event, FollowUpMoved) and event.to is not None:
        return snoozed(user, lead.ref, event.to)
    if isinstance(event, DealAdded):
        deal = event.deal
        return deal_added(user, deal.amount, deal.name, deal.end) if deal else deal_added(user, None)
    if isinstance(event, DepartmentSet):
        return department_set(user, event.department)
    if isinstance(event, LeadEdited):
        return edited(user, event.fields)
    return f"<@{user}> changed this lead"
