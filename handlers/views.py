"""Modal submissions. Field errors go back in the ack; the write runs after it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond

from handlers import blocks, said
from handlers.context import Deps, MessageAt, Reply
from handlers.digests import redraw_digest
from handlers.edits import checked_edit
from handlers.home import HomeResponder
from handlers.payloads import http_url, mapping_of, slack_id, slack_ts, text_of
from handlers.render import escape
from services.audit import Actor
from services.contact import normalize_email, normalize_phone
from services.errors import LeadError
from services.models import EDITABLE_FIELDS, NOTE_MAX, Deal, Lead, NewLead, too_long, validated

log = logging.getLogger("leadbot")


@dataclass
class NewLeadForm:
    lead: NewLead | None
    owner_user: str | None
    backend: str | None
    errors: dict[str, str]


# Reading a submitted form: Leadbot's own modals, but a forged payload can put anything anywhere,
# so each field is read as the type its element gives, and anything else reads as not given.


def _values(view: dict[str, Any]) -> dict[str, Any]:
    return mapping_of(mapping_of(view.get("state")).get("values"))


def _value(values: dict[str, Any], name: str) -> Any:
    """The input's value as Slack sends it (block and action ids are both ``name`` in Leadbot's modals)."""
    element = mapping_of(mapping_of(values.get(name)).get(name))
    for key in ("value", "selected_user", "selected_date_time", "selected_date"):
        if element.get(key) is not None:
            return element[key]
    return mapping_of(element.get("selected_option")).get("value")


def _text(values: dict[str, Any], name: str) -> str:
    return (text_of(_value(values, name)) or "").strip()


LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
UNREADABLE = "Pick the date and time again."


def _moment(values: dict[str, Any], name: str) -> tuple[datetime | None, bool]:
    """A datetimepicker's choice (Unix seconds) and whether it could be read at all."""
    raw = _value(values, name)
    if raw is None:
        return None, True
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= LATEST:
        return None, False
    return datetime.fromtimestamp(raw, UTC), True


def read_new_lead_form(view: dict[str, Any], deps: Deps, now: datetime) -> NewLeadForm:
    """Validate the New lead modal without I/O, so errors can go back in the ack."""
    values = _values(view)
    text = {name: _text(values, name) for name in ("name", "email", "phone", "lead_for", "type", "source", "note")}
    errors: dict[str, str] = {}
    email = phone = None
    if not text["name"]:
        errors["name"] = "Give the lead a name."
    if text["email"]:
        try:
            email = normalize_email(text["email"])
        except LeadError as exc:
            errors["email"] = _field_error(exc)
    if text["phone"]:
        try:
            phone = normalize_phone(text["phone"], deps.phone_region)
        except LeadError as exc:
            errors["phone"] = _field_error(exc)
    if not text["email"] and not text["phone"]:
        errors["email"] = "Give an email or a phone number."
    permalink = text_of(_metadata(view).get("permalink"))
    room = NOTE_MAX - (len(f"From Slack: {permalink}\n\n") if permalink else 0)  # the link is the note's start
    if len(text["note"]) > room:
        errors["note"] = _field_error(too_long("note", text["note"], room))
    next_at, readable = _moment(values, "next")
    if not readable:
        errors["next"] = UNREADABLE
    elif next_at is not None and next_at <= now:
        errors["next"] = "The next follow-up must be in the future."
    backend = _text(values, "backend") or None
    owner = _text(values, "owner") or None
    if owner:
        channel = slack_id(_metadata(view).get("channel"))
        backends = deps.service.backends
        try:
            name = (backends.get(backend) if backend else backends.for_channel(channel)).name
        except LeadError as exc:
            errors["backend"] = _field_error(exc)
        else:
            if deps.people.staff_id(owner, name) is None:
                errors["owner"] = f"They are not linked in {name} yet; an admin can run /lead link."
    if errors:
        return NewLeadForm(None, None, backend, errors)
    try:
        lead = validated(
            NewLead,
            name=text["name"],
            email=email,
            phone=phone,
            lead_for=text["lead_for"] or None,
            type=text["type"] or None,
            source=text["source"] or None,
            status=_text(values, "status") or None,
            next_follow_up=next_at,
            note=text["note"] or None,
        )
    except LeadError as exc:
        return NewLeadForm(None, None, backend, {exc.field if exc.field in text else "name": _field_error(exc)})
    return NewLeadForm(lead, owner, backend, {})


def open_new_lead_modal(
    deps: Deps,
    *,
    trigger_id: str,
    channel: str | None,
    response_url: str | None,
    initial: dict[str, str] | None = None,
    message: MessageAt | None = None,
    permalink: str | None = None,
) -> None:
    """The New lead modal; ``message`` and ``permalink``: the Slack message the lead is made from."""
    backends = deps.service.backends
    default = backends.for_channel(channel)
    others = [b for b in backends if b is not default]
    metadata: dict[str, Any] = {"channel": channel, "response_url": response_url}
    if message is not None:
        metadata |= {"ts": message.ts, "permalink": permalink}
    view = blocks.new_lead_modal(
        statuses=default.statuses(),
        backends=[(b.name, b.title) for b in [default, *others]],
        private_metadata=json.dumps(metadata),
        initial=initial,
        from_message=permalink,
    )
    deps.client.views_open(trigger_id=trigger_id, view=view)


def _field_error(exc: LeadError) -> str:
    """A domain error as a modal shows it under a field: plain text, at most 150 characters."""
    text = exc.message
    return (text[:1].upper() + text[1:])[:150]


def create_lead(deps: Deps, view: dict[str, Any], user: str, channel: str | None) -> Reply | None:
    form = read_new_lead_form(view, deps, deps.service.clock())
    if form.lead is None or not deps.claims.claim(f"view:{view['id']}"):
        return None  # errors went back in the ack; a resubmitted view was handled already
    metadata = _metadata(view)
    lead = form.lead
    if text_of(metadata.get("permalink")):
        first = f"From Slack: {metadata['permalink']}"
        lead = lead.model_copy(update={"note": f"{first}\n\n{lead.note}" if lead.note else first})
    created = deps.service.create(
        deps.actor(user), lead, owner_user=form.owner_user, backend=form.backend, channel=channel
    )
    return Reply(
        text=f"New lead {escape(created.name)} ({created.ref})",
        blocks=deps.channel_card(created, said.created(user), channel=channel),
        in_channel=True,
    )


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The view's private_metadata: Leadbot's own JSON, but a forged payload can carry anything."""
    try:
        found = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def new_lead_submitted(deps: Deps) -> Callable[..., None]:
    def submitted(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
        form = read_new_lead_form(view, deps, deps.service.clock())
        if form.errors:
            ack(response_action="errors", errors=form.errors)
            return
        ack()
        metadata = _metadata(view)
        response_url = http_url(metadata.get("response_url"))
        if not response_url:
            log.warning("New lead modal submitted without a response_url; nowhere to post the card")
            return
        respond = Respond(response_url=response_url)
        channel, ts = slack_id(metadata.get("channel")), slack_ts(metadata.get("ts"))
        at = MessageAt(channel, ts) if channel and ts else None
        deps.after_ack(
            respond,
            lambda: create_lead(deps, view, body["user"]["id"], channel),
            at=at,
            from_message=at is not None,
        )

    return submitted


# -- Log follow-up and Add note, opened from a card ------------------------------------------

SKEW = timedelta(minutes=2)  # clocks differ a little; "done at" a minute ahead is not a mistake


def read_follow_up_form(view: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    values = _values(view)
    notes = _text(values, "notes") or None
    done_at, done_readable = _moment(values, "done_at")
    done_at = done_at or now
    next_at, next_readable = _moment(values, "next")
    errors = {}
    if notes and len(notes) > NOTE_MAX:
        errors["notes"] = _field_error(too_long("notes", notes, NOTE_MAX))
    if not done_readable:
        errors["done_at"] = UNREADABLE
    elif done_at > now + SKEW:
        errors["done_at"] = "A follow-up you log has already happened: pick a time up to now."
    if not next_readable:
        errors["next"] = UNREADABLE
    elif next_at is not None and next_at <= now:
        errors["next"] = "The next follow-up must be in the future."
    return {"notes": notes, "done_at": done_at, "next_follow_up": next_at}, errors


def read_note_form(view: dict[str, Any], now: datetime) -> tuple[str, dict[str, str]]:
    text = _text(_values(view), "text")
    if not text:
        return text, {"text": "Write the note first."}
    if len(text) > NOTE_MAX:
        return text, {"text": _field_error(too_long("text", text, NOTE_MAX))}
    return text, {}


def read_status_form(view: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    values = _values(view)
    reason = _text(values, "reason")
    metadata = _metadata(view)
    status = text_of(metadata.get("status"))
    if not status:
        return {}, {"reason": "This form is out of date: choose the status again on the card."}
    if not reason:
        return {}, {"reason": "Choose a reason."}
    form = {"status": status, "label": text_of(metadata.get("status_label")), "reason": reason}
    return {**form, "sub_status": _text(values, "sub_status") or None}, {}


DEAL_AMOUNT: TypeAdapter[Decimal] = TypeAdapter(Annotated[Decimal, Deal.model_fields["amount"]])


def read_deal_form(view: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    values = _values(view)
    raw = _text(values, "amount")
    try:
        amount = Decimal(raw)
        if not amount.is_finite() or amount < 0:
            raise InvalidOperation
    except InvalidOperation:
        return {}, {"amount": "Give the deal's amount as a number, e.g. 150000 or 2500.50."}
    try:
        DEAL_AMOUNT.validate_python(amount)
    except ValidationError:
        # Checked here so it comes back on the field: after the ack it was pydantic's words in a warning.
        return {}, {"amount": "Keep the amount to 15 digits or fewer, e.g. 150000 or 2500.50."}
    start, end = _day(_value(values, "start")), _day(_value(values, "end"))
    if start and end and end < start:
        return {}, {"end": "A deal cannot close before it starts."}
    text = {k: (_text(values, k) or None) for k in ("name", "status", "note")}
    return {"amount": amount, "start": start, "end": end, **text}, {}


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def edit_form_reader(deps: Deps) -> Callable[[dict[str, Any], datetime], tuple[dict[str, str], dict[str, str]]]:
    """Read the Edit form: the fields that differ from what it opened with, checked as for a new lead."""

    def read(view: dict[str, Any], now: datetime) -> tuple[dict[str, str], dict[str, str]]:
        values = _values(view)
        was = mapping_of(_metadata(view).get("was"))
        changes: dict[str, str] = {}
        errors: dict[str, str] = {}
        for word in EDITABLE_FIELDS:
            if word not in was:
                continue  # not on this form: the backend cannot change it
            typed = _text(values, word)
            before = text_of(was.get(word)) or ""
            if typed == before:
                continue
            if not typed:
                errors[word] = "Leadbot cannot empty a field: give the new value."
                continue
            try:
                changes |= checked_edit({word: typed}, deps.phone_region)
            except LeadError as exc:
                errors[word] = _field_error(exc)
        if not errors and not changes:
            errors[next(iter(was), "name")] = "Nothing was changed: edit a field, or close the form."
        return changes, errors

    return read


def add_to_lead_submitted(deps: Deps) -> Callable[..., None]:
    """The lead picked for a message: a reference, or words that find exactly one lead; else said in the ack."""

    def pick(view: dict[str, Any], user: str) -> tuple[str | None, str | None]:
        typed = _text(_values(view), "lead")
        if not typed:
            return None, "Give the lead's reference or some words of it."
        service = deps.service
        if REF_LIKE.match(typed):
            try:
                return service.get(typed).ref, None
            except LeadError as exc:
                if ":" in typed:
                    return None, _field_error(exc)
        try:
            found = service.search_across(user, text=typed, limit=5)
        except LeadError as exc:
            return None, _field_error(exc)
        if not found.leads:
            return None, f"No lead matches “{typed[:60]}”; try its reference."
        if len(found.leads) > 1 and found.total > 1:
            some = ", ".join(f"{lead.ref} {lead.name[:20]}" for lead in found.leads[:3])
            return None, f"{found.total} leads match: {some}… give the reference."[:150]
        return found.leads[0].ref, None

    def submitted(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
        user = body["user"]["id"]
        ref, error = pick(view, user)
        if error:
            ack(response_action="errors", errors={"lead": error})
            return
        ack()
        metadata = _metadata(view)
        response_url = http_url(metadata.get("response_url"))
        if not response_url or ref is None:
            return
        text = text_of(metadata.get("text")) or ""
        link = http_url(metadata.get("permalink"))
        note = (f"{text}\n\nFrom Slack: {link}" if link else text).strip() or "(a Slack message)"

        def work() -> Reply | None:
            if not deps.claims.claim(f"view:{view['id']}"):
                return None
            lead = deps.service.add_note(deps.actor(user), ref, note[: blocks.NOTE_LIMIT])
            return Reply(text=f"{lead.ref}: note added", blocks=deps.private_card(lead, said.noted(user), user=user))

        deps.after_ack(Respond(response_url=response_url), work)

    return submitted


REF_LIKE = re.compile(r"^(?:[A-Za-z]+:)?[A-Za-z0-9+_.\-]{1,64}$")


def read_department_form(view: dict[str, Any], now: datetime) -> tuple[str, dict[str, str]]:
    name = _text(_values(view), "department")
    if not name:
        return name, {"department": "Choose or type the department."}
    return name, {}


def card_modal_submitted(
    deps: Deps,
    read: Callable[[dict[str, Any], datetime], tuple[Any, dict[str, str]]],
    apply: Callable[[Actor, str, Any], Lead],
    describe: Callable[[str, Any], str],
) -> Callable[..., None]:
    """A modal opened from a card: field errors in the ack; after it, the write and the card updated in place."""

    def submitted(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
        form, errors = read(view, deps.service.clock())
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        metadata = _metadata(view)
        user = body["user"]["id"]
        on_home = bool(metadata.get("home"))
        ref, response_url = text_of(metadata.get("ref")), http_url(metadata.get("response_url"))
        if not ref or not (response_url or on_home):
            log.warning("%s submitted without the card it belongs to", view.get("callback_id"))
            return

        def work() -> Reply | None:
            if not deps.claims.claim(f"view:{view['id']}"):
                return None  # a resubmitted view was handled already
            lead = apply(deps.actor(user), ref, form)
            action = describe(user, form)
            if metadata.get("digest"):
                digest = redraw_digest(deps, user, f"{lead.ref}: {action}")
                return Reply(text=f"{lead.ref}: {action}", blocks=digest, replace_original=True)
            card = deps.channel_card(lead, action, channel=slack_id(metadata.get("channel")))
            return Reply(text=f"{lead.ref}: {action}", blocks=card, replace_original=True)

        respond = HomeResponder(deps, user) if on_home else Respond(response_url=response_url)
        channel, ts = slack_id(metadata.get("channel")), slack_ts(metadata.get("ts"))
        at = MessageAt(channel, ts) if channel and ts else None
        deps.after_ack(respond, work, card=True, at=at, home=on_home)

    return submitted


def _follow_up_done(user: str, fields: dict[str, Any]) -> str:
    return said.followed_up(user, fields["next_follow_up"])


def _deal_added(user: str, form: dict[str, Any]) -> str:
    return said.deal_added(user, form["amount"], form.get("name"), form.get("end"))


def _status_changed(user: str, form: dict[str, Any]) -> str:
    return said.status_set(user, str(form.get("label") or form["status"]), form.get("sub_status"))


def register(app: App, deps: Deps) -> None:
    app.view(blocks.NEW_LEAD_VIEW)(new_lead_submitted(deps))
    service = deps.service
    app.view(blocks.FOLLOW_UP_VIEW)(
        card_modal_submitted(
            deps,
            read_follow_up_form,
            lambda actor, ref, fields: service.log_follow_up(actor, ref, **fields),
            _follow_up_done,
        )
    )
    app.view(blocks.STATUS_VIEW)(
        card_modal_submitted(
            deps,
            read_status_form,
            lambda actor, ref, form: service.change_status(
                actor, ref, form["status"], reason=form["reason"], sub_status=form["sub_status"]
            ),
            _status_changed,
        )
    )
    app.view(blocks.DEAL_VIEW)(
        card_modal_submitted(
            deps,
            read_deal_form,
            lambda actor, ref, form: service.add_deal(actor, ref, **form),
            _deal_added,
        )
    )
    app.view(blocks.DEPARTMENT_VIEW)(
        card_modal_submitted(
            deps,
            read_department_form,
            lambda actor, ref, name: service.set_department(actor, ref, name),
            said.department_set,
        )
    )
    app.view(blocks.ADD_TO_LEAD_VIEW)(add_to_lead_submitted(deps))
    app.view(blocks.EDIT_VIEW)(
        card_modal_submitted(
            deps,
            edit_form_reader(deps),
            lambda actor, ref, changes: service.edit(actor, ref, changes),
            lambda user, changes: said.edited(user, [w for w in EDITABLE_FIELDS if w in changes]),
        )
    )
    app.view(blocks.NOTE_VIEW)(
        card_modal_submitted(
            deps,
            read_note_form,
            lambda actor, ref, text: service.add_note(actor, ref, text),
            lambda user, _: said.noted(user),
        )
    )
