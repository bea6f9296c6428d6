"""Block Kit for everything Leadbot shows: cards, lists, help, errors, modals.

Built with ``slack_sdk.models`` so that Slack's limits (text lengths, element
counts) are checked where the blocks are made. Functions return plain dicts
(``to_dict()``) because that is what ``respond`` and the Web API take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DatePickerElement,
    DateTimePickerElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from handlers.render import ERROR_MARK, escape
from services.models import (
    DEPARTMENT_MAX,
    FIELD_MAX,
    NAME_MAX,
    NOTE_MAX,
    Activity,
    Choice,
    Colour,
    Lead,
    OpportunityPage,
    StatusOption,
)

# action_id and callback_id values: the manifest test reads these names.
ASSIGN_ME = "lead_assign_me"
ASSIGN_TO = "lead_assign_to"
REFRESH = "lead_refresh"
CONTACT = "lead_contact"
OPEN = "lead_open"
LIST_PAGE = "lead_list_page"
NEW_LEAD_VIEW = "lead_new"
LOG_FOLLOW_UP = "lead_log_follow_up"
ADD_NOTE = "lead_add_note"
SET_STATUS = "lead_set_status"
FOLLOW_UP_VIEW = "lead_follow_up"
NOTE_VIEW = "lead_note"
HOME_REFRESH = "lead_home_refresh"
STATUS_VIEW = "lead_status"
DIGEST_SNOOZE = "lead_digest_snooze"
ADD_DEAL = "lead_add_deal"
SET_DEPARTMENT = "lead_set_department"
OPPORTUNITIES_PAGE = "lead_opportunities_page"
DEAL_VIEW = "lead_deal"
DEPARTMENT_VIEW = "lead_department"
EDIT = "lead_edit"
CREATE_ANYWAY = "lead_create_anyway"
ASK_OWNER = "lead_ask_owner"
HOME_SEARCH = "lead_home_search"
GIVE_LEAD = "lead_give"
KEEP_LEAD = "lead_keep"
EDIT_VIEW = "lead_edit_view"
ADD_TO_LEAD_VIEW = "lead_add_to_view"
ACTION_IDS = (
    CONTACT,
    ASSIGN_ME,
    ASSIGN_TO,
    LOG_FOLLOW_UP,
    ADD_NOTE,
    SET_STATUS,
    REFRESH,
    OPEN,
    LIST_PAGE,
    HOME_REFRESH,
    DIGEST_SNOOZE,
    ADD_DEAL,
    SET_DEPARTMENT,
    OPPORTUNITIES_PAGE,
    EDIT,
    CREATE_ANYWAY,
    HOME_SEARCH,
    ASK_OWNER,
    GIVE_LEAD,
    KEEP_LEAD,
)
CALLBACK_IDS = (
    NEW_LEAD_VIEW,
    FOLLOW_UP_VIEW,
    NOTE_VIEW,
    STATUS_VIEW,
    DEAL_VIEW,
    DEPARTMENT_VIEW,
    EDIT_VIEW,
    ADD_TO_LEAD_VIEW,
)
LEAD_FROM_MESSAGE = "lead_from_message"
ADD_TO_LEAD = "lead_add_to"
SHORTCUT_IDS = (LEAD_FROM_MESSAGE, ADD_TO_LEAD)
NOTE_LIMIT = NOTE_MAX  # every input is capped at the domain's limit for its field (services/models.py)

COLOUR_EMOJI = MappingProxyType(
    {
        Colour.BLUE: ":large_blue_circle:",
        Colour.GREEN: ":large_green_circle:",
        Colour.RED: ":red_circle:",
        Colour.YELLOW: ":large_yellow_circle:",
        Colour.ORANGE: ":large_orange_circle:",
        Colour.PURPLE: ":large_purple_circle:",
        Colour.BROWN: ":large_brown_circle:",
        Colour.BLACK: ":black_circle:",
        Colour.WHITE: ":white_circle:",
        Colour.GREY: ":white_circle:",
    }
)

MAX_TEXT = 2900  # section text is capped at 3000 characters
BUTTON_VALUE_MAX = 2000  # Slack's limit on a button's value


def slack_time(when: datetime, *, relative: bool = True) -> str:
    """A date Slack renders in each viewer's own time zone; the fallback is UTC."""
    fmt = "{date_short_pretty} {time}" + (" ({ago})" if relative else "")
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{fmt}|{fallback}>"


def mention(slack_user: str | None, staff_id: str | None) -> str:
    if slack_user:
        return f"<@{slack_user}>"
    return _code(staff_id) if staff_id else "nobody"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(text: str, limit: int = MAX_TEXT) -> str:
    """Someone's text (a lead's name, a note, what a CRM says) as mrkdwn shows it literally."""
    return escape(_clip(text, limit))


def _code(text: str) -> str:
    return f"`{escape(text).replace('`', 'ˋ')}`"


@dataclass
class CardData:
    """What a card shows, already resolved: staff IDs mapped to Slack users."""

    lead: Lead
    backend_title: str
    status: StatusOption | None
    statuses: list[StatusOption]
    owner_user: str | None
    now: datetime
    activity: list[Activity] = field(default_factory=list)
    activity_users: dict[str, str] = field(default_factory=dict)
    last_action: str | None = None
    deals: bool = False  # a Deal… button (Getlead)
    departments: bool = False  # a Department… button (Getlead)
    opportunities: OpportunityPage | None = None  # the page of the lead's opportunities shown (LeadSquared)
    opportunities_unread: str | None = None  # why they could not be read, when they could not
    opportunity_users: dict[str, str] = field(default_factory=dict)  # owner staff ID -> Slack user
    # The email and phone, or a Contact details button that shows them to linked staff only.
    contacts: bool = True
    editable: bool = False  # an Edit… button (the backend can change some of the lead's fields)
    offer_take: bool = True  # an Assign to me button


def lead_card(card: CardData) -> list[dict[str, Any]]:
    lead = card.lead
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(lead.name, 150), emoji=False)),
        ContextBlock(elements=[MarkdownTextObject(text=f"{_code(lead.ref)} · {escape(card.backend_title)}")]),
        SectionBlock(fields=_card_fields(card)),
    ]
    if card.activity:
        lines = [
            f"• {slack_time(a.at, relative=False)} "
            f"{mention(card.activity_users.get(a.by or ''), a.by)}: {_text(a.text, 200)}"
            for a in card.activity
        ]
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Recent*\n" + "\n".join(lines))))
    blocks.extend(_opportunities(card))
    extra = []
    if not card.contacts and (lead.email or lead.phone):
        extra.append(ButtonElement(text="Contact details", action_id=CONTACT, value=lead.ref))
    if card.deals:
        extra.append(ButtonElement(text="Deal…", action_id=ADD_DEAL, value=lead.ref))
    if card.departments:
        extra.append(ButtonElement(text="Department…", action_id=SET_DEPARTMENT, value=lead.ref))
    if card.editable:
        extra.append(ButtonElement(text="Edit…", action_id=EDIT, value=lead.ref))
    blocks.append(
        ActionsBlock(
            block_id=f"card:{lead.ref}",
            elements=[
                *(
                    [ButtonElement(text="Assign to me", action_id=ASSIGN_ME, value=lead.ref, style="primary")]
                    if card.offer_take
                    else []
                ),
                UserSelectElement(action_id=ASSIGN_TO, placeholder="Assign…"),
                ButtonElement(text="Log follow-up", action_id=LOG_FOLLOW_UP, value=lead.ref),
                ButtonElement(text="Add note", action_id=ADD_NOTE, value=lead.ref),
                *_status_select(card.lead, card.statuses, card.status),
                *extra,
                ButtonElement(text="Refresh", action_id=REFRESH, value=lead.ref),
            ],
        )
    )
    if lead.as_recorded:
        recorded = (
            f":memo: As recorded by Leadbot: {escape(card.backend_title)} cannot be read back, so this is"
            " what Leadbot sent it"
        )
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=recorded)]))
    for notice in lead.notices[:3]:
        said = f":information_source: {escape(card.backend_title)} says: {_text(notice, 250)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=said)]))
    if card.last_action:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(card.last_action, 300))]))
    return [b.to_dict() for b in blocks]


OPPORTUNITIES_PER_PAGE = 5


def _opportunities(card: CardData) -> list[Block]:
    """The lead's opportunities, a page at a time, with Previous/More buttons that redraw the card."""
    if card.opportunities_unread:
        text = f"*Opportunities*\n_could not be read just now: {_text(card.opportunities_unread, 200)}_"
        return [SectionBlock(text=MarkdownTextObject(text=text))]
    page = card.opportunities
    if page is None:
        return []
    if page.total == 0:
        return [SectionBlock(text=MarkdownTextObject(text="*Opportunities*\n_none_"))]
    first = (page.page - 1) * page.size + 1
    head = f"*Opportunities* · {first}–{first + len(page.opportunities) - 1} of {page.total}"
    lines = []
    for o in page.opportunities:
        parts = [f"*{_text(o.name, 100)}*"]
        parts += [_text(x, 60) for x in (o.stage, o.status) if x]
        if o.owner or o.owner_name:
            owner = card.opportunity_users.get(o.owner or "")
            parts.append(f"<@{owner}>" if owner else _text(o.owner_name or o.owner or "", 60))
        if o.value:
            parts.append(_text(o.value, 40))
        lines.append("• " + " · ".join(parts))
    found: list[Block] = [SectionBlock(text=MarkdownTextObject(text=head + "\n" + "\n".join(lines)))]
    buttons = []
    ref = card.lead.ref
    if page.page > 1:
        value = json.dumps({"ref": ref, "page": page.page - 1}, separators=(",", ":"))
        buttons.append(ButtonElement(text="Previous", action_id=OPPORTUNITIES_PAGE, value=value))
    if page.more:
        value = json.dumps({"ref": ref, "page": page.page + 1}, separators=(",", ":"))
        left = page.total - (first + len(page.opportunities) - 1)
        buttons.append(ButtonElement(text=f"More ({left})", action_id=OPPORTUNITIES_PAGE, value=value))
    if buttons:
        found.append(ActionsBlock(block_id=f"opportunities:{ref}", elements=buttons))
    return found


def show_button(ref: str, again: dict[str, Any] | None = None) -> dict[str, Any]:
    """A "Show" button that posts the card of ``ref`` (e.g. the lead a duplicate ran into).

    ``again``: the create that ran into it, behind a **Create anyway** button (left out if it does not fit).
    """
    buttons = [ButtonElement(text=f"Show {_clip(ref, 60)}", action_id=OPEN, value=ref)]
    value = json.dumps(again, separators=(",", ":")) if again else ""
    if value and len(value) <= BUTTON_VALUE_MAX:
        buttons.append(ButtonElement(text="Create anyway", action_id=CREATE_ANYWAY, value=value))
    return ActionsBlock(elements=buttons).to_dict()


def ask_owner_button(ref: str) -> dict[str, Any]:
    """Under "this is @bob's lead": a button that asks its owner for it (a DM with Give / Keep)."""
    return ActionsBlock(
        block_id=f"ask_owner:{_clip(ref, 200)}",
        elements=[ButtonElement(text="Ask them for it", action_id=ASK_OWNER, value=ref)],
    ).to_dict()


def lead_request(text: str, ref: str, requester: str) -> list[dict[str, Any]]:
    """The DM to a lead's owner that someone asks for it: give it to them, or keep it."""
    value = f"{ref}|{requester}"
    return [
        *text_blocks(text),
        ActionsBlock(
            block_id="lead_request",
            elements=[
                ButtonElement(text="Give it to them", action_id=GIVE_LEAD, value=value, style="primary"),
                ButtonElement(text="Keep it", action_id=KEEP_LEAD, value=value),
            ],
        ).to_dict(),
    ]


def stale_notice(why: str) -> dict[str, Any]:
    text = f":no_entry_sign: *Out of date:* {_clip(why, 250)}. This card's buttons are gone."
    return ContextBlock(block_id="stale", elements=[MarkdownTextObject(text=text)]).to_dict()


def _status_select(lead: Lead, statuses: list[StatusOption], status: StatusOption | None) -> list[StaticSelectElement]:
    """The backend's statuses, the current one preselected; the lead travels in the option values."""
    if not statuses:
        return []
    options = [Option(value=f"{lead.ref}|{s.value}", label=s.label) for s in statuses[:100]]
    current = next((o for o, s in zip(options, statuses, strict=False) if status and s == status), None)
    return [StaticSelectElement(action_id=SET_STATUS, placeholder="Status", options=options, initial_option=current)]


def _status_text(status: StatusOption | None, raw: str) -> str:
    if status is None:
        return escape(raw)
    emoji = COLOUR_EMOJI.get(status.colour, "") if status.colour else ""
    return f"{emoji} {escape(status.label)}".strip()


def _card_fields(card: CardData) -> list[MarkdownTextObject]:
    lead = card.lead
    fields = [
        f"*Status*\n{_status_text(card.status, lead.status)}"
        + (f" · {_text(lead.sub_status)}" if lead.sub_status else ""),
        f"*Owner*\n{mention(card.owner_user, lead.owner) if lead.owner else '_unassigned_'}",
    ]
    contact = " · ".join(c for c in (lead.email, lead.phone) if c)
    if contact and card.contacts:
        fields.append(f"*Contact*\n{_text(contact, 300)}")
    elif contact:
        fields.append("*Contact*\n_for linked staff: Contact details_")
    if lead.next_follow_up and (card.status is None or card.status.open):
        overdue = " :alarm_clock: *overdue*" if lead.next_follow_up <= card.now else ""
        fields.append(f"*Next follow-up*\n{slack_time(lead.next_follow_up)}{overdue}")
    if lead.last_activity:
        fields.append(f"*Last activity*\n{slack_time(lead.last_activity)}")
    for label, value in (
        ("For", lead.lead_for),
        ("Type", lead.type),
        ("Source", lead.source),
        ("Department", lead.department),
    ):
        if value:
            fields.append(f"*{label}*\n{_text(value, 200)}")
    return [MarkdownTextObject(text=f) for f in fields[:10]]


def lead_row(
    lead: Lead, status: StatusOption | None, owner_user: str | None, now: datetime, *, contact: bool = False
) -> dict[str, Any]:
    """One lead in a list: a section with an Open button (``contact``: its email, phone and company too)."""
    parts = [f"*{_text(lead.name, 100)}* {_code(lead.ref)}", _status_text(status, lead.status)]
    parts.append(f"owner {mention(owner_user, lead.owner)}" if lead.owner else "_unassigned_")
    if contact:
        parts += [_text(c, 100) for c in (lead.email, lead.phone, lead.lead_for) if c]
    if lead.next_follow_up and (status is None or status.open):
        flag = " :alarm_clock:" if lead.next_follow_up <= now else ""
        parts.append(f"next {slack_time(lead.next_follow_up, relative=False)}{flag}")
    return SectionBlock(
        text=MarkdownTextObject(text=" · ".join(parts)),
        accessory=ButtonElement(text="Open", action_id=OPEN, value=lead.ref),
    ).to_dict()


def list_message(
    rows: list[dict[str, Any]],
    *,
    title: str,
    total: int,
    offset: int,
    page_size: int,
    state: dict[str, Any],
    more: bool = False,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """A page of leads under ``title``; ``more``: a backend could not count, so there may be more than ``total``.

    ``notes`` (a backend that could not be read) are shown under the title, also when nothing was found.
    """
    said = [ContextBlock(elements=[MarkdownTextObject(text=_clip(n, 300))]).to_dict() for n in (notes or [])[:5]]
    if not rows and offset == 0:
        return [SectionBlock(text=MarkdownTextObject(text=f"No leads match *{title}*.")).to_dict(), *said]
    shown_to = offset + len(rows)
    counted = f"{total}+" if more else str(total)
    head = ContextBlock(elements=[MarkdownTextObject(text=f"*{title}* · {offset + 1}–{shown_to} of {counted}")])
    blocks = [head.to_dict(), *said, *rows]
    buttons = []
    if offset > 0:
        value = json.dumps({**state, "offset": max(0, offset - page_size)}, separators=(",", ":"))
        buttons.append(ButtonElement(text="Previous", action_id=LIST_PAGE, value=value))
    if shown_to < total or (more and len(rows) == page_size):
        value = json.dumps({**state, "offset": shown_to}, separators=(",", ":"))
        left = f"{total - shown_to}" if total > shown_to else "…"
        buttons.append(ButtonElement(text=f"More ({left}{'+' if more else ''})", action_id=LIST_PAGE, value=value))
    if buttons:
        blocks.append(ActionsBlock(block_id="list_pages", elements=buttons).to_dict())
    return blocks


def text_blocks(text: str) -> list[dict[str, Any]]:
    return [SectionBlock(text=MarkdownTextObject(text=_clip(text, MAX_TEXT))).to_dict()]


def help_text(commands: list[tuple[str, str]]) -> str:
    """Help as one mrkdwn text: a plain-text ack needs no JSON, so help costs the ack path least."""
    lines = "\n".join(f"`{usage}`  {summary}" for usage, summary in commands)
    return (
        "*Leadbot* — work your leads from Slack.\n"
        f"{lines}\n"
        "_REF is `BACKEND:ID` (e.g. `local:7`) or a bare ID. "
        "WHEN is how people write dates: `tomorrow 10am`, `fri`, `in 3 days`._"
    )


def new_lead_modal(
    *,
    statuses: list[StatusOption],
    backends: list[tuple[str, str]],
    private_metadata: str,
    initial: dict[str, str] | None = None,
    from_message: str | None = None,
) -> dict[str, Any]:
    """The New lead modal; block_id == action_id == the field name.

    Long because it is one declaration of the form, field by field; split up, the
    form would only be harder to read in one place.

    ``from_message``: the permalink of the message the lead is made from, said
    at the top because it becomes the lead's first note.
    """
    initial = initial or {}

    def text_input(name: str, label: str, *, optional: bool = True, multiline: bool = False, hint: str = ""):
        return InputBlock(
            block_id=name,
            label=label,
            optional=optional,
            hint=hint or None,
            element=PlainTextInputElement(
                action_id=name,
                multiline=multiline,
                initial_value=initial.get(name) or None,
                max_length=NOTE_MAX if multiline else NAME_MAX if name == "name" else FIELD_MAX,
            ),
        )

    blocks: list[Block] = [
        text_input("name", "Name", optional=False),
        text_input("email", "Email"),
        text_input("phone", "Phone", hint="With country code, e.g. +14155550123"),
        text_input("lead_for", "For (product or service)"),
        text_input("type", "Type"),
        text_input("source", "Source"),
        InputBlock(
            block_id="owner",
            label="Owner",
            optional=True,
            hint="Leave empty to own it yourself",
            element=UserSelectElement(action_id="owner"),
        ),
        InputBlock(
            block_id="next", label="Next follow-up", optional=True, element=DateTimePickerElement(action_id="next")
        ),
        InputBlock(
            block_id="status",
            label="Status",
            optional=True,
            element=StaticSelectElement(
                action_id="status",
                options=[Option(value=s.value, label=s.label) for s in statuses],
            ),
        ),
        text_input("note", "Note", multiline=True),
    ]
    if from_message:
        said = f"From <{from_message}|this message>: its link will be the lead's first note."
        blocks.insert(0, ContextBlock(block_id="from_message", elements=[MarkdownTextObject(text=said)]))
    if len(backends) > 1:
        blocks.append(
            InputBlock(
                block_id="backend",
                label="Backend",
                element=StaticSelectElement(
                    action_id="backend",
                    options=[Option(value=name, label=title) for name, title in backends],
                    initial_option=Option(value=backends[0][0], label=backends[0][1]),
                ),
            )
        )
    view = View(
        type="modal",
        callback_id=NEW_LEAD_VIEW,
        title="New lead",
        submit="Create",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
    )
    return view.to_dict()


def _lead_modal(callback_id: str, title: str, submit: str, lead_name: str, metadata: str, inputs: list[Block]):
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        private_metadata=metadata,
        blocks=[SectionBlock(text=MarkdownTextObject(text=f"*{_text(lead_name, 200)}*")), *inputs],
    ).to_dict()


def follow_up_modal(*, lead_name: str, private_metadata: str, now: datetime) -> dict[str, Any]:
    """Log follow-up: notes, done-at (default now) and an optional next follow-up."""
    return _lead_modal(
        FOLLOW_UP_VIEW,
        "Log follow-up",
        "Log",
        lead_name,
        private_metadata,
        [
            InputBlock(
                block_id="notes",
                label="Notes",
                optional=True,
                element=PlainTextInputElement(action_id="notes", multiline=True, max_length=NOTE_LIMIT),
            ),
            InputBlock(
                block_id="done_at",
                label="Done at",
                element=DateTimePickerElement(action_id="done_at", initial_date_time=int(now.timestamp())),
            ),
            InputBlock(
                block_id="next",
                label="Next follow-up",
                optional=True,
                element=DateTimePickerElement(action_id="next"),
            ),
        ],
    )


EDIT_LABELS = MappingProxyType(
    {"name": "Name", "email": "Email", "phone": "Phone", "company": "Company", "source": "Source", "type": "Type"}
)


def edit_modal(*, lead_name: str, current: dict[str, str | None], private_metadata: str) -> dict[str, Any]:
    """The fields the backend can change (``current``'s keys), each holding its value now."""
    inputs: list[Block] = [
        InputBlock(
            block_id=word,
            label=EDIT_LABELS.get(word, word),
            optional=True,
            element=PlainTextInputElement(action_id=word, initial_value=value or None, max_length=150),
        )
        for word, value in current.items()
    ]
    return _lead_modal(EDIT_VIEW, "Edit lead", "Save", lead_name, private_metadata, inputs)


def add_to_lead_modal(*, text: str, private_metadata: str) -> dict[str, Any]:
    """Pick the lead a message becomes a note on: its reference, or words of its name, email, phone or company."""
    return View(
        type="modal",
        callback_id=ADD_TO_LEAD_VIEW,
        title="Add to lead",
        submit="Add note",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f"*The message*\n>{_text(text, 500)}")),
            InputBlock(
                block_id="lead",
                label="Lead",
                hint="Its reference (local:7), or part of its name, email, phone or company",
                element=PlainTextInputElement(action_id="lead", max_length=200),
            ),
        ],
    ).to_dict()


def note_modal(*, lead_name: str, private_metadata: str) -> dict[str, Any]:
    return _lead_modal(
        NOTE_VIEW,
        "Add note",
        "Add",
        lead_name,
        private_metadata,
        [
            InputBlock(
                block_id="text",
                label="Note",
                element=PlainTextInputElement(action_id="text", multiline=True, max_length=NOTE_LIMIT),
            )
        ],
    )


def status_modal(
    *,
    lead_name: str,
    status: StatusOption,
    reasons: list[Choice],
    sub_statuses: list[Choice],
    private_metadata: str,
) -> dict[str, Any]:
    """The reason (and sub-status) a backend needs for a status change, from its own lists."""
    inputs: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"New status: *{escape(status.label)}*")),
        InputBlock(
            block_id="reason",
            label="Reason",
            element=StaticSelectElement(
                action_id="reason",
                placeholder="Why?",
                options=[Option(value=c.value, label=_clip(c.label, 75)) for c in reasons[:100]],
            ),
        ),
    ]
    if sub_statuses:
        inputs.append(
            InputBlock(
                block_id="sub_status",
                label="Sub-status",
                optional=True,
                element=StaticSelectElement(
                    action_id="sub_status",
                    options=[Option(value=c.value, label=_clip(c.label, 75)) for c in sub_statuses[:100]],
                ),
            )
        )
    return _lead_modal(STATUS_VIEW, "Change status", "Change", lead_name, private_metadata, inputs)


def deal_modal(*, lead_name: str, private_metadata: str) -> dict[str, Any]:
    """Record a deal: its amount, and optionally a name, status, start, expected close and a note."""
    return _lead_modal(
        DEAL_VIEW,
        "Record a deal",
        "Record",
        lead_name,
        private_metadata,
        [
            InputBlock(
                block_id="amount",
                label="Amount",
                element=NumberInputElement(action_id="amount", is_decimal_allowed=True, min_value="0"),
            ),
            InputBlock(
                block_id="name",
                label="Deal name",
                optional=True,
                element=PlainTextInputElement(action_id="name", max_length=NAME_MAX),
            ),
            InputBlock(
                block_id="status",
                label="Deal status",
                optional=True,
                element=PlainTextInputElement(action_id="status", max_length=60, placeholder="Open"),
            ),
            InputBlock(block_id="start", label="Starts", optional=True, element=DatePickerElement(action_id="start")),
            InputBlock(
                block_id="end", label="Expected close", optional=True, element=DatePickerElement(action_id="end")
            ),
            InputBlock(
                block_id="note",
                label="Note",
                optional=True,
                element=PlainTextInputElement(action_id="note", multiline=True, max_length=NOTE_LIMIT),
            ),
        ],
    )


def department_modal(*, lead_name: str, private_metadata: str, departments: list[Choice]) -> dict[str, Any]:
    """Hand the lead to a department: chosen from the backend's list, or typed where it has none."""
    element: PlainTextInputElement | StaticSelectElement
    if departments:
        element = StaticSelectElement(
            action_id="department",
            placeholder="Department",
            options=[Option(value=c.value, label=_clip(c.label, 75)) for c in departments[:100]],
        )
    else:
        element = PlainTextInputElement(action_id="department", max_length=DEPARTMENT_MAX)
    inputs: list[Block] = [InputBlock(block_id="department", label="Department", element=element)]
    return _lead_modal(DEPARTMENT_VIEW, "Hand to a department", "Hand over", lead_name, private_metadata, inputs)


@dataclass
class DigestData:
    """One owner's digest, already read: leads most overdue first."""

    day_label: str  # "Thu 26 Nov"
    leads: list[Lead]
    statuses: dict[str, StatusOption | None]  # ref -> status option
    total: int
    overdue: int
    due_today: int
    per_backend: dict[str, int]
    now: datetime
    unreadable: list[str] = field(default_factory=list)
    notice: str | None = None


def digest_message(digest: DigestData) -> list[dict[str, Any]]:
    """The daily DM: counts, then each due lead with Done / Snooze to tomorrow / Add note."""
    counts = [f":alarm_clock: *{digest.overdue}* overdue", f"*{digest.due_today}* due today"]
    counts += [f"{escape(backend)} {n}" for backend, n in digest.per_backend.items()]
    blocks: list[Block] = [
        HeaderBlock(text=f"Follow-ups for {digest.day_label}"),
        ContextBlock(elements=[MarkdownTextObject(text=" · ".join(counts))]),
    ]
    if digest.notice:
        blocks.append(ContextBlock(block_id="notice", elements=[MarkdownTextObject(text=_clip(digest.notice, 300))]))
    for why in digest.unreadable:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"{ERROR_MARK} Could not read {_text(why, 250)}")])
        )
    if not digest.leads:
        blocks.append(SectionBlock(text="Nothing left for today. :tada:"))
    for lead in digest.leads:
        parts = [
            f"*{_text(lead.name, 100)}* {_code(lead.ref)}",
            _status_text(digest.statuses.get(lead.ref), lead.status),
        ]
        if lead.next_follow_up:
            late = " :alarm_clock: *overdue*" if lead.next_follow_up < digest.now else ""
            parts.append(f"due {slack_time(lead.next_follow_up)}{late}")
        blocks.append(SectionBlock(text=MarkdownTextObject(text=" · ".join(parts))))
        blocks.append(
            ActionsBlock(
                block_id=f"digest:{lead.ref}",
                elements=[
                    ButtonElement(text="Done", action_id=LOG_FOLLOW_UP, value=lead.ref, style="primary"),
                    ButtonElement(text="Snooze to tomorrow", action_id=DIGEST_SNOOZE, value=lead.ref),
                    ButtonElement(text="Add note", action_id=ADD_NOTE, value=lead.ref),
                ],
            )
        )
    if digest.total > len(digest.leads):
        more = f"{digest.total - len(digest.leads)} more — `/lead list mine due`"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    return [b.to_dict() for b in blocks]


@dataclass
class HomeLead:
    lead: Lead
    status: StatusOption | None
    statuses: list[StatusOption]


@dataclass
class HomeData:
    """What one user's App Home shows, already read from the backends."""

    leads: list[HomeLead]  # open leads, due and overdue first
    total: int  # open leads in all, which may be more than were read
    counts: dict[str, int]  # status label -> open leads in it, of those read
    links: list[tuple[str, str]]  # (backend, staff ID)
    assignment_dms: bool
    now: datetime
    reminders: str = "on at 09:00"
    unreadable: list[str] = field(default_factory=list)  # "backend: why"
    notice: str | None = None  # what just happened, or what went wrong
    shown: int = 15
    query: str | None = None  # what the search box looked for, if anything
    matches: list[HomeLead] = field(default_factory=list)  # its best matches, best first
    matches_total: int = 0
    match_notes: list[str] = field(default_factory=list)  # backends that could not answer it, and why


def _home_row(item: HomeLead, now: datetime) -> list[Block]:
    """A lead on the App Home: one line, and the card's buttons."""
    lead = item.lead
    parts = [f"*{_text(lead.name, 100)}* {_code(lead.ref)}", _status_text(item.status, lead.status)]
    if lead.next_follow_up:
        flag = " :alarm_clock: *overdue*" if lead.next_follow_up <= now else ""
        parts.append(f"next {slack_time(lead.next_follow_up)}{flag}")
    return [
        SectionBlock(text=MarkdownTextObject(text=" · ".join(parts))),
        ActionsBlock(
            block_id=f"card:{lead.ref}",
            elements=[
                ButtonElement(text="Log follow-up", action_id=LOG_FOLLOW_UP, value=lead.ref, style="primary"),
                ButtonElement(text="Add note", action_id=ADD_NOTE, value=lead.ref),
                *_status_select(lead, item.statuses, item.status),
                UserSelectElement(action_id=ASSIGN_TO, placeholder="Reassign…"),
            ],
        ),
    ]


def _home_matches(home: HomeData) -> list[Block]:
    query = _text(home.query or "", 100)
    found: list[Block] = [DividerBlock(), SectionBlock(text=MarkdownTextObject(text=f"*Leads matching “{query}”*"))]
    if not home.matches:
        found.append(ContextBlock(elements=[MarkdownTextObject(text="No lead matches that.")]))
    for item in home.matches:
        found += _home_row(item, home.now)
    if home.matches_total > len(home.matches):
        more = f"{home.matches_total - len(home.matches)} more — `/lead find {query}`"
        found.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    for note in home.match_notes:
        found.append(ContextBlock(elements=[MarkdownTextObject(text=_text(note, 250))]))
    return found


def home_view(home: HomeData) -> dict[str, Any]:
    due = [h for h in home.leads if h.lead.next_follow_up and h.lead.next_follow_up <= home.now]
    summary = [f"*{home.total}* open"]
    if due:
        summary.append(f":alarm_clock: *{len(due)}* due or overdue")
    summary += [f"{escape(label)} {n}" for label, n in home.counts.items()]
    blocks: list[Block] = [
        HeaderBlock(text="Your leads"),
        ContextBlock(elements=[MarkdownTextObject(text=" · ".join(summary))]),
        ActionsBlock(block_id="home", elements=[ButtonElement(text="Refresh", action_id=HOME_REFRESH, value="home")]),
    ]
    blocks.append(
        InputBlock(
            block_id="home_search",
            label="Find a lead",
            optional=True,
            dispatch_action=True,
            element=PlainTextInputElement(
                action_id=HOME_SEARCH,
                placeholder="Part of a name, an email, a phone or a company, then Enter",
                max_length=200,
                dispatch_action_config={"trigger_actions_on": ["on_enter_pressed"]},
            ),
        )
    )
    if home.notice:
        blocks.append(ContextBlock(block_id="notice", elements=[MarkdownTextObject(text=_clip(home.notice, 300))]))
    for why in home.unreadable:
        text = f"{ERROR_MARK} Could not read {_text(why, 250)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))
    if home.query is not None:
        blocks += _home_matches(home)
    blocks.append(DividerBlock())
    if not home.leads:
        blocks.append(SectionBlock(text="Nothing open is yours right now. `/lead list` shows everyone's leads."))
    for item in home.leads[: home.shown]:
        blocks += _home_row(item, home.now)
    if home.total > home.shown:
        more = f"{home.total - min(home.shown, len(home.leads))} more — `/lead list mine`"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    blocks.append(DividerBlock())
    links = ", ".join(f"{_code(staff)} in {escape(backend)}" for backend, staff in home.links)
    lines = [
        "*Linked as* " + (links or "nobody yet: an admin can run `/lead link @you STAFF_ID`"),
        "*Assignment DMs* " + ("on · `/lead notify off`" if home.assignment_dms else "off · `/lead notify on`"),
        f"*Daily follow-up digest* {home.reminders} · `/lead remind on|off|at HH:MM|now`",
    ]
    blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(lines))))
    # The search stays shown while its results are worked on: each press on the tab redraws it.
    metadata = json.dumps({"q": home.query}) if home.query is not None else None
    return View(type="home", blocks=blocks, private_metadata=metadata).to_dict()
