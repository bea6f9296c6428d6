"""The shape every request must have before Bolt and the listeners read it.

Slack's payloads always have these shapes; a request without them is forged,
corrupted or from a client that is not Slack. Bolt's own matchers and argument
injection index into the payload (``body["actions"][0]["action_id"]``,
``"type" in body["event"]``) and fail with a ``TypeError`` or ``KeyError`` on
anything else, before any listener (or the error handler) runs. So the app
checks the envelope first (``bot.app.LeadbotApp``) and answers 400 with what
was wrong — field names only, never the values.

What is checked is what Bolt and the listeners rely on: the types of the
containers and identifiers. The values a person can influence (text, button
values, form state, ``private_metadata``) are read leniently where they are
used: ``text_of``, ``mapping_of`` and ``http_url``.
"""

from __future__ import annotations

import re
from typing import Any

# What a top-level field must be when it is there (in any payload): what Bolt or the listeners index into.
_OBJECT, _TEXT, _EITHER = "an object", "a string", "an object or a string"
_FIELDS = {
    **dict.fromkeys(("event", "view", "container", "message", "state"), _OBJECT),
    **dict.fromkeys(("type", "callback_id", "trigger_id", "command", "user_id", "channel_id", "text"), _TEXT),
    **dict.fromkeys(("action_id", "ssl_check"), _TEXT),
    **dict.fromkeys(("user", "channel", "team", "enterprise"), _EITHER),
}
_TYPES = {_OBJECT: dict, _TEXT: str, _EITHER: (dict, str)}
_INTERACTIVE = ("block_actions", "view_submission", "view_closed", "message_action", "shortcut", "block_suggestion")


def problem(body: Any, raw: str = "") -> str | None:
    """What is wrong with the envelope of ``body`` (a parsed request), or None when Leadbot can read it.

    ``raw`` is the request text: text that is not valid Unicode (a lone surrogate
    escaped in JSON) can only come from a ``\\u`` escape, so it is looked for only then.
    It runs on every ack, so it looks at each top-level field once.
    """
    if not isinstance(body, dict):
        return "the body is not an object"
    for key, value in body.items():
        expected = _FIELDS.get(key)
        if (
            expected is not None
            and not isinstance(value, _TYPES[expected])
            and (value is not None or expected != _EITHER)
        ):
            return f"{key} is not {expected}"
    if "authorizations" in body and not _list_of_dicts(body["authorizations"]):
        return "authorizations is not a list of objects"
    if body.get("response_url") is not None and http_url(body["response_url"]) is None:
        return "response_url is not an http(s) URL"
    wrong = _typed(body)
    if wrong:
        return wrong
    if ("\\u" in raw or "%5Cu" in raw or "%5cu" in raw) and not _unicode(body):
        return "the body has text that is not valid Unicode"
    return None


def _typed(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    if "command" in body:
        wrong = _strings(body, "user_id", "trigger_id", "response_url")
        if wrong is None and not slack_id(body["user_id"]):
            return "user_id is not a Slack ID"
        if wrong is None and body.get("channel_id") and not slack_id(body["channel_id"]):
            return "channel_id is not a Slack ID"
        return wrong
    if kind == "event_callback":
        event = body.get("event")
        if event is None or not isinstance(event.get("type"), str):
            return "event.type is not a string"
        return None
    if kind == "url_verification":
        return None if isinstance(body.get("challenge"), str) else "challenge is not a string"
    if kind not in _INTERACTIVE:
        return None
    user = body.get("user")
    if not isinstance(user, dict) or not slack_id(user.get("id")):
        return "user.id is not a Slack ID"
    if kind in ("block_actions", "message_action", "shortcut") and not _nonempty(body.get("trigger_id")):
        return "trigger_id is not a string"
    on_message = kind == "message_action" or (
        kind == "block_actions" and body.get("container", {}).get("type") == "message"
    )
    if on_message and body.get("response_url") is None:
        return "response_url is missing"
    if kind == "block_actions":
        actions = body.get("actions")
        if not actions or not _list_of_dicts(actions):
            return "actions is not a list of objects"
        for action in actions:
            if not isinstance(action.get("action_id"), str):
                return "actions[].action_id is not a string"
            if action.get("block_id") is not None and not isinstance(action["block_id"], str):
                return "actions[].block_id is not a string"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if view is None or not all(isinstance(view.get(key), str) for key in ("id", "type", "callback_id")):
            return "view.id, view.type or view.callback_id is not a string"
        state = view.get("state", {})
        if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
            return "view.state.values is not an object"
        if view.get("private_metadata") is not None and not isinstance(view["private_metadata"], str):
            return "view.private_metadata is not a string"
    if kind in ("message_action", "shortcut") and not isinstance(body.get("callback_id"), str):
        return "callback_id is not a string"
    return None


def _strings(body: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if not _nonempty(body.get(key)):
            return f"{key} is not a string"
    return None


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _list_of_dicts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _unicode(node: Any) -> bool:
    """Every string in ``node`` (keys too) encodes as UTF-8: no lone surrogates."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


# -- reading values leniently ------------------------------------------------------------------


def mapping_of(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def text_of(value: Any) -> str | None:
    """``value`` if it is a string, else None (a number or an object where Slack sends text)."""
    return value if isinstance(value, str) else None


SLACK_ID_RE = re.compile(r"^[A-Z0-9]{2,40}$")
SLACK_TS_RE = re.compile(r"^[0-9]{1,12}\.[0-9]{1,8}$")


def slack_id(value: Any) -> str | None:
    """``value`` if it looks like a Slack ID (a channel's ``C0123ABC``, a user's ``U0123ABC``), else None."""
    return value if isinstance(value, str) and SLACK_ID_RE.match(value) else None


def slack_ts(value: Any) -> str | None:
    """``value`` if it looks like a message's timestamp (``1700000000.000100``), else None."""
    return value if isinstance(value, str) and SLACK_TS_RE.match(value) else None


# A scheme, a host (a name or an IPv4 address), maybe a port, then printable ASCII without spaces.
HTTP_URL_RE = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$")


def http_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL with a host (a response URL), else None."""
    if isinstance(value, str) and len(value) <= 1000 and HTTP_URL_RE.match(value):
        return value
    return None


def request_fields(body: Any) -> dict[str, str | None]:
    """What the log says of a request: its kind (``/lead``, ``block_actions``, ``event:app_mention``), user, team."""
    body = mapping_of(body)
    if isinstance(body.get("command"), str):
        return {
            "kind": text_of(body["command"])[:40],
            "user": slack_id(body.get("user_id")),
            "team": slack_id(body.get("team_id")),
        }
    kind = text_of(body.get("type")) or "unknown"
    if kind == "event_callback":
        event = mapping_of(body.get("event"))
        kind = f"event:{text_of(event.get('type')) or 'unknown'}"[:60]
        return {"kind": kind, "user": slack_id(event.get("user")), "team": slack_id(body.get("team_id"))}
    user, team = body.get("user"), body.get("team")
    return {
        "kind": kind[:40],
        "user": slack_id(mapping_of(user).get("id") if isinstance(user, dict) else user),
        "team": slack_id(mapping_of(team).get("id") if isinstance(team, dict) else team),
    }
