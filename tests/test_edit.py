"""`/lead edit` and the card's Edit… form: the local backend, the REST leads API's fake, and refusals."""

from __future__ import annotations

import pytest

from services.audit import Actor
from services.models import NewLead
from tests.conftest import ADMIN, REP, STRANGER, audited, leadsapi_settings
from tests.slack import text_of


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch)


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    for user, staff in ((ADMIN, "ada"), (REP, "ana")):
        service.people.link(admin, user, staff)
        service.people.link(admin, user, staff, backend="leadsapi")
    return service


def make(service, name="Ada Lovelace", *, backend="local", **fields):
    fields.setdefault("email", "ada@example.com")
    return service.create(Actor(slack_user=REP), NewLead(name=name, **fields), backend=backend).ref


def shown(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def says(text: str, expected: str) -> bool:
    return expected in text or expected[:1].upper() + expected[1:] in text


def test_edit_changes_the_fields_checked_as_for_a_new_lead(slack, linked):
    ref = make(linked, phone="+14155550123")
    typed = 'email=countess@Example.COM phone="+44 20 7946 0958" company=Analytical Engines'
    slack.command(f"edit {ref} {typed}", user=REP)
    text = shown(slack)
    assert f"<@{REP}> changed the email, phone, company" in text
    assert "countess@example.com · +442079460958" in text and "*For*\nAnalytical Engines" in text
    lead = linked.get(ref)
    assert (lead.email, lead.phone, lead.lead_for) == ("countess@example.com", "+442079460958", "Analytical Engines")
    assert audited(linked, action="edit") == [("ok", "email, phone, company")]
    slack.command("find engines", user=REP)  # the search index follows the edit
    assert ref in shown(slack)
    slack.command("find 4155550123", user=REP)
    assert "No leads match" in shown(slack)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("email=not-an-email", "is not a valid email address"),
        ("phone=+44 12", "is not a"),
        ("colour=blue", "`colour=` is not an option here"),
        ("", "say what to change as field=value"),
        ("name=", "give a value after `name=`"),
        ("for=Acme company=Acme", "are the same field"),
    ],
)
def test_edit_mistakes_say_what_and_how(slack, linked, typed, expected):
    ref = make(linked)
    slack.command(f"edit {ref} {typed}", user=REP)
    text = shown(slack)
    assert says(text, expected), text
    assert linked.get(ref).email == "ada@example.com"


def test_edit_with_nothing_new_says_nothing_changed(slack, linked):
    ref = make(linked)
    slack.command(f"edit {ref} email=ada@example.com", user=REP)
    assert says(shown(slack), f"nothing changed: `{ref}` already has those details")


def test_an_unlinked_person_cannot_edit(slack, linked):
    ref = make(linked)
    slack.command(f"edit {ref} name=Someone Else", user=STRANGER)
    assert says(shown(slack), "you are not linked to a staff ID in local")
    assert linked.get(ref).name == "Ada Lovelace"


def test_edit_on_the_rest_api_sends_a_put_the_fake_holds(slack, linked, api_fake):
    ref = make(linked, "John Doe", backend="leadsapi", email="john@example.com")
    slack.command(f"edit {ref} email=johnny@example.com company=Acme name=Johnny Doe", user=REP)
    held = api_fake.leads[1]
    assert (held["email"], held["company"], held["firstName"], held["lastName"]) == (
        "johnny@example.com",
        "Acme",
        "Johnny",
        "Doe",
    )
    assert "johnny@example.com" in shown(slack) and "Johnny Doe" in shown(slack)
    slack.command(f"edit {ref} type=inbound", user=REP)
    assert says(
        shown(slack),
        "REST leads API cannot change the type from Leadbot (it can change: name, email, phone, company, source)",
    )
    slack.command(f"edit {ref} name=Cher", user=REP)
    assert says(shown(slack), "the REST leads API needs a first and a last name")
    assert api_fake.leads[1]["firstName"] == "Johnny"


def test_edit_button_opens_a_form_with_the_values_now_and_saves_what_changed(slack, linked):
    ref = make(linked, lead_for="Engines")
    slack.command(f"show {ref}", user=REP)
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_edit", user=REP)
    (view,) = slack.opened_views()
    assert view["callback_id"] == "lead_edit_view" and view["title"]["text"] == "Edit lead"
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert initial == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": None,
        "company": "Engines",
        "source": None,
        "type": None,
    }
    body = slack.submit(view, {**initial, "phone": "+44 12"}, user=REP).json()
    assert body == {"response_action": "errors", "errors": {"phone": body["errors"]["phone"]}}
    slack.submit(view, {**initial, "email": "countess@example.com", "source": "expo"}, user=REP)
    lead = linked.get(ref)
    assert (lead.email, lead.source, lead.name) == ("countess@example.com", "expo", "Ada Lovelace")
    reply = slack.last_reply()
    assert reply["replace_original"] is True
    assert f"<@{REP}> changed the email, source" in text_of(reply["blocks"])


def test_edit_form_refuses_an_empty_field_and_no_change(slack, linked):
    ref = make(linked)
    slack.command(f"show {ref}", user=REP)
    slack.click(slack.last_reply()["blocks"], "lead_edit", user=REP)
    (view,) = slack.opened_views()
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    body = slack.submit(view, {**initial, "email": ""}, user=REP).json()
    assert body["errors"] == {"email": "Leadbot cannot empty a field: give the new value."}
    body = slack.submit(view, initial, user=REP).json()
    assert body["errors"] == {"name": "Nothing was changed: edit a field, or close the form."}


def test_an_unlinked_person_is_told_before_the_edit_form_opens(slack, linked):
    ref = make(linked)
    slack.command(f"show {ref}", user=REP)
    slack.click(slack.last_reply()["blocks"], "lead_edit", user=STRANGER)
    assert slack.opened_views() == []
    assert "not linked to a staff ID in local" in shown(slack)
