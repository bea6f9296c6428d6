"""Capillary through Slack: every operation from commands and cards, the reason modal, and the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app import build_outbox_runner, build_runtime
from bot.loopback import Failure
from services.backends.common import receipt_of, unmarked
from services.leads import Actor
from tests.conftest import ADMIN, OTHER, REP, bot_settings
from tests.fakes.capillary import PASSWORD, USERNAME, FakeCapillary
from tests.slack import text_of


@pytest.fixture
def capillary_fake():
    fake = FakeCapillary().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, fake_slack, capillary_fake, monkeypatch):
    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config="[backends.capillary]\ntill_id = 4242\ntimeout = 0.3\nconnect_timeout = 0.5\n",
        leadbot_capillary_url=capillary_fake.url,
        leadbot_capillary_username=USERNAME,
        leadbot_capillary_password=PASSWORD,
    )


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, ADMIN, "ada.l/28812691", backend="capillary")
    service.people.link(admin, REP, "ana.s/28812689", backend="capillary")
    service.people.link(admin, ADMIN, "ada")
    return service


@pytest.fixture
def runner(runtime):
    return build_outbox_runner(runtime)


@pytest.fixture
def later(clock):
    """Move the clock on, so queued retries come due (no sleeping)."""
    start = clock()

    def move(minutes: int = 1) -> None:
        clock.at = start + timedelta(minutes=minutes)

    return move


def logged(fake, lead_id: int = 1) -> list[str]:
    """The follow-ups (notes included) Capillary holds for the lead, as written, receipts aside."""
    notes = [unmarked(f.get("notes") or "") for f in fake.leads[lead_id]["followUpDetails"]]
    return [n for n in notes if n != "Created through Leadbot"]


def create(slack, user=REP) -> list[dict]:
    slack.command("new Tom Sawyer tom.sawyer@example.com for=item001 backend=capillary", user=user)
    return slack.last_reply()["blocks"]


def test_quick_create_in_capillary_posts_its_card(slack, linked, capillary_fake):
    card = create(slack)
    (sent,) = capillary_fake.requests("POST", "/v2/leads")
    assert sent.body["owner"] == "ana.s" and sent.body["createdBy"] == 28812689
    shown = text_of(card)
    assert "Tom Sawyer" in shown and "`capillary:1` · Capillary" in shown and "Open" in shown
    assert f"<@{REP}>" in shown  # the owner, mapped back from the staff username
    assert "tom.sawyer@example.com" in shown


def test_log_follow_up_from_the_card_is_attributed_to_the_rep(slack, linked, capillary_fake):
    card = create(slack)
    slack.click(card, "lead_log_follow_up", user=REP)
    (view,) = slack.opened_views()
    slack.submit(view, {"notes": "called, wants a demo"}, user=REP)
    (sent,) = capillary_fake.requests("POST", "/v2/leads/1/followup")
    assert (sent.body["createdBy"], sent.body["followedUpBy"], unmarked(sent.body["notes"])) == (
        4242,
        28812689,
        "called, wants a demo",
    )
    assert receipt_of(sent.body["notes"])  # Leadbot's mark, to find this follow-up if its reply is lost
    assert f"<@{REP}> logged a follow-up" in text_of(slack.last_reply()["blocks"])
    assert slack.thread_replies()[-1]["text"].startswith(f"<@{REP}> logged a follow-up")


def test_note_and_assign_from_commands(slack, linked, capillary_fake):
    create(slack)
    slack.command("note capillary:1 prefers email", user=REP)
    assert logged(capillary_fake) == ["Note: prefers email"]
    assert "prefers email" in text_of(slack.last_reply()["blocks"])
    slack.command(f"assign capillary:1 <@{ADMIN}|ada>", user=REP)
    assert capillary_fake.requests("PUT", "/v2/leads/1")[0].body == {"owner": "ada.l"}
    assert linked.get("capillary:1").owner == "ada.l/28812691"


def test_an_unlinked_assignee_is_refused_with_instructions(slack, linked, capillary_fake):
    create(slack)
    slack.command("assign capillary:1 <@UREP2|bob>", user=REP)
    assert "is not linked to a staff ID in capillary" in slack.last_reply()["text"]
    assert "backend=capillary" in slack.last_reply()["text"]
    assert capillary_fake.requests("PUT") == []


def test_status_from_the_card_asks_for_a_reason_from_capillarys_list(slack, linked, capillary_fake):
    card = create(slack)
    slack.choose(card, "lead_set_status", "On hold", user=REP)
    (view,) = slack.opened_views()
    assert view["callback_id"] == "lead_status"
    reason = next(b for b in view["blocks"] if b.get("block_id") == "reason")["element"]
    assert [o["text"]["text"] for o in reason["options"]][:2] == [
        "Item not available in store",
        "Best price availabe at another store",
    ]
    sub = next(b for b in view["blocks"] if b.get("block_id") == "sub_status")["element"]
    assert [o["value"] for o in sub["options"]] == ["YetToDecide"]
    assert capillary_fake.requests("PUT", "/v2/leads/1/status") == []  # nothing changed yet

    assert slack.submit(view, {}, user=REP).json()["errors"] == {"reason": "Choose a reason."}
    slack.submit(view, {"reason": "2", "sub_status": "YetToDecide"}, user=REP)
    (sent,) = capillary_fake.requests("PUT", "/v2/leads/1/status")
    assert sent.body == {"status": "ON_HOLD", "reasonId": 2, "subStatus": "YetToDecide", "createdBy": 28812689}
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    assert "On hold · YetToDecide" in text_of(reply["blocks"])
    assert slack.thread_replies()[-1]["text"] == f"<@{REP}> set the status to On hold · YetToDecide"


def test_status_command_without_a_reason_lists_them(slack, linked, capillary_fake):
    create(slack)
    slack.command("status capillary:1 won", user=REP)
    said = slack.last_reply()["text"]
    assert "Capillary needs a reason for a status change (1 Item not available in store" in said
    assert "add `reason=ID`" in said
    slack.command("status capillary:1 won reason=3", user=REP)
    assert capillary_fake.requests("PUT", "/v2/leads/1/status")[0].body["reasonId"] == 3


def test_a_permanent_rejection_is_shown_at_once_and_never_queued(slack, linked, capillary_fake):
    create(slack)
    slack.command("status capillary:1 won reason=1", user=REP)
    slack.command("status capillary:1 open reason=1", user=REP)
    assert "Status change not allowed on closed leads (code 92024)" in slack.last_reply()["text"]
    assert linked.outbox.pending() == []


def test_backends_lists_capillary_with_what_it_can_do_and_whether_it_answers(slack, linked, capillary_fake):
    slack.command("backends")
    said = slack.last_reply()["text"]
    assert "*capillary* — Capillary" in said and "reachable" in said and "needs `reason=ID`" in said
    assert "USERNAME/ENTITY_ID" in said and "notes: saved as a follow-up" in said
    capillary_fake.fail("GET", "/v2/leads/reasons", Failure("status", status=503))
    slack.command("backends")
    assert ":red_circle: unreachable: Capillary had an error (503)" in slack.last_reply()["text"]


# -- the outbox ----------------------------------------------------------------------------


def test_a_follow_up_capillary_cannot_take_is_queued_then_lands_once(
    later, slack, linked, capillary_fake, runner, fake_slack
):
    card = create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("status", status=500))
    slack.click(card, "lead_log_follow_up", user=REP)
    (view,) = slack.opened_views()
    slack.submit(view, {"notes": "left a voicemail"}, user=REP)
    said = slack.last_reply()
    assert said["text"].startswith(":hourglass_flowing_sand: Capillary had an error (500), so your follow-up")
    assert "is queued: Leadbot will keep trying" in said["text"] and said["replace_original"] is False
    (row,) = linked.outbox.pending()
    assert row.op == "log_follow_up" and row.slack_user == REP

    assert runner.run_due() == 0  # not due yet
    later(1)
    assert runner.run_due() == 1
    # A 500 may hide a write that went through: Leadbot looks for it before sending it again.
    assert len(capillary_fake.requests("POST", "/v2/leads/1/followup")) == 1 and logged(capillary_fake) == []
    assert len(linked.outbox.pending()) == 1
    later(4)  # not seen for two minutes: it did not land
    fake_slack.clear()
    assert runner.run_due() == 1
    assert len(capillary_fake.requests("POST", "/v2/leads/1/followup")) == 2
    assert logged(capillary_fake) == ["left a voicemail"]
    assert linked.outbox.pending() == []
    (dm,) = [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == REP]
    assert dm["text"] == ":white_check_mark: Your queued follow-up on `capillary:1` reached Capillary after 2 tries."
    (card_update,) = fake_slack.received("response")
    assert card_update.body["replace_original"] is True and "left a voicemail" in text_of(card_update.body["blocks"])
    assert runner.run_due() == 0  # nothing twice


def test_a_new_lead_while_capillary_is_down_is_created_exactly_once(
    later, slack, linked, capillary_fake, runner, fake_slack
):
    capillary_fake.fail("POST", "/v2/leads", Failure("status", status=503, times=2))
    create(slack)
    assert "so your new lead is queued" in slack.last_reply()["text"]
    later(1)
    runner.run_due()  # still down: tried again, stays queued
    assert len(linked.outbox.pending()) == 1 and capillary_fake.leads == {}
    later(60)
    runner.run_due()
    assert list(capillary_fake.leads) == [1]
    assert linked.get("capillary:1").name == "Tom Sawyer"
    dms = [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == REP]
    assert "Your queued new lead on `capillary:1` reached Capillary after 3 tries" in dms[-1]["text"]
    assert "Tom Sawyer" in text_of(dms[-1]["blocks"])


def test_a_write_that_landed_but_timed_out_is_not_sent_twice(later, slack, linked, capillary_fake, runner):
    create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("hang", apply=True))
    slack.command("followup capillary:1 called", user=REP)
    assert "did not answer in time, so your follow-up on `capillary:1` is queued" in slack.last_reply()["text"]
    later()
    runner.run_due()
    assert len(capillary_fake.requests("POST", "/v2/leads/1/followup")) == 1  # it was there: not sent again
    assert logged(capillary_fake) == ["called"]
    assert linked.outbox.pending() == []


def test_a_restart_resumes_the_outbox(later, slack, linked, capillary_fake, settings, clock):
    create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("status", status=502))
    slack.command("note capillary:1 call after 5pm", user=REP)
    assert len(linked.outbox.pending()) == 1
    restarted = build_runtime(settings, clock=clock)  # a new process on the same database
    later(4)  # past the two minutes a write that may have landed is looked for
    build_outbox_runner(restarted).run_due()
    assert logged(capillary_fake) == ["Note: call after 5pm"]
    assert restarted.service.outbox.pending() == []


def test_a_queued_write_that_is_then_refused_is_reported_with_what_was_written(
    later, slack, linked, capillary_fake, runner, fake_slack
):
    create(slack)
    capillary_fake.fail(
        "POST", "/v2/leads/{id}/followup", Failure("status", status=429, headers={"Retry-After": "120"})
    )
    slack.command("note capillary:1 the blue sofa, not the red one", user=REP)
    (row,) = linked.outbox.pending()
    assert row.next_at > row.created_at
    capillary_fake.leads.clear()  # deleted in Capillary meanwhile
    later(5)
    runner.run_due()
    assert linked.outbox.pending() == []
    (dm,) = [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == REP]
    assert dm["text"].startswith(":x: Your queued note on `capillary:1` could not be saved in Capillary")
    assert "What you wrote: “the blue sofa, not the red one”" in text_of(dm["blocks"])


def test_retry_after_is_honoured_by_the_outbox(later, slack, linked, capillary_fake, runner, fake_slack):
    create(slack)
    capillary_fake.fail(
        "POST", "/v2/leads/{id}/followup", Failure("status", status=429, headers={"Retry-After": "600"})
    )
    slack.command("followup capillary:1 called", user=REP)
    assert (
        "Capillary is rate-limiting Leadbot and asks it to wait 600 s, so your follow-up" in slack.last_reply()["text"]
    )
    later(5)
    assert runner.run_due() == 0  # Capillary asked for ten minutes
    later(11)
    fake_slack.clear()
    assert runner.run_due() == 1
    assert linked.outbox.pending() == [] and logged(capillary_fake) == ["called"]
    # Asked by a command, not on a card: there is no card to redraw, only the DM.
    assert [c.body["replace_original"] for c in fake_slack.received("response")] == []


def test_show_and_list_mine_read_capillary(slack, linked, capillary_fake):
    create(slack)
    slack.command("show capillary:1", user=REP)
    assert "Tom Sawyer" in text_of(slack.last_reply()["blocks"])
    slack.command("list mine backend=capillary", user=REP)
    listed = slack.last_reply()
    assert "Tom Sawyer" in text_of(listed["blocks"]) and "`capillary:1`" in text_of(listed["blocks"])
    owner_query = capillary_fake.requests("GET", "/v2/leads")[-1].query
    assert owner_query["owner"] == "28812689"


def test_quick_create_by_customer_id_with_a_sub_status(slack, linked, capillary_fake):
    slack.command(
        "new Tom Sawyer customer=368754334 for=item001 status=on_hold sub=YetToDecide backend=capillary", user=REP
    )
    body = capillary_fake.requests("POST", "/v2/leads")[0].body
    assert body["userId"] == 368754334 and body["subStatus"] == "YetToDecide"
    assert "On hold · YetToDecide" in text_of(slack.last_reply()["blocks"])


def test_sub_status_and_customer_are_refused_where_the_backend_has_none(slack, linked):
    slack.command("new Ada Lovelace ada@example.com sub=hot backend=local")
    assert "Local store has no sub-statuses" in slack.last_reply()["text"]
    slack.command("new Ada Lovelace customer=42 backend=local")
    assert "Local store does not take a customer id" in slack.last_reply()["text"]


def test_list_by_sub_status_asks_capillary(slack, linked, capillary_fake):
    create(slack)
    slack.command("status capillary:1 on_hold reason=2 sub=YetToDecide", user=REP)
    slack.command("list on_hold sub=YetToDecide backend=capillary", user=REP)
    sent = capillary_fake.requests("GET", "/v2/leads")[-1].query
    assert (sent["status"], sent["substatus"]) == ("ON_HOLD", "YetToDecide")
    assert "Tom Sawyer" in text_of(slack.last_reply()["blocks"])
    slack.command("list sub=hot", user=REP)
    assert "Local store has no sub-statuses" in slack.last_reply()["text"]


def test_a_status_change_is_queued_even_when_capillary_cannot_be_read_first(slack, linked, capillary_fake):
    create(slack)
    capillary_fake.fail("GET", "/v2/leads", Failure("status", status=503, times=3))
    capillary_fake.fail("PUT", "/v2/leads/{id}/status", Failure("status", status=503))
    slack.command("status capillary:1 won reason=1", user=REP)
    assert "so your status change on `capillary:1` is queued" in slack.last_reply()["text"]
    (row,) = linked.outbox.pending()
    assert row.op == "change_status"


# -- how queued writes end --------------------------------------------------------------------


def dms(fake_slack, user: str) -> list[dict]:
    return [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == user]


def test_a_write_failing_for_over_a_day_is_given_up_and_said(later, slack, linked, capillary_fake, runner, fake_slack):
    create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("status", status=503, times=1000))
    slack.command("followup capillary:1 called twice", user=REP)
    later(60 * 23)
    runner.run_due()
    assert len(linked.outbox.pending()) == 1  # a day is not over yet: still trying
    later(60 * 25)
    fake_slack.clear()
    runner.run_due()
    assert linked.outbox.pending() == []
    (dm,) = dms(fake_slack, REP)
    assert "has been for over a day, so Leadbot stopped trying" in dm["text"]
    assert "What you wrote: “called twice”" in text_of(dm["blocks"])
    assert logged(capillary_fake) == []


def test_a_new_lead_that_lands_late_goes_to_the_feed_once(later, slack, linked, capillary_fake, runner, runtime):
    runtime.deps.feeds["capillary"] = "C0FEED"
    capillary_fake.fail("POST", "/v2/leads", Failure("status", status=503))
    create(slack)
    assert [c for c in slack.fake.received("api", "chat.postMessage") if c.body["channel"] == "C0FEED"] == []
    later(5)
    runner.run_due()
    runner.run_due()
    (fed,) = [c.body for c in slack.fake.received("api", "chat.postMessage") if c.body["channel"] == "C0FEED"]
    assert fed["text"] == "New lead Tom Sawyer (capillary:1)" and f"Created by <@{REP}>" in text_of(fed["blocks"])


def test_backends_says_how_many_writes_are_waiting(slack, linked, capillary_fake):
    create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("status", status=503, times=2))
    slack.command("followup capillary:1 called", user=REP)
    slack.command("note capillary:1 left a voicemail", user=REP)
    slack.command("backends", user=REP)
    assert "1 write(s) queued" not in slack.last_reply()["text"]
    assert "2 write(s) queued, retrying" in slack.last_reply()["text"]


def test_an_unexpected_error_while_retrying_keeps_the_write_queued(
    later, slack, linked, capillary_fake, runner, fake_slack, caplog
):
    create(slack)
    capillary_fake.fail("POST", "/v2/leads/{id}/followup", Failure("status", status=503))
    slack.command("followup capillary:1 called", user=REP)
    capillary = linked.backends.get("capillary")
    original = capillary.applied
    capillary.applied = lambda op, args: (_ for _ in ()).throw(RuntimeError("a bug in the check"))
    later(1)
    fake_slack.clear()
    with caplog.at_level("ERROR", logger="leadbot"):
        runner.run_due()
    assert len(linked.outbox.pending()) == 1 and dms(fake_slack, REP) == []  # not given up, nobody told
    assert any(r.exc_info and "a bug in the check" in str(r.exc_info[1]) for r in caplog.records)
    capillary.applied = original
    later(60)
    runner.run_due()
    assert linked.outbox.pending() == [] and logged(capillary_fake) == ["called"]
    assert "reached Capillary" in dms(fake_slack, REP)[-1]["text"]


def test_a_write_that_lands_redraws_the_app_home_of_everyone_it_concerns(later, slack, linked, capillary_fake, runner):
    create(slack, user=ADMIN)
    slack.open_home(REP)
    slack.open_home(ADMIN)
    capillary_fake.fail("PUT", "/v2/leads/{id}", Failure("status", status=503))
    slack.command(f"assign capillary:1 <@{REP}|ana>", user=ADMIN)
    assert "is queued" in slack.last_reply()["text"]
    slack.fake.clear()
    later(1)
    runner.run_due()
    assert capillary_fake.leads[1]["owner"] == "ana.s"
    assert "Tom Sawyer" in text_of(slack.home(REP)["blocks"])  # the new owner's tab shows it now
    assert slack.published_homes(ADMIN)  # and the tab of who asked is redrawn too


def test_a_queued_status_change_reads_the_same_from_the_command_and_the_reason_form(slack, linked, capillary_fake):
    card = create(slack)
    capillary_fake.fail("PUT", "/v2/leads/{id}/status", Failure("status", status=503, times=2))
    slack.command("status capillary:1 on_hold reason=2", user=REP)
    by_command = slack.last_reply()
    slack.choose(card, "lead_set_status", "Won", user=REP)
    slack.submit(slack.opened_views()[-1], {"reason": "1"}, user=REP)
    by_form = slack.last_reply()
    assert by_command["text"] == by_form["text"]
    assert by_command["text"].startswith(":hourglass_flowing_sand: ") and "Usage" not in by_command["text"]
    assert [row.op for row in linked.outbox.pending()] == ["change_status", "change_status"]


def test_a_card_costs_one_read_and_a_write_no_extra_read(slack, linked, capillary_fake):
    create(slack)
    capillary_fake.received.clear()
    slack.command("show capillary:1", user=REP)
    assert [(r.method, r.path) for r in capillary_fake.received] == [("GET", "/v2/leads")]
    capillary_fake.received.clear()
    slack.command("followup capillary:1 called", user=REP)  # the card redrawn from the write's own reply
    assert [(r.method, r.path) for r in capillary_fake.received] == [("POST", "/v2/leads/1/followup")]


def test_a_capillary_staff_id_is_a_username_and_a_numeric_entity_id(slack, linked, capillary_fake):
    slack.command(f"link <@{OTHER}|bob> bob.k/entity backend=capillary")
    assert "After the / comes the staff member's numeric entity id" in slack.last_reply()["text"]
    slack.command(f"link <@{OTHER}|bob> /28812690 backend=capillary")
    assert "starts with the staff username" in slack.last_reply()["text"]
    assert linked.people.staff_id(OTHER, "capillary") is None
    slack.command(f"link <@{OTHER}|bob> bob.k/28812690 backend=capillary")
    assert linked.people.staff_id(OTHER, "capillary") == "bob.k/28812690"
