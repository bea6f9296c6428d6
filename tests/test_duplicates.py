"""A new local lead with an open lead's email or phone: the existing lead named, Show, and Create anyway."""

from __future__ import annotations

import json

from services.audit import Actor
from tests.conftest import ADMIN, REP, leads, new_lead
from tests.slack import text_of


def buttons(reply) -> dict[str, dict]:
    return {e["action_id"]: e for b in reply.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def test_the_same_email_names_the_open_lead_with_show_and_create_anyway(slack, linked):
    slack.command("new Ada Lovelace ada@example.com", user=REP)
    slack.command("new Ada L. ADA@example.com", user=REP)  # the domain's case is not the person's
    warning = slack.last_reply()
    text = warning["text"]
    assert "Ada Lovelace (`local:1`) is already open with this email; Create anyway makes a second lead" in text
    assert warning["response_type"] == "ephemeral"
    found = buttons(warning)
    assert found["lead_open"]["value"] == "local:1" and found["lead_open"]["text"]["text"] == "Show local:1"
    assert [lead.ref for lead in leads(linked)] == ["local:1"]  # nothing made yet
    slack.click(warning["blocks"], "lead_create_anyway", user=REP)
    card = slack.last_reply()
    assert card["response_type"] == "in_channel" and "`local:2` · Local store" in text_of(card["blocks"])
    assert linked.get("local:2").name == "Ada L." and linked.get("local:2").owner == "ana"
    slack.click(warning["blocks"], "lead_create_anyway", user=REP)  # pressed again
    assert len(leads(linked)) == 2
    assert "this lead was created already from this warning" in slack.last_reply()["text"].lower()


def test_the_same_phone_however_typed(slack, linked):
    slack.command("new Ada Lovelace +44 20 7946 0958", user=REP)
    slack.command("new Ada Again +442079460958", user=REP)
    assert "is already open with this phone" in slack.last_reply()["text"]


def test_closed_leads_and_other_contacts_are_no_duplicates(slack, linked):
    ref = new_lead(linked, email="ada@example.com")
    linked.change_status(Actor(slack_user=ADMIN, is_admin=True), ref, "won")
    slack.command("new Ada Lovelace ada@example.com", user=REP)
    assert "`local:2`" in text_of(slack.last_reply()["blocks"])
    slack.command("new Grace Hopper grace@example.com", user=REP)
    assert "`local:3`" in text_of(slack.last_reply()["blocks"])


def test_the_new_lead_form_warns_the_same_way(slack, linked):
    new_lead(linked, email="ada@example.com")
    slack.command("new", user=REP)
    (view,) = slack.opened_views()
    slack.submit(view, {"name": "Ada Twin", "email": "ada@example.com"}, user=REP)
    warning = slack.last_reply()
    assert "is already open with this email" in warning["text"]
    again = json.loads(buttons(warning)["lead_create_anyway"]["value"])
    assert again["lead"]["name"] == "Ada Twin" and again["backend"] == "local"
    slack.click(warning["blocks"], "lead_create_anyway", user=REP)
    assert [lead.name for lead in leads(linked)] == ["Ada Twin", "Ada Lovelace"]


def test_a_forged_create_anyway_is_out_of_date_not_a_crash(slack, linked):
    forged = [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "lead_create_anyway",
                    "text": {"type": "plain_text", "text": "x"},
                    "value": json.dumps({"lead": {"name": ""}, "backend": "local", "key": "k"}),
                }
            ],
        }
    ]
    slack.click(forged, "lead_create_anyway", user=REP)
    assert "this warning is out of date" in slack.last_reply()["text"].lower()
    assert leads(linked) == []
