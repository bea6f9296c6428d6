"""Playing Slack in tests: signed requests into the app, and what the fake Slack received.

Requests are built by ``bot.slackrequests`` (the console uses the same
builder) and signed with the test signing secret. ``SlackDriver`` sends them
either through Bolt's ``app.dispatch`` in this process (fast; the work after
the ack runs inline, before the reply comes back) or over HTTP to the real
server (``HttpTransport``), for the server, signing and the work process.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from slack_bolt import App, BoltRequest

from bot import slackrequests as sr
from bot.fakeslack import FakeSlack

SIGNING_SECRET = "test-signing-secret"
CARD_TS = "1700000000.000100"  # the ts of the message every clicked card is in


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    return sr.SlackRequest(body, "application/x-www-form-urlencoded").headers(secret, timestamp=timestamp)


def signed_bytes(
    body: bytes, content_type: str = "application/x-www-form-urlencoded", *, timestamp: int | None = None
) -> dict[str, str]:
    """Headers signing ``body`` byte for byte, as Slack signs (any bytes, UTF-8 or not)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Answer:
    """The ack as Slack would receive it."""

    status_code: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class DispatchTransport:
    """Into ``app.dispatch``, as bolt-python's own scenario tests do."""

    def __init__(self, app: App) -> None:
        self.app = app

    def send(self, body: str, headers: dict[str, str]) -> Answer:
        response = self.app.dispatch(BoltRequest(body=body, headers={k: [v] for k, v in headers.items()}))
        return Answer(response.status, response.body, {k: v[0] for k, v in response.headers.items()})


class HttpTransport:
    """Over loopback HTTP to the real server."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def send(self, body: str, headers: dict[str, str]) -> Answer:
        response = self.http.post("/slack/events", content=body, headers=headers)
        return Answer(response.status_code, response.text, dict(response.headers))


class SlackDriver:
    """Plays Slack: sends signed requests and waits for the work after the ack."""

    def __init__(self, transport: DispatchTransport | HttpTransport, fake: FakeSlack, wait_idle: Callable[..., bool]):
        self.transport = transport
        self.fake = fake
        self.wait_idle = wait_idle

    def post(self, body: str, headers: dict[str, str] | None = None, *, wait: bool = True) -> Answer:
        """``wait=False`` returns with the ack, before the work behind it is done (over HTTP)."""
        answer = self.transport.send(body, headers or signed_headers(body))
        if wait:
            assert self.wait_idle(10), "the work after the ack did not finish"
        return answer

    def send(self, request: sr.SlackRequest, headers: dict[str, str] | None = None, *, wait: bool = True) -> Answer:
        return self.post(request.body, {**request.headers(SIGNING_SECRET), **(headers or {})}, wait=wait)

    def command(
        self,
        text: str,
        *,
        user: str = "UADMIN",
        channel: str = "C0SALES",
        trigger_id: str | None = None,
        headers: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Answer:
        n = sr.next_id()
        request = sr.slash_command(
            text,
            user=user,
            channel=channel,
            response_url=self.fake.response_url(f"cmd{n}"),
            trigger_id=trigger_id or f"{n}.1234.trigger",
        )
        return self.send(request, headers, wait=wait)

    def interact(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        return self.send(sr.interaction(payload), headers)

    def _press(
        self,
        action: dict[str, Any],
        message_blocks: list[dict[str, Any]],
        *,
        user: str,
        channel: str,
        trigger_id: str | None,
        ephemeral: bool = False,
        home: dict[str, Any] | None = None,
        key: str = "act",
    ) -> Answer:
        n = sr.next_id()
        request = sr.block_actions(
            action,
            user=user,
            trigger_id=trigger_id or f"{n}.5678.trigger",
            response_url=self.fake.response_url(f"{key}{n}"),
            channel=channel,
            message_ts=CARD_TS,
            message_blocks=message_blocks,
            ephemeral=ephemeral,
            home_view=home,
        )
        return self.send(request)

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
    ) -> Answer:
        """Press a button on a message; ``ephemeral`` cards come back without their blocks, as in Slack.

        With ``home`` (a published App Home view) the button is pressed there instead.
        """
        element, block = sr.find_element(message_blocks, action_id, value)
        action = sr.button_action(element, block)
        return self._press(
            action, message_blocks, user=user, channel=channel, trigger_id=trigger_id, ephemeral=ephemeral, home=home
        )

    def pick_user(
        self,
        message_blocks: list[dict[str, Any]],
        action_id: str,
        picked: str,
        *,
        user: str = "UADMIN",
        trigger_id: str | None = None,
        home: dict[str, Any] | None = None,
    ) -> Answer:
        """Pick ``picked`` in a users_select on the message (or on the App Home ``home``)."""
        element, block = sr.find_element(message_blocks, action_id)
        action = sr.user_select_action(element, block, picked)
        return self._press(
            action, message_blocks, user=user, channel="C0SALES", trigger_id=trigger_id, home=home, key="pick"
        )

    def choose(
        self,
        message_blocks: list[dict[str, Any]],
        action_id: str,
        label: str,
        *,
        user: str = "UADMIN",
        trigger_id: str | None = None,
        home: dict[str, Any] | None = None,
    ) -> Answer:
        """Pick the option labelled ``label`` in a static_select on the message (or on the App Home ``home``)."""
        element, block = sr.find_element(message_blocks, action_id)
        option = next(o for o in element["options"] if o["text"]["text"] == label)
        action = sr.select_action(element, block, option)
        return self._press(
            action, message_blocks, user=user, channel="C0SALES", trigger_id=trigger_id, home=home, key="sel"
        )

    def message_shortcut(
        self,
        callback_id: str,
        text: str,
        *,
        user: str = "UREP1",
        channel: str = "C0SALES",
        message_ts: str = "1700000500.000200",
        author: str = "UCUSTOMERDESK",
    ) -> Answer:
        n = sr.next_id()
        request = sr.message_action(
            callback_id,
            text,
            user=user,
            trigger_id=f"{n}.1357.trigger",
            response_url=self.fake.response_url(f"short{n}"),
            channel=channel,
            message_ts=message_ts,
            author=author,
        )
        return self.send(request)

    def event(self, event: dict[str, Any], *, retry: int | None = None) -> Answer:
        """Deliver an Events API ``event_callback`` (``retry``: as Slack's Nth redelivery)."""
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry is not None else {}
        return self.send(sr.event_callback(event), headers)

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

    def submit(self, view: dict[str, Any], values: dict[str, Any], *, user: str = "UADMIN") -> Answer:
        """Submit an opened modal; ``values`` maps block_id to the element's state value."""
        return self.send(sr.view_submission(view, values, user=user, trigger_id=f"{sr.next_id()}.9999.trigger"))

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
    "find",
    "edit",
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


def button_message(action_id: str, value: str | None = None, block_id: str = "b") -> list[dict[str, Any]]:
    """A message with one button, as Slack echoes it back in block_actions."""
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": action_id}}
    if value is not None:
        button["value"] = value
    return [{"type": "actions", "block_id": block_id, "elements": [button]}]


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


def now_ts() -> int:
    return int(time.time())
