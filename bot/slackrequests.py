"""Requests as Slack sends them: signed, form-encoded commands and interactions, JSON events.

One builder for everyone who plays Slack: the console, the tests and the
benchmarks. The shapes follow Slack's documented payloads (slash command
form fields, ``block_actions``, ``view_submission``, ``message_action``,
``event_callback``), with only the fields Slack always sends plus those a
listener reads.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

TEAM = "T0LEADBOT"
APP = "A0LEADBOT"
BOT_USER = "U0LEADBOT"
_ids = itertools.count(1)


@dataclass(frozen=True)
class SlackRequest:
    body: str
    content_type: str

    def headers(self, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
        """Signed as Slack signs: ``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=self.body)
        return {"Content-Type": self.content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def next_id() -> int:
    return next(_ids)


def _user(user: str, name: str | None = None) -> dict[str, Any]:
    name = name or user.lower()
    return {"id": user, "username": name, "name": name, "team_id": TEAM}


def slash_command(
    text: str,
    *,
    user: str,
    response_url: str,
    trigger_id: str,
    channel: str = "C0SALES",
    user_name: str | None = None,
    command: str = "/lead",
) -> SlackRequest:
    form = {
        "token": "deprecated-verification-token",
        "team_id": TEAM,
        "team_domain": "leadbot-test",
        "channel_id": channel,
        "channel_name": "sales",
        "user_id": user,
        "user_name": user_name or user.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return SlackRequest(urlencode(form), "application/x-www-form-urlencoded")


def interaction(payload: dict[str, Any]) -> SlackRequest:
    return SlackRequest(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def block_actions(
    action: dict[str, Any],
    *,
    user: str,
    trigger_id: str,
    response_url: str | None = None,
    channel: str | None = "C0SALES",
    message_ts: str | None = None,
    message_blocks: list[dict[str, Any]] | None = None,
    ephemeral: bool = False,
    home_view: dict[str, Any] | None = None,
    user_name: str | None = None,
) -> SlackRequest:
    """A press on ``action`` (an element's action_id, block_id and value/selection).

    On a message: Slack sends the message back (blocks included) unless it is
    ephemeral. On an App Home (``home_view``): no channel, message or response_url.
    """
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user, user_name),
        "api_app_id": APP,
        "token": "deprecated-verification-token",
        "trigger_id": trigger_id,
        "team": {"id": TEAM, "domain": "leadbot-test"},
        "actions": [{"action_ts": f"{time.time():.6f}", **action}],
    }
    if home_view is not None:
        payload["container"] = {"type": "view", "view_id": home_view.get("id", "VHOME")}
        payload["view"] = {**home_view, "type": "home", "team_id": TEAM, "app_id": APP, "bot_id": "B0LEADBOT"}
        return interaction(payload)
    payload["container"] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": ephemeral,
    }
    payload["channel"] = {"id": channel, "name": "sales"}
    payload["response_url"] = response_url
    if not ephemeral:
        payload["message"] = {"type": "message", "ts": message_ts, "text": "card", "blocks": message_blocks or []}
    return interaction(payload)


def button_action(element: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_id": element["action_id"],
        "block_id": block.get("block_id", "b"),
        "type": "button",
        "text": element.get("text") or {"type": "plain_text", "text": element["action_id"]},
        "value": element.get("value"),
    }


def select_action(element: dict[str, Any], block: dict[str, Any], option: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_id": element["action_id"],
        "block_id": block.get("block_id", "b"),
        "type": "static_select",
        "selected_option": option,
    }


def user_select_action(element: dict[str, Any], block: dict[str, Any], picked: str) -> dict[str, Any]:
    return {
        "action_id": element["action_id"],
        "block_id": block.get("block_id", "b"),
        "type": "users_select",
        "selected_user": picked,
    }


def state_entry(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """What ``view.state.values[block][action]`` holds for ``element`` set to ``value``."""
    kind = element["type"]
    entry: dict[str, Any] = {"type": kind}
    if kind == "users_select":
        entry["selected_user"] = value
    elif kind == "datetimepicker":
        entry["selected_date_time"] = value
    elif kind == "datepicker":
        entry["selected_date"] = value  # "YYYY-MM-DD", as Slack sends it
    elif kind == "number_input":
        entry["value"] = None if value is None else str(value)  # Slack sends numbers as text
    elif kind == "static_select":
        if value is None:
            entry["selected_option"] = element.get("initial_option")
        else:
            label = next(
                (o["text"] for o in element.get("options", []) if o.get("value") == value),
                {"type": "plain_text", "text": str(value)},
            )
            entry["selected_option"] = {"value": value, "text": label}
    else:
        entry["value"] = value
    return entry


def view_submission(view: dict[str, Any], values: dict[str, Any], *, user: str, trigger_id: str) -> SlackRequest:
    """Submit an opened modal; ``values`` maps each input block's id to its element's value."""
    state = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        state[block["block_id"]] = {element["action_id"]: state_entry(element, values.get(block["block_id"]))}
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "leadbot-test"},
        "user": _user(user),
        "api_app_id": APP,
        "token": "deprecated-verification-token",
        "trigger_id": trigger_id,
        "view": {**view, "state": {"values": state}, "team_id": TEAM, "app_id": APP, "bot_id": "B0LEADBOT"},
        "response_urls": [],
        "is_enterprise_install": False,
    }
    return interaction(payload)


def message_action(
    callback_id: str,
    text: str,
    *,
    user: str,
    trigger_id: str,
    response_url: str,
    channel: str = "C0SALES",
    message_ts: str = "1700000500.000200",
    author: str = "UCUSTOMERDESK",
    user_name: str | None = None,
) -> SlackRequest:
    """A message shortcut (the "⋯ More actions" menu) used on a message saying ``text``."""
    payload = {
        "type": "message_action",
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "action_ts": f"{time.time():.6f}",
        "message_ts": message_ts,
        "team": {"id": TEAM, "domain": "leadbot-test"},
        "user": _user(user, user_name),
        "channel": {"id": channel, "name": "sales"},
        "is_enterprise_install": False,
        "token": "deprecated-verification-token",
        "response_url": response_url,
        "message": {"type": "message", "user": author, "ts": message_ts, "text": text},
    }
    return interaction(payload)


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> SlackRequest:
    body = {
        "token": "deprecated-verification-token",
        "team_id": TEAM,
        "api_app_id": APP,
        "event": {"event_ts": f"{time.time():.6f}", **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{next_id():08d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }
    return SlackRequest(json.dumps(body), "application/json")


def find_element(blocks: list[dict[str, Any]], action_id: str, value: str | None = None) -> tuple[dict, dict]:
    """The element with ``action_id`` (and ``value``) on a message, and its block."""
    for block in blocks:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            if element.get("action_id") == action_id and (value is None or element.get("value") == value):
                return element, block
    raise LookupError(f"no element {action_id} on the message")
