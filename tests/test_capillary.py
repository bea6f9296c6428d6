"""The Capillary backend against a fake built from seeds 000/001: exact requests, replies read right, failures."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.loopback import Failure, ManualClock
from bot.stores.memory import MemoryStore
from services.backends.base import BackendContext
from services.backends.capillary import CapillaryBackend, CapillaryOptions, basic_auth
from services.errors import Invalid, LeadGone, Rejected, Unreachable
from services.models import FollowUp, LeadQuery, NewLead, Note, StatusChange
from tests.fakes.capillary import CLIENT_KEY, CLIENT_SECRET, PASSWORD, TOKEN, TOKEN_PATH, USERNAME, FakeCapillary

ANA = "ana.s/28812689"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fake():
    server = FakeCapillary(clock=ManualClock()).start()
    yield server
    server.stop()


@pytest.fixture
def store():
    return MemoryStore()


def make(fake, store, *, token=False, read_timeout=0.5, **options) -> CapillaryBackend:
    options.setdefault("till_id", 4242)
    credentials = {"token": SecretStr(TOKEN)} if token else {"username": USERNAME, "password": SecretStr(PASSWORD)}
    settings = CapillaryOptions(url=fake.url, connect_timeout=1, timeout=read_timeout, **credentials, **options)
    # Retries back off without waiting; leads are made an hour before the writes the tests make at NOW.
    context = BackendContext(store=store, sleep=lambda seconds: None, clock=lambda: NOW - timedelta(hours=1))
    return CapillaryBackend(settings, context)


@pytest.fixture
def capillary(fake, store) -> CapillaryBackend:
    return make(fake, store, till_id=4242)


def new(**fields) -> NewLead:
    return NewLead(**{"name": "Tom Sawyer", "email": "tom.sawyer@example.com", "lead_for": "item001", **fields})


def test_basic_auth_is_the_documented_worked_example():
    assert (
        basic_auth("store.server", "server123") == "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"
    )


def test_create_sends_the_documented_body_and_remembers_the_name(capillary, fake):
    nxt = NOW + timedelta(days=1)
    lead = capillary.create(new(next_follow_up=nxt, owner=ANA, receipt="1a2b3c4d"), by=ANA)
    (sent,) = fake.requests("POST", "/v2/leads")
    (first,) = sent.body.pop("followUpDetails")  # the receipt, so a lost reply is found and not made twice
    assert (first["notes"], first["followedUpBy"]) == ("Created through Leadbot (lb:1a2b3c4d)", 28812689)
    assert sent.body == {
        "type": "SKU",
        "leadFor": "item001",
        "idType": "EMAIL",
        "identifier": "tom.sawyer@example.com",
        "status": "OPEN",
        "orgSourceId": -1,
        "owner": "ana.s",
        "createdBy": 28812689,
        "nextFollowUp": nxt.isoformat(timespec="seconds"),
    }
    assert sent.headers["Content-Type"] == "application/json" and sent.headers["Accept"] == "application/json"
    digest = base64.b64decode(sent.headers["Authorization"].removeprefix("Basic ")).decode()
    assert digest.startswith(f"{USERNAME}:") and PASSWORD not in digest
    assert (lead.ref, lead.name, lead.email, lead.status, lead.owner) == (
        "capillary:1",
        "Tom Sawyer",
        "tom.sawyer@example.com",
        "OPEN",
        ANA,
    )
    assert lead.next_follow_up == nxt  # the reply said it in +05:30; the instant is the same


def test_oauth_token_goes_in_its_own_header(fake, store):
    make(fake, store, token=True).create(new(), by=ANA)
    sent = fake.requests("POST", "/v2/leads")[0]
    assert sent.headers["X-CAP-API-OAUTH-TOKEN"] == TOKEN and "Authorization" not in sent.headers


def test_a_phone_only_lead_is_created_by_mobile(capillary, fake):
    capillary.create(new(email=None, phone="+919895012345"), by=ANA)
    body = fake.requests("POST", "/v2/leads")[0].body
    assert (body["idType"], body["identifier"]) == ("MOBILE", "919895012345")


def test_create_needs_what_the_lead_is_for(capillary, fake):
    with pytest.raises(Invalid, match="needs to know what the lead is for") as caught:
        capillary.create(new(lead_for=None), by=ANA)
    assert caught.value.field == "lead_for"
    assert fake.requests("POST") == []


def test_errors_in_the_reply_are_shown_with_their_code(capillary):
    with pytest.raises(Rejected, match=r"Invalid lead owner \(code 92019\)"):
        capillary.create(new(owner="nobody"), by=ANA)


def test_get_finds_the_lead_through_its_customer(capillary, fake):
    capillary.create(new(), by=ANA)
    fake.received.clear()
    lead = capillary.get("1")
    (sent,) = fake.requests("GET", "/v2/leads")
    assert sent.query == {
        "sortBy": "lastUpdatedOn",
        "sortOrder": "DESC",
        "limit": "100",
        "userId": "368754334",
        "offset": "0",
    }
    assert lead.name == "Tom Sawyer"


def test_a_lead_made_elsewhere_is_named_by_product_and_customer(capillary, fake):
    fake.leads[7] = {
        "id": 7,
        "userId": 55,
        "type": "SKU",
        "leadFor": "sofa",
        "status": "ON_HOLD",
        "createdOn": NOW,
        "lastUpdatedOn": NOW,
        "followUpDetails": [],
        "statusLogDetails": [],
        "orgSourceId": -1,
        "extendedFields": {},
        "owner": None,
    }
    lead = capillary.get("7")
    assert (lead.name, lead.owner, lead.email) == ("sofa · customer 55", None, None)


def test_an_unknown_lead_is_gone(capillary):
    with pytest.raises(LeadGone, match="no lead `capillary:99`"):
        capillary.get("99")


def test_search_by_owner_and_status_asks_capillary(capillary, fake):
    capillary.create(new(), by=ANA)
    fake.received.clear()
    page = capillary.search(LeadQuery(owner=ANA, status="open", limit=10))
    (sent,) = fake.requests("GET", "/v2/leads")
    assert sent.query == {
        "sortBy": "lastUpdatedOn",
        "sortOrder": "DESC",
        "owner": "28812689",
        "status": "OPEN",
        "limit": "10",
        "offset": "0",
    }
    assert [lead.ref for lead in page.leads] == ["capillary:1"]


def test_open_and_due_leads_are_filtered_across_pages(capillary, fake):
    for n in range(130):
        if n % 90 == 0:
            fake.clock.advance(61)  # Capillary takes 100 calls a minute: seeding takes two
        due = NOW - timedelta(hours=n) if n % 2 else NOW + timedelta(days=2)
        capillary.create(new(email=f"c{n}@example.com", next_follow_up=due), by=ANA)
    fake.leads[1]["status"] = "WON"
    fake.received.clear()
    page = capillary.search(LeadQuery(due_before=NOW, limit=10))
    assert [r.query["offset"] for r in fake.requests("GET", "/v2/leads")] == ["0", "100"]
    assert len(page.leads) == 10 and page.more is True
    assert all(lead.next_follow_up <= NOW for lead in page.leads)
    assert page.leads == sorted(page.leads, key=lambda lead: lead.next_follow_up)


def test_follow_up_carries_the_till_and_who_followed_up(capillary, fake):
    capillary.create(new(), by=ANA)
    nxt = NOW + timedelta(days=3)
    lead = capillary.log_follow_up("1", FollowUp(done_at=NOW, notes="called", next_follow_up=nxt, by=ANA))
    (sent,) = fake.requests("POST", "/v2/leads/1/followup")
    assert sent.body == {
        "followedUpOn": NOW.isoformat(timespec="seconds"),
        "createdBy": 4242,
        "followedUpBy": 28812689,
        "notes": "called",
        "nextFollowUp": nxt.isoformat(timespec="seconds"),
    }
    assert lead.next_follow_up == nxt
    done, _created = capillary.activity("1")
    assert (done.kind, done.text, done.by) == ("follow_up", "follow-up: called", "28812689")


def test_a_till_id_is_required_and_every_follow_up_is_made_by_it(fake, store):
    with pytest.raises(ValueError, match="till_id is not set: Capillary records every follow-up as made by a till"):
        CapillaryOptions(url=fake.url, token=SecretStr(TOKEN))
    backend = make(fake, store, till_id=77)
    backend.create(new(), by="ana.s")  # a bare username: no entity to say who followed up
    backend.log_follow_up("1", FollowUp(done_at=NOW, by="ana.s"))
    (sent,) = fake.requests("POST", "/v2/leads/1/followup")
    assert sent.body["createdBy"] == 77 and "followedUpBy" not in sent.body


def test_a_note_is_a_follow_up_marked_note_that_keeps_the_schedule(capillary, fake):
    nxt = NOW + timedelta(days=2)
    capillary.create(new(next_follow_up=nxt), by=ANA)
    lead = capillary.add_note("1", Note(text="prefers email", by=ANA, at=NOW))
    sent = fake.requests("POST", "/v2/leads/1/followup")[0].body
    assert sent["notes"] == "Note: prefers email" and datetime.fromisoformat(sent["nextFollowUp"]) == nxt
    assert lead.next_follow_up == nxt
    note, created = capillary.activity("1")
    assert (note.kind, note.text) == ("note", "prefers email")
    assert (created.kind, created.text) == ("log", "created through Leadbot")


def test_assign_puts_the_owner_username(capillary, fake):
    capillary.create(new(), by=ANA)
    lead = capillary.assign("1", "bob.k/28812690", by=ANA)
    assert fake.requests("PUT", "/v2/leads/1")[0].body == {"owner": "bob.k"}
    assert lead.owner == "bob.k/28812690"


def test_status_change_needs_a_known_reason_and_sends_it(capillary, fake):
    capillary.create(new(), by=ANA)
    with pytest.raises(Invalid, match="needs a reason.*1 Item not available in store"):
        capillary.change_status("1", StatusChange(status="WON", by=ANA, at=NOW))
    with pytest.raises(Invalid, match="`9` is not a Capillary reason"):
        capillary.change_status("1", StatusChange(status="WON", reason="9", by=ANA, at=NOW))
    lead = capillary.change_status(
        "1", StatusChange(status="on_hold", reason="2", sub_status="YetToDecide", by=ANA, at=NOW)
    )
    (sent,) = fake.requests("PUT", "/v2/leads/1/status")
    assert sent.body == {"status": "ON_HOLD", "reasonId": 2, "subStatus": "YetToDecide", "createdBy": 28812689}
    assert (lead.status, lead.sub_status) == ("ON_HOLD", "YetToDecide")
    change = capillary.activity("1")[0]
    assert change.text == "status → ON_HOLD · YetToDecide (Best price availabe at another store)"


def test_reasons_and_sub_statuses_are_read_once_and_cached(capillary, fake):
    assert [c.label for c in capillary.reasons()][0] == "Item not available in store"
    assert [c.value for c in capillary.sub_statuses("LOST")] == ["InvalidPhoneNumber"]
    capillary.reasons()
    capillary.sub_statuses("ON_HOLD")
    assert len(fake.requests("GET", "/v2/leads/reasons")) == 1
    assert len(fake.requests("GET", "/v2/leads/substatuses")) == 1


def test_a_closed_lead_refuses_a_status_change_with_capillarys_words(capillary):
    capillary.create(new(status="WON"), by=ANA)
    with pytest.raises(Rejected, match=r"Status change not allowed on closed leads \(code 92024\)"):
        capillary.change_status("1", StatusChange(status="OPEN", reason="1", by=ANA, at=NOW))


def test_warnings_are_logged_and_shown(capillary, fake, caplog):
    fake.warnings = [{"code": 9100, "message": "extended field trial_status is deprecated"}]
    lead = capillary.create(new(), by=ANA)
    assert lead.notices == ["extended field trial_status is deprecated (code 9100)"]
    assert "extended field trial_status is deprecated" in caplog.text


# -- failures -------------------------------------------------------------------------------


def test_reads_are_retried_on_5xx_and_429(capillary, fake):
    capillary.create(new(), by=ANA)
    fake.fail("GET", "/v2/leads", Failure("status", status=503))
    fake.fail("GET", "/v2/leads", Failure("status", status=429, headers={"Retry-After": "2"}))
    waited: list[float] = []
    capillary.api.sleep = waited.append
    fake.received.clear()
    assert capillary.get("1").name == "Tom Sawyer"
    assert len(fake.requests("GET", "/v2/leads")) == 3
    assert waited[1] == 2.0  # Retry-After honoured


def test_reads_give_up_after_three_tries(capillary, fake):
    fake.fail("GET", "/v2/leads", Failure("status", status=500, times=5))
    with pytest.raises(Unreachable, match="Capillary had an error"):
        capillary.search(LeadQuery(status="OPEN"))
    assert len(fake.requests("GET", "/v2/leads")) == 3


def test_writes_are_never_retried_blindly(capillary, fake):
    fake.fail("POST", "/v2/leads", Failure("status", status=500))
    with pytest.raises(Unreachable):
        capillary.create(new(), by=ANA)
    assert len(fake.requests("POST", "/v2/leads")) == 1
    assert fake.leads == {}


def test_a_timeout_is_unreachable(capillary, fake):
    fake.fail("POST", "/v2/leads", Failure("hang"))
    with pytest.raises(Unreachable, match="did not answer in time"):
        capillary.create(new(), by=ANA)


def test_a_garbled_reply_is_unreachable(capillary, fake):
    fake.fail("GET", "/v2/leads/reasons", Failure("malformed", times=3))
    with pytest.raises(Unreachable, match="could not read"):
        capillary.reasons()


def test_wrong_credentials_are_named_without_the_secret(fake, store):
    options = CapillaryOptions(url=fake.url, username=USERNAME, password=SecretStr("wrong-secret"), till_id=1)
    backend = CapillaryBackend(options, BackendContext(store=store))
    with pytest.raises(Rejected) as caught:
        backend.create(new(), by=ANA)
    said = caught.value.message
    assert said == (
        "Leadbot's till credentials for Capillary were refused (HTTP 401); an admin must check"
        " LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD"
    )


# -- OAuth: a client key and secret, tokens on the fake's clock ------------------------------


def oauth(fake, store, secret: str = CLIENT_SECRET) -> CapillaryBackend:
    options = CapillaryOptions(
        url=fake.url, client_key=CLIENT_KEY, client_secret=SecretStr(secret), till_id=4242, timeout=0.5
    )
    return CapillaryBackend(options, BackendContext(store=store, sleep=lambda seconds: None, clock=fake.now))


def tokens_sent(fake) -> list[str]:
    return [r.headers.get("X-CAP-API-OAUTH-TOKEN") for r in fake.received if r.path != TOKEN_PATH]


def test_an_oauth_client_gets_a_token_and_uses_it_until_it_is_nearly_spent(fake, store):
    backend = oauth(fake, store)
    backend.create(new(), by=ANA)
    backend.get("1")
    (asked,) = fake.requests("POST", TOKEN_PATH)
    assert asked.body == {"key": CLIENT_KEY, "secret": CLIENT_SECRET}
    first = tokens_sent(fake)
    assert len(set(first)) == 1 and first[0] in fake.tokens
    fake.clock.advance(fake.token_ttl * 0.7)
    backend.get("1")
    assert len(fake.requests("POST", TOKEN_PATH)) == 1  # still young: the same token
    fake.clock.advance(fake.token_ttl * 0.15)  # past four fifths of its life, before it ends
    before = len(tokens_sent(fake))
    backend.get("1")
    assert len(fake.requests("POST", TOKEN_PATH)) == 2
    assert len(tokens_sent(fake)) == before + 1  # renewed first: the old token was never refused
    assert tokens_sent(fake)[-1] != first[0]


def test_a_refused_oauth_token_is_renewed_once_and_the_call_made_again(fake, store):
    backend = oauth(fake, store)
    backend.create(new(), by=ANA)
    fake.tokens.clear()  # Capillary forgot it (revoked, or the org's TTL is shorter than it said)
    backend.log_follow_up("1", FollowUp(done_at=NOW, notes="called", by=ANA, receipt="00000002"))
    assert len(fake.requests("POST", TOKEN_PATH)) == 2
    assert len(fake.requests("POST", "/v2/leads/1/followup")) == 2  # refused once, then made with the new token
    assert [d["notes"] for d in fake.leads[1]["followUpDetails"]][-1] == "called (lb:00000002)"


def test_an_oauth_token_refused_twice_is_the_admins_to_fix(fake, store):
    backend = oauth(fake, store)
    fake.fail("GET", "/v2/leads", Failure("status", status=401, body={"errors": [{"code": 401}]}, times=2))
    with pytest.raises(Rejected) as caught:
        backend.get("1")
    assert caught.value.message == (
        "Leadbot's OAuth client for Capillary was refused (HTTP 401); an admin must check"
        " LEADBOT_CAPILLARY_CLIENT_KEY and LEADBOT_CAPILLARY_CLIENT_SECRET"
    )
    assert len(fake.requests("GET", "/v2/leads")) == 2  # once more with a new token, not forever


def test_a_wrong_client_secret_is_named_without_the_secret(fake, store):
    with pytest.raises(Rejected) as caught:
        oauth(fake, store, secret="not-the-secret").get("1")
    assert "Leadbot's OAuth client for Capillary was refused (HTTP 401)" in caught.value.message
    assert "not-the-secret" not in caught.value.message and fake.requests("GET") == []


def test_a_static_token_is_sent_as_it_is_and_its_refusal_names_its_setting(fake, store):
    backend = make(fake, store, token=True)
    fake.fail("GET", "/v2/leads", Failure("status", status=401, body={"errors": [{"code": 401}]}))
    with pytest.raises(Rejected) as caught:
        backend.get("1")
    assert caught.value.message == (
        "Leadbot's token for Capillary was refused (HTTP 401); an admin must check LEADBOT_CAPILLARY_TOKEN"
    )
    assert len(fake.requests("GET", "/v2/leads")) == 1 and fake.requests("POST", TOKEN_PATH) == []


def test_applied_sees_a_follow_up_that_landed_while_the_reply_was_lost(capillary, fake):
    capillary.create(new(), by=ANA)
    fake.fail("POST", "/v2/leads/{id}/followup", Failure("hang", apply=True))
    follow_up = FollowUp(done_at=NOW, notes="called", by=ANA, receipt="00000001")
    with pytest.raises(Unreachable):
        capillary.log_follow_up("1", follow_up)
    args = {"lead_id": "1", "follow_up": follow_up.model_dump(mode="json")}
    assert capillary.applied("log_follow_up", args) is not None
    # The same follow-up again (same person, same time, same notes) is not the one that landed.
    other = follow_up.model_copy(update={"receipt": "00000002"}).model_dump(mode="json")
    assert capillary.applied("log_follow_up", {"lead_id": "1", "follow_up": other}) is None


def test_create_for_a_known_customer_with_a_sub_status_and_the_orgs_extended_fields(fake, store):
    backend = make(fake, store, till_id=4242, extended_fields={"trial_status": "Not Done"})
    lead = backend.create(new(email=None, customer="368754334", status="ON_HOLD", sub_status="YetToDecide"), by=ANA)
    body = fake.requests("POST", "/v2/leads")[0].body
    assert body["userId"] == 368754334 and "idType" not in body
    assert (body["status"], body["subStatus"]) == ("ON_HOLD", "YetToDecide")
    assert body["extendedFields"] == {"trial_status": "Not Done"}
    assert lead.status == "ON_HOLD"


def test_a_sub_status_capillary_does_not_have_is_refused_before_sending(capillary, fake):
    with pytest.raises(Invalid, match="`Maybe` is not a sub-status of OPEN in Capillary"):
        capillary.create(new(sub_status="Maybe"), by=ANA)
    assert fake.requests("POST", "/v2/leads") == []
