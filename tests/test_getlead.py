"""The Getlead backend against a fake built from seed 004: numbers, exact requests, replies on HTTP 200, the
record Leadbot keeps of a write-only CRM, writes that may have landed, and a token that never leaks."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from bot.loopback import Failure
from bot.retrier import OutboxRunner
from bot.stores.memory import MemoryStore
from bot.stores.sqlite import SqliteStore
from services.audit import Actor, Audit
from services.backends.base import BackendContext
from services.backends.getlead import GetleadBackend, GetleadOptions, parse_mobile
from services.backends.local import LocalBackend
from services.errors import (
    Duplicate,
    Invalid,
    LeadError,
    LeadGone,
    NoChange,
    NotFound,
    Queued,
    Rejected,
    Unreachable,
    Unsupported,
)
from services.events import DealAdded, DepartmentSet, Events, WriteSettled
from services.leads import LeadService
from services.models import Deal, FollowUp, LeadQuery, NewLead, Note, StatusChange
from services.outbox import Outbox
from services.people import People
from services.routing import Backends
from tests.conftest import Clock
from tests.fakes.getlead import TOKEN, FakeGetlead

NOW = datetime.now(UTC).replace(microsecond=0)
REF = "getlead:+919895012345"


@pytest.fixture
def fake():
    server = FakeGetlead().start()
    yield server
    server.stop()


def make(fake, store, *, token: str = TOKEN, **options) -> GetleadBackend:
    options.setdefault("timeout", 0.5)
    settings = GetleadOptions(url=f"{fake.url}/api", token=SecretStr(token), connect_timeout=1, **options)
    return GetleadBackend(settings, BackendContext(store=store, sleep=lambda s: None, clock=lambda: NOW))


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def gl(fake, store) -> GetleadBackend:
    backend = make(fake, store)
    yield backend
    backend.close()


def new(**fields) -> NewLead:
    return NewLead(**{"name": "Tom Sawyer", "phone": "+919895012345", "email": "tom@example.com", **fields})


def posted(fake, endpoint: str):
    return fake.requests("POST", f"/api/{endpoint}")


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "country", "e164"),
    [
        ("098950 12345", "IN", "+919895012345"),
        ("+91 98950-12345", "IN", "+919895012345"),
        ("(0)98950 12345", "IN", "+919895012345"),
        ("9895012345", "IN", "+919895012345"),
        ("0091 98950 12345", "IN", "+919895012345"),
        ("+919895012345", "US", "+919895012345"),  # a + wins over the default country
        ("+44 7911 123456", "IN", "+447911123456"),
        ("07911 123456", "GB", "+447911123456"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("+65 8123 4567", "IN", "+6581234567"),  # 8 digits: the fewest Getlead takes
        ("+49 1512 3456789", "IN", "+4915123456789"),
    ],
)
def test_numbers_are_read_the_way_people_type_them(typed, country, e164):
    assert parse_mobile(typed, country).e164 == e164


@pytest.mark.parametrize(
    ("typed", "country", "said"),
    [
        ("", "IN", "give one"),
        ("call me", "IN", "`call me` is not a phone number"),
        ("12345", "IN", "`12345` is not a valid phone number (one without + is read as IN's)"),
        ("+91 98950 1234", "IN", "is not a valid phone number"),
        ("+682 50123", "IN", "8 to 14 digits without the country code; `+682 50123` has 5"),  # valid, too short
        ("+354 611 1234", "IN", "has 7"),
    ],
)
def test_numbers_that_are_not_getlead_mobiles_are_refused_clearly(typed, country, said):
    with pytest.raises(Invalid, match=said.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")) as caught:
        parse_mobile(typed, country)
    assert caught.value.field == "phone"


def test_the_default_country_may_be_given_as_a_calling_code(fake):
    assert GetleadOptions(token=SecretStr("t"), default_country="+44").default_country == "GB"
    assert GetleadOptions(token=SecretStr("t")).url == "https://app.getlead.co.uk/api"
    with pytest.raises(ValueError, match="country code"):
        GetleadOptions(token=SecretStr("t"), default_country="Narnia")


def test_a_bad_number_is_refused_before_anything_is_sent(gl, fake):
    with pytest.raises(Invalid, match="has 5"):
        gl.create(new(phone="+682 50123"), by="Ajay")
    with pytest.raises(Invalid, match="mobile number"):
        gl.create(new(phone=None), by="Ajay")
    assert fake.received == []


def test_references_to_getlead_leads_are_found_in_text(gl, store):
    backends = Backends({"local": LocalBackend(store.local, lambda: NOW), "getlead": gl}, known=["getlead"])
    assert backends.references_in(f"called {REF}, see local:7.") == [REF, "local:7"]
    assert backends.resolve(REF) == (gl, "+919895012345")


# -- exact requests --------------------------------------------------------------------------------


def test_create_sends_the_seeds_parameters_in_a_form_body(gl, fake):
    due = NOW + timedelta(days=1)
    lead = gl.create(new(lead_for="Acme", type="demo", note="met at the expo", next_follow_up=due), by="Ajay")
    (create,) = posted(fake, "gl-website-contacts")
    assert create.query == {}  # the token in no URL
    assert create.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert create.body == {
        "token": TOKEN,
        "countrycode": "91",
        "mobileno": "9895012345",
        "source": "Slack",
        "name": "Tom Sawyer",
        "email": "tom@example.com",
        "staff_name": "Ajay",
        "company_name": "Acme",
        "purpose": "demo",
        "status": "New",
        "feedback": "met at the expo",
    }
    (task,) = posted(fake, "gl-task-creation-api")
    scheduled = due.astimezone(gl.tz).strftime("%Y-%m-%d %H:%M")
    assert task.body == {
        "token": TOKEN,
        "name": "Follow up with Tom Sawyer",
        "description": "Next follow-up, scheduled through Leadbot by Ajay",
        "countrycode": "91",
        "mobile_no": "9895012345",
        "task_category_id": "2",
        "scheduled_date": scheduled,
        "assigned_to": "Ajay",
    }
    assert fake.lead("91", "9895012345")["company_name"] == "Acme"
    assert (lead.ref, lead.status, lead.owner, lead.next_follow_up, lead.as_recorded) == (REF, "New", "Ajay", due, True)


def test_notes_statuses_deals_and_departments_send_what_the_seed_asks(gl, fake):
    gl.create(new(), by="Ajay")
    gl.add_note(REF, Note(text="likes tea", by="Ajay", at=NOW))
    gl.change_status(REF, StatusChange(status="contacted", by="Ajay", at=NOW))
    gl.add_deal(
        REF, Deal(amount=Decimal(25000), name="Annual", end=date(2027, 1, 31), note="signed", by="Ajay", at=NOW)
    )
    gl.set_department(REF, "Sales", by="Ajay")
    who = {"token": TOKEN, "countrycode": "91", "mobile_no": "9895012345"}
    assert posted(fake, "gl-note-creation-api")[0].body == {**who, "note": "likes tea"}
    assert posted(fake, "gl-status-change-api")[0].body == {**who, "status": "Contacted"}
    assert posted(fake, "gl-deal-creation-api")[0].body == {
        "token": TOKEN,
        "mobile": "9895012345",
        "countrycode": "91",
        "status": "Open",
        "deal name": "Annual",
        "deal_amount": "25000",
        "start_date": NOW.astimezone(gl.tz).date().isoformat(),
        "end_date": "2027-01-31",
        "staff_name": "Ajay",
        "deal_note": "signed",
    }
    (department,) = fake.requests("POST", f"/api/gl-department-vise-agent-assign/{TOKEN}")
    assert department.body == {"token": TOKEN, "SourceNumber": "919895012345", "department": "Sales"}
    held = fake.lead("91", "9895012345")
    assert (held["status"], held["notes"][0]["note"], held["deals"][0]["deal_amount"]) == (
        "Contacted",
        "likes tea",
        25000,
    )
    assert fake.source_numbers == {"919895012345": "Sales"}


def test_a_follow_up_done_is_a_note_and_the_next_one_a_task(gl, fake):
    gl.create(new(owner="Priya"), by="Ajay")
    nxt = NOW + timedelta(days=2)
    lead = gl.log_follow_up(REF, FollowUp(done_at=NOW, notes="called", next_follow_up=nxt, by="Ajay"))
    assert posted(fake, "gl-note-creation-api")[0].body["note"] == "Follow-up done: called"
    assert posted(fake, "gl-task-creation-api")[0].body["assigned_to"] == "Priya"  # the lead's owner
    assert lead.next_follow_up == nxt
    later = gl.reschedule(REF, nxt + timedelta(days=1), by="Ajay")
    assert later.next_follow_up == nxt + timedelta(days=1) and len(posted(fake, "gl-task-creation-api")) == 1
    assert posted(fake, "gl-note-creation-api")[1].body["note"].startswith("Next follow-up moved to ")
    assert gl.log_follow_up(REF, FollowUp(done_at=NOW, by="Ajay")).next_follow_up is None


def test_a_reason_for_a_status_is_kept_as_a_note(gl, fake):
    gl.create(new(), by="Ajay")
    gl.change_status(REF, StatusChange(status="Not Interested", reason="budget", by="Ajay", at=NOW))
    assert posted(fake, "gl-note-creation-api")[0].body["note"] == "Status → Not Interested: budget"


def test_reassigning_sends_the_create_call_again_with_the_recorded_source(gl, fake):
    gl.create(new(source="Expo"), by="Ajay")
    lead = gl.assign(REF, "Rahul", by="Ajay")
    again = posted(fake, "gl-website-contacts")[1]
    assert again.body == {
        "token": TOKEN,
        "countrycode": "91",
        "mobileno": "9895012345",
        "source": "Expo",
        "staff_name": "Rahul",
    }
    held = fake.lead("91", "9895012345")
    assert (held["staff_name"], held["source"], held["name"], held["creates"]) == ("Rahul", "Expo", "Tom Sawyer", 2)
    assert lead.owner == "Rahul"
    with pytest.raises(Unsupported, match="does not know `getlead:\\+919895012399`'s source"):
        gl.assign("+919895012399", "Rahul", by="Ajay")  # it would overwrite a source Leadbot does not know


# -- replies ---------------------------------------------------------------------------------------


def test_fail_and_error_on_http_200_are_failures_showing_getleads_message(gl, fake):
    with pytest.raises(Rejected, match="Getlead refused this: Please check the parameters.") as caught:
        gl.create(new(owner="Nobody"), by="Ajay")  # an agent Getlead does not have
    assert not isinstance(caught.value, Unreachable)
    with pytest.raises(LeadGone, match=r"Getlead has no lead `getlead:\+919895012399`"):
        gl.add_note("098950 12399", Note(text="hi", by="Ajay", at=NOW))


def test_an_error_reply_is_a_failure_too(fake, store):
    gl = make(fake, store, statuses=["New", "Contacted", "Hot"], closed_statuses=[])
    gl.create(new(), by="Ajay")
    with pytest.raises(Rejected, match="Getlead refused this: Please check the parameters."):
        gl.change_status(REF, StatusChange(status="Hot", by="Ajay", at=NOW))  # a status this Getlead lacks
    assert gl.get(REF).status == "New"  # nothing recorded
    gl.close()


def test_a_wrong_token_names_the_setting_and_is_not_echoed(fake, store):
    gl = make(fake, store, token="gl_not-the-token")
    with pytest.raises(Rejected) as caught:
        gl.create(new(), by="Ajay")
    assert caught.value.message == "Getlead refused Leadbot's token — an admin must check LEADBOT_GETLEAD_TOKEN"
    with pytest.raises(Rejected, match="LEADBOT_GETLEAD_TOKEN"):
        gl.set_department(REF, "Sales", by="Ajay")
    gl.close()


def test_reachable_asks_without_the_token(gl, fake):
    assert gl.reachable() is None
    (asked,) = fake.requests("GET")
    assert asked.query == {} and TOKEN not in asked.path and not asked.raw
    fake.stop_listening()
    assert gl.reachable() == "Getlead could not be reached"


# -- what Leadbot records ------------------------------------------------------------------------------


def test_the_record_answers_get_search_and_activity(gl, fake):
    due = NOW - timedelta(hours=1)
    gl.create(new(next_follow_up=due, note="met at the expo"), by="Ajay")
    gl.create(new(name="Huck Finn", phone="+919895012346", email=None, owner="Priya"), by="Ajay")
    gl.set_department(REF, "Support", by="Ajay")
    lead = gl.get("098950 12345")
    assert (lead.id, lead.name, lead.email, lead.department, lead.as_recorded) == (
        "+919895012345",
        "Tom Sawyer",
        "tom@example.com",
        "Support",
        True,
    )
    assert [a.text for a in gl.activity(REF, 10)] == [
        "department → Support",
        "met at the expo",
        "created through Leadbot",
    ]
    assert [x.name for x in gl.search(LeadQuery(owner="Priya")).leads] == ["Huck Finn"]
    assert [x.name for x in gl.search(LeadQuery(due_before=NOW)).leads] == ["Tom Sawyer"]
    gl.change_status("+919895012346", StatusChange(status="Converted", by="Ajay", at=NOW))
    assert [x.name for x in gl.search(LeadQuery()).leads] == ["Tom Sawyer"]  # Converted is closed
    assert [x.name for x in gl.search(LeadQuery(status="converted")).leads] == ["Huck Finn"]


def test_a_number_leadbot_never_wrote_to_is_unknown_and_can_be_written_to(gl, fake):
    fake.leads["91-9895012399"] = {
        "id": 99, "countrycode": "91", "mobileno": "9895012399", "notes": [], "statuses": [], "tasks": [], "deals": [],
    }  # fmt: skip
    lead = gl.get("+919895012399")
    assert (lead.name, lead.status, lead.as_recorded, lead.history) == ("+91 98950 12399", "unknown", True, ())
    assert gl.add_note("+919895012399", Note(text="hello", by="Ajay", at=NOW)).status == "unknown"
    assert [a.text for a in gl.activity("+919895012399")] == ["hello"]
    with pytest.raises(NotFound, match="named by their mobile number"):
        gl.get("not-a-number")


def test_a_number_leadbot_has_a_record_of_is_not_created_again(gl, fake):
    gl.create(new(), by="Ajay")
    with pytest.raises(Duplicate) as caught:
        gl.create(new(name="Thomas Sawyer", phone="098950 12345"), by="Ajay")
    assert caught.value.existing_ref == REF and len(posted(fake, "gl-website-contacts")) == 1


def test_whole_amounts_and_known_departments_are_checked_before_sending(fake, store):
    gl = make(fake, store, departments=["Sales", "Support"])
    gl.create(new(), by="Ajay")
    with pytest.raises(Invalid, match="whole units"):
        gl.add_deal(REF, Deal(amount=Decimal("10.50"), by="Ajay", at=NOW))
    with pytest.raises(Invalid, match="`Accounts` is not a Getlead department here; use one of: Sales, Support"):
        gl.set_department(REF, "Accounts", by="Ajay")
    assert gl.set_department(REF, "sales", by="Ajay").department == "Sales"
    gl.close()


# -- through the LeadService: deals, departments, the outbox ----------------------------------------


def service_for(store, gl, clock) -> tuple[LeadService, list[object]]:
    backends = Backends({"local": LocalBackend(store.local, clock), "getlead": gl}, known=["getlead"])
    audit = Audit(store.audit, clock)
    people = People(store.links, store.prefs, backends, audit, clock=clock)
    events = Events()
    seen: list[object] = []
    events.subscribe(seen.append)
    service = LeadService(backends, people, Outbox(store.outbox), audit, events, clock=clock)
    admin = Actor(slack_user="UADMIN", is_admin=True)
    people.link(admin, "UAJAY", "Ajay", backend="getlead")
    people.link(admin, "UPRIYA", "Priya", backend="getlead")
    return service, seen


AJAY = Actor(slack_user="UAJAY")


def test_deals_and_departments_through_the_service(gl, store):
    service, seen = service_for(store, gl, Clock(NOW))
    service.create(AJAY, new(), backend="getlead")
    lead = service.add_deal(AJAY, REF, "120000", name="Fleet", status="Negotiation", end=date(2027, 3, 1))
    (deal,) = [e for e in seen if isinstance(e, DealAdded)]
    assert (deal.deal.amount, deal.deal.status, deal.lead.ref) == (Decimal(120000), "Negotiation", REF)
    assert any("deal 120,000 “Fleet” · Negotiation" in a.text for a in lead.history)
    service.set_department(AJAY, REF, "Sales")
    (moved,) = [e for e in seen if isinstance(e, DepartmentSet)]
    assert moved.department == "Sales" and moved.lead.department == "Sales"
    with pytest.raises(NoChange, match="already with `Sales`"):
        service.set_department(AJAY, REF, "Sales")
    with pytest.raises(Invalid, match="cannot close before it starts"):
        service.add_deal(AJAY, REF, 5, start=date(2027, 3, 1), end=date(2027, 1, 1))
    with pytest.raises(Unsupported, match="Local store has no deals"):
        service.add_deal(AJAY, "local:1", 5)
    results = [(e.action, e.result) for e in store.audit.entries() if e.action in ("deal", "department")]
    assert results == [
        ("deal", "ok"),
        ("department", "ok"),
        ("department", "refused"),
        ("deal", "refused"),
        ("deal", "refused"),
    ]


@pytest.mark.parametrize("fault", ["503", "429", "refused"])
def test_a_deal_getlead_surely_did_not_take_is_queued_sent_again_and_lands_once(gl, fake, store, fault):
    clock = Clock(NOW)
    service, seen = service_for(store, gl, clock)
    service.create(AJAY, new(), backend="getlead")
    if fault == "refused":
        fake.stop_listening()
    else:
        fake.fail("POST", "/api/gl-deal-creation-api", Failure("status", status=int(fault)))
    with pytest.raises(Queued, match="deal on `getlead:\\+919895012345` is queued"):
        service.add_deal(AJAY, REF, 900)
    fake.start_listening()
    clock.advance(minutes=1)
    assert OutboxRunner(service).run_due() == 1
    assert len(fake.lead("91", "9895012345")["deals"]) == 1
    (settled,) = [e for e in seen if isinstance(e, WriteSettled)]
    assert settled.lead is not None and not settled.uncertain
    assert [e for e in seen if isinstance(e, DealAdded)][-1].settled is not None


@pytest.mark.parametrize("failure", [Failure("drop"), Failure("hang", apply=True), Failure("status", status=500)])
def test_a_write_whose_reply_is_lost_is_never_sent_again_and_ends_as_may_have_landed(gl, fake, store, failure):
    clock = Clock(NOW)
    service, seen = service_for(store, gl, clock)
    service.create(AJAY, new(), backend="getlead")
    fake.fail("POST", "/api/gl-note-creation-api", failure)
    with pytest.raises(Queued):
        service.add_note(AJAY, REF, "did it land?")
    clock.advance(minutes=5)
    OutboxRunner(service).run_due()
    assert len(posted(fake, "gl-note-creation-api")) == 1  # never sent again
    (settled,) = [e for e in seen if isinstance(e, WriteSettled)]
    assert settled.uncertain and settled.lead is None and "may have reached it" in settled.why
    assert service.outbox.pending() == []


# -- the token never leaks ---------------------------------------------------------------------------


def failures() -> list[Failure]:
    return [
        Failure("status", status=503),
        Failure("status", status=500, body={"message": f"Server Error near token={TOKEN}"}),
        Failure("status", status=429),
        Failure("malformed"),
        Failure("hang", hold=2.0),
        Failure("status", status=200, body={"status": "fail", "message": "Please check the parameters."}),
        Failure("status", status=200, body={"status": "error", "message": f"Invalid department for {TOKEN}"}),
    ]


def test_the_token_is_in_no_log_record_no_error_and_no_stored_row(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    store = SqliteStore(tmp_path / "leadbot.db")
    gl = make(fake, store, timeout=0.3)
    clock = Clock(NOW)
    service, _ = service_for(store, gl, clock)
    service.create(AJAY, new(), backend="getlead")
    said: list[str] = []
    made: list[Failure] = []
    for kind in range(len(failures())):
        for endpoint in ("gl-note-creation-api", "gl-department-vise-agent-assign/{token}"):
            made.append(fake.fail("POST", f"/api/{endpoint}", failures()[kind]))
        for write in (lambda: service.add_note(AJAY, REF, "hi"), lambda: service.set_department(AJAY, REF, "Sales")):
            try:
                write()
            except LeadError as exc:
                said.append(str(exc))
    fake.stop_listening()  # refused
    for write in (lambda: service.add_note(AJAY, REF, "hi"), lambda: service.set_department(AJAY, REF, "Support")):
        with pytest.raises(Queued) as caught:
            write()
        said.append(str(caught.value))
    assert [f.fired for f in made] == [1] * len(made)  # every kind hit both endpoints
    clock.advance(hours=1)
    OutboxRunner(service).run_due()  # the retries log too
    records = [r.getMessage() for r in caplog.records]
    assert any("gl-department-vise-agent-assign/***" in line for line in records)  # httpx logged the path, redacted
    assert not [line for line in records if TOKEN in line]
    assert not [line for line in said if TOKEN in line]
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("leadbot.db*"))
    assert b"Sales" in stored and TOKEN.encode() not in stored


def test_getlead_is_configured_by_its_token_alone():
    from bot.config import ConfigError, backend_options
    from services.backends.getlead import SPEC

    assert backend_options(SPEC, {}, {}) is None
    options = backend_options(SPEC, {"LEADBOT_GETLEAD_TOKEN": "gl_x"}, {"default_country": "91", "source": "Web"})
    assert (options.url, options.default_country, options.source) == ("https://app.getlead.co.uk/api", "IN", "Web")
    with pytest.raises(ConfigError, match="without LEADBOT_GETLEAD_TOKEN"):
        backend_options(SPEC, {"LEADBOT_GETLEAD_URL": "https://app.getlead.co.uk/api"}, {})
    with pytest.raises(ConfigError, match="closed_statuses names statuses not in statuses: won"):
        backend_options(SPEC, {"LEADBOT_GETLEAD_TOKEN": "gl_x"}, {"closed_statuses": ["Won"]})
