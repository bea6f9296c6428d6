"""Sending requests to Leadbot the way Slack does: signed, form-encoded, over HTTP.

Payload shapes follow Slack's documented slash command, block_actions and
view_submission payloads.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.executor import HeldWork
from bot.fakeslack import TEAM, FakeSlack

SIGNING_SECRET = "test-signing-secret"
_ids = itertools.count(1)


CARD_TS = "1700000000.000100"  # the ts of the message every clicked card is in


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


class SlackDriver:
    """Plays Slack: posts signed requests to ``/slack/events`` and waits for the work after the ack."""

    def __init__(self, base_url: str, fake: FakeSlack, executor: HeldWork) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.fake = fake
        self.executor = executor

    def post(self, body: str, headers: dict[str, str] | None = None, *, wait: bool = True) -> httpx.Response:
        """``wait=False`` returns with the ack, before the work behind it is done."""
        response = self.http.post("/slack/events", content=body, headers=headers or signed_headers(body))
        if wait:
            assert self.executor.wait_idle(10), "the work after the ack did not finish"
        return response

    def command(
        self,
        text: str,
        *,
        user: str = "UADMIN",
        channel: str = "C0SALES",
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
        wait: bool = True,
    ) -> httpx.Response:
        n = next(_ids)
        form = {
            "token": "deprecated-verification-token",
            "team_id": TEAM,
            "team_domain": "leadbot-test",
            "channel_id": channel,
            "channel_name": "sales",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/lead",
            "text": text,
            "api_app_id": "A0LEADBOT",
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(f"cmd{n}"),
            "trigger_id": trigger_id or f"{n}.1234.trigger",
        }
        body = urlencode(form)
        return self.post(body, {**signed_headers(body), **(headers or {})}, wait=wait)

    def interact(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, {**signed_headers(body), **(headers or {})})

    def click(
        self,
        message_blocks: list[dict[str, Any]],
        action_id: str,
        *,
        user: str = "UADMIN",
        channel: str = "C0SALES",
        value: str | None = None,
        trigger_id: str | None = None,
        ephemeral: bool = False,
        home: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Press a button on a message; ``ephemeral`` cards come back without their blocks, as in Slack.

        With ``home`` (a published App Home view) the button is pressed there instead.
        """
        button, block = _find_button(message_blocks, action_id, value)
        n = next(_ids)
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0LEADBOT",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": CARD_TS,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": trigger_id or f"{n}.5678.trigger",
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "channel": {"id": channel, "name": "sales"},
            "response_url": self.fake.response_url(f"act{n}"),
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block.get("block_id", "b"),
                    "text": button["text"],
                    "value": button.get("value"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if not ephemeral:
            payload["message"] = {"type": "message", "ts": CARD_TS, "text": "card", "blocks": message_blocks}
        return self.interact(_on_home(payload, home))

    def pick_user(
        self,
        message_blocks: list[dict[str, Any]],
        action_id: str,
        picked: str,
        *,
        user: str = "UADMIN",
        trigger_id: str | None = None,
        home: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Pick ``picked`` in a users_select on the message (or on the App Home ``home``)."""
        block = next(
            b
            for b in message_blocks
            if b["type"] == "actions"
            and any(e.get("action_id") == action_id and e["type"] == "users_select" for e in b["elements"])
        )
        n = next(_ids)
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0LEADBOT",
            "container": {
                "type": "message",
                "message_ts": CARD_TS,
                "channel_id": "C0SALES",
                "is_ephemeral": False,
            },
            "trigger_id": trigger_id or f"{n}.2468.trigger",
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "channel": {"id": "C0SALES", "name": "sales"},
            "message": {"type": "message", "ts": CARD_TS, "blocks": message_blocks},
            "response_url": self.fake.response_url(f"pick{n}"),
            "actions": [
                {
                    "type": "users_select",
                    "action_id": action_id,
                    "block_id": block["block_id"],
                    "selected_user": picked,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.interact(_on_home(payload, home))

    def choose(
        self,
        message_blocks: list[dict[str, Any]],
        action_id: str,
        label: str,
        *,
        user: str = "UADMIN",
        trigger_id: str | None = None,
        home: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Pick the option labelled ``label`` in a static_select on the message (or on the App Home ``home``)."""
        for block in message_blocks:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element.get("action_id") == action_id and element["type"] == "static_select":
                    option = next(o for o in element["options"] if o["text"]["text"] == label)
                    break
            else:
                continue
            break
        else:
            raise AssertionError(f"no select {action_id} on the message")
        n = next(_ids)
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0LEADBOT",
            "container": {"type": "message", "message_ts": CARD_TS, "channel_id": "C0SALES"},
            "trigger_id": trigger_id or f"{n}.4321.trigger",
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "channel": {"id": "C0SALES", "name": "sales"},
            "message": {"type": "message", "ts": CARD_TS, "blocks": message_blocks},
            "response_url": self.fake.response_url(f"sel{n}"),
            "actions": [
                {
                    "type": "static_select",
                    "action_id": action_id,
                    "block_id": block.get("block_id", "b"),
                    "selected_option": option,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return self.interact(_on_home(payload, home))

    def message_shortcut(
        self,
        callback_id: str,
        text: str,
        *,
        user: str = "UREP1",
        channel: str = "C0SALES",
        message_ts: str = "1700000500.000200",
        author: str = "UCUSTOMERDESK",
    ) -> httpx.Response:
        """Use a message shortcut (the "⋯ More actions" menu) on a message saying ``text``."""
        n = next(_ids)
        payload = {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": f"{n}.1357.trigger",
            "action_ts": f"{time.time():.6f}",
            "message_ts": message_ts,
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "channel": {"id": channel, "name": "sales"},
            "is_enterprise_install": False,
            "token": "deprecated-verification-token",
            "response_url": self.fake.response_url(f"short{n}"),
            "message": {"type": "message", "user": author, "ts": message_ts, "text": text},
        }
        return self.interact(payload)

    def event(self, event: dict[str, Any], *, retry: int | None = None) -> httpx.Response:
        """Deliver an Events API ``event_callback`` (``retry``: as Slack's Nth redelivery)."""
        n = next(_ids)
        body = json.dumps(
            {
                "token": "deprecated-verification-token",
                "team_id": TEAM,
                "api_app_id": "A0LEADBOT",
                "event": {"event_ts": f"{time.time():.6f}", **event},
                "type": "event_callback",
                "event_id": f"Ev{n:08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": "U0LEADBOT", "is_bot": True}],
            }
        )
        headers = {**signed_headers(body), "Content-Type": "application/json"}
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(body, headers)

    def open_home(self, user: str = "UADMIN") -> dict[str, Any]:
        """Open the App Home tab as ``user``; returns the view Leadbot published."""
        self.fake.clear()
        self.event({"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"})
        return self.home(user)

    def home(self, user: str = "UADMIN") -> dict[str, Any]:
        """The App Home view most recently published for ``user``."""
        published = self.published_homes(user)
        assert published, f"no App Home was published for {user}"
        return published[-1]

    def published_homes(self, user: str = "UADMIN") -> list[dict[str, Any]]:
        return [c.answer["view"] for c in self.fake.received("api", "views.publish") if c.body.get("user_id") == user]

    def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str = "UADMIN") -> httpx.Response:
        """Submit an opened modal; ``values`` maps block_id to the element's state value."""
        state = {}
        for block in view["blocks"]:
            if block["type"] != "input":
                continue
            element = block["element"]
            bid, aid = block["block_id"], element["action_id"]
            entry: dict[str, Any] = {"type": element["type"]}
            value = values.get(bid)
            if element["type"] == "users_select":
                entry["selected_user"] = value
            elif element["type"] == "datetimepicker":
                entry["selected_date_time"] = value
            elif element["type"] == "static_select":
                entry["selected_option"] = (
                    {"value": value, "text": {"type": "plain_text", "text": str(value)}}
                    if value
                    else (element.get("initial_option"))
                )
            else:
                entry["value"] = value
            state[bid] = {aid: entry}
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": "A0LEADBOT",
            "token": "deprecated-verification-token",
            "trigger_id": f"{next(_ids)}.9999.trigger",
            "view": {**view, "state": {"values": state}, "team_id": TEAM, "app_id": "A0LEADBOT", "bot_id": "B0LEADBOT"},
            "response_urls": [],
            "is_enterprise_install": False,
        }
        return self.interact(payload)

    # -- what the user saw ------------------------------------------------------------------

    def replies(self) -> list[dict[str, Any]]:
        """Bodies posted to response URLs, oldest first."""
        return [c.body for c in self.fake.received("response")]

    def last_reply(self) -> dict[str, Any]:
        replies = self.replies()
        assert replies, "nothing was posted to a response URL"
        return replies[-1]

    def thread_replies(self) -> list[dict[str, Any]]:
        """Messages the bot posted in threads (``chat.postMessage`` with a ``thread_ts``)."""
        return [c.body for c in self.fake.received("api", "chat.postMessage") if c.body.get("thread_ts")]

    def opened_views(self) -> list[dict[str, Any]]:
        """Modals as Slack opened them (with the view ``id`` a submission carries)."""
        return [c.answer["view"] for c in self.fake.received("api", "views.open")]


# The subcommands DESIGN.md promises; help must list each one.
DESIGN_SUBCOMMANDS = (
    "help",
    "new",
    "show",
    "list",
    "assign",
    "followup",
    "note",
    "status",
    "link",
    "unlink",
    "whoami",
    "backends",
    "remind",
    "notify",
    "previews",
    "deal",
    "department",
)


def _on_home(payload: dict[str, Any], home: dict[str, Any] | None) -> dict[str, Any]:
    """The same action as Slack sends it from an App Home: no channel, message or response_url."""
    if home is None:
        return payload
    for key in ("channel", "message", "response_url"):
        payload.pop(key, None)
    payload["container"] = {"type": "view", "view_id": home["id"]}
    payload["view"] = {**home, "type": "home", "team_id": TEAM, "app_id": "A0LEADBOT", "bot_id": "B0LEADBOT"}
    return payload


def button_message(action_id: str, value: str | None = None, block_id: str = "b") -> list[dict[str, Any]]:
    """A message with one button, as Slack echoes it back in block_actions."""
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": action_id}}
    if value is not None:
        button["value"] = value
    return [{"type": "actions", "block_id": block_id, "elements": [button]}]


def _find_button(blocks: list[dict[str, Any]], action_id: str, value: str | None):
    for block in blocks:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]
        for element in elements:
            if element.get("action_id") == action_id and (value is None or element.get("value") == value):
                return element, block
    raise AssertionError(f"no button {action_id} on the message")


def text_of(blocks: list[dict[str, Any]]) -> str:
    """All text in a message's blocks, for 'the user would read …' assertions."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)
