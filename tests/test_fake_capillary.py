"""The fake Capillary is as strict as seeds 000/001 and backends.md: auth, OAuth expiry, checks, rate limit."""

from __future__ import annotations

import httpx
import pytest

from bot.loopback import Failure, ManualClock
from tests.fakes.capillary import (
    CLIENT_KEY,
    CLIENT_SECRET,
    PASSWORD,
    STAFF,
    TOKEN,
    TOKEN_PATH,
    USERNAME,
    FakeCapillary,
    basic,
)
from tests.fakes.testing import client, free_port, standalone

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
LEAD = {"leadFor": "item001", "idType": "EMAIL", "identifier": "tom@example.com", "owner": "bob.k"}
FOLLOW_UP = {"followedUpOn": "2024-05-01T10:00:00+05:30", "createdBy": 4242}


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def fake(clock):
    server = FakeCapillary(clock=clock).start()
    yield server
    server.stop()


def till(fake: FakeCapillary, **headers: str) -> httpx.Client:
    return client(fake.url, headers={**JSON, "Authorization": basic(), **headers}, timeout=2)


def errors(reply: httpx.Response) -> list[tuple[int, str]]:
    return [(e["code"], e["message"]) for e in reply.json()["errors"]]


def test_till_auth_and_the_static_token_are_accepted_and_a_wrong_password_is_refused(fake):
    with till(fake) as http:
        assert http.get("/v2/leads/reasons").status_code == 200
    with client(fake.url, headers={**JSON, "X-CAP-API-OAUTH-TOKEN": TOKEN}) as http:
        assert http.get("/v2/leads/reasons").status_code == 200
    with till(fake, Authorization=basic(USERNAME, PASSWORD + "x")) as http:
        reply = http.get("/v2/leads/reasons")
    assert reply.status_code == 401
    assert reply.json() == {
        "warnings": [],
        "errors": [{"status": False, "code": 401, "message": "Authentication failed"}],
    }


def test_oauth_tokens_are_generated_and_expire_on_the_fakes_clock(fake, clock):
    with client(fake.url, timeout=2) as http:
        reply = http.post(TOKEN_PATH, json={"key": CLIENT_KEY, "secret": CLIENT_SECRET})
        assert reply.status_code == 200
        body = reply.json()
        assert body["errors"] is None and body["data"]["ttlSeconds"] == 300
        token = body["data"]["accessToken"]
        assert token.count(".") == 2 and token.startswith("eyJ")  # looks like a JWT
        headers = {**JSON, "X-CAP-API-OAUTH-TOKEN": token}
        assert http.get("/v2/leads/reasons", headers=headers).status_code == 200
        clock.advance(299)
        assert http.get("/v2/leads/reasons", headers=headers).status_code == 200
        clock.advance(1)
        expired = http.get("/v2/leads/reasons", headers=headers)
        assert expired.status_code == 401 and "expired" in errors(expired)[0][1]
        fresh = http.post(TOKEN_PATH, json={"key": CLIENT_KEY, "secret": CLIENT_SECRET}).json()["data"]["accessToken"]
        assert fresh != token
        assert http.get("/v2/leads/reasons", headers={**JSON, "X-CAP-API-OAUTH-TOKEN": fresh}).status_code == 200
    assert fake.tokens_issued == 2


def test_the_token_call_checks_its_key_secret_and_content_type(fake):
    with client(fake.url, timeout=2) as http:
        wrong = http.post(TOKEN_PATH, json={"key": CLIENT_KEY, "secret": "nope"})
        assert wrong.status_code == 401 and wrong.json()["data"] is None
        assert http.post(TOKEN_PATH, json={"key": CLIENT_KEY}).status_code == 400
        assert http.post(TOKEN_PATH, content=b"key=a&secret=b").status_code == 415
    assert fake.tokens_issued == 0


def test_writes_need_json_and_every_call_accept_json(fake):
    with till(fake) as http:
        assert http.post("/v2/leads", content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
        assert http.get("/v2/leads", headers={"Accept": "*/*"}).status_code == 415


def test_a_new_lead_echoes_its_owner_username_and_is_found_by_username_or_entity_id(fake):
    with till(fake) as http:
        reply = http.post("/v2/leads", json=LEAD)
        assert reply.status_code == 200
        lead = reply.json()
        assert (lead["id"], lead["owner"], lead["status"], lead["warnings"]) == (1, "bob.k", "OPEN", [])
        assert "errors" not in lead  # as the seed's write replies
        for owner in ("bob.k", str(STAFF["bob.k"])):
            assert [r["id"] for r in http.get("/v2/leads", params={"owner": owner}).json()["data"]] == [1]
        assert http.get("/v2/leads", params={"owner": "ana.s"}).json()["data"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"leadFor": None}, 92010),
        ({"leadFor": ""}, 92010),
        ({"type": "PRODUCT"}, 92011),
        ({"idType": None, "identifier": None}, 92008),
        ({"idType": "PHONE"}, 400),
        ({"identifier": "not-an-email"}, 400),
        ({"idType": "MOBILE", "identifier": "98-95"}, 400),
        ({"status": "CLOSED"}, 92003),
        ({"owner": "nobody"}, 92019),
        ({"subStatus": "Maybe"}, 92015),
        ({"nextFollowUp": "tomorrow"}, 400),
        ({"nextFollowUp": "2024-05-01T10:00:00"}, 400),  # no time zone
        ({"createdBy": "28812689"}, 400),
        ({"userId": 1.5, "idType": None}, 400),
        ({"extendedFields": ["trial_status"]}, 400),
        ({"colour": "red"}, 400),
        ({"statusLogDetails": [{"status": "OPEN", "reasonId": 99}]}, 92014),
    ],
)
def test_a_new_lead_is_checked_as_documented(fake, change, code):
    body = {k: v for k, v in {**LEAD, **change}.items() if v is not None or k == "leadFor"}
    with till(fake) as http:
        reply = http.post("/v2/leads", json=body)
    assert reply.status_code == 400 and errors(reply)[0][0] == code
    assert fake.leads == {}


def test_a_new_lead_keeps_created_on_and_status_logs_as_sent(fake):
    body = {**LEAD, "createdOn": "2018-10-04T13:30:00+05:30", "statusLogDetails": [{"status": "OPEN", "reasonId": 1}]}
    with till(fake) as http:
        lead = http.post("/v2/leads", json=body).json()
    assert lead["createdOn"] == "2018-10-04T13:30:00+05:30"
    assert [(s["status"], s["reason"]) for s in lead["statusLogDetails"]] == [("OPEN", "Item not available in store")]


def test_follow_ups_need_followed_up_on_and_a_till_id_and_keep_notes_as_sent(fake):
    marker = "called [leadbot:7f3a]  twice"
    with till(fake) as http:
        http.post("/v2/leads", json=LEAD)
        assert errors(http.post("/v2/leads/1/followup", json={"createdBy": 4242}))[0][0] == 92016
        assert (
            errors(http.post("/v2/leads/1/followup", json={"followedUpOn": FOLLOW_UP["followedUpOn"]}))[0][0] == 92017
        )
        bad_till = http.post("/v2/leads/1/followup", json={**FOLLOW_UP, "createdBy": "4242"})
        assert bad_till.status_code == 400
        lead = http.post("/v2/leads/1/followup", json={**FOLLOW_UP, "notes": marker}).json()
        assert errors(http.post("/v2/leads/9/followup", json=FOLLOW_UP)) == [(92001, "Lead not found")]
    (row,) = lead["followUpDetails"]
    assert (row["notes"], row["createdBy"], row["followedUpOn"]) == (marker, 4242, "2024-05-01T10:00:00+05:30")
    assert fake.leads[1]["followUpDetails"][0]["notes"] == marker


def test_status_changes_need_a_known_reason_and_not_a_closed_lead(fake):
    with till(fake) as http:
        http.post("/v2/leads", json=LEAD)
        assert errors(http.put("/v2/leads/1/status", json={"status": "WON"}))[0][0] == 92014
        assert http.put("/v2/leads/1/status", json={"status": "WON", "reasonId": 1}).status_code == 200
        refused = http.put("/v2/leads/1/status", json={"status": "OPEN", "reasonId": 1})
    assert errors(refused) == [(92024, "Status change not allowed on closed leads")]


def test_the_rate_limit_is_per_credential_on_the_clock(fake, clock):
    with till(fake) as http, client(fake.url, headers={**JSON, "X-CAP-API-OAUTH-TOKEN": TOKEN}) as other:
        assert all(http.get("/v2/leads/reasons").status_code == 200 for _ in range(100))
        refused = http.get("/v2/leads/reasons")
        assert refused.status_code == 429 and "Retry-After" not in refused.headers
        assert errors(refused) == [(429, "Rate limit exceeded: 100 requests per minute")]
        assert other.get("/v2/leads/reasons").status_code == 200  # another credential has its own quota
        clock.advance(59.9)
        assert http.get("/v2/leads/reasons").status_code == 429
        clock.advance(0.1)
        assert http.get("/v2/leads/reasons").status_code == 200
    assert fake.throttled == 2


def test_the_rate_limit_can_be_set_or_turned_off():
    for fake, allowed in ((FakeCapillary(rate_limit=None), 150), (FakeCapillary(rate_limit=3), 3)):
        with fake, till(fake) as http:
            codes = [http.get("/v2/leads/reasons").status_code for _ in range(150)]
        assert codes.count(200) == allowed


def test_a_201_carries_errors_next_to_the_lead(fake):
    fake.errors = [{"status": False, "code": 92020, "message": "extended field trial_status not saved"}]
    with till(fake) as http:
        reply = http.post("/v2/leads", json=LEAD)
    assert reply.status_code == 201 and reply.json()["id"] == 1 and errors(reply)[0][0] == 92020


def test_ids_are_never_reused_across_a_restart(fake):
    with till(fake) as http:
        http.post("/v2/leads", json=LEAD)
        http.post("/v2/leads/1/followup", json=FOLLOW_UP)
        fake.leads.clear()
        fake.restart()
        lead = http.post("/v2/leads", json=LEAD).json()
        lead = http.post(f"/v2/leads/{lead['id']}/followup", json=FOLLOW_UP).json()
    assert lead["id"] == 2 and lead["followUpDetails"][0]["id"] == 2
    assert lead["userId"] == 368754334  # the same customer, remembered


def test_a_dropped_follow_up_is_applied_and_the_client_told_at_once(fake):
    with till(fake) as http:
        http.post("/v2/leads", json=LEAD)
        fake.fail("POST", "/v2/leads/{id}/followup", Failure("drop"))
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/v2/leads/1/followup", json={**FOLLOW_UP, "notes": "dropped"})
    assert fake.leads[1]["followUpDetails"][0]["notes"] == "dropped"


def test_standalone_prints_its_credentials_and_keeps_state(tmp_path):
    port, state = free_port(), tmp_path / "capillary.json"
    for expected_id in (1, 2):
        with standalone("tests.fakes.capillary", port, "--state", str(state)) as banner:
            assert USERNAME in banner and PASSWORD in banner and CLIENT_KEY in banner and "bob.k/28812690" in banner
            with client(f"http://127.0.0.1:{port}", headers={**JSON, "Authorization": basic()}) as http:
                assert http.post("/v2/leads", json=LEAD).json()["id"] == expected_id
