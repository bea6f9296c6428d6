"""Turning service results into cards: staff IDs become Slack mentions here."""

from __future__ import annotations

from typing import Any

from handlers.blocks import OPPORTUNITIES_PER_PAGE, CardData, lead_card, lead_row
from services.errors import LeadError
from services.leads import LeadService
from services.models import Lead, StatusOption
from services.people import People


def status_option(service: LeadService, lead: Lead) -> StatusOption | None:
    try:
        return service.backends.get(lead.backend).status_option(lead.status)
    except LeadError:
        return None


def card_blocks(
    service: LeadService,
    people: People,
    lead: Lead,
    last_action: str | None = None,
    *,
    opportunities_page: int = 1,
    contacts: bool = True,
    viewer: str | None = None,
) -> list[dict[str, Any]]:
    backend = service.backends.get(lead.backend)
    page, unread = None, None
    if backend.capabilities.opportunities:
        try:
            page = service.opportunities(lead.ref, page=opportunities_page, size=OPPORTUNITIES_PER_PAGE)
        except LeadError as exc:  # the card still shows; its opportunities say why they are missing
            unread = exc.message
    owners = {o.owner for o in page.opportunities if o.owner} if page else set()
    opportunity_users = {s: u for s in owners if (u := people.slack_user_for(lead.backend, s))}
    # A backend whose reply carried the history saves a read (rate-limited APIs count every call).
    activity = list(lead.history[:3]) if lead.history is not None else service.activity(lead)
    users = {}
    for staff in {a.by for a in activity if a.by}:
        slack_user = people.slack_user_for(lead.backend, staff)
        if slack_user:
            users[staff] = slack_user
    owner_user = people.slack_user_for(lead.backend, lead.owner) if lead.owner else None
    # Assign to me only where pressing it could work: an unassigned lead, or (LEADBOT_OWNERSHIP=open)
    # anyone's but the viewer's own. A card in a channel is the same for all who see it.
    offer_take = lead.owner is None or (people.ownership == "open" and (viewer is None or viewer != owner_user))
    card = CardData(
        lead=lead,
        backend_title=backend.title,
        status=status_option(service, lead),
        statuses=backend.statuses() if backend.capabilities.status else [],
        owner_user=owner_user,
        now=service.clock(),
        activity=activity,
        activity_users=users,
        last_action=last_action,
        deals=backend.capabilities.deals,
        departments=backend.capabilities.departments,
        opportunities=page,
        opportunities_unread=unread,
        opportunity_users=opportunity_users,
        contacts=contacts,
        editable=bool(backend.capabilities.editable),
        offer_take=offer_take,
    )
    return lead_card(card)


def row_blocks(service: LeadService, people: People, lead: Lead, *, contact: bool = False) -> dict[str, Any]:
    """A lead in a list; ``contact``: with its email, phone and company (what a search matched)."""
    owner = people.slack_user_for(lead.backend, lead.owner) if lead.owner else None
    return lead_row(lead, status_option(service, lead), owner, service.clock(), contact=contact)
