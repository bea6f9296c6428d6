"""What the hostile suite (tests/test_hostile.py) found, one example each.

Each test sends one shape that used to answer 500, log a traceback or show
"Something went wrong", and checks what happens now: a 4xx for a request no
Slack client sends, or, where a person is behind it, the reply that says what
was wrong, with nothing logged as an error.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from bot import slackrequests as sr
from tests.conftest import ADMIN, REP, activity, lead, leads, new_lead
from tests.slack import signed_bytes

HUGE = "local:99999999999999999999"  # past SQLite's 64-bit integers
# Response URLs Slack never sends: this long, with a space, with a letter that is not ASCII.
ODD_URLS = ("http://127.0.0.1/" + "x" * 1000, "http://127.0.0.1/a b", "http://127.0.0.1/\u00e9")


@pytest.fixture
def errors(caplog):
    """What was logged at ERROR, or with a traceback, during the test."""
    caplog.set_level(logging.INFO)
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def interaction(payload: dict) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(bot, body: bytes, content_type: str = "application/x-www-form-urlencoded", *, signed: bool = True):
    headers = signed_bytes(body, content_type) if signed else {"Content-Type": content_type}
    answer = bot.slack.transport.http.post("/slack/events", content=body, headers=headers)
    assert bot.executor.wait_idle(10)
    return answer


# -- raw bodies, through the real server -----------------------------------------------------


BODIES = [
    # Starlette's adapter decoded the body as UTF-8 before anything checked it: UnicodeDecodeError, 500.
    (b"payload=\xff\xfe", "application/x-www-form-urlencoded", "the body is not UTF-8"),
    # Bolt parsed JSON it could not read: JSONDecodeError, 500.
    (b"payload=%7B%22type%22%3A", "application/x-www-form-urlencoded", "neither Slack's form nor its JSON"),
    (b"[1, 2]", "application/json", "neither Slack's form nor its JSON"),  # Bolt: list.get, AttributeError
    (b"5", "application/json", "neither Slack's form nor its JSON"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded", "neither Slack's form nor its JSON"),
    (b"{" * 100_000, "application/json", "neither Slack's form nor its JSON"),  # RecursionError
    # A team that is a number, authorizations that are text: Bolt's build_context raised, 500.
    (interaction({"type": "block_actions", "team": 5}), "application/x-www-form-urlencoded", "neither"),
    (b'{"type": "event_callback", "authorizations": "x"}', "application/json", "neither"),
]


def test_a_body_slack_would_never_send_is_a_400(bot, errors):
    for body, content_type, said in BODIES:
        answer = post(bot, body, content_type)
        assert answer.status_code == 400 and said in answer.json()["error"], (body[:50], answer.text)
    assert errors() == []


def test_a_body_that_is_not_utf8_and_not_signed_is_a_401_before_anything_reads_it(bot, errors):
    assert post(bot, b"\xff\xfe\x00", "text/plain", signed=False).status_code == 401
    assert errors() == []


def test_a_timestamp_that_is_not_a_number_is_a_401(bot, errors):
    # Bolt's verifier ran int(timestamp): a ValueError, which its error handler answered with a 200 and
    # "Something went wrong" in the ack of an unsigned request.
    body = "command=%2Flead&text=help&user_id=UADMIN&trigger_id=1.2.3"
    for timestamp in ["abc", "", "9" * 5000, "-1", "1e9", "1700000000.5"]:
        headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=x"}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = bot.slack.transport.http.post("/slack/events", content=body, headers=headers)
        assert answer.status_code == 401 and "wrong" not in answer.text, timestamp[:20]
    assert errors() == []


def test_a_submission_with_two_response_urls_is_read(bot, linked, errors):
    # Bolt logs while building such a request, before its context has a logger: KeyError('logger'), 500.
    view = {"id": "V1", "type": "modal", "callback_id": "lead_note", "state": {"values": {}}, "private_metadata": "{}"}
    urls = [{"response_url": bot.slack.fake.response_url(f"r{n}"), "channel_id": "C0SALES"} for n in range(2)]
    payload = {"type": "view_submission", "user": {"id": ADMIN}, "view": view, "response_urls": urls}
    answer = post(bot, interaction(payload))
    assert answer.status_code == 200 and answer.json()["errors"] == {"text": "Write the note first."}
    assert errors() == []


# -- envelopes Bolt cannot read (dispatch is enough: the check is the app's) -----------------------


@pytest.mark.parametrize(
    "payload, problem",
    [
        # Bolt's block_actions matcher: body["actions"][0]["action_id"] -> IndexError / TypeError, 500.
        ({"type": "block_actions", "user": {"id": ADMIN}, "trigger_id": "1", "actions": []}, "actions is not"),
        ({"type": "block_actions", "user": {"id": ADMIN}, "trigger_id": "1", "actions": [5]}, "actions is not"),
        (
            {"type": "block_actions", "user": {"id": ADMIN}, "trigger_id": "1", "actions": [{"action_id": 7}]},
            "actions[].action_id",
        ),
        ({"type": "block_actions", "user": {"id": ADMIN}, "container": "x", "actions": [{}]}, "container is not"),
        # Slack sends a trigger_id with every press, and a response_url with every press on a message.
        ({"type": "block_actions", "user": {"id": ADMIN}, "actions": [{"action_id": "lead_refresh"}]}, "trigger_id"),
        (
            {
                "type": "block_actions",
                "user": {"id": ADMIN},
                "trigger_id": "1",
                "container": {"type": "message", "message_ts": "1700000000.000100"},
                "actions": [{"action_id": "lead_refresh", "block_id": "card:local:1"}],
            },
            "response_url is missing",
        ),
        # The New lead form read before its ack: view.state.values.get -> AttributeError (logged, acked).
        (
            {
                "type": "view_submission",
                "user": {"id": ADMIN},
                "view": {"id": "V1", "type": "modal", "callback_id": "lead_new", "state": "garbage"},
            },
            "view.state.values is not",
        ),
        (
            {
                "type": "view_submission",
                "user": {"id": ADMIN},
                "view": {"id": "V1", "type": "modal", "callback_id": "lead_new", "state": {"values": ["garbage"]}},
            },
            "view.state.values is not",
        ),
        # Bolt's is_workflow_step_save: body["view"]["type"] -> KeyError, 500.
        (
            {"type": "view_submission", "user": {"id": ADMIN}, "view": {"id": "V1", "callback_id": "lead_note"}},
            "view.id, view.type or view.callback_id",
        ),
        (
            {
                "type": "block_actions",
                "user": {"id": ADMIN},
                "trigger_id": "1",
                "actions": [{"action_id": "lead_assign_me", "block_id": 5}],
            },
            "actions[].block_id is not a string",
        ),
        (
            {
                "type": "view_submission",
                "user": {"id": ADMIN},
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": "lead_note",
                    "private_metadata": {"ref": "local:1"},
                },
            },
            "view.private_metadata is not a string",
        ),
        (
            {"type": "message_action", "user": {"id": ADMIN}, "trigger_id": "1", "response_url": "http://127.0.0.1/r"},
            "callback_id is not a string",
        ),
        # A user that is a list: People and the store were given a list (sqlite3 ProgrammingError).
        ({"type": "view_closed", "user": {"id": ["U1"]}, "view": {"id": "V1", "type": "modal"}}, "user.id"),
        # A message shortcut on a message that is a string: message.get -> AttributeError, 500.
        (
            {"type": "message_action", "callback_id": "lead_from_message", "user": {"id": ADMIN}, "message": "hi"},
            "message is not",
        ),
    ],
)
def test_an_interaction_slack_would_never_send_is_a_400(slack, errors, payload, problem):
    answer = slack.interact(payload)
    assert answer.status_code == 400 and problem in answer.json()["error"], answer.text
    assert slack.replies() == [] and errors() == []


@pytest.mark.parametrize(
    "fields, problem",
    [
        # run_subcommand read command["user_id"] after the ack: KeyError, "Something went wrong".
        ({"text": "show local:1", "trigger_id": "1.2"}, "user_id is not"),
        # No trigger_id: every such command shared the claim "command:None"; the second never ran.
        ({"text": "help", "user_id": ADMIN}, "trigger_id is not"),
        ({"text": "whoami", "user_id": "uadmin", "trigger_id": "1.2"}, "user_id is not a Slack ID"),
        ({"text": "whoami", "user_id": "U" + "1" * 3000, "trigger_id": "1.2"}, "user_id is not a Slack ID"),
        ({"text": "show local:1", "user_id": ADMIN, "trigger_id": "1.2", "response_url": "not a url"}, "response_url"),
        *[({"text": "help", "user_id": ADMIN, "trigger_id": "1.2", "response_url": url}, "url") for url in ODD_URLS],
        ({"text": "new", "user_id": ADMIN, "trigger_id": "1.2", "channel_id": "x" * 3000}, "channel_id"),
    ],
)
def test_a_command_slack_would_never_send_is_a_400(slack, errors, fields, problem):
    fields = {"command": "/lead", "response_url": slack.fake.response_url("c"), **fields}
    answer = slack.post(urlencode(fields))
    assert answer.status_code == 400 and problem in answer.json()["error"], answer.text
    assert slack.replies() == [] and errors() == []


@pytest.mark.parametrize(
    "event, problem",
    [
        ({"event": 5}, "event is not"),  # Bolt's is_event: "type" in body["event"] -> TypeError, 500
        ({"event": {"user": ADMIN}}, "event.type"),
    ],
)
def test_an_event_slack_would_never_send_is_a_400(slack, errors, event, problem):
    body = json.dumps({"type": "event_callback", "team_id": sr.TEAM, **event})
    answer = slack.send(sr.SlackRequest(body, "application/json"))
    assert answer.status_code == 400 and problem in answer.json()["error"], answer.text
    assert errors() == []


@pytest.mark.parametrize("challenge", [None, 5, {"x": 1}])
def test_a_url_verification_without_a_text_challenge_is_a_400(slack, errors, challenge):
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": challenge})
    answer = slack.send(sr.SlackRequest(body, "application/json"))
    assert answer.status_code == 400 and "challenge is not a string" in answer.json()["error"], answer.text
    assert errors() == []


def test_text_that_is_not_unicode_is_a_400(slack, errors):
    # A lone surrogate, escaped in JSON: stored or sent on, it raised UnicodeEncodeError in SQLite or httpx.
    body = urlencode(
        {
            "payload": '{"type": "block_actions", "user": {"id": "UADMIN"}, "trigger_id": "1",'
            ' "actions": [{"action_id": "lead_refresh", "value": "\\ud800"}]}'
        }
    )
    answer = slack.post(body)
    assert answer.status_code == 400 and "not valid Unicode" in answer.json()["error"]
    in_a_key = '{"type": "event_callback", "event": {"type": "app_home_opened", "user": "UADMIN", "\\udc80": 1}}'
    answer = slack.send(sr.SlackRequest(in_a_key, "application/json"))
    assert answer.status_code == 400 and "not valid Unicode" in answer.json()["error"]
    assert errors() == []


def test_a_request_no_listener_takes_is_acked_and_logged_without_its_payload(slack, caplog):
    caplog.set_level(logging.INFO)
    payload = {"type": "block_actions", "user": {"id": ADMIN}, "trigger_id": "1.2", "response_url": None}
    payload["actions"] = [{"action_id": "no_such_button", "value": "secret-looking-value-42"}]
    answer = slack.interact(payload)
    assert answer.status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "no listener for this request (type block_actions)" in logged
    assert "secret-looking-value-42" not in logged  # Bolt's own warning quoted the payload


# -- what a person sees when a value is of the wrong kind ---------------------------------------


def card(slack, linked) -> tuple[str, list[dict]]:
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    return ref, slack.last_reply()["blocks"]


def press(slack, action: dict, *, user: str = ADMIN) -> None:
    n = sr.next_id()
    slack.send(
        sr.block_actions(
            {"action_ts": "1", **action},
            user=user,
            trigger_id=f"{n}.7",
            response_url=slack.fake.response_url(f"p{n}"),
            message_ts="1700000000.000100",
        )
    )


def test_a_status_select_whose_option_is_not_an_object_says_the_card_is_out_of_date(slack, linked, errors):
    # (selected_option or {}).get("value") on a string: AttributeError after the ack, "Something went wrong".
    ref, _ = card(slack, linked)
    press(slack, {"action_id": "lead_set_status", "block_id": f"card:{ref}", "selected_option": "won"})
    assert slack.last_reply()["text"] == ":warning: This card is out of date; press Refresh and choose again"
    assert lead(linked, ref).status == "new" and errors() == []


def test_a_list_button_whose_value_is_not_text_says_the_list_is_out_of_date(slack, linked, errors):
    # json.loads(5): TypeError after the ack, "Something went wrong".
    press(slack, {"action_id": "lead_list_page", "value": 5})
    assert slack.last_reply()["text"] == ":warning: This list is out of date; run `/lead list` again"
    assert errors() == []


def test_an_assign_picker_whose_user_is_not_text_changes_nothing(slack, linked, errors):
    ref, _ = card(slack, linked)
    press(slack, {"action_id": "lead_assign_to", "block_id": f"card:{ref}", "selected_user": ["UREP1"]})
    assert lead(linked, ref).owner == "ada" and errors() == []


def submit(slack, callback_id: str, values: dict, metadata: dict | str | None = None, *, user: str = ADMIN):
    state = {name: {name: element} for name, element in values.items()}
    private = metadata if isinstance(metadata, str) else json.dumps(metadata or {})
    view = {"id": f"V{sr.next_id()}", "type": "modal", "callback_id": callback_id, "private_metadata": private}
    payload = {"type": "view_submission", "user": {"id": user}, "view": {**view, "state": {"values": state}}}
    return slack.interact(payload)


@pytest.mark.parametrize("when", ["tomorrow", 2**70, -5, 1.5, True, {"at": 1}])
def test_a_date_that_is_not_unix_seconds_is_a_field_error(slack, linked, errors, when):
    # int("tomorrow") ValueError, datetime.fromtimestamp(2**70) OverflowError: before the ack, logged as bugs.
    values = {
        "name": {"type": "plain_text_input", "value": "Ada"},
        "email": {"type": "plain_text_input", "value": "ada@example.com"},
        "next": {"type": "datetimepicker", "selected_date_time": when},
    }
    assert submit(slack, "lead_new", values).json()["errors"] == {"next": "Pick the date and time again."}
    follow_up = submit(slack, "lead_follow_up", {"done_at": {"type": "datetimepicker", "selected_date_time": when}})
    assert follow_up.json()["errors"] == {"done_at": "Pick the date and time again."}
    assert errors() == []


def test_form_fields_that_are_not_text_read_as_empty(slack, linked, errors):
    # (5).strip(): AttributeError before the ack.
    answer = submit(slack, "lead_new", {"name": {"value": 5}, "email": {"selected_option": "x"}})
    assert answer.json()["errors"] == {"name": "Give the lead a name.", "email": "Give an email or a phone number."}
    assert submit(slack, "lead_note", {"text": {"value": ["hi"]}}).json()["errors"] == {"text": "Write the note first."}
    assert errors() == []


def test_a_status_form_that_lost_its_status_says_so(slack, linked, errors):
    ref = new_lead(linked)
    metadata = {"ref": ref, "response_url": slack.fake.response_url("m")}  # no "status"
    answer = submit(slack, "lead_status", {"reason": {"selected_option": {"value": "r1"}}}, metadata)
    assert answer.json()["errors"] == {"reason": "This form is out of date: choose the status again on the card."}
    assert lead(linked, ref).status == "new" and errors() == []


@pytest.mark.parametrize(
    "metadata",
    [
        '{"ref": ',
        '["local:1"]',
        json.dumps({"ref": 5, "response_url": "x"}),
        json.dumps({"ref": 1, "response_url": "http://127.0.0.1:9/r"}),  # a number where the card's ref was
        json.dumps({"ref": "local:1", "response_url": "javascript:alert(1)"}),
    ],
)
def test_a_card_form_whose_metadata_is_unreadable_writes_nothing(slack, linked, errors, caplog, metadata):
    ref = new_lead(linked)
    answer = submit(slack, "lead_note", {"text": {"value": "hello"}}, metadata)
    assert answer.status_code == 200
    assert activity(linked, ref) == [] and errors() == []
    assert "lead_note submitted without the card it belongs to" in caplog.text


@pytest.mark.parametrize("response_url", ["ftp://127.0.0.1/x", "javascript:alert(1)", "/relative", 5])
def test_a_new_lead_form_with_nowhere_to_answer_makes_no_lead_nobody_is_told_of(
    slack, linked, errors, caplog, response_url
):
    values = {
        "name": {"type": "plain_text_input", "value": "Jane Doe"},
        "email": {"type": "plain_text_input", "value": "jane@example.com"},
    }
    assert submit(slack, "lead_new", values, {"response_url": response_url}).status_code == 200
    assert leads(linked) == [] and slack.fake.received("response") == [] and errors() == []
    assert "New lead modal submitted without a response_url" in caplog.text


def test_a_new_lead_form_whose_message_timestamp_is_not_slacks_makes_the_lead_and_no_thread_reply(
    slack, linked, errors
):
    metadata = {"channel": "C0SALES", "ts": "../not-a-ts", "response_url": slack.fake.response_url("f")}
    values = {
        "name": {"type": "plain_text_input", "value": "Jane Doe"},
        "email": {"type": "plain_text_input", "value": "jane@example.com"},
    }
    assert submit(slack, "lead_new", values, metadata, user=REP).status_code == 200
    assert "Jane Doe" in slack.last_reply()["text"] and lead(linked, "local:1").name == "Jane Doe"
    assert slack.thread_replies() == [] and errors() == []


def test_a_message_shortcut_on_a_message_with_an_odd_timestamp_still_opens_the_form(slack, linked, errors):
    # The ts went into the form's private_metadata: over 3,000 characters, SlackObjectFormationError.
    n = sr.next_id()
    request = sr.message_action(
        "lead_from_message",
        "Jane Doe jane@acme.example",
        user=REP,
        trigger_id=f"{n}.1",
        response_url=slack.fake.response_url("s"),
        message_ts="x" * 1422,
    )
    slack.send(request)
    (view,) = slack.opened_views()
    assert json.loads(view["private_metadata"]).get("ts") is None and errors() == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "channel": "C0SALES", "text": "see local:1", "ts": "1.2", "subtype": ["x"]},  # TypeError
        {"type": "message", "channel": "C0SALES", "text": "see local:1"},  # event["ts"]: KeyError before the ack
        {"type": "message", "channel": ["C0SALES"], "text": "see local:1", "ts": "1.2"},
        {"type": "app_home_opened", "tab": "home"},  # event["user"]: KeyError before the ack
        {"type": "app_home_opened", "user": ["UADMIN"], "tab": "home"},  # a list into SQLite, after the ack
    ],
)
def test_events_with_fields_of_the_wrong_kind_are_acked_and_ignored(slack, linked, runtime, errors, event):
    runtime.store.prefs.set_channel("C0SALES", previews=True)
    new_lead(linked)
    assert slack.event(event).status_code == 200
    assert slack.fake.received("api", "chat.postMessage") == [] and slack.fake.received("api", "views.publish") == []
    assert errors() == []


# -- lead numbers past the store's integers ------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [f"show {HUGE}", f"note {HUGE} hi", f"assign {HUGE} me", f"status {HUGE} won", f"followup {HUGE} called"],
)
def test_a_lead_number_past_the_stores_range_is_no_such_lead(slack, linked, errors, command):
    slack.command(command)
    assert slack.last_reply()["text"].startswith(f":warning: There is no lead `{HUGE}`")
    assert errors() == []


def test_buttons_and_forms_for_a_lead_number_past_the_stores_range_say_there_is_no_such_lead(slack, linked, errors):
    press(slack, {"action_id": "lead_assign_me", "block_id": f"card:{HUGE}"})
    assert slack.last_reply()["text"].startswith(f":warning: There is no lead `{HUGE}`")
    press(slack, {"action_id": "lead_set_status", "selected_option": {"value": f"{HUGE}|won"}})
    assert slack.last_reply()["text"].startswith(f":warning: There is no lead `{HUGE}`")
    metadata = {"ref": HUGE, "response_url": slack.fake.response_url("n")}
    submit(slack, "lead_note", {"text": {"value": "hello"}}, metadata)
    assert slack.last_reply()["text"].startswith(f":warning: There is no lead `{HUGE}`")
    assert errors() == []


# -- what people type, with braces ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command, said",
    [
        # The typed text went into the error's template: str.format_map raised KeyError, "Something went wrong".
        ("new Ada {x}@example", "`{x}@example` is not a valid email address"),
        ('new Ada ada@example.com next="{when}"', "I can't read `{when}` as a date or time"),
        ("followup local:1 next={0} called", "I can't read `{0}` as a date or time"),
    ],
)
def test_braces_in_what_was_typed_are_shown_back_as_typed(slack, linked, errors, command, said):
    new_lead(linked)
    slack.command(command)
    assert said in slack.last_reply()["text"]
    assert errors() == []


def test_braces_in_a_phone_on_the_form_are_a_field_error(slack, linked, errors):
    values = {
        "name": {"type": "plain_text_input", "value": "Ada"},
        "phone": {"type": "plain_text_input", "value": '{"ref": "local:1"}'},
    }
    answer = submit(slack, "lead_new", values)
    assert answer.json()["errors"]["phone"].startswith('`{"ref": "local:1"}` has no country code')
    assert errors() == []


def test_a_shape_the_envelope_check_misses_is_still_a_400_and_its_traceback_is_logged(bot, monkeypatch, caplog):
    import handlers.payloads

    monkeypatch.setattr(handlers.payloads, "problem", lambda body, raw="": None)  # as if it had not foreseen this
    payload = {"type": "block_actions", "user": {"id": ADMIN}, "trigger_id": "1", "actions": []}
    answer = post(bot, interaction(payload))
    assert answer.status_code == 400 and "the request could not be read (ref " in answer.json()["error"]
    (record,) = [r for r in caplog.records if "a request Bolt could not handle" in r.getMessage()]
    assert isinstance(record.exc_info[1], IndexError)


def test_the_word_payload_in_a_command_is_just_a_word(slack, linked, errors):
    # Bolt's parser took any body with "payload" in it for an interaction: the command read as empty, 404.
    ref = new_lead(linked)
    answer = slack.command(f"note {ref} the payload is ready")
    assert answer.status_code == 200
    assert activity(linked, ref) == [("note", "the payload is ready")]
    assert errors() == []
