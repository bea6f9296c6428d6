"""LeadSquared through Slack: a card lists the lead's opportunities, a page at a time, and survives their failing."""

from __future__ import annotations

import json

import pytest

from bot.loopback import Failure
from services.audit import Actor
from services.errors import Invalid
from services.models import NewLead
from tests.conftest import ADMIN, OTHER, REP, bot_settings
from tests.fakes.leadsquared import ACCESS_KEY, RAJESH_ID, SAMPLE_LEAD, SECRET_KEY, FakeLeadSquared
from tests.slack import text_of

REF = f"leadsquared:{SAMPLE_LEAD}"
PATH = "/v2/OpportunityManagement.svc/GetOpportunitiesOfLead"


@pytest.fixture
def lsq_fake():
    fake = FakeLeadSquared().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, fake_slack, lsq_fake, monkeypatch):
    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config="[backends.leadsquared]\nrate_limit = 1000\ntimeout = 0.5\n",
        leadbot_leadsquared_url=lsq_fake.url,
        leadbot_leadsquared_access_key=ACCESS_KEY,
        leadbot_leadsquared_secret_key=SECRET_KEY,
    )


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, REP, "ana.silva@example.com", backend="leadsquared")
    service.people.link(admin, ADMIN, RAJESH_ID, backend="leadsquared")  # the seed's opportunity owner
    return service


def opportunities(card: list[dict]) -> str:
    return next(b["text"]["text"] for b in card if b.get("text", {}).get("text", "").startswith("*Opportunities*"))


def page_value(page: int) -> str:
    return json.dumps({"ref": REF, "page": page}, separators=(",", ":"))


def page_buttons(card: list[dict]) -> dict[str, int]:
    found = [b for b in card if str(b.get("block_id", "")).startswith("opportunities:")]
    return {e["text"]["text"]: json.loads(e["value"])["page"] for b in found for e in b["elements"]}


def test_a_card_lists_the_leads_opportunities_and_pages_through_them(slack, linked, lsq_fake):
    slack.command(f"show {REF}", user=REP)
    card = slack.last_reply()["blocks"]
    shown = opportunities(card)
    assert shown.startswith("*Opportunities* · 1–5 of 12")
    assert shown.count("\n• ") == 5 and f"<@{ADMIN}>" in shown  # the owner, linked: a mention
    assert page_buttons(card) == {"More (7)": 2}
    slack.click(card, "lead_opportunities_page", value=page_value(2))
    second = slack.last_reply()
    assert second["replace_original"] is True
    assert opportunities(second["blocks"]).startswith("*Opportunities* · 6–10 of 12")
    assert page_buttons(second["blocks"]) == {"Previous": 1, "More (2)": 3}
    sent = lsq_fake.requests("POST", PATH)[-1]
    assert sent.body["Paging"] == {"PageIndex": 2, "PageSize": 5} and sent.query["leadId"] == SAMPLE_LEAD
    slack.click(second["blocks"], "lead_opportunities_page", value=page_value(3))
    last = slack.last_reply()["blocks"]
    assert opportunities(last).startswith("*Opportunities* · 11–12 of 12") and page_buttons(last) == {"Previous": 2}
    assert "200,000" in opportunities(last)  # the value, as the account shows it


def test_a_card_whose_opportunities_cannot_be_read_still_shows(slack, linked, lsq_fake):
    lsq_fake.fail("POST", PATH, Failure("status", status=503, times=5))
    slack.command(f"show {REF}", user=REP)
    card = slack.last_reply()["blocks"]
    assert "*Opportunities*\n_could not be read just now: LeadSquared" in text_of(card)
    assert any(b["type"] == "actions" and b["block_id"] == f"card:{REF}" for b in card)  # its buttons still work


def test_a_stale_page_button_says_so(slack, linked, lsq_fake):
    slack.command(f"show {REF}", user=REP)
    card = json.loads(json.dumps(slack.last_reply()["blocks"]).replace(page_value(2).replace('"', '\\"'), "not json"))
    slack.click(card, "lead_opportunities_page", value="not json")
    assert "This card is out of date; press Refresh" in slack.last_reply()["text"]


def test_linking_checks_the_staff_id_is_an_active_leadsquared_user(slack, linked, lsq_fake):
    slack.command(f"link <@{OTHER}|bob> nobody@example.com backend=leadsquared")
    assert "`nobody@example.com` is not an active LeadSquared user" in slack.last_reply()["text"]
    slack.command(f"link <@{OTHER}|bob> old.hand@example.com backend=leadsquared")  # deactivated
    assert "is not an active LeadSquared user" in slack.last_reply()["text"]
    assert linked.people.staff_id(OTHER, "leadsquared") is None
    with pytest.raises(Invalid) as refused:
        linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "nobody@example.com", "leadsquared")
    assert refused.value.field == "staff_id"  # a form puts the error on the staff ID
    slack.command(f"link <@{OTHER}|bob> bob.kumar@example.com backend=leadsquared")
    assert linked.people.staff_id(OTHER, "leadsquared") == "bob.kumar@example.com"


def test_with_leadsquared_down_a_link_is_made_as_asked(slack, linked, lsq_fake):
    linked.backends.get("leadsquared")._cache.drop("users")  # the directory is not known yet
    down = lsq_fake.fail("GET", "/v2/UserManagement.svc/Users.Get", Failure("status", status=503, times=10))
    slack.command(f"link <@{OTHER}|bob> bob.kumar@example.com backend=leadsquared")
    assert down.fired >= 1  # it was asked, and could not say
    assert linked.people.staff_id(OTHER, "leadsquared") == "bob.kumar@example.com"


def test_edit_updates_the_leadsquared_lead_with_only_the_fields_given(slack, linked, lsq_fake):
    created = linked.create(
        Actor(slack_user=REP), NewLead(name="Ada Lovelace", email="ada@example.com"), backend="leadsquared"
    )
    lead_id = created.ref.split(":", 1)[1]
    slack.command(f"edit {created.ref} email=countess@example.com company=Analytical name=Ada King", user=REP)
    held = lsq_fake.leads[lead_id]
    assert (held["EmailAddress"], held["Company"], held["FirstName"], held["LastName"]) == (
        "countess@example.com",
        "Analytical",
        "Ada",
        "King",
    )
    assert "countess@example.com" in slack.last_reply()["text"] + str(slack.last_reply().get("blocks"))
    sent = [r for r in lsq_fake.requests("POST") if r.path.endswith("Lead.Update")][-1]
    assert {a["Attribute"] for a in sent.body} == {"EmailAddress", "Company", "FirstName", "LastName"}
    other = linked.create(
        Actor(slack_user=REP), NewLead(name="Grace Hopper", email="grace@example.com"), backend="leadsquared"
    )
    slack.command(f"edit {other.ref} email=countess@example.com", user=REP)  # LeadSquared keeps emails unique
    assert "LeadSquared has another lead with this email or phone" in slack.last_reply()["text"]
    assert lsq_fake.leads[other.ref.split(":", 1)[1]]["EmailAddress"] == "grace@example.com"


def test_the_outbox_can_tell_whether_an_edit_landed(slack, linked, lsq_fake):
    from services.models import LeadEdit

    backend = linked.backends.get("leadsquared")
    lead = linked.create(
        Actor(slack_user=REP), NewLead(name="Ada Lovelace", email="ada@example.com"), backend="leadsquared"
    )

    def args(**fields):
        return {"lead_id": lead.id, "edit": LeadEdit(by="ana.silva@example.com", **fields).model_dump(mode="json")}

    assert backend.applied("edit", args(email="countess@example.com")) is None  # not made
    backend.edit(lead.id, LeadEdit(by="ana.silva@example.com", email="countess@example.com", lead_for="Analytical"))
    found = backend.applied("edit", args(email="countess@example.com", lead_for="Analytical"))
    assert found is not None and found.email == "countess@example.com"
    assert backend.applied("edit", args(email="countess@example.com", lead_for="Babbage")) is None
