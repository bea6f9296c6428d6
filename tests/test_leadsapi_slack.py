"""The REST leads API through Slack: every operation, the duplicate email, Access denied, and the outbox."""

from __future__ import annotations

import copy
import threading

import pytest

from bot.app import build_outbox_runner
from bot.loopback import Failure
from services.backends.common import receipt_of, unmarked
from services.leads import Actor
from tests.conftest import ADMIN, OTHER, REP, bot_settings
from tests.fakes.leadsapi import TOKEN, FakeLeadsApi
from tests.slack import text_of


@pytest.fixture
def api_fake():
    fake = FakeLeadsApi().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    config = (
        '[channels]\nC0SALES = "leadsapi"\n\n[backends.leadsapi]\nbusiness = [1]\ntimeout = 0.3\n'
        'defaults = { photo = "https://example.com/nobody.png", location = "Unknown", position = "Unknown",'
        ' description = "-", company = "-" }\n'
    )
    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config=config,
        leadbot_leadsapi_url=api_fake.url,
        leadbot_leadsapi_token=TOKEN,
    )


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, ADMIN, "ada", backend="leadsapi")
    service.people.link(admin, REP, "ana", backend="leadsapi")
    return service


def create(slack, email="john.doe@example.com") -> list[dict]:
    slack.command(f"new John Doe {email} source=Referral", user=REP)  # C0SALES routes to leadsapi
    return slack.last_reply()["blocks"]


def test_every_operation_from_the_card_and_commands(slack, linked, api_fake):
    card = create(slack)
    shown = text_of(card)
    assert "`leadsapi:1` · REST leads API" in shown and "New" in shown and f"<@{REP}>" in shown

    slack.click(card, "lead_add_note", user=REP)
    slack.submit(slack.opened_views()[-1], {"text": "prefers email"}, user=REP)
    sent = api_fake.requests("POST", "/leads/comments/1")[-1].body["content"]
    assert unmarked(sent) == "prefers email" and receipt_of(sent)
    assert "prefers email" in text_of(slack.last_reply()["blocks"])  # read back from logs-and-comments

    slack.command('followup 1 next="tomorrow 10am" called', user=REP)  # a bare id: the channel's backend
    assert api_fake.history[1][-1]["content"].startswith("Follow-up by ana")
    assert linked.get("leadsapi:1").next_follow_up is not None

    slack.choose(card, "lead_set_status", "Contacted", user=REP)
    assert api_fake.requests("PUT", "/leads/change-status")[-1].body == {"ids": [1], "statusId": 2}
    assert slack.opened_views()[-1]["callback_id"] == "lead_note"  # no reason modal for this backend

    slack.pick_user(card, "lead_assign_to", ADMIN, user=REP)
    assert linked.get("leadsapi:1").owner == "ada"
    assert unmarked(api_fake.history[1][-1]["content"]) == "Assigned to ada by ana (via Leadbot)"

    slack.command("status 1 archived", user=REP)
    assert 1 in api_fake.archived
    slack.command("list archived", user=REP)
    assert "John Doe" in text_of(slack.last_reply()["blocks"])


def test_someone_linked_elsewhere_changes_nothing_in_the_rest_api(slack, linked, api_fake):
    card = create(slack)  # leadsapi:1, REP's
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")  # on local, not on leadsapi
    before = (linked.get("leadsapi:1"), copy.deepcopy(api_fake.history), len(api_fake.received))
    refused = (
        ":warning: You are not linked to a staff ID in leadsapi, so you can't change its leads."
        " Ask an admin to run `/lead link @you STAFF_ID backend=leadsapi`"
    )
    for command in ("note 1 hello", "followup leadsapi:1 called", "status leadsapi:1 contacted", "assign 1 me"):
        slack.command(command, user=OTHER)
        assert slack.last_reply()["text"] == refused, command
    slack.click(card, "lead_assign_me", user=OTHER)
    assert slack.last_reply()["text"] == refused
    assert (linked.get("leadsapi:1"), api_fake.history) == before[:2]
    assert [r for r in api_fake.received[before[2] :] if r.method != "GET"] == []  # nothing was sent to the API


def test_a_duplicate_email_says_which_lead_and_offers_to_show_it(slack, linked, api_fake):
    create(slack)
    create(slack)
    said = slack.last_reply()
    assert said["text"].startswith(
        ":warning: A lead with this email exists already in the REST leads API: `leadsapi:1`"
    )
    (button,) = said["blocks"][-1]["elements"]
    assert (button["action_id"], button["value"]) == ("lead_open", "leadsapi:1")
    slack.click(said["blocks"], "lead_open", value="leadsapi:1", user=REP)
    assert "John Doe" in text_of(slack.last_reply()["blocks"])
    assert len(api_fake.leads) == 1 and linked.outbox.pending() == []


def test_access_denied_is_said_plainly(slack, linked, api_fake):
    create(slack)
    api_fake.fail("POST", "/leads/comments/{id}", Failure("status", status=403, body={"message": "Access denied"}))
    slack.command("note 1 hello", user=REP)
    said = slack.last_reply()["text"]
    assert "Leadbot's token for the REST leads API was refused (403 Access denied)" in said
    assert "an admin must check LEADBOT_LEADSAPI_TOKEN" in said and "leadsapi-token" not in said
    assert linked.outbox.pending() == []


def test_backend_down_then_back_creates_the_lead_exactly_once(slack, linked, api_fake, runtime, clock, fake_slack):
    api_fake.fail("POST", "/leads", Failure("status", status=503))
    create(slack)
    assert "so your new lead is queued" in slack.last_reply()["text"]
    assert api_fake.leads == {}
    clock.advance(minutes=1)
    runner = build_outbox_runner(runtime)
    runner.run_due()
    runner.run_due()
    assert list(api_fake.leads) == [1] and len(api_fake.requests("POST", "/leads")) == 2
    dms = [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == REP]
    assert (
        dms[-1]["text"]
        == ":white_check_mark: Your queued new lead on `leadsapi:1` reached REST leads API after 2 tries."
    )


def test_a_create_that_timed_out_after_landing_is_not_made_twice(slack, linked, api_fake, runtime, clock):
    api_fake.fail("POST", "/leads", Failure("hang", apply=True))
    create(slack)
    assert "did not answer in time, so your new lead is queued" in slack.last_reply()["text"]
    clock.advance(minutes=1)
    build_outbox_runner(runtime).run_due()
    assert len(api_fake.leads) == 1 and len(api_fake.requests("POST", "/leads")) == 1
    assert linked.outbox.pending() == []


def test_a_status_change_while_the_api_is_down_is_queued_and_said_the_same_from_button_and_command(
    slack, linked, api_fake, runtime, clock
):
    card = create(slack)
    api_fake.stop_listening()
    slack.choose(card, "lead_set_status", "Contacted", user=REP)
    by_button = slack.last_reply()["text"]
    slack.command("status 1 won", user=REP)
    by_command = slack.last_reply()["text"]
    assert (
        by_button.startswith(":hourglass_flowing_sand: ")
        and "so your status change on `leadsapi:1` is queued" in by_button
    )
    assert by_command == by_button and "Usage" not in by_command
    assert [row.op for row in linked.outbox.pending()] == ["change_status", "change_status"]
    api_fake.start_listening()
    clock.advance(minutes=1)
    build_outbox_runner(runtime).run_due()
    assert [r.body["statusId"] for r in api_fake.requests("PUT", "/leads/change-status")] == [2, 3]
    assert linked.outbox.pending() == []


@pytest.mark.parametrize("command", ["show leadsapi:1", "note 1 prefers email"])
def test_a_card_reads_the_lead_and_its_history_at_once(slack, linked, api_fake, command):
    create(slack)
    # Every read of the lead hangs until Leadbot gives up on it: one after the other, its history
    # would never be asked for (for the note: the write goes first, then both reads).
    hung = api_fake.fail("GET", "/leads/1", Failure("hang", hold=5.0, times=10))
    before = len(api_fake.requests("GET", "/leads/logs-and-comments/1"))
    shown = threading.Thread(target=lambda: slack.command(command, user=REP))
    shown.start()
    try:
        # Its history is asked for while the lead's read is still waiting: the two went out together.
        assert api_fake.wait_until(
            lambda: hung.fired >= 1 and len(api_fake.requests("GET", "/leads/logs-and-comments/1")) > before
        )
    finally:
        api_fake.release.set()
        shown.join(10)
    assert not shown.is_alive()


def _calls_since(api_fake, before: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in api_fake.requests()[before:]]


@pytest.mark.parametrize(
    ("command", "write"),
    [
        ("note 1 prefers email", "POST /leads/comments/1"),
        ("followup 1 called", "POST /leads/comments/1"),
        (f"assign 1 <@{ADMIN}>", "POST /leads/comments/1"),
        ("status 1 contacted", "PUT /leads/change-status"),
    ],
)
def test_a_write_is_made_then_the_lead_and_its_history_are_read_back_at_once(slack, linked, api_fake, command, write):
    create(slack)
    before = len(api_fake.requests())
    slack.command(command, user=REP)
    calls = _calls_since(api_fake, before)
    # The "nothing changed" checks read the lead first (assign, status); the write; then one read
    # of each for the card (and the assignee's DM card): none before the write to find the lead.
    if command.startswith(("assign", "status")):
        assert calls[0] == "GET /leads/1"
        calls = calls[1:]
    assert calls[0] == write
    assert sorted(calls[1:]) == ["GET /leads/1", "GET /leads/logs-and-comments/1"]
    shown = text_of(slack.last_reply()["blocks"])
    assert "leadsapi:1" in shown
    if command.startswith("note"):
        assert "prefers email" in shown  # the history read after the write: the note is on the card


def test_a_note_on_a_lead_the_api_does_not_have_is_no_such_lead(slack, linked, api_fake):
    create(slack)
    before = len(api_fake.requests())
    slack.command("note 7 hello", user=REP)
    assert "There is no lead `leadsapi:7`" in slack.last_reply()["text"]
    assert _calls_since(api_fake, before) == ["POST /leads/comments/7"]  # its 404 says so
    slack.command("note leadsapi:x1 hello", user=REP)
    assert "is not a lead reference" in slack.last_reply()["text"]
    assert _calls_since(api_fake, before) == ["POST /leads/comments/7"]  # not asked: it cannot be one
    assert linked.outbox.pending() == []


def test_a_note_that_landed_but_cannot_be_read_back_is_found_landed_not_sent_twice(
    slack, linked, api_fake, runtime, clock, fake_slack
):
    create(slack)
    api_fake.fail("GET", "/leads/1", Failure("status", status=503, times=3))  # every try of the read after it
    slack.command("note 1 prefers email", user=REP)
    assert "is queued" in slack.last_reply()["text"]
    (queued,) = linked.outbox.pending()
    assert queued.unknown_since is not None  # the comment went in: the outbox looks for it before sending again
    clock.advance(minutes=1)
    build_outbox_runner(runtime).run_due()
    assert len(api_fake.requests("POST", "/leads/comments/1")) == 1
    assert linked.outbox.pending() == []
    dms = [c.body["text"] for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == REP]
    assert "reached REST leads API" in dms[-1]
