"""Getlead through Slack: deals and departments by command and by card button, cards "as recorded by Leadbot"."""

from __future__ import annotations

import pytest

from services.audit import Actor
from tests.conftest import ADMIN, REP, bot_settings
from tests.fakes.getlead import TOKEN, FakeGetlead
from tests.slack import text_of

REF = "getlead:+919895012345"


@pytest.fixture
def gl_fake():
    fake = FakeGetlead().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, fake_slack, gl_fake, monkeypatch):
    config = '[backends.getlead]\ndefault_country = "IN"\ndepartments = ["Sales", "Support", "Accounts"]\n'
    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config=config,
        leadbot_getlead_url=f"{gl_fake.url}/api",
        leadbot_getlead_token=TOKEN,
    )


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, ADMIN, "Rahul", backend="getlead")
    service.people.link(admin, REP, "Ajay", backend="getlead")
    return service


def lead_in(fake) -> dict:
    return fake.leads["91-9895012345"]


def create(slack) -> list[dict]:
    slack.command("new Tom Sawyer +91 98950-12345 source=Website backend=getlead", user=REP)
    return slack.last_reply()["blocks"]


def test_a_getlead_card_is_as_recorded_and_offers_deal_and_department(slack, linked, gl_fake):
    card = create(slack)
    shown = text_of(card)
    assert "`getlead:+919895012345` · Getlead" in shown
    assert "As recorded by Leadbot: Getlead cannot be read back" in shown
    buttons = [e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]]
    assert "lead_add_deal" in buttons and "lead_set_department" in buttons
    assert lead_in(gl_fake)["name"] == "Tom Sawyer"


def test_a_deal_by_command_reaches_getlead_with_every_field(slack, linked, gl_fake):
    create(slack)
    slack.command(f'deal {REF} 1,50,000 name="Big order" status=Negotiation close=2026-12-31 note=urgent', user=REP)
    (deal,) = lead_in(gl_fake)["deals"]
    assert (deal["deal_amount"], deal["deal_name"], deal["status"], deal["end_date"]) == (
        150000,
        "Big order",
        "Negotiation",
        "2026-12-31",
    )
    assert deal["staff_name"] == "Ajay" and deal["deal_note"].startswith("urgent")
    reply = slack.last_reply()
    assert f"<@{REP}> recorded a deal “Big order” of 150,000 · closes 31 Dec 2026" in text_of(reply["blocks"])


def test_a_deal_from_the_card_button_opens_a_form_and_redraws_the_card(slack, linked, gl_fake):
    card = create(slack)
    slack.click(card, "lead_add_deal", user=REP)
    view = slack.opened_views()[-1]
    assert view["callback_id"] == "lead_deal"
    for amount in ("-3", "Infinity", "NaN"):
        answer = slack.submit(view, {"amount": amount}, user=REP)
        assert answer.json()["errors"] == {"amount": "Give the deal's amount as a number, e.g. 150000 or 2500.50."}
    for amount in ("1234567890123456", "1e30", "0.0000000000000001"):  # the deal takes 15 digits at most
        answer = slack.submit(view, {"amount": amount}, user=REP)
        assert answer.json()["errors"] == {"amount": "Keep the amount to 15 digits or fewer, e.g. 150000 or 2500.50."}
    answer = slack.submit(view, {"amount": "2500", "start": "2026-12-10", "end": "2026-12-01"}, user=REP)
    assert answer.json()["errors"] == {"end": "A deal cannot close before it starts."}
    slack.submit(view, {"amount": "2500", "name": "Renewal", "end": "2027-01-15"}, user=REP)
    (deal,) = lead_in(gl_fake)["deals"]
    assert (deal["deal_amount"], deal["deal_name"], deal["end_date"]) == (2500, "Renewal", "2027-01-15")
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    assert slack.thread_replies()[-1]["text"] == f"<@{REP}> recorded a deal “Renewal” of 2,500 · closes 15 Jan 2027"


def test_a_department_by_command_and_by_button(slack, linked, gl_fake):
    card = create(slack)
    slack.command(f"department {REF} Sales", user=REP)
    assert gl_fake.source_numbers == {"919895012345": "Sales"}
    assert "*Department*\nSales" in text_of(slack.last_reply()["blocks"])
    slack.command(f"department {REF} sales", user=REP)
    assert "Nothing changed: `getlead:+919895012345` is already with `Sales`" in slack.last_reply()["text"]
    slack.click(card, "lead_set_department", user=REP)
    view = slack.opened_views()[-1]
    select = next(b for b in view["blocks"] if b.get("block_id") == "department")["element"]
    assert [o["value"] for o in select["options"]] == ["Sales", "Support", "Accounts"]
    slack.submit(view, {"department": "Support"}, user=REP)
    assert gl_fake.source_numbers == {"919895012345": "Support"}
    assert slack.thread_replies()[-1]["text"] == f"<@{REP}> handed this lead to Support"


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (f"deal {REF} lots", "`lots` is not an amount (e.g. 150000 or 2,500.50)"),
        (f"deal {REF}", "Give the lead and the deal's amount"),
        (f"deal {REF} 100 extra", "I don't know what to do with `extra`"),
        (f"deal {REF} 100 close=someday", "I can't read `someday` as a date or time"),
        ("deal local:1 100", "Local store has no deals"),
        (f"department {REF}", "Usage: `/lead department REF NAME`"),
        (f"department {REF} Marketing", "`Marketing` is not a Getlead department here; use one of: Sales, Support"),
    ],
)
def test_deal_and_department_mistakes_are_said_with_the_usage(slack, linked, gl_fake, command, said):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), REP, "ana")  # on local too
    create(slack)
    slack.command("new Ada ada@example.com backend=local", user=REP)
    slack.command(command, user=REP)
    reply = slack.last_reply()["text"]
    assert reply.startswith(":warning:") and said in reply
    assert lead_in(gl_fake)["deals"] == []


def test_backends_says_what_getlead_cannot_do(slack, linked):
    slack.command("backends", user=REP)
    said = slack.last_reply()["text"]
    assert "cannot: write-only: Getlead cannot be read" in said
