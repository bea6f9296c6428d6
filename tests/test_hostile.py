"""Hostile input, generated, through the real server: every payload type Slack sends, and worse.

Each example is one request to ``POST /slack/events`` on uvicorn, signed as Slack
signs (unless the example is about signing): slash commands with every form field
varied, ``block_actions``, ``view_submission``, ``view_closed``, the message
shortcut, each event the manifest subscribes to (and some it does not),
``url_verification``, ``ssl_check`` and raw bodies (bytes that are not UTF-8,
wrong content types, truncated JSON, empty and oversized bodies, bad headers).
Payloads start from what Slack sends and have fields replaced by junk, emptied
or dropped, so most examples get past the first check and into the handlers.

Whatever the request, the answer is a 2xx or a 4xx, never a 5xx; nothing the
fake Slack received (replies, messages, modals, App Home tabs) and no ack shows
a traceback, an exception's name or "something went wrong"; and nothing is
logged with a traceback. Example counts are bounded so the file runs in a few
seconds on two cores; ``HOSTILE_SCALE=20 pytest tests/test_hostile.py`` hunts longer.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import slackrequests as sr
from bot.server import MAX_BODY, ssl_check
from handlers import blocks
from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, STRANGER, new_lead
from tests.slack import signed_bytes

_EXCEPTIONS = sorted(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException) and name.endswith(("Error", "Exception"))
)
# What a person must never be shown: Python's own words for a failure.
LEAK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+|\b(?:"
    + "|".join([*_EXCEPTIONS, "ValidationError", "JSONDecodeError", "SlackApiError", "OperationalError"])
    + r")\b|[Ss]omething went wrong"
)


def examples(count: int) -> settings:
    """``count`` examples (times ``HOSTILE_SCALE`` from the environment, for a longer hunt)."""
    return settings(
        max_examples=count * int(os.environ.get("HOSTILE_SCALE", "1")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- what the bot is sent ---------------------------------------------------------------------

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
REFS = (
    *("local:1", "local:2", "1", "local:0", "local:-1", "local:1.5", "local:x", "LOCAL:1", "local:"),
    *("local:99999999999999999999", "local:9223372036854775807", "local:9223372036854775808", "local:" + "9" * 64),
    *("capillary:19", "leadsapi:7", "getlead:+919895012345", "nosuch:1", ":1", "local::1"),
)
WORDS = (
    *REFS,
    *("", " ", "me", "<@UREP1|ana>", "<@UREP2>", "<!channel>", "\x00", "\u202e", "💥", "null", "{}", "[]", "0"),
    *('{"ref": "local:1"}', '{"offset": -1}', '{"offset": 5, "o": "UREP1"}', "local:1|won", "local:1|", "|won"),
    *("card:local:1", "digest:local:1", "card:local:99999999999999999999", "won", "lost", "new", "ada@example.com"),
    *("+919895012345", "tomorrow 10am", "1700000000", "-1", "99999999999999999999", "1e308", "NaN"),
)
TEXT = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=30),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.integers(1, 20_000).map(lambda n: "x" * n),
)
ANY = st.one_of(TEXT, JUNK)
USERS = st.sampled_from([ADMIN, REP, OTHER, STRANGER, "W0GRID", "U0LEADBOT"])


def url_of(fake) -> st.SearchStrategy[Any]:
    """Response URLs: the fake Slack's (so replies are seen), junk, or none; never a host beyond 127.0.0.1."""
    ours = st.integers(0, 10**6).map(lambda n: fake.response_url(f"h{n}"))
    return st.one_of(
        ours,
        ours,
        st.sampled_from(["", "not a url", "ftp://127.0.0.1/x", "javascript:alert(1)", "/relative", "http://"]),
        JUNK,
    )


@st.composite
def varied(
    draw, base: dict[str, Any], alternatives: dict[str, st.SearchStrategy] | None = None, *, shape: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``base`` with fields kept, replaced by an alternative or by junk, or dropped; maybe one extra.

    The fields in ``shape`` (what the envelope must have) are broken only in one call in four, so
    that most examples get past the envelope check into the listeners; the others in one in three.
    """
    out: dict[str, Any] = {}
    # Hypothesis favours small draws: 0 is always "as Slack sends it".
    break_shape = draw(st.integers(0, 3)) == 3
    for key, value in base.items():
        roll = draw(st.integers(0, 11))
        if (key in shape and not break_shape) or roll < 8:
            out[key] = value
        elif roll == 11 and draw(st.booleans()):
            continue  # dropped
        elif key in (alternatives or {}) and draw(st.integers(0, 3)) < 3:
            out[key] = draw(alternatives[key])
        else:
            out[key] = draw(ANY)
    if draw(st.integers(0, 7)) == 7:
        out[draw(st.text(max_size=8))] = draw(ANY)
    return out


def form(fields: dict[str, Any]) -> bytes:
    return urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}).encode()


def interaction(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


# -- the bot, and what may never happen --------------------------------------------------------


@pytest.fixture
def hostile(bot, linked, caplog):
    """The real server with a lead to act on, previews on in C0SALES, and a check for each example."""
    new_lead(linked)
    new_lead(linked, "Bob Example", email="bob@example.com", by=ADMIN)
    bot.runtime.store.prefs.set_channel("C0SALES", previews=True)
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    return Hostile(bot, caplog)


class Hostile:
    def __init__(self, bot, caplog) -> None:
        self.bot = bot
        self.fake = bot.slack.fake
        self.caplog = caplog
        self.http = bot.slack.transport.http

    def send(
        self,
        body: bytes,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> int:
        """One request; asserts the answer and everything it led to. Returns the status."""
        self.fake.clear()
        self.caplog.clear()
        sent = {"Content-Type": content_type, **(signed_bytes(body, content_type) if signed else {}), **(headers or {})}
        answer = self.http.post("/slack/events", content=body, headers=sent)
        assert self.bot.executor.wait_idle(10), "the work after the ack did not finish"
        shown = body[:300]
        assert answer.status_code < 500, f"{answer.status_code} for {shown!r}"
        tracebacks = [
            f"{r.name} {r.levelname}: {r.getMessage()[:300]}"
            for r in self.caplog.records
            if r.exc_info or r.levelno >= logging.ERROR
        ]
        assert not tracebacks, f"{tracebacks} for {shown!r}"
        said = json.dumps([c.body for c in self.fake.received()]) + answer.text
        leak = LEAK.search(said)
        assert leak is None, (
            f"{leak.group()!r} shown for {shown!r}: {said[max(0, leak.start() - 200) : leak.end() + 200]}"
        )
        return answer.status_code


# -- slash commands ----------------------------------------------------------------------------

COMMAND_WORDS = ("new", "Ada", "ada@example.com", "next=tomorrow", "owner=me", "status=won", "reason=x", "sub=y")
SUBCOMMANDS = ("show", "note", "assign", "status", "followup", "edit", "list", "link", "unlink", "new", "remind", "")


@st.composite
def slash_commands(draw, fake) -> dict[str, Any]:
    n = sr.next_id()
    words = st.sampled_from(WORDS + COMMAND_WORDS + ("@bob", "<@UREP1|ana>"))
    text = draw(st.one_of(st.lists(words, max_size=6).map(" ".join), TEXT))
    base = {
        "token": "deprecated-verification-token",
        "team_id": sr.TEAM,
        "channel_id": "C0SALES",
        "user_id": draw(USERS),
        "user_name": "someone",
        "command": "/lead",
        "text": f"{draw(st.sampled_from(SUBCOMMANDS))} {text}".strip(),
        "api_app_id": sr.APP,
        "response_url": fake.response_url(f"cmd{n}"),
        "trigger_id": f"{n}.1.hostile",
    }
    alternatives = {"response_url": url_of(fake), "command": st.sampled_from(["/lead", "/other", "", "lead"])}
    return draw(
        varied(
            base,
            {k: alternatives.get(k, TEXT) for k in base},
            shape=("command", "user_id", "trigger_id", "response_url"),
        )
    )


@examples(70)
@given(data=st.data())
def test_slash_commands_with_any_fields(hostile, data):
    hostile.send(form(data.draw(slash_commands(hostile.fake))))


@examples(15)
@given(values=st.dictionaries(st.sampled_from(["command", "text", "user_id", "trigger_id", "channel_id"]), JUNK))
def test_slash_command_as_json_with_any_values(hostile, values):
    hostile.send(
        json.dumps({"command": "/lead", "user_id": ADMIN, "trigger_id": "1.2", **values}).encode(), "application/json"
    )


# -- block_actions -----------------------------------------------------------------------------

ACTION_IDS = st.one_of(st.sampled_from(blocks.ACTION_IDS), st.sampled_from(blocks.ACTION_IDS), st.text(max_size=12))
BLOCK_IDS = st.one_of(
    st.sampled_from(["b", "card:local:1", "digest:local:1", "card:local:99999999999999999999", "card:", "digest:x"]),
    TEXT,
)
OPTIONS = st.one_of(
    st.fixed_dictionaries(
        {"value": st.one_of(st.sampled_from(["local:1|won", "local:1|lost", "local:99999999999999999999|won"]), ANY)},
        optional={"text": JUNK},
    ),
    JUNK,
)


@st.composite
def actions(draw) -> dict[str, Any]:
    base = {
        "action_id": draw(ACTION_IDS),
        "block_id": draw(BLOCK_IDS),
        "type": draw(st.sampled_from(["button", "static_select", "users_select", "datetimepicker"])),
        "value": draw(st.one_of(st.sampled_from(REFS), TEXT)),
        "selected_option": draw(OPTIONS),
        "selected_user": draw(USERS),
        "action_ts": "1700000000.000001",
    }
    alternatives = {"value": ANY, "selected_option": OPTIONS, "selected_user": st.one_of(TEXT, JUNK)}
    return draw(varied(base, alternatives, shape=("action_id", "block_id")))


CONTAINERS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "view", "x"])},
        optional={"is_ephemeral": JUNK, "channel_id": st.one_of(TEXT, JUNK), "message_ts": st.one_of(TEXT, JUNK)},
    ),
    JUNK,
)


@st.composite
def block_action_payloads(draw, fake) -> dict[str, Any]:
    n = sr.next_id()
    where = draw(st.sampled_from(["message", "message", "ephemeral", "home"]))
    request = sr.block_actions(
        draw(actions()),
        user=draw(USERS),
        trigger_id=f"{n}.2.hostile",
        response_url=fake.response_url(f"act{n}"),
        message_ts="1700000000.000100",
        message_blocks=draw(st.one_of(st.just([]), st.lists(JUNK, max_size=3))),
        ephemeral=where == "ephemeral",
        home_view={"id": "VHOME", "type": draw(st.sampled_from(["home", "modal"]))} if where == "home" else None,
    )
    payload = json.loads(dict(_form_fields(request.body))["payload"])
    if draw(st.integers(0, 9)) == 9:
        payload["actions"] = draw(st.lists(st.one_of(actions(), JUNK), max_size=2))
    alternatives = {
        "user": st.one_of(st.fixed_dictionaries({"id": st.one_of(USERS, JUNK)}), JUNK),
        "response_url": url_of(fake),
        "container": CONTAINERS,
        "channel": st.one_of(st.fixed_dictionaries({"id": ANY}), JUNK),
        "message": st.fixed_dictionaries({}, optional={"ts": ANY, "blocks": JUNK, "text": ANY}),
        "view": st.fixed_dictionaries({}, optional={"type": ANY, "id": ANY}),
    }
    shape = ("type", "user", "actions", "trigger_id", "container", "response_url", "channel", "message", "view")
    return draw(varied(payload, alternatives, shape=shape))


def _form_fields(body: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body)


@examples(110)
@given(data=st.data())
def test_block_actions_with_any_ids_values_state_and_containers(hostile, data):
    hostile.send(interaction(data.draw(block_action_payloads(hostile.fake))))


# -- view_submission and view_closed -----------------------------------------------------------

INPUTS = ("name", "email", "phone", "lead_for", "type", "source", "note", "next", "backend", "owner", "status")
INPUTS += ("notes", "done_at", "text", "reason", "sub_status")
TIMES = st.one_of(
    st.integers(-(2**40), 2**70), st.sampled_from([1_700_000_000, 4_102_444_800, 0, 253402300800]), TEXT, JUNK
)
ELEMENT = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["plain_text_input", "users_select", "datetimepicker", "static_select"]),
        "value": ANY,
        "selected_user": st.one_of(USERS, JUNK),
        "selected_date_time": TIMES,
        "selected_option": OPTIONS,
    },
)
FIELD_VALUES = {
    "name": st.one_of(st.sampled_from(["Ada Lovelace", "x" * 151, " "]), TEXT),
    "email": st.one_of(st.sampled_from(["ada@example.com", "not-an-email", "a@b"]), TEXT),
    "phone": st.one_of(st.sampled_from(["+919895012345", "12", "+1 (555) 010-9999"]), TEXT),
    "backend": st.one_of(st.sampled_from(["local", "capillary", "nosuch"]), TEXT),
    "status": st.one_of(st.sampled_from(["new", "won", "nosuch"]), TEXT),
    "text": st.one_of(st.sampled_from(["called", "x" * 3001]), TEXT),
}


def _input(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """One input's state as Slack sends it, with a plausible or junk value for its kind of element."""
    if name in ("next", "done_at"):
        element = st.fixed_dictionaries({"type": st.just("datetimepicker"), "selected_date_time": TIMES})
    elif name == "owner":
        element = st.fixed_dictionaries({"type": st.just("users_select"), "selected_user": st.one_of(USERS, JUNK)})
    elif name in ("backend", "status", "reason", "sub_status"):
        value = FIELD_VALUES.get(name, TEXT)
        element = st.fixed_dictionaries(
            {
                "type": st.just("static_select"),
                "selected_option": st.one_of(st.fixed_dictionaries({"value": value}), OPTIONS),
            }
        )
    else:
        element = st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": FIELD_VALUES.get(name, TEXT)})
    return st.one_of(element, element, ELEMENT).map(lambda e: {name: e})


STATE_VALUES = st.one_of(
    st.lists(st.sampled_from(INPUTS), max_size=8, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: _input(name) for name in names})
    ),
    st.lists(st.sampled_from(INPUTS), max_size=8, unique=True).flatmap(
        lambda names: st.fixed_dictionaries(
            {name: st.one_of(JUNK, st.fixed_dictionaries({name: JUNK})) for name in names}
        )
    ),
    st.dictionaries(st.text(max_size=6), JUNK, max_size=3),
)


FORMS = {
    blocks.NEW_LEAD_VIEW: ("name", "email", "phone", "lead_for", "type", "source", "note", "next", "backend", "owner"),
    blocks.FOLLOW_UP_VIEW: ("notes", "done_at", "next"),
    blocks.NOTE_VIEW: ("text",),
    blocks.STATUS_VIEW: ("reason", "sub_status"),
}


@st.composite
def form_state(draw, callback: str) -> dict[str, Any]:
    """The state of the form ``callback`` names: most of its inputs there, each plausible or junk."""
    return {name: draw(_input(name)) for name in FORMS.get(callback, INPUTS) if draw(st.integers(0, 3)) < 3}


@st.composite
def metadata(draw, fake) -> str:
    fields = {
        "ref": st.one_of(st.sampled_from(REFS), JUNK),
        "response_url": url_of(fake),
        "channel": st.one_of(st.just("C0SALES"), JUNK),
        "ts": st.one_of(st.just("1700000000.000100"), JUNK),
        "home": JUNK,
        "digest": JUNK,
        "status": st.one_of(st.sampled_from(["won", "lost", "nosuch"]), JUNK),
        "status_label": JUNK,
        "permalink": st.one_of(TEXT, JUNK),
    }
    required = {
        "ref": st.one_of(st.sampled_from(REFS), fields.pop("ref")),
        "response_url": st.one_of(st.just(fake.response_url("modal")), fields.pop("response_url")),
        "status": st.one_of(st.sampled_from(["won", "lost", "new"]), fields.pop("status")),
    }
    chosen = draw(varied(draw(st.fixed_dictionaries(required, optional=fields))))
    text = json.dumps(chosen)
    truncated = st.integers(0, len(text)).map(lambda k: text[:k])
    return draw(st.one_of(st.just(text), st.just(text), truncated, TEXT, JUNK.map(json.dumps)))


@st.composite
def view_payloads(draw, fake, kind: str) -> dict[str, Any]:
    callback = draw(st.one_of(*[st.sampled_from(blocks.CALLBACK_IDS)] * 3, TEXT))
    view = {
        "id": f"V{sr.next_id()}",
        "type": "modal",
        "callback_id": callback,
        "private_metadata": draw(metadata(fake)),
        "state": {"values": draw(st.one_of(form_state(callback), STATE_VALUES))},
        "hash": "h1",
        "team_id": sr.TEAM,
        "app_id": sr.APP,
    }
    state = st.one_of(st.fixed_dictionaries({"values": JUNK}), JUNK)
    view = draw(varied(view, {"state": state}, shape=("id", "type", "callback_id", "state", "private_metadata")))
    payload = {
        "type": kind,
        "team": {"id": sr.TEAM, "domain": "leadbot-test"},
        "user": {"id": draw(USERS), "team_id": sr.TEAM},
        "api_app_id": sr.APP,
        "trigger_id": f"{sr.next_id()}.3.hostile",
        "view": view,
        "is_cleared": draw(st.booleans()),
        "response_urls": [],
    }
    alternatives = {
        "user": st.one_of(st.fixed_dictionaries({"id": JUNK}), JUNK),
        "view": JUNK,
        "response_urls": st.lists(
            st.fixed_dictionaries({"response_url": url_of(fake), "channel_id": TEXT}), max_size=2
        ),
    }
    shape = ("type", "team", "user", "view", "trigger_id", "response_urls")
    return draw(varied(payload, alternatives, shape=shape))


@examples(110)
@given(data=st.data())
def test_view_submissions_with_any_state_and_private_metadata(hostile, data):
    hostile.send(interaction(data.draw(view_payloads(hostile.fake, "view_submission"))))


@examples(20)
@given(data=st.data())
def test_view_closed_with_any_state_and_private_metadata(hostile, data):
    hostile.send(interaction(data.draw(view_payloads(hostile.fake, "view_closed"))))


# -- the message shortcut ----------------------------------------------------------------------


@st.composite
def message_actions(draw, fake) -> dict[str, Any]:
    n = sr.next_id()
    text = draw(st.one_of(TEXT, st.just("Jane Doe jane@acme.example +919895012345 wants a demo")))
    request = sr.message_action(
        draw(st.one_of(st.just(blocks.LEAD_FROM_MESSAGE), st.just(blocks.LEAD_FROM_MESSAGE), TEXT)),
        text,
        user=draw(USERS),
        trigger_id=f"{n}.4.hostile",
        response_url=fake.response_url(f"short{n}"),
    )
    payload = json.loads(dict(_form_fields(request.body))["payload"])
    payload["message"] = draw(varied(payload["message"]))
    alternatives = {
        "message": JUNK,
        "channel": st.one_of(st.fixed_dictionaries({"id": ANY}), JUNK),
        "user": st.one_of(st.fixed_dictionaries({"id": JUNK}), JUNK),
        "response_url": url_of(fake),
        "message_ts": ANY,
    }
    shape = ("type", "callback_id", "trigger_id", "user", "channel", "message", "response_url", "team")
    return draw(varied(payload, alternatives, shape=shape))


@examples(40)
@given(data=st.data())
def test_message_shortcut_with_any_message(hostile, data):
    hostile.send(interaction(data.draw(message_actions(hostile.fake))))


# -- events ------------------------------------------------------------------------------------


@st.composite
def events(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["app_home_opened", "message", "message", "app_mention", "reaction_added", "x"]))
    if kind == "app_home_opened":
        base = {"type": kind, "user": draw(USERS), "channel": "DUADMIN", "tab": draw(st.sampled_from(["home", "x"]))}
    else:
        base = {
            "type": kind,
            "channel": draw(st.sampled_from(["C0SALES", "C0OTHER"])),
            "user": draw(USERS),
            "text": draw(st.one_of(st.lists(st.sampled_from(REFS), max_size=4).map(" see ".join), TEXT)),
            "ts": "1700000600.000100",
            "thread_ts": draw(st.one_of(st.none(), st.just("1700000500.000100"))),
            "subtype": draw(st.sampled_from([None, "thread_broadcast", "message_changed", "bot_message"])),
            "channel_type": "channel",
        }
    event = draw(varied(base, {"type": st.sampled_from(["message", "app_home_opened"])}, shape=("type",)))
    body = json.loads(sr.event_callback(event).body)
    alternatives = {
        "authorizations": st.one_of(st.lists(st.one_of(JUNK, st.fixed_dictionaries({"user_id": JUNK}))), JUNK),
        "type": st.sampled_from(["event_callback", "app_rate_limited", "x"]),
        "event": JUNK,
    }
    return draw(varied(body, alternatives, shape=tuple(body)))


@examples(80)
@given(data=st.data())
def test_events_of_every_subscribed_type_with_any_fields(hostile, data):
    hostile.send(json.dumps(data.draw(events())).encode(), "application/json")


# -- url_verification and ssl_check ------------------------------------------------------------


@examples(20)
@given(challenge=ANY, signed=st.booleans(), as_form=st.booleans())
def test_url_verification_and_ssl_check(hostile, challenge, signed, as_form):
    status = hostile.send(
        json.dumps({"type": "url_verification", "token": "t", "challenge": challenge}).encode(),
        "application/json",
        signed=signed,
    )
    assert status in (200, 400) if signed else status == 401
    ssl = {"ssl_check": "1", "token": challenge if isinstance(challenge, str) else "t"}
    status = hostile.send(form(ssl) if as_form else json.dumps(ssl).encode(), signed=signed)
    assert status == 200 if signed or (as_form and len(form(ssl)) < 512) else status == 401


# -- raw bodies and headers --------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "multipart/form-data; boundary=xyz",
        "",
        "application/x-www-form-urlencoded; charset=latin-1",
        'application/x-www-form-urlencoded; x="y"',
    ]
)
VALID_BODIES = (
    interaction({"type": "block_actions", "user": {"id": ADMIN}, "actions": [{"action_id": "lead_refresh"}]}),
    interaction({"type": "view_submission", "user": {"id": ADMIN}, "view": {"id": "V1", "callback_id": "lead_note"}}),
    form({"command": "/lead", "text": "show local:1", "user_id": ADMIN, "trigger_id": "1.2.3"}),
    json.dumps({"type": "event_callback", "event": {"type": "app_home_opened", "user": ADMIN}}).encode(),
)


@st.composite
def raw_bodies(draw) -> bytes:
    valid = draw(st.sampled_from(VALID_BODIES))
    payload = json.dumps({"type": "block_actions", "user": {"id": ADMIN}, "actions": [{"action_id": "lead_refresh"}]})
    return draw(
        st.one_of(
            st.binary(max_size=200),
            st.binary(max_size=40).map(lambda b: b"payload=" + b + b"\xff\xfe"),
            st.binary(min_size=1, max_size=30).map(lambda b: b"\x80" + b),
            st.integers(0, len(valid)).map(lambda k: valid[:k]),  # truncated, anywhere
            st.integers(0, len(payload)).map(lambda k: urlencode({"payload": payload[:k]}).encode()),
            st.sampled_from([b"", b" ", b"payload=", b"payload", b"payload=null", b"payload=%5B%5D", b"payload=1"]),
            st.sampled_from([b"[]", b"[{}]", b"1", b'"x"', b"null", b"{}", b'{"type": 5}', b"{" * 10_000]),
            st.sampled_from([b"payload=%7B%22type%22%3A%22block_actions%22%7D&payload=x", b"a=b&a=c", b"%%%%"]),
            st.just(valid.replace(b"a", "\u00e9".encode("latin-1"))),  # latin-1 where UTF-8 is expected
        )
    )


@examples(80)
@given(body=raw_bodies(), content_type=CONTENT_TYPES, signed=st.booleans())
def test_raw_bodies_of_any_bytes_and_content_type(hostile, body, content_type, signed):
    status = hostile.send(body, content_type, signed=signed)
    if not signed and not ssl_check(body):  # Slack's certificate check is answered unsigned, as Bolt does
        assert status == 401


HEADER_VALUES = st.one_of(
    st.sampled_from(["", "abc", "1e9", "-1", "0", "9" * 5000, "1700000000.5", "v0=", "v1=abc", "v0=" + "0" * 64]),
    # What a client can send as a header value (no surrounding spaces).
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip),
)


@examples(30)
@given(timestamp=st.one_of(st.none(), HEADER_VALUES), signature=st.one_of(st.none(), HEADER_VALUES))
def test_any_signature_headers_get_401(hostile, timestamp, signature):
    headers = {}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    assert hostile.send(VALID_BODIES[2], signed=False, headers=headers) == 401


@examples(6)
@given(size=st.sampled_from([MAX_BODY - 4096, MAX_BODY + 1, 2 * MAX_BODY]), signed=st.booleans())
def test_huge_field_values(hostile, size, signed):
    body = form({"command": "/lead", "text": "note local:1 " + "é" * (size // 6), "user_id": ADMIN, "trigger_id": "9"})
    status = hostile.send(body, signed=signed)
    if len(body) > MAX_BODY:
        assert status == 413
    elif not signed:
        assert status == 401
