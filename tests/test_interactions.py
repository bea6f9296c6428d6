"""Card buttons and the New lead modal, as Slack sends them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN, REP, STRANGER, audited, leads, new_lead
from tests.slack import button_message, text_of


def test_assign_to_me_updates_the_card_in_place(slack, linked):
    slack.command("new Ada Lovelace ada@example.com", user=ADMIN)
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_assign_me", user=REP)
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    shown = text_of(reply["blocks"])
    assert f"*Owner*\n<@{REP}>" in shown
    assert f"<@{REP}> took this lead" in shown
    assert linked.get("local:1").owner == "ana"
    assert [result for result, _ in audited(linked, action="assign")] == ["ok"]


def test_assign_to_me_needs_a_link(slack, linked):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    slack.click(slack.last_reply()["blocks"], "lead_assign_me", user=STRANGER)
    reply = slack.last_reply()
    assert reply["replace_original"] is False and reply["response_type"] == "ephemeral"
    assert "You are not linked to a staff ID in local" in reply["text"]
    assert linked.get(ref).owner == "ada"


def test_refresh_rereads_the_lead(slack, linked):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    card = slack.last_reply()["blocks"]
    linked.add_note(linked_actor(), ref, "changed elsewhere")
    slack.click(card, "lead_refresh")
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    assert "changed elsewhere" in text_of(reply["blocks"])


def test_open_from_a_list_shows_the_full_card(slack, linked):
    new_lead(linked, phone="+919895012345")
    slack.command("list")
    slack.click(slack.last_reply()["blocks"], "lead_open", value="local:1")
    reply = slack.last_reply()
    assert reply["replace_original"] is False
    assert "+919895012345" in text_of(reply["blocks"])


def test_stale_list_button_says_so(slack, linked):
    slack.click(button_message("lead_list_page", "not json"), "lead_list_page")
    assert "This list is out of date" in slack.last_reply()["text"]


def test_refresh_of_a_deleted_lead_says_what_happened(slack, linked):
    slack.click(button_message("lead_refresh", "local:42"), "lead_refresh")
    assert "There is no lead `local:42`" in slack.last_reply()["text"]


def linked_actor():
    from services.leads import Actor

    return Actor(slack_user=ADMIN, is_admin=True)


# -- the New lead modal -----------------------------------------------------------------------


def open_modal(slack) -> dict:
    response = slack.command("new", user=ADMIN)
    assert response.status_code == 200 and response.text == ""
    (view,) = slack.opened_views()
    return view


def test_new_without_arguments_opens_the_modal(slack, linked, fake_slack):
    view = open_modal(slack)
    (call,) = fake_slack.received("api", "views.open")
    assert call.body["trigger_id"].endswith(".trigger")
    assert view["callback_id"] == "lead_new" and view["title"]["text"] == "New lead"
    assert [b["block_id"] for b in view["blocks"]] == [
        "name",
        "email",
        "phone",
        "lead_for",
        "type",
        "source",
        "owner",
        "next",
        "status",
        "note",
    ]
    status = next(b for b in view["blocks"] if b["block_id"] == "status")
    assert [o["value"] for o in status["element"]["options"]] == ["new", "contacted", "qualified", "won", "lost"]
    metadata = json.loads(view["private_metadata"])
    assert metadata["channel"] == "C0SALES" and metadata["response_url"].startswith(fake_slack.url)


def test_modal_submission_creates_the_lead_and_posts_the_card(slack, linked):
    view = open_modal(slack)
    when = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    response = slack.submit(
        view,
        {
            "name": "Grace Hopper",
            "email": "grace@navy.mil",
            "phone": "+1 202 555 0143",
            "owner": REP,
            "next": when,
            "status": "contacted",
            "note": "met at the conference",
            "source": "referral",
        },
    )
    assert response.status_code == 200 and response.text == ""  # the modal closes
    lead = linked.get("local:1")
    assert (lead.name, lead.email, lead.phone, lead.owner, lead.status) == (
        "Grace Hopper",
        "grace@navy.mil",
        "+12025550143",
        "ana",
        "contacted",
    )
    assert int(lead.next_follow_up.timestamp()) == when
    reply = slack.last_reply()
    assert reply["response_type"] == "in_channel"
    shown = text_of(reply["blocks"])
    assert "Grace Hopper" in shown and f"Created by <@{ADMIN}>" in shown and "met at the conference" in shown


def test_modal_field_errors_come_back_on_the_fields(slack, linked):
    view = open_modal(slack)
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    response = slack.submit(view, {"name": "", "email": "grace@", "phone": "12345", "next": past, "owner": "UREP2"})
    body = response.json()
    assert body["response_action"] == "errors"
    errors = body["errors"]
    assert errors["name"] == "Give the lead a name."
    assert "not a valid email address" in errors["email"]
    assert "has no country code" in errors["phone"] and "LEADBOT_PHONE_REGION" in errors["phone"]
    assert errors["next"] == "The next follow-up must be in the future."
    assert errors["owner"] == "They are not linked in local yet; an admin can run /lead link."
    assert leads(linked) == []
    assert slack.replies() == []  # the work after the ack did nothing either


def test_modal_needs_email_or_phone(slack, linked):
    view = open_modal(slack)
    body = slack.submit(view, {"name": "Grace"}).json()
    assert body == {"response_action": "errors", "errors": {"email": "Give an email or a phone number."}}


def test_resubmitted_view_creates_one_lead(slack, linked):
    view = open_modal(slack)
    values = {"name": "Grace Hopper", "email": "grace@navy.mil"}
    slack.submit(view, values)
    slack.submit(view, values)  # Slack retry of the same view
    assert [lead.name for lead in leads(linked)] == ["Grace Hopper"]
    assert len(slack.replies()) == 1


def test_a_button_leadbot_no_longer_has_is_acked_and_says_the_card_is_out_of_date(slack, linked):
    # An old card after an upgrade: its button's action_id is gone. Slack would show an error for a 404.
    old_card = [
        {"type": "actions", "block_id": "card:local:1", "elements": [{"type": "button", "action_id": "lead_gone_away"}]}
    ]
    answer = slack.click(old_card, "lead_gone_away")
    assert answer.status_code == 200
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "This card is out of date: press Refresh on it" in reply["text"]


def test_an_event_leadbot_has_no_listener_for_is_acked_silently(slack):
    answer = slack.event({"type": "reaction_added", "user": "UREP1", "reaction": "eyes", "item": {"type": "message"}})
    assert answer.status_code == 200 and answer.text == ""
    assert slack.fake.received("response") == [] and slack.fake.received("api", "chat.postMessage") == []
