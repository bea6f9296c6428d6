"""Buttons on cards and lists. Each acks at once and works after the ack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers import blocks
from handlers.cards import card_blocks
from handlers.commands import list_page
from handlers.context import Deps, MessageAt, Reply
from handlers.digests import redraw_digest
from handlers.home import HomeResponder, from_home, refresh_homes
from handlers.notices import tell_new_owner
from services.errors import BackendGone, LeadError, LeadGone, NoChange
from services.models import Lead, StatusModel
from services.reminders import Reminders


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return body["actions"][0]


def _user(body: dict[str, Any]) -> str:
    return body["user"]["id"]


def _card_ref(body: dict[str, Any]) -> str:
    """The lead a card's element acts on: a button's value, else the actions block's ``card:REF`` id."""
    action = _action(body)
    if action.get("value"):
        return action["value"]
    block_id = action.get("block_id") or ""
    for prefix in ("card:", "digest:"):
        if block_id.startswith(prefix):
            return block_id.removeprefix(prefix)
    raise LeadError("this card is out of date; run `/lead show REF` again")


def from_digest(body: dict[str, Any]) -> bool:
    return (_action(body).get("block_id") or "").startswith("digest:")


def _card_update(deps: Deps, body: dict[str, Any], lead: Lead, action: str) -> Reply:
    """The card redrawn in place, and who did what said in its thread (a digest is redrawn as a digest)."""
    refresh_homes(deps, lead, _user(body), acted_on_home=from_home(body))
    if from_digest(body):
        return Reply(
            text=f"{lead.ref}: {action}", blocks=redraw_digest(deps, _user(body), action), replace_original=True
        )
    return Reply(
        text=f"{lead.ref}: {action}",
        blocks=card_blocks(deps.service, lead, last_action=action),
        replace_original=True,
        thread_at=MessageAt.of_action(body),
        thread_text=action,
    )


def _first_time(deps: Deps, body: dict[str, Any]) -> bool:
    # Keyed by trigger_id: a replayed payload (a Slack retry) must not act, or report, twice.
    return deps.service.claim(f"action:{body.get('trigger_id') or _action(body).get('action_ts')}")


def assign_me(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    user = _user(body)
    lead = deps.service.assign(deps.actor(user), _card_ref(body), user)
    return _card_update(deps, body, lead, f"<@{user}> took this lead")


def assign_to(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    user, assignee = _user(body), _action(body).get("selected_user")
    if not assignee:
        return None  # the picker was cleared: nothing to do
    lead = deps.service.assign(deps.actor(user), _card_ref(body), assignee)
    tell_new_owner(deps, lead, user)
    return _card_update(deps, body, lead, f"<@{user}> assigned this lead to <@{assignee}>")


def refresh(deps: Deps, body: dict[str, Any]) -> Reply:
    lead = deps.service.get(_card_ref(body))
    return Reply(text=f"{lead.name} ({lead.ref})", blocks=card_blocks(deps.service, lead), replace_original=True)


def open_card(deps: Deps, body: dict[str, Any]) -> Reply:
    lead = deps.service.get(_action(body)["value"])
    return Reply(text=f"{lead.name} ({lead.ref})", blocks=card_blocks(deps.service, lead))


def turn_page(deps: Deps, body: dict[str, Any]) -> Reply:
    try:
        state = json.loads(_action(body)["value"])
        if not isinstance(state, dict):
            raise ValueError
    except ValueError:
        raise LeadError("this list is out of date; run `/lead list` again") from None
    channel = (body.get("channel") or {}).get("id")
    reply = list_page(deps, _user(body), channel, state)
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
            "channel": (body.get("channel") or {}).get("id"),
            "ts": at.ts if at else None,
            "home": from_home(body),
            "digest": from_digest(body),
        }
    )


def open_follow_up(deps: Deps, body: dict[str, Any]) -> None:
    lead = deps.service.get(_card_ref(body))
    view = blocks.follow_up_modal(lead_name=lead.name, private_metadata=_modal_metadata(body), now=deps.service.clock())
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_note(deps: Deps, body: dict[str, Any]) -> None:
    lead = deps.service.get(_card_ref(body))
    deps.client.views_open(
        trigger_id=body["trigger_id"],
        view=blocks.note_modal(lead_name=lead.name, private_metadata=_modal_metadata(body)),
    )


def set_status(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not _first_time(deps, body):
        return None
    chosen = (_action(body).get("selected_option") or {}).get("value") or ""
    ref, _, status = chosen.rpartition("|")
    if not ref:
        raise LeadError("this card is out of date; press Refresh and choose again")
    user = _user(body)
    backend = deps.service.backend(ref.partition(":")[0]) if ":" in ref else None
    if backend is not None and backend.capabilities.status_model == StatusModel.WITH_REASONS:
        return open_status_modal(deps, body, ref, status)
    lead = deps.service.change_status(deps.actor(user), ref, status)
    label = next(
        (s.label for s in deps.service.backend(lead.backend).statuses() if s.value == lead.status), lead.status
    )
    return _card_update(deps, body, lead, f"<@{user}> set the status to {label}")


def open_status_modal(deps: Deps, body: dict[str, Any], ref: str, status: str) -> None:
    """The backend wants a reason (and maybe a sub-status): ask for them, from its own lists."""
    lead = deps.service.get(ref)
    backend = deps.service.backend(lead.backend)
    option = backend.status_option(status)
    if lead.status == option.value:
        raise NoChange(f"nothing changed: `{lead.ref}` is already {option.label}")
    reasons = backend.reasons()
    if not reasons:
        raise LeadError(f"{backend.title} has no reasons set up, and it needs one for a status change; ask its admin")
    view = blocks.status_modal(
        lead_name=lead.name,
        status=option,
        reasons=reasons,
        sub_statuses=backend.sub_statuses(option.value),
        private_metadata=_modal_metadata(body, ref, status=option.value, status_label=option.label),
    )
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def snooze(deps: Deps, body: dict[str, Any]) -> Reply | None:
    """Snooze to tomorrow: the next follow-up moves to tomorrow at the owner's reminder time."""
    if not _first_time(deps, body):
        return None
    user = _user(body)
    when = Reminders(deps.service).tomorrow_at(user, deps.service.clock())
    lead = deps.service.reschedule(deps.actor(user), _card_ref(body), when)
    return _card_update(
        deps, body, lead, f"<@{user}> snoozed `{lead.ref}` to {blocks.slack_time(when, relative=False)}"
    )


ACTIONS: dict[str, Callable[[Deps, dict[str, Any]], Reply | None]] = {
    blocks.ASSIGN_ME: assign_me,
    blocks.ASSIGN_TO: assign_to,
    blocks.LOG_FOLLOW_UP: open_follow_up,
    blocks.ADD_NOTE: open_note,
    blocks.SET_STATUS: set_status,
    blocks.REFRESH: refresh,
    blocks.OPEN: open_card,
    blocks.LIST_PAGE: turn_page,
    blocks.DIGEST_SNOOZE: snooze,
}


# Actions on a lead card: if its lead (or backend) is gone, the card says so from then on.
CARD_ACTIONS = {
    blocks.ASSIGN_ME,
    blocks.ASSIGN_TO,
    blocks.LOG_FOLLOW_UP,
    blocks.ADD_NOTE,
    blocks.SET_STATUS,
    blocks.REFRESH,
    blocks.DIGEST_SNOOZE,
}


def stale_card(body: dict[str, Any], why: str) -> list[dict[str, Any]] | None:
    """The message as it was, without its buttons, and a line saying why it is out of date."""
    shown = (body.get("message") or {}).get("blocks")
    if not shown:
        return None  # an ephemeral card: Slack does not send it back, so it cannot be redrawn
    kept = [b for b in shown if b.get("type") != "actions" and not b.get("block_id", "").startswith("stale")]
    return [*kept, blocks.stale_notice(why)]


def _listener(deps: Deps, action_id: str, work: Callable[[Deps, dict[str, Any]], Reply | None]) -> Callable[..., None]:
    def card_work(body: dict[str, Any], respond: Respond) -> Reply | None:
        try:
            return work(deps, body)
        except (LeadGone, BackendGone) as exc:
            marked = stale_card(body, exc.message)
            if marked is not None:
                respond(text=exc.message, blocks=marked, replace_original=True)
            raise

    def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        if from_home(body):
            respond = HomeResponder(deps, _user(body))
        if action_id in CARD_ACTIONS:
            deps.after_ack(respond, lambda: card_work(body, respond), card=True)
        else:
            deps.after_ack(respond, lambda: work(deps, body))

    return listener


def register(app: App, deps: Deps) -> None:
    for action_id, work in ACTIONS.items():
        app.action(action_id)(_listener(deps, action_id, work))
