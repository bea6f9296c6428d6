"""'Create lead from message': the New lead modal filled in from a message, its link the first note."""

from __future__ import annotations

import json

import pytest

from handlers.parsing import plain
from services.contact import FoundContact, find_contact
from tests.conftest import REP, activity
from tests.slack import text_of

MESSAGE = (
    "New inquiry from Jane Doe, <mailto:jane.doe@acme.example|jane.doe@acme.example>,"
    " call <tel:+14155550132|+1 415 555 0132> — wants pricing for 40 seats"
)
PERMALINK = "https://leadbot-test.slack.com/archives/C0SALES/p1700000500000200"


def field(view: dict, block_id: str) -> str | None:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return block["element"].get("initial_value")


def test_the_shortcut_opens_the_form_filled_in_from_the_message(slack, linked, fake_slack):
    assert slack.message_shortcut("lead_from_message", MESSAGE).status_code == 200
    (view,) = slack.opened_views()
    assert view["callback_id"] == "lead_new"
    assert (field(view, "name"), field(view, "email"), field(view, "phone")) == (
        "Jane Doe",
        "jane.doe@acme.example",
        "+14155550132",
    )
    (asked,) = fake_slack.received("api", "chat.getPermalink")
    assert (asked.body["channel"], asked.body["message_ts"]) == ("C0SALES", "1700000500.000200")
    assert f"<{PERMALINK}|this message>" in text_of(view["blocks"])
    metadata = json.loads(view["private_metadata"])
    assert metadata["permalink"] == PERMALINK and metadata["ts"] == "1700000500.000200"


def test_submitting_makes_the_lead_with_the_link_as_first_note_and_says_so_in_the_thread(slack, linked):
    slack.message_shortcut("lead_from_message", MESSAGE)
    (view,) = slack.opened_views()
    values = {"name": "Jane Doe", "email": "jane.doe@acme.example", "phone": "+14155550132", "note": "40 seats"}
    assert slack.submit(view, values, user=REP).text == ""

    lead = linked.get("local:1")
    assert (lead.name, lead.email, lead.phone, lead.owner) == (
        "Jane Doe",
        "jane.doe@acme.example",
        "+14155550132",
        "ana",
    )
    assert activity(linked, "local:1") == [("note", f"From Slack: {PERMALINK}\n\n40 seats")]
    card = slack.last_reply()
    assert card["response_type"] == "in_channel" and "Jane Doe" in text_of(card["blocks"])
    (thread,) = slack.thread_replies()
    assert thread["channel"] == "C0SALES" and thread["thread_ts"] == "1700000500.000200"
    assert thread["text"] == f"<@{REP}> made a lead of this message: Jane Doe (`local:1`)"


def test_a_message_without_details_opens_an_empty_form_that_still_asks_for_them(slack, linked):
    slack.message_shortcut("lead_from_message", "can someone call the guy from yesterday back?")
    (view,) = slack.opened_views()
    assert field(view, "name") is None and field(view, "email") is None and field(view, "phone") is None
    errors = slack.submit(view, {}, user=REP).json()["errors"]
    assert errors == {"name": "Give the lead a name.", "email": "Give an email or a phone number."}


def test_without_a_permalink_the_lead_is_still_made(slack, linked, fake_slack):
    fake_slack.fail("chat.getPermalink", error="channel_not_found")
    slack.message_shortcut("lead_from_message", MESSAGE)
    (view,) = slack.opened_views()
    assert "from_message" not in [b.get("block_id") for b in view["blocks"]]
    slack.submit(view, {"name": "Jane Doe", "email": "jane.doe@acme.example"}, user=REP)
    assert linked.get("local:1").name == "Jane Doe"
    assert activity(linked, "local:1") == []


@pytest.mark.parametrize(
    ("text", "region", "found"),
    [
        (plain(MESSAGE), None, FoundContact("Jane Doe", "jane.doe@acme.example", "+14155550132")),
        (
            "Name: Ravi Kumar\nEmail: ravi@example.in\nPhone: 098950 12345",
            "IN",
            FoundContact("Ravi Kumar", "ravi@example.in", "+919895012345"),
        ),
        (
            "Hi team, Grace Hopper <grace@navy.example> wants a demo",
            None,
            FoundContact("Grace Hopper", "grace@navy.example"),
        ),
        (
            "ping alan.turing@bletchley.example about pricing",
            None,
            FoundContact("Alan Turing", "alan.turing@bletchley.example"),
        ),
        ("call me on 098950 12345", None, FoundContact()),  # no country code and no region: not a number we can trust
        ("mail bad@@example.com or good@example.com", None, FoundContact(email="good@example.com")),
        ("nothing to see here", None, FoundContact()),
    ],
)
def test_finding_contact_details_in_text(text, region, found):
    assert find_contact(text, region) == found


@pytest.mark.parametrize(
    ("slack", "typed"),
    [
        ("<@U123|ana> meet <https://acme.example|Acme> &amp; co", "@ana meet Acme (https://acme.example) & co"),
        ("<@U123> said &lt;3", "@Ana Maria said <3"),  # no name in the mention: asked for
        ("<mailto:a@b.example|a@b.example> or <tel:+14155550132|+1 415 555 0132>", "a@b.example or +1 415 555 0132"),
        ("in <#C1|sales> <!here> <!channel> <!everyone>", "in #sales @here @channel @everyone"),
        ("<https://acme.example>", "https://acme.example"),
        ("<!subteam^S1|@sales-team> by <!date^1700000000^{date}|Nov 14>", "@sales-team by Nov 14"),
        ("AT&amp;T &lt;b&gt;bold&lt;/b&gt;", "AT&T <b>bold</b>"),
    ],
)
def test_slack_markup_is_read_as_people_typed_it(slack, typed):
    assert plain(slack, {"U123": "Ana Maria"}.get) == typed
