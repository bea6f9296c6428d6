"""A stand-in for Slack's side, on 127.0.0.1: the Web API and response URLs.

``leadbot console`` runs the real handlers against it, and the tests point
``SLACK_API_URL`` at it and assert on the calls it recorded. It answers the
Web API methods Leadbot uses with the shapes Slack documents, and can be told
to fail a method (status, Slack error, ``Retry-After``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.loopback import Answer, FakeServer, Outcome, Received
from bot.slackrequests import BOT_USER, TEAM

__all__ = ["BOT_USER", "TEAM", "Call", "FakeSlack", "Failure"]


@dataclass
class Call:
    kind: str  # "api" or "response"
    name: str  # API method, or the response URL's key
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    times: int = 1
    deliver: bool = False  # carry the call out, then fail anyway (Slack got it; the answer was lost)
    delay: float = 0.0  # seconds before answering (longer than the client's timeout: a lost answer)
    # (also ends when the client gives up or ``release`` is set)
    drop: bool = False  # close the connection without an answer (with ``deliver``: a reset after Slack took it)


class FakeSlack(FakeServer):
    """Slack's side on the shared loopback base (``bot.loopback``): every request is recorded as a ``Call``."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        # Slack's record is ``calls`` (with ``received(kind, name)`` to filter it), not the base's raw requests.
        del self.received
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.slack_failures: dict[str, Failure] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel -> messages posted, oldest first
        self.shown: list[dict[str, Any]] = []  # what response URLs showed people (not the ones that failed)
        self.limits: dict[str, tuple[int, list[float]]] = {}  # method -> (per second, recent call times)
        self._ts = itertools.count(1)

    def handle(self, request: Received) -> Outcome:
        """Every request, Web API call or response-URL post, answered the way Slack answers it."""
        body = self._body(request)
        kind, _, name = request.path.strip("/").partition("/")
        call = Call(kind=kind, name=name, body=body, headers=request.headers)
        with self._changed:
            failure = self._failure(kind, name)
            delay = failure.delay if failure and failure.times > 0 else 0.0
            drop = bool(failure and failure.times > 0 and failure.drop)
            status, call.answer, extra = self._reply(kind, name, body)
            self.calls.append(call)
            self._changed.notify_all()
        if drop:
            return Outcome(None, drop=True)
        # A slow answer, after the work was done, withheld until the client gives up, ``release`` or ``delay`` s.
        return Outcome(Answer(status, call.answer, extra), hold=delay or None)

    @staticmethod
    def _body(request: Received) -> dict[str, Any]:
        body = dict(request.body) if isinstance(request.body, dict) else {}
        for key in ("blocks", "view", "attachments", "metadata"):  # JSON inside a form-encoded call
            if isinstance(body.get(key), str):
                with contextlib.suppress(ValueError):
                    body[key] = json.loads(body[key])
        return {**body, **request.query}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def add_user(self, user_id: str, name: str, tz: str = "UTC") -> None:
        self.users[user_id] = {"id": user_id, "name": name, "real_name": name, "tz": tz, "team_id": TEAM}

    def _failure(self, kind: str, name: str) -> Failure | None:
        found = self.slack_failures.get(name)
        if found is None and kind == "response":
            found = self.slack_failures.get("response")
        return found

    def fail(self, method: str, **failure: Any) -> None:
        """The next call(s) of Web API ``method`` (or response URL key, or ``"response"``: any) fail as Slack fails."""
        with self._changed:
            self.slack_failures[method] = Failure(**failure)

    def limit(self, method: str, per_second: int) -> None:
        """Answer 429 with ``Retry-After: 1`` to calls beyond ``per_second`` in any one-second window."""
        self.limits[method] = (per_second, [])

    def dm_channel(self, user: str) -> str:
        return "D" + user[1:] if user.startswith(("U", "W")) else user

    # -- what was received ------------------------------------------------------------------

    def received(self, kind: str | None = None, name: str | None = None) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if (kind is None or c.kind == kind) and (name is None or c.name == name)]

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.calls), timeout)

    def clear(self) -> None:
        with self._changed:
            self.calls.clear()

    # -- answers ----------------------------------------------------------------------------

    def _reply(self, kind: str, name: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if name in self.limits:
            per_second, recent = self.limits[name]
            now = time.monotonic()
            recent[:] = [t for t in recent if now - t < 1.0]
            if len(recent) >= per_second:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            recent.append(now)
        failure = self._failure(kind, name)
        if failure and failure.times > 0:
            failure.times -= 1
            if failure.deliver:
                if kind == "response":
                    self.shown.append(body)
                else:
                    getattr(self, "_" + name.replace(".", "_"))(body)
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, {"ok": False, "error": failure.error or "ratelimited"}, extra
        if kind == "response":
            self.shown.append(body)
            return 200, {"ok": True}, {}
        if kind != "api":
            return 404, {"ok": False, "error": "not_found"}, {}
        handler = getattr(self, "_" + name.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, {"ok": True, **handler(body)}, {}

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://leadbot-test.slack.com/",
            "team": "Test",
            "user": "leadbot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": "B0LEADBOT",
        }

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user = body.get("user", "")
        return {"user": self.users.get(user, {"id": user, "name": user.lower(), "tz": "UTC", "team_id": TEAM})}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view") or {}
        if isinstance(view, str):
            view = json.loads(view)
        return {"view": {**view, "id": f"V{next(self._ts):06d}", "hash": "h1"}}

    def _views_publish(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view") or {}
        if isinstance(view, str):
            view = json.loads(view)
        user = body.get("user_id", "")
        return {"view": {**view, "id": f"VHOME{user}", "hash": f"h{next(self._ts)}"}}

    def _chat_getPermalink(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = body.get("channel", ""), str(body.get("message_ts", ""))
        link = f"https://leadbot-test.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}

    def _chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        ts = f"{time.time():.6f}"[:-6] + f"{next(self._ts) % 1_000_000:06d}"
        channel = self.dm_channel(str(body.get("channel", "")))
        message = {"type": "message", "text": body.get("text"), "ts": ts, "bot_id": "B0LEADBOT"}
        metadata = body.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if metadata:
            message["metadata"] = metadata
        if body.get("thread_ts"):
            message["thread_ts"] = str(body["thread_ts"])
        self.messages.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": ts, "message": message}

    def _conversations_open(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"channel": {"id": self.dm_channel(str(body.get("users", "")))}}

    def _conversations_history(self, body: dict[str, Any]) -> dict[str, Any]:
        # The channel's own messages, newest first; replies in threads are not among them.
        oldest = float(body.get("oldest") or 0)
        found = [
            m
            for m in self.messages.get(str(body.get("channel")), [])
            if float(m["ts"]) >= oldest and m.get("thread_ts") in (None, m["ts"])
        ]
        return {"messages": self._shown(body, list(reversed(found))), "has_more": False}

    def _conversations_replies(self, body: dict[str, Any]) -> dict[str, Any]:
        # A thread, oldest first: its parent (when it is in this fake) and the replies to it.
        parent, oldest = str(body.get("ts", "")), float(body.get("oldest") or 0)
        found = [
            m
            for m in self.messages.get(str(body.get("channel")), [])
            if m["ts"] == parent or (m.get("thread_ts") == parent and float(m["ts"]) >= oldest)
        ]
        return {"messages": self._shown(body, found), "has_more": False}

    @staticmethod
    def _shown(body: dict[str, Any], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        shown = [m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in found]
        return shown[: int(body.get("limit") or 100)]

    def _chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"channel": body.get("channel"), "ts": body.get("ts")}
