"""Log follow-up and Add note from a card: the modal, field errors, the write, the card updated in place."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN, REP, activity, audited, new_lead
from tests.slack import text_of


def card_of(slack, linked) -> tuple[str, list[dict]]:
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    return ref, slack.last_reply()["blocks"]


def test_log_follow_up_opens_a_modal_for_this_card(slack, linked, fake_slack):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_log_follow_up", user=REP)
    (view,) = slack.opened_views()
    assert view["callback_id"] == "lead_follow_up" and view["title"]["text"] == "Log follow-up"
    assert [b.get("block_id") for b in view["blocks"] if b["type"] == "input"] == ["notes", "done_at", "next"]
    done_at = next(b for b in view["blocks"] if b.get("block_id") == "done_at")["element"]
    assert abs(done_at["initial_date_time"] - datetime.now(UTC).timestamp()) < 60  # defaults to now
    metadata = json.loads(view["private_metadata"])
    assert metadata["ref"] == ref and metadata["response_url"].startswith(fake_slack.url + "/response/act")


def test_log_follow_up_records_it_and_updates_the_card_in_place(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_log_follow_up", user=REP)
    (view,) = slack.opened_views()
    done = int((datetime.now(UTC) - timedelta(hours=2)).timestamp())
    nxt = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    response = slack.submit(view, {"notes": "demo booked", "done_at": done, "next": nxt}, user=REP)
    assert response.status_code == 200 and response.text == ""
    (logged,) = linked.activity(linked.get(ref), 10)
    assert (logged.kind, logged.text, logged.by) == ("follow_up", "follow-up: demo booked", "ana")
    assert int(logged.at.timestamp()) == done
    assert int(linked.get(ref).next_follow_up.timestamp()) == nxt
    reply = slack.last_reply()
    metadata = json.loads(view["private_metadata"])
    assert slack.fake.received("response")[-1].name == metadata["response_url"].rsplit("/", 1)[1]
    assert reply["replace_original"] is True
    shown = text_of(reply["blocks"])
    assert f"<@{REP}> logged a follow-up · next:" in shown and "follow-up: demo booked" in shown


def test_follow_up_field_errors(slack, linked):
    _, card = card_of(slack, linked)
    slack.click(card, "lead_log_follow_up")
    (view,) = slack.opened_views()
    future = int((datetime.now(UTC) + timedelta(hours=3)).timestamp())
    past = int((datetime.now(UTC) - timedelta(hours=3)).timestamp())
    body = slack.submit(view, {"done_at": future, "next": past}).json()
    assert body == {
        "response_action": "errors",
        "errors": {
            "done_at": "A follow-up you log has already happened: pick a time up to now.",
            "next": "The next follow-up must be in the future.",
        },
    }
    assert activity(linked, "local:1") == []


def test_follow_up_needs_a_link(slack, linked):
    """Refused before the form opens (tests/test_refuse_before.py), and still on submit: unlinked meanwhile."""
    from services.audit import Actor

    _, card = card_of(slack, linked)
    slack.click(card, "lead_log_follow_up", user=REP)
    (view,) = slack.opened_views()
    linked.people.unlink(Actor(slack_user=ADMIN, is_admin=True), REP)
    slack.submit(view, {"notes": "x"}, user=REP)
    reply = slack.last_reply()
    assert "You are not linked to a staff ID in local" in reply["text"] and reply["replace_original"] is False
    assert activity(linked, "local:1") == []


def test_add_note_from_the_card(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_add_note", user=ADMIN)
    (view,) = slack.opened_views()
    assert view["callback_id"] == "lead_note"
    slack.submit(view, {"text": "  Ada's team wants a demo  "})
    assert activity(linked, ref) == [("note", "Ada's team wants a demo")]
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    assert f"<@{ADMIN}> added a note" in text_of(reply["blocks"])
    slack.submit(view, {"text": "Ada's team wants a demo"})  # the same view again: Slack retry
    assert activity(linked, ref) == [("note", "Ada's team wants a demo")]


def test_empty_or_long_notes_are_refused_on_the_field(slack, linked):
    _, card = card_of(slack, linked)
    slack.click(card, "lead_add_note")
    (view,) = slack.opened_views()
    assert slack.submit(view, {"text": "   "}).json()["errors"] == {"text": "Write the note first."}
    long = slack.submit(view, {"text": "x" * 3001}).json()
    assert long["errors"] == {"text": "The note is 3,001 characters long; the limit is 3,000"}
    assert activity(linked, "local:1") == []


def test_status_select_changes_the_status_and_updates_the_card(slack, linked):
    ref, card = card_of(slack, linked)
    select = next(e for b in card if b["type"] == "actions" for e in b["elements"] if e["type"] == "static_select")
    assert [o["text"]["text"] for o in select["options"]] == ["New", "Contacted", "Qualified", "Won", "Lost"]
    assert select["initial_option"]["text"]["text"] == "New"
    slack.choose(card, "lead_set_status", "Qualified", user=REP, trigger_id="s.1")
    assert linked.get(ref).status == "qualified"
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    shown = text_of(reply["blocks"])
    assert ":large_purple_circle: Qualified" in shown and f"<@{REP}> set the status to Qualified" in shown
    slack.choose(card, "lead_set_status", "Qualified", user=REP, trigger_id="s.1")  # replayed payload
    assert activity(linked, ref) == [("status", "status → qualified")]
    assert len(audited(linked, action="status")) == 1


def test_status_select_needs_a_link(slack, linked):
    ref, card = card_of(slack, linked)
    slack.choose(card, "lead_set_status", "Won", user="USTRANGER")
    assert "You are not linked" in slack.last_reply()["text"]
    assert linked.get(ref).status == "new"
