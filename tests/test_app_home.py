"""The App Home tab: a rep's open leads with card buttons, drawn on open and after they act."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.errors import BackendGone
from tests.conftest import ADMIN, OTHER, REP, activity, new_lead, unreadable_backend
from tests.slack import text_of

NOW = datetime.now(UTC)


def lead_rows(home: dict) -> list[str]:
    """The refs of the leads shown on the tab, top to bottom."""
    return [b["block_id"].removeprefix("card:") for b in home["blocks"] if b.get("block_id", "").startswith("card:")]


def notice(home: dict) -> str:
    block = next((b for b in home["blocks"] if b.get("block_id") == "notice"), None)
    return text_of([block]) if block else ""


def test_opening_the_tab_shows_my_open_leads_due_first(slack, linked):
    later = new_lead(linked, "Later Lead", by=REP, next_follow_up=NOW + timedelta(days=3))
    undated = new_lead(linked, "Undated Lead", by=REP)
    overdue = new_lead(linked, "Overdue Lead", by=REP, next_follow_up=NOW - timedelta(days=2))
    new_lead(linked, "Someone Else's", by=ADMIN)
    won = new_lead(linked, "Won Lead", by=REP, status="won")

    home = slack.open_home(REP)

    assert home["type"] == "home"
    assert lead_rows(home) == [overdue, later, undated]
    assert won not in lead_rows(home)
    shown = text_of(home["blocks"])
    assert "Your leads" in shown
    assert "*3* open" in shown and "*1* due or overdue" in shown and "New 3" in shown
    assert "Overdue Lead" in shown and ":alarm_clock: *overdue*" in shown
    assert "Someone Else's" not in shown
    assert "`ana` in local" in shown
    assert "*Assignment DMs* on" in shown


def test_each_lead_on_the_tab_has_the_card_buttons(slack, linked):
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    (row,) = [b for b in home["blocks"] if b.get("block_id") == f"card:{ref}"]
    assert [e["action_id"] for e in row["elements"]] == [
        "lead_log_follow_up",
        "lead_add_note",
        "lead_set_status",
        "lead_assign_to",
    ]
    status = row["elements"][2]
    assert status["initial_option"]["value"] == f"{ref}|new"


def test_the_messages_tab_draws_nothing(slack, linked):
    slack.event({"type": "app_home_opened", "user": REP, "channel": "DREP1", "tab": "messages"})
    assert slack.published_homes(REP) == []


def test_someone_not_linked_is_told_how_to_get_linked(slack, linked):
    home = slack.open_home(OTHER)
    shown = text_of(home["blocks"])
    assert lead_rows(home) == []
    assert "Nothing open is yours" in shown
    assert "nobody yet: an admin can run `/lead link @you STAFF_ID`" in shown


def test_log_follow_up_from_the_tab_writes_it_and_redraws_the_tab(slack, linked):
    ref = new_lead(linked, by=REP, next_follow_up=NOW - timedelta(hours=1))
    home = slack.open_home(REP)
    slack.click(home["blocks"], "lead_log_follow_up", user=REP, value=ref, home=home)
    (view,) = slack.opened_views()
    assert json.loads(view["private_metadata"])["home"] is True
    nxt = int((NOW + timedelta(days=2)).timestamp())
    assert slack.submit(view, {"notes": "called back", "next": nxt}, user=REP).text == ""

    assert activity(linked, ref) == [("follow_up", "follow-up: called back")]
    redrawn = slack.home(REP)
    assert f"<@{REP}> logged a follow-up" in notice(redrawn)
    assert "*0* due or overdue" not in text_of(redrawn["blocks"])
    assert ":alarm_clock: *overdue*" not in text_of(redrawn["blocks"])  # next is now in two days
    assert slack.replies() == [] and slack.thread_replies() == []  # no message to answer or thread under


def test_add_note_from_the_tab(slack, linked):
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    slack.click(home["blocks"], "lead_add_note", user=REP, value=ref, home=home)
    (view,) = slack.opened_views()
    slack.submit(view, {"text": "prefers email"}, user=REP)
    assert activity(linked, ref) == [("note", "prefers email")]
    assert f"<@{REP}> added a note" in notice(slack.home(REP))


def test_closing_a_lead_from_the_tab_takes_it_off(slack, linked):
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    slack.choose(home["blocks"], "lead_set_status", "Won", user=REP, home=home)
    assert linked.get(ref).status == "won"
    redrawn = slack.home(REP)
    assert lead_rows(redrawn) == []
    assert "set the status to Won" in notice(redrawn)


def test_reassigning_from_the_tab_tells_the_new_owner_and_redraws_both_tabs(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.open_home(ADMIN)
    home = slack.open_home(REP)
    slack.fake.clear()
    slack.pick_user(home["blocks"], "lead_assign_to", ADMIN, user=REP, home=home)

    assert linked.get(ref).owner == "ada"
    assert lead_rows(slack.home(REP)) == []
    assert lead_rows(slack.home(ADMIN)) == [ref]
    dm = [c.body for c in slack.fake.received("api", "chat.postMessage") if c.body["channel"] == ADMIN]
    assert len(dm) == 1 and f"<@{REP}> assigned you" in dm[0]["text"]
    assert len(slack.published_homes(REP)) == 1  # the outcome drawn once, not once per redraw


def test_a_refusal_on_the_tab_is_shown_on_the_tab_and_changes_nothing(slack, linked):
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    slack.pick_user(home["blocks"], "lead_assign_to", OTHER, user=REP, home=home)
    assert linked.get(ref).owner == "ana"
    said = notice(slack.home(REP))
    assert said.startswith(":warning:") and f"<@{OTHER}> is not linked" in said
    assert lead_rows(slack.home(REP)) == [ref]


def test_a_lead_deleted_since_the_tab_was_drawn(slack, linked):
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    gone = "local:999"  # the tab's buttons, as if their lead had been deleted since
    home = json.loads(json.dumps(home).replace(f'"{ref}"', f'"{gone}"').replace(f'card:{ref}"', f'card:{gone}"'))
    slack.click(home["blocks"], "lead_log_follow_up", user=REP, value=gone, home=home)
    redrawn = slack.home(REP)
    assert f"There is no lead `{gone}`" in notice(redrawn)
    assert lead_rows(redrawn) == [ref]
    assert slack.opened_views() == []


def test_the_refresh_button_redraws(slack, linked):
    home = slack.open_home(REP)
    assert lead_rows(home) == []
    ref = new_lead(linked, by=REP)
    slack.click(home["blocks"], "lead_home_refresh", user=REP, home=home)
    assert lead_rows(slack.home(REP)) == [ref]


def test_the_tab_is_redrawn_after_acting_elsewhere_once_it_has_been_opened(slack, linked):
    slack.open_home(REP)
    slack.fake.clear()
    slack.command("new Grace Hopper grace@example.com", user=REP)
    ref = "local:1"
    assert lead_rows(slack.home(REP)) == [ref]
    slack.command(f"note {ref} met at the expo", user=REP)
    assert len(slack.published_homes(REP)) == 2
    # and someone who never opened theirs gets no views.publish at all
    slack.command("new Alan Turing alan@example.com", user=ADMIN)
    assert slack.published_homes(ADMIN) == []


def test_assigning_to_someone_redraws_their_open_tab(slack, linked):
    ref = new_lead(linked, by=ADMIN)
    slack.open_home(REP)
    slack.fake.clear()
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    assert lead_rows(slack.home(REP)) == [ref]


def test_a_backend_that_cannot_be_read_is_named_and_the_rest_still_shown(slack, linked):
    unreadable_backend(linked, REP, BackendGone("the REST leads API did not answer (timed out)"))
    ref = new_lead(linked, by=REP)
    home = slack.open_home(REP)
    assert lead_rows(home) == [ref]
    assert "Could not read leadsapi: the REST leads API did not answer" in text_of(home["blocks"])


def test_a_backend_failing_with_a_bug_is_logged_and_the_rest_still_shown(slack, linked, caplog):
    unreadable_backend(linked, REP, KeyError("statuses"))  # not a LeadError: a bug, or a reply nobody expected
    ref = new_lead(linked, by=REP)
    with caplog.at_level("ERROR", logger="leadbot"):
        home = slack.open_home(REP)
    assert lead_rows(home) == [ref]
    assert "Could not read leadsapi: Leadbot could not read it (see the log)" in text_of(home["blocks"])
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)


def linked_admin():
    from services.leads import Actor

    return Actor(slack_user=ADMIN, is_admin=True)


def test_the_setting_on_the_tab_follows_notify(slack, linked):
    slack.open_home(REP)
    slack.command("notify off", user=REP)
    slack.click(slack.home(REP)["blocks"], "lead_home_refresh", user=REP, home=slack.home(REP))
    assert "*Assignment DMs* off · `/lead notify on`" in text_of(slack.home(REP)["blocks"])
