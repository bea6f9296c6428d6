"""Buttons on cards, lists and digests. Each acks at once and works after the ack."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond

from handlers import blocks, said
from handlers.context import Deps, MessageAt, Reply
from handlers.digests import redraw_digest
from handlers.home import HomeResponder, from_home, home_query
from handlers.list_commands import list_page
from handlers.payloads import mapping_of, slack_id, text_of
from handlers.render import escape, fact
from handlers.slackio import post_message
from services.contact import normalize_email, normalize_phone
from services.errors import BackendGone, Code, Invalid, LeadGone, NoChange, NotAllowed, Unsupported
from services.models import EDITABLE_FIELDS, Lead, NewLead, StatusModel


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return body["actions"][0]


def _user(body: dict[str, Any]) -> str:
    return body["user"]["id"]


def _card_ref(body: dict[str, Any]) -> str:
    """The lead a card's element acts on: a button's value, else the actions block's ``card:REF`` id."""
    action = _action(body)
    if text_of(action.get("value")):
        return action["value"]
    block_id = action.get("block_id") or ""
    for prefix in ("card:", "digest:"):
        if block_id.startswith(prefix):
            return block_id.removeprefix(prefix)
    raise Invalid("this card is out of date; run {command} again", command=Code("/lead show REF"))


def _channel(body: dict[str, Any]) -> str | None:
    return slack_id(mapping_of(body.get("channel")).get("id"))


def from_digest(body: dict[str, Any]) -> bool:
    return (_action(body).get("block_id") or "").startswith("digest:")


def _card_update(deps: Deps, body: dict[str, Any], lead: Lead, action: str) -> Reply:
    """The card redrawn in place (a digest is redrawn as a digest)."""
    if from_digest(body):
        return Reply(
            text=f"{lead.ref}: {action}", blocks=redraw_digest(deps, _user(body), action), replace_original=True
        )
    card = card_where_pressed(deps, body, lead, action)
    return Reply(text=f"{lead.ref}: {action}", blocks=card, replace_original=True)


def card_where_pressed(deps: Deps, body: dict[str, Any], lead: Lead, action: str | None = None, **options: Any):
    """The card redrawn where it was pressed: an ephemeral one or a DM is the presser's, else the channel's."""
    container = mapping_of(body.get("container"))
    channel = _channel(body)
    if container.get("is_ephemeral") or (channel or "").startswith("D"):
        return deps.private_card(lead, action, user=_user(body), **options)
    return deps.channel_card(lead, action, channel=channel, **options)


def show_contact(deps: Deps, body: dict[str, Any]) -> Reply:
    """The email and phone of a card's lead, to the presser alone, if they are linked on its backend."""
    lead = deps.service.get(text_of(_action(body).get("value")) or "")
    if not deps.linked(_user(body), lead.backend):
        raise NotAllowed(
            "contact details are shown to staff linked in {backend}; ask a Leadbot admin to link you",
            backend=lead.backend,
        )
    shown = " · ".join(escape(c) for c in (lead.email, lead.phone) if c) or "_none recorded_"
    return Reply(text=f"{escape(lead.name)} ({lead.ref}): {shown}")


def _press_id(body: dict[str, Any]) -> str:
    """What makes a press one press: its trigger_id (a Slack retry carries the same), else its time."""
    return str(body.get("trigger_id") or _action(body).get("action_ts"))


def _first_time(deps: Deps, body: dict[str, Any]) -> bool:
    # A replayed payload (a Slack retry) must not act, or report, twice.
    return deps.claims.claim(f"action:{_press_id(body)}")


def assign_me(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    user = _user(body)
    lead = deps.service.assign(deps.actor(user), _card_ref(body), user)
    return _card_update(deps, body, lead, said.assigned(user, user))


def create_anyway(deps: Deps, body: dict[str, Any]) -> Reply | None:
    """The lead a duplicate warning held back, made as asked (its value is the create; read as untrusted)."""
    if not _first_time(deps, body):
        return None
    stale = Invalid("this warning is out of date; create the lead again with {command}", command=Code("/lead new"))
    try:
        again = mapping_of(json.loads(text_of(_action(body).get("value")) or ""))
        lead = NewLead.model_validate(again.get("lead"))
    except (ValueError, RecursionError, ValidationError):
        raise stale from None
    owner, backend, key = slack_id(again.get("owner")), text_of(again.get("backend")), text_of(again.get("key"))
    if not backend or not key:
        raise stale
    if not deps.claims.claim(f"create_anyway:{key[:40]}"):
        raise NoChange("this lead was created already from this warning")
    lead = lead.model_copy(
        update={
            "email": normalize_email(lead.email) if lead.email else None,
            "phone": normalize_phone(lead.phone) if lead.phone else None,
            "receipt": None,
            "owner": None,
        }
    )
    user = _user(body)
    created = deps.service.create(deps.actor(user), lead, owner_user=owner, backend=backend, allow_duplicate=True)
    return Reply(
        text=f"New lead {escape(created.name)} ({created.ref})",
        blocks=deps.channel_card(created, said.created(user), channel=_channel(body)),
        in_channel=True,
    )


def assign_to(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    user, assignee = _user(body), text_of(_action(body).get("selected_user"))
    if not assignee:
        return None  # the picker was cleared: nothing to do
    lead = deps.service.assign(deps.actor(user), _card_ref(body), assignee)
    return _card_update(deps, body, lead, said.assigned(user, assignee))


def ask_owner(deps: Deps, body: dict[str, Any]) -> Reply | None:
    """The presser asks a lead's owner for it: a DM to the owner with Give it to them / Keep it."""
    if not _first_time(deps, body):
        return None
    user = _user(body)
    lead = deps.service.get(_card_ref(body))
    owner = deps.people.slack_user_for(lead.backend, lead.owner) if lead.owner else None
    if owner is None:
        raise NotAllowed("{ref} has nobody on Slack to ask for it; ask a Leadbot admin", ref=Code(lead.ref))
    if owner == user:
        raise NoChange("nothing to ask: {ref} is yours already", ref=Code(lead.ref))
    text = f"<@{user}> asks for your lead *{escape(lead.name)}* ({lead.ref}). Give it to them?"
    once = f"ask_owner:{_press_id(body)}"
    post_message(deps, owner, text, blocks.lead_request(text, lead.ref, user), what="request for a lead", once=once)
    return Reply(text=f"Asked <@{owner}> for {escape(lead.name)} ({lead.ref}): their answer comes as a DM.")


def _request(body: dict[str, Any]) -> tuple[str, str]:
    """The lead and the person a Give / Keep button answers (its value, read as untrusted)."""
    ref, _, requester = (text_of(_action(body).get("value")) or "").rpartition("|")
    person = slack_id(requester)
    if not ref or not person:
        raise Invalid("this request is out of date; they can ask again from the lead's card")
    return ref, person


def give_lead(deps: Deps, body: dict[str, Any]) -> Reply | None:
    """The owner gives the lead to whoever asked: assigned as by the owner (the rule still applies)."""
    if not _first_time(deps, body):
        return None
    ref, requester = _request(body)
    lead = deps.service.assign(deps.actor(_user(body)), ref, requester)  # they are told by the assignment DM
    text = f"You gave *{escape(lead.name)}* ({lead.ref}) to <@{requester}>."
    return Reply(text=text, blocks=blocks.text_blocks(text), replace_original=True)


def keep_lead(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    ref, requester = _request(body)
    user = _user(body)
    lead = deps.service.get(ref)
    told = f"<@{user}> is keeping *{escape(lead.name)}* ({lead.ref}) for now."
    once = f"keep_lead:{_press_id(body)}"
    post_message(deps, requester, told, blocks.text_blocks(told), what="answer to a request for a lead", once=once)
    text = f"You kept *{escape(lead.name)}* ({lead.ref}); <@{requester}> was told."
    return Reply(text=text, blocks=blocks.text_blocks(text), replace_original=True)


def refresh(deps: Deps, body: dict[str, Any]) -> Reply:
    lead = deps.service.get_for_card(_card_ref(body))
    card = card_where_pressed(deps, body, lead)
    return Reply(text=f"{escape(lead.name)} ({lead.ref})", blocks=card, replace_original=True)


def open_card(deps: Deps, body: dict[str, Any]) -> Reply:
    lead = deps.service.get_for_card(text_of(_action(body).get("value")) or "")
    return Reply(text=f"{escape(lead.name)} ({lead.ref})", blocks=deps.private_card(lead, user=_user(body)))


def turn_page(deps: Deps, body: dict[str, Any]) -> Reply:
    try:
        state = json.loads(text_of(_action(body).get("value")) or "")
        if not isinstance(state, dict):
            raise ValueError
    except (ValueError, RecursionError):
        raise Invalid("this list is out of date; run {command} again", command=Code("/lead list")) from None
    reply = list_page(deps, _user(body), _channel(body), state)
    reply.replace_original = True
    return reply


def _modal_metadata(body: dict[str, Any], ref: str | None = None, **extra: Any) -> str:
    """What the submission needs to update this very card and reply in its thread."""
    at = MessageAt.of_action(body)
    return json.dumps(
        {
            **extra,
            "ref": ref or _card_ref(body),
            "response_url": body.get("response_url"),
            "channel": _channel(body),
            "ts": at.ts if at else None,
            "home": from_home(body),
            "digest": from_digest(body),
        }
    )


def _may_write(deps: Deps, body: dict[str, Any], lead: Lead) -> None:
    """Refuse before a form opens, not after it is filled in: only people linked on its backend write to a lead."""
    deps.people.require_link(deps.actor(_user(body)), deps.service.backends.get(lead.backend))


def open_follow_up(deps: Deps, body: dict[str, Any]) -> None:
    if not _first_time(deps, body):
        return  # Slack's retry of this press: its trigger_id opened the modal already (and opens no second)
    lead = deps.service.get(_card_ref(body))
    _may_write(deps, body, lead)
    view = blocks.follow_up_modal(lead_name=lead.name, private_metadata=_modal_metadata(body), now=deps.service.clock())
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_edit(deps: Deps, body: dict[str, Any]) -> None:
    """The Edit form with the lead's values now, for the fields its backend can change."""
    ref = _card_ref(body)
    backend, _ = deps.service.backends.resolve(ref)
    editable = backend.capabilities.editable
    if not editable:
        raise Unsupported("{backend} cannot change a lead's details from Leadbot", backend=backend.title)
    deps.people.require_link(deps.actor(_user(body)), backend)  # told before the form, not after
    lead = deps.service.get(ref)
    current = {w: getattr(lead, EDITABLE_FIELDS[w]) for w in editable}
    view = blocks.edit_modal(
        lead_name=lead.name, current=current, private_metadata=_modal_metadata(body, lead.ref, was=current)
    )
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_note(deps: Deps, body: dict[str, Any]) -> None:
    if not _first_time(deps, body):
        return  # Slack's retry of this press: its trigger_id opened the modal already (and opens no second)
    lead = deps.service.get(_card_ref(body))
    _may_write(deps, body, lead)
    deps.client.views_open(
        trigger_id=body["trigger_id"],
        view=blocks.note_modal(lead_name=lead.name, private_metadata=_modal_metadata(body)),
    )


def set_status(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    chosen = text_of(mapping_of(_action(body).get("selected_option")).get("value")) or ""
    ref, _, status = chosen.rpartition("|")
    if not ref:
        raise Invalid("this card is out of date; press Refresh and choose again")
    user = _user(body)
    backend = deps.service.backends.get(ref.partition(":")[0]) if ":" in ref else None
    if backend is not None and backend.capabilities.status_model == StatusModel.WITH_REASONS:
        return open_status_modal(deps, body, ref, status)
    lead = deps.service.change_status(deps.actor(user), ref, status)
    label = deps.service.backends.get(lead.backend).status_option(status).label
    return _card_update(deps, body, lead, said.status_set(user, label))


def open_status_modal(deps: Deps, body: dict[str, Any], ref: str, status: str) -> None:
    """The backend wants a reason (and maybe a sub-status): ask for them, from its own lists."""
    lead = deps.service.get(ref)
    backend = deps.service.backends.get(lead.backend)
    option = backend.status_option(status)
    _may_write(deps, body, lead)
    if not option.open:
        deps.people.require_may_close(deps.actor(_user(body)), backend, lead.owner)
    if lead.status == option.value:
        raise NoChange("nothing changed: {ref} is already {status}", ref=Code(lead.ref), status=option.label)
    reasons = backend.reasons()
    if not reasons:
        raise Invalid(
            "{backend} has no reasons set up, and it needs one for a status change; ask its admin",
            backend=backend.title,
        )
    view = blocks.status_modal(
        lead_name=lead.name,
        status=option,
        reasons=reasons,
        sub_statuses=backend.sub_statuses(option.value),
        private_metadata=_modal_metadata(body, ref, status=option.value, status_label=option.label),
    )
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_deal(deps: Deps, body: dict[str, Any]) -> None:
    if not _first_time(deps, body):
        return  # Slack's retry of this press: its trigger_id opened the modal already (and opens no second)
    lead = deps.service.get(_card_ref(body))
    if not deps.service.backends.get(lead.backend).capabilities.deals:
        raise Invalid("{backend} has no deals", backend=deps.service.backends.get(lead.backend).title)
    _may_write(deps, body, lead)
    view = blocks.deal_modal(lead_name=lead.name, private_metadata=_modal_metadata(body))
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_department(deps: Deps, body: dict[str, Any]) -> None:
    if not _first_time(deps, body):
        return  # Slack's retry of this press: its trigger_id opened the modal already (and opens no second)
    lead = deps.service.get(_card_ref(body))
    backend = deps.service.backends.get(lead.backend)
    if not backend.capabilities.departments:
        raise Invalid("{backend} has no departments", backend=backend.title)
    _may_write(deps, body, lead)
    view = blocks.department_modal(
        lead_name=lead.name, private_metadata=_modal_metadata(body), departments=backend.departments()
    )
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def opportunities_page(deps: Deps, body: dict[str, Any]) -> Reply:
    """Previous / More under a card's opportunities: the card redrawn with that page."""
    try:
        state = json.loads(_action(body).get("value") or "")
        ref, page = str(state["ref"]), int(state["page"])
        if page < 1:
            raise ValueError
    except (ValueError, TypeError, KeyError):
        raise Invalid("this card is out of date; press Refresh") from None
    lead = deps.service.get(ref)
    return Reply(
        text=f"{escape(lead.name)} ({lead.ref})",
        blocks=card_where_pressed(deps, body, lead, opportunities_page=page),
        replace_original=True,
    )


def snooze(deps: Deps, body: dict[str, Any]) -> Reply | None:
    """Snooze to tomorrow: the next follow-up moves to tomorrow at the owner's reminder time."""
    if not _first_time(deps, body):
        return None
    user = _user(body)
    ref = _card_ref(body)
    # The owner's tomorrow, at their reminder time: a teammate snoozing it from another zone moves
    # it to when the owner starts the day, not to when the teammate does.
    current = deps.service.get(ref)
    owner = (deps.people.slack_user_for(current.backend, current.owner) if current.owner else None) or user
    deps.timezones.of(owner)  # their zone as Slack has it now (kept a day)
    when = deps.reminders.tomorrow_at(owner, deps.service.clock())
    lead = deps.service.reschedule(deps.actor(user), ref, when)
    return _card_update(deps, body, lead, said.snoozed(user, lead.ref, when))


ACTIONS: dict[str, Callable[[Deps, dict[str, Any]], Reply | None]] = MappingProxyType(
    {
        blocks.CONTACT: show_contact,
        blocks.ASSIGN_ME: assign_me,
        blocks.ASSIGN_TO: assign_to,
        blocks.LOG_FOLLOW_UP: open_follow_up,
        blocks.ADD_NOTE: open_note,
        blocks.SET_STATUS: set_status,
        blocks.REFRESH: refresh,
        blocks.OPEN: open_card,
        blocks.LIST_PAGE: turn_page,
        blocks.DIGEST_SNOOZE: snooze,
        blocks.ADD_DEAL: open_deal,
        blocks.SET_DEPARTMENT: open_department,
        blocks.OPPORTUNITIES_PAGE: opportunities_page,
        blocks.EDIT: open_edit,
        blocks.CREATE_ANYWAY: create_anyway,
        blocks.ASK_OWNER: ask_owner,
        blocks.GIVE_LEAD: give_lead,
        blocks.KEEP_LEAD: keep_lead,
    }
)


# Buttons that only show something (a modal, a redraw): a burst of presses is acted on once
# (handlers/presses.py); a modal is opened once per trigger_id besides (``_first_time``).
SHOWING_ACTIONS = frozenset(
    {
        blocks.CONTACT,
        blocks.LOG_FOLLOW_UP,
        blocks.ADD_NOTE,
        blocks.REFRESH,
        blocks.OPEN,
        blocks.LIST_PAGE,
        blocks.ADD_DEAL,
        blocks.SET_DEPARTMENT,
        blocks.OPPORTUNITIES_PAGE,
    }
)

# Buttons whose work opens a form (``views.open``), which must happen within the 3 s a trigger_id lives.
OPENING_A_FORM = frozenset({blocks.LOG_FOLLOW_UP, blocks.ADD_NOTE, blocks.ADD_DEAL, blocks.SET_DEPARTMENT, blocks.EDIT})


def opens_a_form(payload: Any) -> bool:
    """Whether this interaction's work opens a form: a button above, or a message shortcut (they all do)."""
    if not isinstance(payload, dict):
        return False
    if payload.get("type") in ("message_action", "shortcut"):
        return True
    actions = payload.get("actions") if payload.get("type") == "block_actions" else None
    return (
        isinstance(actions, list)
        and len(actions) == 1
        and isinstance(actions[0], dict)
        and actions[0].get("action_id") in OPENING_A_FORM
    )


# Actions on a lead card: if its lead (or backend) is gone, the card says so from then on.
CARD_ACTIONS = frozenset(
    {
        blocks.ASSIGN_ME,
        blocks.ASSIGN_TO,
        blocks.LOG_FOLLOW_UP,
        blocks.ADD_NOTE,
        blocks.SET_STATUS,
        blocks.REFRESH,
        blocks.DIGEST_SNOOZE,
        blocks.ADD_DEAL,
        blocks.SET_DEPARTMENT,
        blocks.OPPORTUNITIES_PAGE,
        blocks.EDIT,
    }
)


def stale_card(body: dict[str, Any], why: str) -> list[dict[str, Any]] | None:
    """The message as it was, without its buttons, and a line saying why it is out of date."""
    shown = (body.get("message") or {}).get("blocks")
    if not shown or not isinstance(shown, list):
        return None  # an ephemeral card: Slack does not send it back, so it cannot be redrawn
    kept = [
        b
        for b in shown
        if isinstance(b, dict) and b.get("type") != "actions" and not str(b.get("block_id", "")).startswith("stale")
    ]
    return [*kept, blocks.stale_notice(why)]


def _listener(deps: Deps, action_id: str, work: Callable[[Deps, dict[str, Any]], Reply | None]) -> Callable[..., None]:
    def card_work(body: dict[str, Any], respond: Callable[..., Any]) -> Reply | None:
        try:
            return work(deps, body)
        except (LeadGone, BackendGone) as exc:
            marked = stale_card(body, exc.render(fact))
            if marked is not None:
                respond(text=escape(exc.message), blocks=marked, replace_original=True)
            raise

    def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        if action_id in SHOWING_ACTIONS and not deps.presses.first_of_burst(body):
            return  # the same press again while the first is being shown
        home = from_home(body)
        reply_to = deps.responder(HomeResponder(deps, _user(body), home_query(body)) if home else respond)
        if action_id in CARD_ACTIONS:
            at = MessageAt.of_action(body)
            deps.after_ack(reply_to, lambda: card_work(body, reply_to), card=True, at=at, home=home)
        else:
            deps.after_ack(reply_to, lambda: work(deps, body), home=home)

    return listener


def register(app: App, deps: Deps) -> None:
    for action_id, work in ACTIONS.items():
        app.action(action_id)(_listener(deps, action_id, work))
