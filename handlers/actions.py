"""Buttons on cards and lists. Each acks at once and works after the ack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers import blocks
from handlers.cards import card_blocks
from handlers.commands import list_page
from handlers.context import Deps, Reply
from services.errors import LeadError


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return body["actions"][0]


def _user(body: dict[str, Any]) -> str:
    return body["user"]["id"]


def assign_me(deps: Deps, body: dict[str, Any]) -> Reply | None:
    # Keyed by trigger_id: a replayed payload must not assign (and report) twice.
    if not deps.service.claim(f"action:{body.get('trigger_id') or _action(body).get('action_ts')}"):
        return None
    user = _user(body)
    lead = deps.service.assign(deps.actor(user), _action(body)["value"], user)
    action = f"Assigned to <@{user}> by <@{user}>"
    blocks_ = card_blocks(deps.service, lead, last_action=action)
    return Reply(text=f"{lead.name} ({lead.ref})", blocks=blocks_, replace_original=True)


def refresh(deps: Deps, body: dict[str, Any]) -> Reply:
    lead = deps.service.get(_action(body)["value"])
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


def _modal_metadata(body: dict[str, Any]) -> str:
    """What the submission needs to update this very card: the lead and the message's response URL."""
    return json.dumps(
        {
            "ref": _action(body)["value"],
            "response_url": body.get("response_url"),
            "channel": (body.get("channel") or {}).get("id"),
        }
    )


def open_follow_up(deps: Deps, body: dict[str, Any]) -> None:
    lead = deps.service.get(_action(body)["value"])
    view = blocks.follow_up_modal(lead_name=lead.name, private_metadata=_modal_metadata(body), now=deps.service.clock())
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)


def open_note(deps: Deps, body: dict[str, Any]) -> None:
    lead = deps.service.get(_action(body)["value"])
    deps.client.views_open(
        trigger_id=body["trigger_id"],
        view=blocks.note_modal(lead_name=lead.name, private_metadata=_modal_metadata(body)),
    )


def set_status(deps: Deps, body: dict[str, Any]) -> Reply | None:
    if not deps.service.claim(f"action:{body.get('trigger_id') or _action(body).get('action_ts')}"):
        return None
    chosen = (_action(body).get("selected_option") or {}).get("value") or ""
    ref, _, status = chosen.rpartition("|")
    if not ref:
        raise LeadError("this card is out of date; press Refresh and choose again")
    user = _user(body)
    lead = deps.service.change_status(deps.actor(user), ref, status)
    label = next(
        (s.label for s in deps.service.backend(lead.backend).statuses() if s.value == lead.status), lead.status
    )
    action = f"<@{user}> set the status to {label}"
    return Reply(
        text=f"{lead.ref}: {action}", blocks=card_blocks(deps.service, lead, last_action=action), replace_original=True
    )


ACTIONS: dict[str, Callable[[Deps, dict[str, Any]], Reply | None]] = {
    blocks.ASSIGN_ME: assign_me,
    blocks.LOG_FOLLOW_UP: open_follow_up,
    blocks.ADD_NOTE: open_note,
    blocks.SET_STATUS: set_status,
    blocks.REFRESH: refresh,
    blocks.OPEN: open_card,
    blocks.LIST_PAGE: turn_page,
}


def _listener(deps: Deps, work: Callable[[Deps, dict[str, Any]], Reply | None]) -> Callable[..., None]:
    def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        deps.after_ack(respond, lambda: work(deps, body))

    return listener


def register(app: App, deps: Deps) -> None:
    for action_id, work in ACTIONS.items():
        app.action(action_id)(_listener(deps, work))
