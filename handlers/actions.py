"""Buttons on cards and lists. Each acks at once and works after the ack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers import blocks
from handlers.cards import card_blocks
from handlers.commands import list_page
from handlers.context import Deps, Reply, run_safely
from services.errors import LeadError


def _ack(ack: Ack) -> None:
    ack()


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return body["actions"][0]


def _once(deps: Deps, body: dict[str, Any]) -> bool:
    """False for a payload already handled (Slack retry or replay of the same trigger)."""
    return deps.service.claim(f"action:{body.get('trigger_id') or _action(body).get('action_ts')}")


def make_assign_me(deps: Deps) -> Callable[..., None]:
    def assign_me(body: dict[str, Any], respond: Respond) -> None:
        def work() -> Reply | None:
            if not _once(deps, body):
                return None
            user = body["user"]["id"]
            lead = deps.service.assign(deps.actor(user), _action(body)["value"], user)
            action = f"Assigned to <@{user}> by <@{user}>"
            return Reply(
                text=f"{lead.name} ({lead.ref})",
                blocks=card_blocks(deps.service, lead, last_action=action),
                replace_original=True,
            )

        run_safely(respond, work)

    return assign_me


def make_refresh(deps: Deps) -> Callable[..., None]:
    def refresh(body: dict[str, Any], respond: Respond) -> None:
        def work() -> Reply:
            lead = deps.service.get(_action(body)["value"])
            return Reply(
                text=f"{lead.name} ({lead.ref})", blocks=card_blocks(deps.service, lead), replace_original=True
            )

        run_safely(respond, work)

    return refresh


def make_open(deps: Deps) -> Callable[..., None]:
    def open_card(body: dict[str, Any], respond: Respond) -> None:
        def work() -> Reply:
            lead = deps.service.get(_action(body)["value"])
            return Reply(text=f"{lead.name} ({lead.ref})", blocks=card_blocks(deps.service, lead))

        run_safely(respond, work)

    return open_card


def make_list_page(deps: Deps) -> Callable[..., None]:
    def page(body: dict[str, Any], respond: Respond) -> None:
        def work() -> Reply:
            try:
                state = json.loads(_action(body)["value"])
                if not isinstance(state, dict):
                    raise ValueError
            except ValueError:
                raise LeadError("this list is out of date; run `/lead list` again") from None
            channel = (body.get("channel") or {}).get("id")
            reply = list_page(deps, body["user"]["id"], channel, state)
            reply.replace_original = True
            return reply

        run_safely(respond, work)

    return page


def register(app: App, deps: Deps) -> None:
    app.action(blocks.ASSIGN_ME)(ack=_ack, lazy=[make_assign_me(deps)])
    app.action(blocks.REFRESH)(ack=_ack, lazy=[make_refresh(deps)])
    app.action(blocks.OPEN)(ack=_ack, lazy=[make_open(deps)])
    app.action(blocks.LIST_PAGE)(ack=_ack, lazy=[make_list_page(deps)])
