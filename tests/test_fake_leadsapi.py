"""The fake REST leads API is as strict as seed 002: required fields, formats, its messages, archive, restart."""

from __future__ import annotations

import httpx
import pytest

from bot.loopback import Failure
from tests.fakes.leadsapi import TOKEN, FakeLeadsApi
from tests.fakes.testing import client, free_port, get, post, standalone

LEAD = {
    "firstName": "John",
    "lastName": "Doe",
    "business": [1],
    "photo": "photo.jpg",
    "state": "Active",
    "statusId": 1,
    "source": "Referral",
    "phoneNumber": ["123-456-7890"],
    "email": "john.doe@example.com",
    "description": "Lead description",
    "location": "New York",
    "position": "Manager",
    "company": "Company Name",
}
SHOWN = {
    "id": 1,
    "firstName": "John",
    "lastName": "Doe",
    "email": "john.doe@example.com",
    "phoneNumber": ["123-456-7890"],
    "status": "New",
    "business": [{"id": 1, "name": "Business Name"}],
}


@pytest.fixture
def fake():
    server = FakeLeadsApi().start()
    yield server
    server.stop()


@pytest.fixture
def http(fake):
    with client(fake.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2) as http:
        yield http


def test_a_new_lead_is_answered_in_the_seeds_shape(http):
    reply = http.post("/leads", json={**LEAD, "socialMedia": {"youtube": "youtube.com/lead"}})
    assert (reply.status_code, reply.json()) == (201, SHOWN)
    assert http.get("/leads/1").json() == SHOWN
    assert http.get("/leads").json() == {"count": 1, "leads": [SHOWN]}


@pytest.mark.parametrize("field", list(LEAD))
def test_every_required_field_must_be_there(http, field):
    reply = http.post("/leads", json={k: v for k, v in LEAD.items() if k != field})
    assert reply.status_code == 400
    assert reply.json()["errors"] == [f"{field} should not be empty"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"photo": ""}, "photo should not be empty"),
        ({"location": "  "}, "location should not be empty"),
        ({"firstName": 7}, "firstName must be a string"),
        ({"email": "john.doe@"}, "email must be an email"),
        ({"email": "john doe@example.com"}, "email must be an email"),
        ({"business": []}, "business must be a non-empty array of business ids"),
        ({"business": 1}, "business must be a non-empty array of business ids"),
        ({"business": [99]}, "business 99 not found"),
        ({"phoneNumber": "123-456-7890"}, "phoneNumber must be an array of non-empty strings"),
        ({"phoneNumber": [1234567890]}, "phoneNumber must be an array of non-empty strings"),
        ({"statusId": "1"}, "statusId must be a number"),
        ({"colour": "red"}, "property colour should not exist"),
    ],
)
def test_wrong_values_are_refused(http, fake, change, problem):
    reply = http.post("/leads", json={**LEAD, **change})
    assert reply.status_code == 400 and reply.json()["errors"] == [problem]
    assert reply.json()["message"] == f"Invalid lead data: {problem}"
    assert fake.leads == {}


def test_an_unknown_status_and_a_duplicate_email_get_the_seeds_messages(http):
    assert http.post("/leads", json={**LEAD, "statusId": 9}).json() == {"message": "No lead status found"}
    assert http.post("/leads", json=LEAD).status_code == 201
    duplicate = http.post("/leads", json={**LEAD, "email": "John.Doe@Example.com"})
    assert (duplicate.status_code, duplicate.json()) == (400, {"message": "Email already exists"})


def test_lead_ids_are_checked(http):
    assert (http.get("/leads/abc").status_code, http.get("/leads/abc").json()) == (400, {"message": "Invalid lead ID"})
    assert (http.get("/leads/7").status_code, http.get("/leads/7").json()) == (404, {"message": "Lead not found"})
    assert http.post("/leads/comments/7", json={"content": "hi"}).json() == {"message": "Lead not found"}
    assert http.get("/leads/logs-and-comments/x").json() == {"message": "Invalid lead ID"}


def test_comments_are_kept_and_read_back_with_the_logs(http):
    http.post("/leads", json=LEAD)
    comment = http.post("/leads/comments/1", json={"content": "marker-42 prefers email"})
    assert comment.status_code == 201 and comment.json()["content"] == "marker-42 prefers email"
    assert http.post("/leads/comments/1", json={"content": ["x"]}).status_code == 400
    history = http.get("/leads/logs-and-comments/1").json()
    assert (history["logsCount"], history["commentsCount"]) == (1, 1)
    assert [e.get("content") for e in history["logsAndComments"]] == [None, "marker-42 prefers email"]


def test_change_status_checks_the_status_then_the_leads(http):
    http.post("/leads", json=LEAD)
    assert http.put("/leads/change-status", json={"ids": [1], "statusId": 9}).json() == {"message": "Invalid status ID"}
    assert http.put("/leads/change-status", json={"ids": [1, 5], "statusId": 2}).json() == {"message": "Lead not found"}
    reply = http.put("/leads/change-status", json={"ids": [1], "statusId": 2})
    assert reply.json() == [{"id": 1, "status": "Contacted"}]
    assert http.get("/leads/statuses").json()["statuses"][1]["name"] == "Contacted"


def test_archived_leads_leave_the_list_but_are_still_shown_by_id(http, fake):
    http.post("/leads", json=LEAD)
    assert http.patch("/leads/archive", json={"ids": [1, 2]}).json() == {"message": "One or more leads not found"}
    assert http.patch("/leads/archive", json={"ids": [1]}).json()["message"] == "Leads archived successfully"
    assert fake.archived == {1}
    assert http.get("/leads").json() == {"count": 0, "leads": []} and http.get("/leads/search").json() == []
    assert http.get("/leads/1").json() == SHOWN  # the seed's lead shape has no archived flag
    assert http.patch("/leads/restore", json={"ids": [1]}).json()["message"] == "Leads restored successfully"
    assert fake.archived == set()


def test_an_update_needs_every_field_but_email_and_checks_what_is_not_null(http):
    http.post("/leads", json=LEAD)
    partial = http.put("/leads/1", json={"firstName": "Jo"})
    assert partial.status_code == 400 and partial.json()["message"].startswith("Invalid lead data")
    nulls = {k: None for k in LEAD if k not in ("email", "business")}
    assert http.put("/leads/1", json={**nulls, "business": [1], "firstName": ""}).status_code == 400
    reply = http.put("/leads/1", json={**nulls, "business": [1, 2], "firstName": "Jo"})
    assert reply.status_code == 200 and reply.json()["firstName"] == "Jo" and len(reply.json()["business"]) == 2


def test_a_missing_or_wrong_token_is_access_denied(fake):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        reply = get(f"{fake.url}/leads", headers=headers)
        assert (reply.status_code, reply.json()) == (403, {"message": "Access denied"})


def test_ids_are_never_reused_across_a_restart(http, fake):
    http.post("/leads", json=LEAD)
    http.post("/leads/comments/1", json={"content": "one"})
    fake.restart()
    assert http.get("/leads/1").json() == SHOWN
    assert http.post("/leads", json={**LEAD, "email": "jane@example.com"}).json()["id"] == 2
    assert http.post("/leads/comments/2", json={"content": "two"}).json()["id"] == 4  # after CreateLead 1, 3


def test_a_late_create_lands_after_the_client_gave_up(http, fake):
    fake.fail("POST", "/leads", Failure("late"))
    with pytest.raises(httpx.ReadTimeout):
        http.post("/leads", json=LEAD, timeout=0.2)
    assert http.get("/leads").json()["count"] == 0  # the client's check finds nothing yet
    (answer,) = fake.apply_parked()
    assert answer.status == 201 and http.get("/leads").json()["count"] == 1


def test_standalone_prints_its_token_and_keeps_state(tmp_path):
    port, state = free_port(), tmp_path / "leadsapi.json"
    for n in (1, 2):
        with standalone("tests.fakes.leadsapi", port, "--state", str(state)) as banner:
            assert TOKEN in banner and "1 Business Name" in banner
            headers = {"Authorization": f"Bearer {TOKEN}"}
            reply = post(f"http://127.0.0.1:{port}/leads", json={**LEAD, "email": f"j{n}@example.com"}, headers=headers)
            assert reply.json()["id"] == n
