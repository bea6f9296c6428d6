"""The fake Getlead is as strict as seed 004: its parameters, its exact messages, and it keeps what it was told."""

from __future__ import annotations

import httpx
import pytest

from bot.loopback import Failure
from tests.fakes.getlead import TOKEN, FakeGetlead
from tests.fakes.testing import client, free_port, post, standalone

LEAD = {"token": TOKEN, "name": "Tom Sawyer", "countrycode": "91", "mobileno": "9895012345", "source": "Slack"}
WHO = {"countrycode": "91", "mobile_no": "9895012345"}


@pytest.fixture
def fake():
    server = FakeGetlead().start()
    yield server
    server.stop()


@pytest.fixture
def gl(fake):
    with client(f"{fake.url}/api/", timeout=2) as http:
        yield http


def said(reply: httpx.Response) -> tuple[str, str]:
    assert reply.status_code == 200  # Getlead answers 200 whatever happened
    return reply.json()["status"], reply.json()["message"]


def test_a_lead_is_created_from_the_query_string_and_kept(gl, fake):
    extra = {"email": "tom@example.com", "staff_name": "Ajay", "status": "New", "department": "Sales", "budget": "5k"}
    assert said(gl.post("gl-website-contacts", params={**LEAD, **extra})) == ("success", "Lead Added Successfully.")
    lead = fake.lead("91", "9895012345")
    assert (lead["name"], lead["source"], lead["staff_name"], lead["status"], lead["department"]) == (
        "Tom Sawyer",
        "Slack",
        "Ajay",
        "New",
        "Sales",
    )
    assert lead["fields"] == {"budget": "5k"} and lead["creates"] == 1
    assert fake.lead("91", "919895012345") is lead  # the same number with its country code


def test_a_form_encoded_body_is_taken_too(gl, fake):
    assert said(gl.post("gl-website-contacts", data=LEAD))[0] == "success"
    assert said(gl.post("gl-website-contacts", json={**LEAD, "mobileno": "9895012346"}))[0] == "success"
    assert set(fake.leads) == {"91-9895012345", "91-9895012346"}


@pytest.mark.parametrize("missing", ["token", "countrycode", "mobileno", "source"])
def test_a_create_needs_its_required_parameters(gl, fake, missing):
    params = {k: v for k, v in LEAD.items() if k != missing}
    assert said(gl.post("gl-website-contacts", params=params)) == ("fail", "Please check the parameters.")
    assert said(gl.post("gl-website-contacts", params={**LEAD, missing: ""})) == (
        "fail",
        "Please check the parameters.",
    )
    assert fake.leads == {}


@pytest.mark.parametrize("mobile", ["9895012", "989501234567890", "98950-12345", "+919895012345"])
def test_a_mobile_must_be_8_to_14_digits(gl, mobile):
    reply = gl.post("gl-website-contacts", params={**LEAD, "mobileno": mobile})
    assert said(reply) == ("fail", "The mobileno must be between 8 and 14 digits.")


@pytest.mark.parametrize(
    "change",
    [{"countrycode": "+91"}, {"email": "tom@"}, {"staff_name": "Nobody"}, {"status": "Hot"}, {"department": "Moon"}],
)
def test_wrong_values_are_refused(gl, fake, change):
    assert said(gl.post("gl-website-contacts", params={**LEAD, **change})) == ("fail", "Please check the parameters.")
    assert fake.leads == {}


def test_a_wrong_token_is_refused_without_echoing_it(gl, fake):
    reply = gl.post("gl-website-contacts", params={**LEAD, "token": "gl_wrong_token"})
    assert said(reply) == ("fail", "Invalid token.") and "gl_wrong_token" not in reply.text
    assert said(gl.post("gl-note-creation-api", params={**WHO, "token": "gl_x", "note": "hi"})) == (
        "error",
        "Invalid token.",
    )
    assert fake.requests("POST", "/api/gl-website-contacts")[0].query["token"] == "gl_wrong_token"  # recorded as sent


def test_a_second_create_for_the_same_number_updates_the_lead(gl, fake):
    gl.post("gl-website-contacts", params=LEAD)
    again = {**LEAD, "mobileno": "919895012345", "name": "Thomas Sawyer", "purpose": "sofa"}
    assert said(gl.post("gl-website-contacts", params=again)) == ("success", "Lead Added Successfully.")
    (lead,) = fake.leads.values()
    assert (lead["name"], lead["purpose"], lead["source"], lead["creates"]) == ("Thomas Sawyer", "sofa", "Slack", 2)


def test_notes_and_status_changes_need_a_known_lead(gl, fake):
    note = {"token": TOKEN, "note": "called [lb:42]", **WHO}
    assert said(gl.post("gl-note-creation-api", params=note)) == ("error", "Enquiry Not Found.")
    gl.post("gl-website-contacts", params=LEAD)
    assert said(gl.post("gl-note-creation-api", params=note)) == ("success", "Note Added Successfully.")
    assert said(gl.post("gl-note-creation-api", params={**note, "note": ""})) == (
        "error",
        "Please check the parameters.",
    )
    status = {"token": TOKEN, "status": "Interested", **WHO}
    assert said(gl.post("gl-status-change-api", params=status)) == ("success", "Note Added Successfully.")  # sic
    assert said(gl.post("gl-status-change-api", params={**status, "status": "Hot"}))[0] == "error"
    lead = fake.lead("91", "9895012345")
    assert [n["note"] for n in lead["notes"]] == ["called [lb:42]"]
    assert (lead["status"], [s["status"] for s in lead["statuses"]]) == ("Interested", ["Interested"])


def test_tasks_with_or_without_a_lead(gl, fake):
    task = {"token": TOKEN, "name": "Call back", "task_category_id": "2", "assigned_to": "Ajay"}
    assert said(gl.post("gl-task-creation-api", params=task)) == ("success", "Task Added Successfully.")
    assert said(gl.post("gl-task-creation-api", params={**task, **WHO})) == ("error", "Enquiry Not Found.")
    gl.post("gl-website-contacts", params=LEAD)
    dated = {**task, **WHO, "scheduled_date": "2024-05-02 10:00"}
    assert said(gl.post("gl-task-creation-api", params=dated)) == ("success", "Task Added Successfully.")
    for broken in ({"name": ""}, {"task_category_id": "3"}, {"assigned_to": "Nobody"}, {"countrycode": "91"}):
        assert said(gl.post("gl-task-creation-api", params={**task, **broken})) == (
            "error",
            "Please check the parameters.",
        )
    assert [t["lead"] for t in fake.tasks] == [None, "91-9895012345"]
    assert fake.lead("91", "9895012345")["tasks"][0]["scheduled_date"] == "2024-05-02 10:00"


def test_deals_find_their_lead_by_mobile(gl, fake):
    gl.post("gl-website-contacts", params=LEAD)
    deal = {"token": TOKEN, "mobile": "9895012345", "status": "Open", "deal name": "Sofa", "deal_amount": "45000"}
    assert said(gl.post("gl-deal-creation-api", params=deal)) == ("success", "Task Added Successfully.")  # sic
    assert (
        said(gl.post("gl-deal-creation-api", params={**deal, "deal_amount": "45k"}))[1]
        == "Please check the parameters."
    )
    assert said(gl.post("gl-deal-creation-api", params={**deal, "start_date": "2024-13-01"}))[0] == "error"
    assert said(gl.post("gl-deal-creation-api", params={**deal, "mobile": "9000000000"})) == (
        "error",
        "Enquiry Not Found.",
    )
    assert said(gl.post("gl-deal-creation-api", params={k: v for k, v in deal.items() if k != "status"}))[0] == "error"
    (kept,) = fake.lead("91", "9895012345")["deals"]
    assert (kept["deal_name"], kept["deal_amount"], kept["status"]) == ("Sofa", 45000, "Open")


def test_a_source_number_is_assigned_to_a_department(gl, fake):
    ok = gl.post(
        f"gl-department-vise-agent-assign/{TOKEN}", params={"SourceNumber": "4234567890", "department": "Sales"}
    )
    assert said(ok) == ("success", "The source number has been assigned to the specified department.")
    assert fake.source_numbers == {"4234567890": "Sales"}
    wrong = gl.post(
        "gl-department-vise-agent-assign/gl_nope", params={"SourceNumber": "4234567890", "department": "Sales"}
    )
    assert said(wrong) == ("error", "Invalid token.")
    bad = gl.post(
        f"gl-department-vise-agent-assign/{TOKEN}", params={"SourceNumber": "4234567890", "department": "Moon"}
    )
    assert said(bad) == ("error", "Invalid department.")
    assert said(gl.post(f"gl-department-vise-agent-assign/{TOKEN}", params={"department": "Sales"}))[0] == "error"


def test_other_methods_and_paths_are_not_served(gl):
    assert gl.get("gl-website-contacts", params=LEAD).status_code == 405
    assert gl.post("gl-lead-delete-api", params=LEAD).status_code == 404


def test_a_dropped_create_is_kept_and_survives_a_restart(gl, fake):
    fake.fail("POST", "/api/gl-website-contacts", Failure("drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        gl.post("gl-website-contacts", params=LEAD)
    fake.restart()
    gl.post("gl-website-contacts", params={**LEAD, "mobileno": "9895012346"})
    assert [lead["id"] for lead in fake.leads.values()] == [1, 2]


def test_standalone_prints_its_token_and_staff(tmp_path):
    port = free_port()
    with standalone("tests.fakes.getlead", port, "--state", str(tmp_path / "gl.json")) as banner:
        assert TOKEN in banner and "Ajay" in banner and "Sales" in banner
        reply = post(f"http://127.0.0.1:{port}/api/gl-website-contacts", params=LEAD)
        assert reply.json() == {"status": "success", "message": "Lead Added Successfully."}
    assert '"91-9895012345"' in (tmp_path / "gl.json").read_text()
