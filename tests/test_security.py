"""The security matrix: forged, stale and replayed requests, and who may change what.

Each test asserts what Slack would show and that the store is unchanged. The
requests that never reach a listener (no or a wrong signature, a stale or future
timestamp, a replay) go through the real server, as ``leadbot run`` serves it;
the permission cases through the app, signed as Slack signs. Cases tested where
their feature lives: an unlinked user's buttons and forms
(test_interactions.py::test_assign_to_me_needs_a_link,
test_card_modals.py::test_follow_up_needs_a_link and ::test_status_select_needs_a_link,
test_commands.py::test_unlinked_user_cannot_create), linking and unlinking others
(test_commands.py::test_link_mistakes), a backend one is not linked on
(test_leadsapi_slack.py::test_someone_linked_elsewhere_changes_nothing_in_the_rest_api),
Slack's retries (test_requests.py::test_slack_retry_creates_nothing_twice).

Buttons act as whoever presses them, with that person's permissions, on any card:
in a channel, in a DM, on the App Home, or ephemeral. Slack shows an ephemeral card
only to the person it was sent to, so only they can press it; and nothing on a card
carries more than the lead's reference, so whoever presses it can do no more than
they could by typing the command (a duplicate warning's "Show" posts the card to
the presser, as ``/lead show`` would).
"""

from __future__ import annotations

import time

import pytest

from bot import slackrequests as sr
from handlers.blocks import show_button
from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, STRANGER, activity, audited, lead, leads, new_lead
from tests.slack import SIGNING_SECRET, text_of

NOT_LINKED = (
    ":warning: You are not linked to a staff ID in local, so you can't change its leads."
    " Ask an admin to run `/lead link @you STAFF_ID backend=local`"
)


def state(service, ref: str) -> tuple:
    """Everything a write could change on the lead, and how many leads there are."""
    found = lead(service, ref)
    return (len(leads(service)), found.owner, found.status, found.next_follow_up, activity(service, ref))


def requests(slack, ref: str) -> dict[str, sr.SlackRequest]:
    """A command, a button press and a form submission that would each change the lead."""
    n = sr.next_id()
    command = sr.slash_command(
        "new Eve eve@example.com", user=ADMIN, response_url=slack.fake.response_url(f"c{n}"), trigger_id=f"{n}.c"
    )
    press = sr.block_actions(
        {"action_id": "lead_assign_me", "block_id": f"card:{ref}", "type": "button", "action_ts": "1"},
        user=REP,
        trigger_id=f"{n}.b",
        response_url=slack.fake.response_url(f"b{n}"),
        message_ts="1700000000.000100",
    )
    view = {
        "id": f"V{n}",
        "type": "modal",
        "callback_id": "lead_note",
        "private_metadata": f'{{"ref": "{ref}", "response_url": "{slack.fake.response_url(f"v{n}")}"}}',
        "blocks": [{"type": "input", "block_id": "text", "element": {"type": "plain_text_input", "action_id": "text"}}],
    }
    submission = sr.view_submission(view, {"text": "a note"}, user=REP, trigger_id=f"{n}.v")
    return {"command": command, "button": press, "form": submission}


# -- requests that never reach a listener ------------------------------------------------------


@pytest.mark.parametrize(
    "sign",
    [
        pytest.param(lambda request: {"Content-Type": request.content_type}, id="unsigned"),
        pytest.param(lambda request: request.headers("the-wrong-secret"), id="wrong secret"),
        pytest.param(lambda request: request.headers(SIGNING_SECRET, timestamp=int(time.time()) - 305), id="stale"),
        pytest.param(lambda request: request.headers(SIGNING_SECRET, timestamp=int(time.time()) + 305), id="future"),
    ],
)
def test_a_request_slack_did_not_sign_just_now_is_a_401_and_changes_nothing(bot, linked, sign):
    ref = new_lead(linked)
    before = state(linked, ref)
    bot.slack.fake.clear()
    for kind, request in requests(bot.slack, ref).items():
        answer = bot.slack.post(request.body, sign(request))
        assert (answer.status_code, answer.json()) == (401, {"error": "invalid request"}), kind
    assert state(linked, ref) == before
    assert bot.slack.fake.received() == []  # no reply, no message, no modal: Slack shows its own error


def test_a_signature_almost_slacks_is_a_401(bot, linked):
    ref = new_lead(linked)
    before = state(linked, ref)
    request = requests(bot.slack, ref)["command"]
    headers = request.headers(SIGNING_SECRET)
    good = headers["X-Slack-Signature"]
    last = "0" if good[-1] != "0" else "1"
    for forged in (good[:-1] + last, good + "0", good[:-1], good.upper(), "v1=" + good[3:]):
        answer = bot.slack.post(request.body, {**headers, "X-Slack-Signature": forged})
        assert answer.status_code == 401, forged
    assert state(linked, ref) == before


def test_a_request_signed_a_little_while_ago_is_still_taken(bot, linked):
    ref = new_lead(linked)
    request = requests(bot.slack, ref)["button"]
    answer = bot.slack.post(request.body, request.headers(SIGNING_SECRET, timestamp=int(time.time()) - 290))
    assert answer.status_code == 200 and lead(linked, ref).owner == "ana"  # within five minutes: Slack's


def test_a_replay_of_the_same_signed_bytes_acts_once(bot, linked):
    ref = new_lead(linked)
    for kind, request in requests(bot.slack, ref).items():
        headers = request.headers(SIGNING_SECRET)
        bot.slack.fake.clear()
        first = bot.slack.post(request.body, headers)
        again = bot.slack.post(request.body, headers)  # the very same bytes and headers, within the window
        assert first.status_code == again.status_code == 200, kind
        assert len(bot.slack.replies()) == 1, kind  # one card, one update, one updated card: never two
    assert sorted(lead.name for lead in leads(linked)) == ["Ada Lovelace", "Eve"]
    assert lead(linked, ref).owner == "ana" and len(audited(linked, action="assign")) == 1
    assert activity(linked, ref) == [("note", "a note")]


def test_work_acked_an_hour_ago_is_done_when_a_new_process_runs_it_again(bot, runtime, linked, journal):
    # The signature was checked when it was acked; the journal keeps no signature, and the timestamp is stale now.
    from bot.app import build_app

    request = sr.slash_command(
        "new Eve eve@example.com", user=ADMIN, response_url=bot.slack.fake.response_url("old"), trigger_id="old.1"
    )
    journal.accept_now(request.body.encode(), request.headers(SIGNING_SECRET, timestamp=int(time.time()) - 3600))
    bot.executor.recover(journal.unfinished(), build_app(runtime, verify_requests=False))
    assert bot.executor.wait_idle(10)
    assert [lead.name for lead in leads(linked)] == ["Eve"] and journal.depth() == 0
    assert "New lead Eve" in bot.slack.last_reply()["text"]


# -- who may change what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["note {ref} hello", "followup {ref} called", "status {ref} won", "assign {ref} me", "assign {ref} <@UREP1|ana>"],
)
def test_someone_not_linked_changes_no_lead_by_command(slack, linked, command):
    ref = new_lead(linked)
    before = state(linked, ref)
    slack.command(command.format(ref=ref), user=STRANGER)
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral" and reply["text"] == NOT_LINKED
    assert state(linked, ref) == before
    assert [result for result, _ in audited(linked)][-1] == "refused"


def test_someone_not_linked_adds_no_note_from_the_card(slack, linked):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    before = state(linked, ref)
    slack.click(slack.last_reply()["blocks"], "lead_add_note", user=STRANGER)
    assert slack.opened_views() == []  # told at once, before typing a note that could not be saved
    assert slack.last_reply()["text"] == NOT_LINKED
    assert state(linked, ref) == before


def test_buttons_on_an_ephemeral_card_act_as_whoever_presses_them(slack, linked):
    ref = new_lead(linked)
    slack.command(f"assign {ref} me", user=REP)  # the updated card comes back to REP alone
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral"
    card = reply["blocks"]
    before = state(linked, ref)
    # Someone unlinked pressing it (only a forged payload could): refused as them, nothing changes.
    slack.click(card, "lead_assign_me", user=STRANGER, ephemeral=True)
    assert slack.last_reply()["text"] == NOT_LINKED
    assert state(linked, ref) == before
    # Someone linked pressing it acts as themselves, exactly as by command: the audit names them.
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    slack.choose(card, "lead_set_status", "Won", user=OTHER)
    assert lead(linked, ref).status == "won"
    (entry,) = linked.audit.log.entries(action="status")
    assert (entry.slack_user, entry.result) == (OTHER, "ok")


def test_a_show_button_shows_the_presser_no_more_than_show_would(slack, linked):
    ref = new_lead(linked)
    before = state(linked, ref)
    slack.click([show_button(ref)], "lead_open", user=STRANGER, ephemeral=True)
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral" and "Ada Lovelace" in text_of(reply["blocks"])
    slack.command(f"show {ref}", user=STRANGER)
    assert "Ada Lovelace" in text_of(slack.last_reply()["blocks"])  # what anyone may read by command anyway
    assert state(linked, ref) == before
