"""The LeadSquared backend against a fake built from seed 003 and backends.md: exact requests, replies, failures,
the shared rate budget, opportunities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.loopback import Failure, ManualClock
from bot.stores.memory import MemoryStore
from services.audit import Actor, Audit
from services.backends.base import BackendContext
from services.backends.leadsquared import LeadSquaredBackend, LeadSquaredOptions
from services.backends.local import LocalBackend
from services.errors import Duplicate, Invalid, LeadGone, NotFound, Rejected, Unreachable, Unsupported
from services.leads import LeadService
from services.models import FollowUp, LeadQuery, NewLead, Note, StaffLink, StatusChange
from services.outbox import Outbox
from services.people import People
from services.routing import Backends
from tests.fakes.leadsquared import (
    ACCESS_KEY,
    ANA_ID,
    BOB_ID,
    RAJESH_ID,
    SAMPLE_LEAD,
    SECRET_KEY,
    FakeLeadSquared,
)

ANA, BOB = "ana.silva@example.com", "bob.kumar@example.com"
LM = "/v2/LeadManagement.svc"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def fake(clock):
    server = FakeLeadSquared(clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def store():
    made = MemoryStore()
    made.links.put(StaffLink(slack_user="UANA", backend="leadsquared", staff_id=ANA), by="UANA", at=NOW)
    made.links.put(StaffLink(slack_user="UBOB", backend="leadsquared", staff_id=BOB_ID), by="UANA", at=NOW)
    return made


def make(fake, store, clock, **options) -> LeadSquaredBackend:
    """The backend on the fake's clock: waiting for the rate budget moves that clock on, never a real sleep."""
    options.setdefault("timeout", 0.5)
    settings = LeadSquaredOptions(
        url=fake.url, access_key=SecretStr(ACCESS_KEY), secret_key=SecretStr(SECRET_KEY), connect_timeout=1, **options
    )
    return LeadSquaredBackend(settings, BackendContext(store=store, clock=fake.now, sleep=clock.advance))


@pytest.fixture
def lsq(fake, store, clock) -> LeadSquaredBackend:
    backend = make(fake, store, clock)
    yield backend
    backend.close()


def new(**fields) -> NewLead:
    return NewLead(**{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+919895012345", **fields})


def sent(fake, method: str, path: str):
    return fake.requests(method, path)


# -- keys, requests, replies -----------------------------------------------------------------------


def test_create_sends_the_documented_attribute_list_then_the_note_and_the_task(lsq, fake):
    due = fake.now().replace(microsecond=0) + timedelta(days=1)
    lead = lsq.create(new(note="met at the expo", lead_for="Acme", next_follow_up=due, receipt="1a2b3c4d"), by=ANA)
    (create,) = sent(fake, "POST", f"{LM}/Lead.Create")
    assert create.body == [
        {"Attribute": "FirstName", "Value": "Ada"},
        {"Attribute": "LastName", "Value": "Lovelace"},
        {"Attribute": "EmailAddress", "Value": "ada@example.com"},
        {"Attribute": "Phone", "Value": "+91-9895012345"},
        {"Attribute": "Company", "Value": "Acme"},
        {"Attribute": "ProspectStage", "Value": "Prospect"},
        {"Attribute": "OwnerId", "Value": ANA_ID},
    ]
    assert create.headers["x-LSQ-AccessKey"] == ACCESS_KEY and create.headers["x-LSQ-SecretKey"] == SECRET_KEY
    assert create.headers["Content-Type"] == "application/json" and create.query == {}
    assert fake.keys_in_url == []  # never in a URL
    (note,) = sent(fake, "POST", f"{LM}/CreateNote")
    assert note.body == {"RelatedProspectId": lead.id, "Note": "met at the expo (lb:1a2b3c4d)"}
    (task,) = sent(fake, "POST", "/v2/Task.svc/Create")
    assert task.body == {
        "Name": "Follow up with Ada Lovelace",
        "Description": f"Next follow-up, scheduled through Leadbot by {ANA} (lb:1a2b3c4d)",
        "RelatedEntity": 1,
        "RelatedEntityId": lead.id,
        "DueDate": due.strftime("%Y-%m-%d %H:%M:%S"),
        "OwnerId": ANA_ID,
        "TaskType": {"Name": "Follow Up"},
    }
    assert (lead.ref, lead.status, lead.owner, lead.next_follow_up) == (f"leadsquared:{lead.id}", "Prospect", ANA, due)
    assert [a.text for a in lead.history] == ["met at the expo"]  # the card needs no read


def test_get_reads_the_lead_and_its_tasks_and_maps_owners_back_to_their_links(lsq, fake):
    mine = lsq.create(new(), by=ANA)
    theirs = lsq.create(new(email="b@example.com", phone=None, owner=BOB_ID), by=ANA)
    fake.received.clear()
    lead = lsq.get(mine.id)
    assert [(r.method, r.path, r.query) for r in fake.received] == [
        ("GET", f"{LM}/Leads.GetById", {"id": mine.id}),
        ("GET", f"{LM}/RetrieveTaskByLeadId", {"leadId": mine.id}),
    ]
    assert (lead.name, lead.email, lead.phone, lead.owner) == ("Ada Lovelace", "ada@example.com", "+919895012345", ANA)
    assert lsq.get(theirs.id).owner == BOB_ID  # Bob is linked by his ID, so his ID it is
    assert lsq.get(SAMPLE_LEAD).owner == "rohan@example.com"  # not linked: the user's email


def test_an_unknown_lead_is_gone_and_a_malformed_id_is_not_a_reference(lsq, fake):
    with pytest.raises(LeadGone, match="no lead `leadsquared:00000000-0000-0000-0000-000000000000`"):
        lsq.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound, match="named by their lead ID"):
        lsq.get("42")
    with pytest.raises(LeadGone):
        lsq.add_note("00000000-0000-0000-0000-000000000000", Note(text="hi", by=ANA, at=NOW))


def test_staff_ids_are_emails_or_ids_resolved_once(lsq, fake):
    lsq.create(new(), by=ANA)
    lsq.create(new(email="two@example.com", phone=None, owner=RAJESH_ID), by=ANA)
    assert len(sent(fake, "GET", "/v2/UserManagement.svc/Users.Get")) == 1
    with pytest.raises(Invalid, match="`nobody@example.com` is not an active LeadSquared user") as caught:
        lsq.create(new(email="three@example.com", phone=None, owner="nobody@example.com"), by=ANA)
    assert caught.value.field == "owner" and sent(fake, "POST", f"{LM}/Lead.Create")[2:] == []


def test_assign_and_stage_changes_are_lead_updates(lsq, fake):
    lead = lsq.create(new(), by=ANA)
    assert lsq.assign(lead.id, BOB_ID, by=ANA).owner == BOB_ID
    assert lsq.change_status(lead.id, StatusChange(status="opportunity", by=ANA, at=NOW)).status == "Opportunity"
    updates = sent(fake, "POST", f"{LM}/Lead.Update")
    assert [(u.query, u.body) for u in updates] == [
        ({"leadId": lead.id}, [{"Attribute": "OwnerId", "Value": BOB_ID}]),
        ({"leadId": lead.id}, [{"Attribute": "ProspectStage", "Value": "Opportunity"}]),
    ]
    got = lsq.get(lead.id)
    assert (got.owner, got.status) == (BOB_ID, "Opportunity")  # as Bob is linked


def test_a_stage_change_with_a_reason_keeps_the_reason_as_a_note(lsq, fake):
    lead = lsq.create(new(), by=ANA)
    lsq.change_status(lead.id, StatusChange(status="Customer", reason="signed", by=ANA, at=NOW, receipt="0000aaaa"))
    (note,) = sent(fake, "POST", f"{LM}/CreateNote")
    assert note.body == {"RelatedProspectId": lead.id, "Note": "Stage → Customer: signed (lb:0000aaaa)"}


def test_stages_come_from_the_account_and_which_are_closed_is_a_setting(fake, store, clock):
    lsq = make(fake, store, clock, closed_stages=["Customer", "Qualified"])
    assert [(s.value, s.open) for s in lsq.statuses()] == [
        ("Prospect", True),
        ("Opportunity", True),
        ("Customer", False),
        ("Qualified", False),
    ]
    lsq.statuses()
    (meta,) = sent(fake, "GET", f"{LM}/LeadsMetaData.Get")
    assert meta.query == {"schemaName": "ProspectStage"}  # once: kept five minutes


def test_search_asks_by_owner_or_stage_and_filters_what_it_cannot(lsq, fake, clock):
    due = fake.now().replace(microsecond=0) - timedelta(hours=1)
    mine = lsq.create(new(next_follow_up=due), by=ANA)
    theirs = lsq.create(new(email="b@example.com", phone=None, owner=BOB), by=ANA)
    fake.received.clear()
    assert [lead.id for lead in lsq.search(LeadQuery(owner=BOB)).leads] == [theirs.id]
    (asked,) = sent(fake, "POST", f"{LM}/Leads.Get")
    assert asked.body["Parameter"] == {"LookupName": "OwnerId", "LookupValue": BOB_ID, "SqlOperator": "="}
    assert asked.body["Sorting"] == {"ColumnName": "ModifiedOn", "Direction": "1"}
    assert asked.body["Paging"] == {"PageIndex": 1, "PageSize": 200}
    assert "ProspectStage" in asked.body["Columns"]["Include_CSV"]
    assert [lead.id for lead in lsq.search(LeadQuery(due_before=fake.now())).leads] == [mine.id]
    lsq.change_status(mine.id, StatusChange(status="Customer", by=ANA, at=NOW))
    closed = lsq.search(LeadQuery(status="customer"))
    assert [lead.id for lead in closed.leads] == [mine.id]
    assert sent(fake, "POST", f"{LM}/Leads.Get")[-1].body["Parameter"] == {
        "LookupName": "ProspectStage",
        "LookupValue": "Customer",
        "SqlOperator": "=",
    }


# -- follow-ups as tasks, notes ------------------------------------------------------------------


def test_a_follow_up_completes_the_open_task_schedules_the_next_and_posts_an_activity(lsq, fake):
    first = fake.now().replace(microsecond=0) + timedelta(days=1)
    lead = lsq.create(new(next_follow_up=first, receipt="0000000a"), by=ANA)
    (open_task,) = fake.tasks
    fake.received.clear()
    nxt = first + timedelta(days=2)
    done_at = fake.now().replace(microsecond=0)
    after = lsq.log_follow_up(
        lead.id, FollowUp(done_at=done_at, notes="called", next_follow_up=nxt, by=ANA, receipt="0000000b")
    )
    (completed,) = sent(fake, "POST", "/v2/Task.svc/Update")
    assert completed.body == {
        "UserTaskId": open_task,
        "Description": f"Next follow-up, scheduled through Leadbot by {ANA} (lb:0000000a) (done, lb:0000000b)",
        "StatusCode": 1,
    }
    (scheduled,) = sent(fake, "POST", "/v2/Task.svc/Create")
    assert (scheduled.body["DueDate"], scheduled.body["OwnerId"]) == (nxt.strftime("%Y-%m-%d %H:%M:%S"), ANA_ID)
    (kind,) = sent(fake, "POST", "/v2/ProspectActivity.svc/CreateType")
    assert kind.body == {"ActivityEventName": "Leadbot follow-up", "Score": 0, "Direction": 1}
    (posted,) = sent(fake, "POST", "/v2/ProspectActivity.svc/Create")
    assert posted.body == {
        "RelatedProspectId": lead.id,
        "ActivityEvent": 203,
        "ActivityNote": "called (lb:0000000b)",
        "ActivityDateTime": done_at.strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert after.next_follow_up == nxt and lsq.get(lead.id).next_follow_up == nxt
    assert fake.tasks[open_task]["StatusCode"] == 1
    lsq.log_follow_up(lead.id, FollowUp(done_at=done_at + timedelta(minutes=1), by=ANA, receipt="0000000c"))
    assert len(sent(fake, "POST", "/v2/ProspectActivity.svc/CreateType")) == 1  # the type is made once
    assert lsq.get(lead.id).next_follow_up is None
    assert [a.text for a in lsq.activity(lead.id, 5) if a.kind == "follow_up"] == ["follow-up", "follow-up: called"]


def test_an_existing_activity_type_is_used(fake, store, clock):
    lsq = make(fake, store, clock, follow_up_activity="Follow-up Call")
    lead = lsq.create(new(), by=ANA)
    lsq.log_follow_up(lead.id, FollowUp(done_at=NOW, by=ANA))
    assert sent(fake, "POST", "/v2/ProspectActivity.svc/CreateType") == []
    assert sent(fake, "POST", "/v2/ProspectActivity.svc/Create")[0].body["ActivityEvent"] == 201


def test_a_snooze_moves_the_open_task(lsq, fake):
    first = fake.now().replace(microsecond=0) + timedelta(days=1)
    lead = lsq.create(new(next_follow_up=first, receipt="0000000a"), by=ANA)
    later = first + timedelta(days=3)
    assert lsq.reschedule(lead.id, later, by=ANA, receipt="0000000d").next_follow_up == later
    (moved,) = sent(fake, "POST", "/v2/Task.svc/Update")
    assert moved.body["DueDate"] == later.strftime("%Y-%m-%d %H:%M:%S")
    assert moved.body["Description"].endswith("(lb:0000000a) (moved, lb:0000000d)")
    assert lsq.get(lead.id).next_follow_up == later and len(fake.tasks) == 1


def test_notes_carry_their_receipt_and_are_read_back_without_it(lsq, fake):
    lead = lsq.create(new(), by=ANA)
    lsq.add_note(lead.id, Note(text="likes tea", by=ANA, at=NOW, receipt="0000beef"))
    (note,) = sent(fake, "POST", f"{LM}/CreateNote")
    assert note.body == {"RelatedProspectId": lead.id, "Note": "likes tea (lb:0000beef)"}
    (shown,) = lsq.activity(lead.id)
    assert (shown.kind, shown.text, shown.by) == ("note", "likes tea", "leadbot@example.com")
    (read,) = sent(fake, "POST", f"{LM}/RetrieveNote")
    assert read.body["Parameter"] == {"RelatedId": lead.id} and read.body["Paging"] == {"PageIndex": 1, "PageSize": 3}


def test_one_actions_reads_are_shared(lsq, fake, store):
    lead = lsq.create(new(), by=ANA)
    audit = Audit(store.audit)
    backends = Backends({"local": LocalBackend(store.local, lambda: NOW), "leadsquared": lsq}, known=["leadsquared"])
    service = LeadService(backends, People(store.links, store.prefs, backends, audit), Outbox(store.outbox), audit)
    fake.received.clear()
    service.assign(Actor(slack_user="UANA"), f"leadsquared:{lead.id}", "UBOB")
    paths = [r.path.rsplit("/", 1)[-1] for r in fake.received]
    assert paths == ["Leads.GetById", "RetrieveTaskByLeadId", "Lead.Update"]  # the check's read serves the write


# -- errors ------------------------------------------------------------------------------------------


def test_a_duplicate_names_the_existing_lead(lsq, fake):
    first = lsq.create(new(), by=ANA)
    with pytest.raises(Duplicate) as caught:
        lsq.create(new(name="Ada King", phone=None), by=ANA)
    assert caught.value.message == f"a lead with this email or phone exists already: `leadsquared:{first.id}`"
    assert caught.value.existing_ref == f"leadsquared:{first.id}"


def test_status_error_on_http_200_is_a_failure_with_its_message(clock, store):
    with FakeLeadSquared(clock=clock, exception_status=200) as fake:
        lsq = make(fake, store, clock)
        first = lsq.create(new(), by=ANA)
        with pytest.raises(Duplicate, match=first.id):
            lsq.create(new(name="Ada King", email="other@example.com"), by=ANA)
        with pytest.raises(LeadGone):
            lsq.assign("00000000-0000-0000-0000-000000000000", BOB, by=ANA)
        lsq.close()


@pytest.mark.parametrize(
    ("failure", "error", "said"),
    [
        (Failure("status", status=404, body={"Status": "Error", "ExceptionMessage": "x"}), Rejected, "HTTP 404"),
        (
            Failure(
                "status",
                status=400,
                body={"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "Bad body"},
            ),
            Rejected,
            "LeadSquared refused this: Bad body",
        ),
        (
            Failure(
                "status",
                status=500,
                body={"Status": "Error", "ExceptionType": "MXInvalidInputException", "ExceptionMessage": "No"},
            ),
            Rejected,
            "refused this: No",
        ),
        (Failure("status", status=500, body={"Status": "Error", "ExceptionType": "SqlTimeout"}), Unreachable, "500"),
        (Failure("status", status=503), Unreachable, "503"),
        (Failure("malformed"), Unreachable, "could not read"),
    ],
)
def test_http_errors_are_told_plainly(lsq, fake, failure, error, said):
    lead = lsq.create(new(), by=ANA)
    fake.fail("POST", f"{LM}/CreateNote", failure)
    with pytest.raises(error, match=said) as caught:
        lsq.add_note(lead.id, Note(text="hi", by=ANA, at=NOW))
    if error is Unreachable:  # an outage: queued; a 503 surely did not apply, the others may have
        assert caught.value.maybe_applied is (failure.status != 503)


def test_wrong_keys_are_named_without_echoing_them(fake, store, clock):
    settings = LeadSquaredOptions(url=fake.url, access_key=SecretStr("u$wrong"), secret_key=SecretStr("nope"))
    lsq = LeadSquaredBackend(settings, BackendContext(store=store, clock=fake.now, sleep=clock.advance))
    said = lsq.reachable()
    assert said == (
        "LeadSquared refused Leadbot's access key — an admin must check LEADBOT_LEADSQUARED_ACCESS_KEY"
        " and LEADBOT_LEADSQUARED_SECRET_KEY"
    )
    with pytest.raises(Rejected) as caught:
        lsq.get(SAMPLE_LEAD)
    assert "u$wrong" not in caught.value.message and "nope" not in caught.value.message
    lsq.close()


def test_a_wrong_region_names_the_accounts_host(clock, store):
    with FakeLeadSquared(clock=clock, wrong_region=True, region="us11") as fake:
        lsq = make(fake, store, clock)
        expected = (
            "LeadSquared says this account's API host is `api-us11.leadsquared.com`:"
            " set `LEADBOT_LEADSQUARED_URL=https://api-us11.leadsquared.com`"
        )
        assert lsq.reachable() == expected
        with pytest.raises(Rejected) as caught:
            lsq.create(new(), by=ANA)
        assert caught.value.message == expected
        assert sent(fake, "GET", "/v2/Authentication.svc/UserByAccessKey.Get")
        lsq.close()


def test_plain_http_is_refused_at_start_up_but_for_loopback():
    keys = {"access_key": SecretStr("a"), "secret_key": SecretStr("b")}
    with pytest.raises(ValueError, match="https"):
        LeadSquaredOptions(url="http://api-in21.leadsquared.com", **keys)
    assert LeadSquaredOptions(url="https://api-in21.leadsquared.com/v2/", **keys).url == (
        "https://api-in21.leadsquared.com"
    )
    with pytest.raises(ValueError, match="needs both LEADBOT_LEADSQUARED_ACCESS_KEY"):
        LeadSquaredOptions(url="https://api-in21.leadsquared.com", access_key=SecretStr("a"))


def test_a_type_is_refused_not_dropped(lsq, fake):
    with pytest.raises(Unsupported, match="no type"):
        lsq.create(new(type="SKU"), by=ANA)
    assert sent(fake, "POST", f"{LM}/Lead.Create") == []


# -- the rate limit ----------------------------------------------------------------------------------


def test_calls_wait_for_the_shared_budget_and_never_meet_a_429(lsq, fake, clock):
    for n in range(60):
        lsq.add_note(SAMPLE_LEAD, Note(text=f"n{n}", by=ANA, at=NOW))
    assert fake.throttled == 0 and len(fake.notes) == 60
    made = len(fake.received)
    assert lsq.calls == made
    assert clock() == pytest.approx((made - 1) // 25 * 5.25)  # waited out each window (5 s and 5 %), no more


def test_the_budget_is_keyed_by_a_hash_of_the_access_key(lsq, store):
    lsq.statuses()
    (key,) = store.state.rates
    assert key.startswith("leadsquared:") and ACCESS_KEY not in key and ACCESS_KEY[2:12] not in key


def test_a_429_that_comes_anyway_is_sent_again_after_the_window(lsq, fake, clock):
    lead = lsq.create(new(), by=ANA)
    refused = {"Status": "Error", "ExceptionType": "MXAPIRateLimitExceededException", "ExceptionMessage": "25 in 5"}
    fake.fail("POST", f"{LM}/CreateNote", Failure("status", status=429, body=refused, times=2))
    before = clock()
    lsq.add_note(lead.id, Note(text="once", by=ANA, at=NOW))  # no error shown
    assert [n["Note"] for n in fake.notes.values()] == ["once"]
    assert clock() - before == pytest.approx(2 * 5.25)
    fake.fail("POST", f"{LM}/CreateNote", Failure("status", status=429, body=refused, times=9))
    with pytest.raises(Unreachable) as caught:  # still refused after three resends: queued, not lost
        lsq.add_note(lead.id, Note(text="later", by=ANA, at=NOW))
    assert caught.value.rate_limited and not caught.value.maybe_applied


# -- opportunities (seed 003) ------------------------------------------------------------------------


def test_opportunities_are_asked_exactly_as_seed_003_and_paged(lsq, fake):
    page = lsq.opportunities(SAMPLE_LEAD, 1, 5)
    (asked,) = sent(fake, "POST", "/v2/OpportunityManagement.svc/GetOpportunitiesOfLead")
    assert asked.query == {"leadId": SAMPLE_LEAD}
    assert asked.body == {
        "Columns": {"Include_CSV": "mx_Custom_1,mx_Custom_2,mx_Custom_6,Status,Owner"},
        "Paging": {"PageIndex": 1, "PageSize": 5},
        "Sorting": {"ColumnName": "PACreatedOn", "Direction": "1"},
    }
    assert (page.total, len(page.opportunities), page.more) == (12, 5, True)
    first = page.opportunities[0]
    assert (first.id, first.name, first.stage, first.status, first.value) == (
        "4597c076-be5a-4ba2-9b08-ecd21626750f",
        "Manish Garg - Loan",
        "Prospecting",
        "Open",
        "2500000",
    )
    assert (first.owner, first.owner_name) == ("rajesh@example.com", "Rajesh Aggarwal")
    last = lsq.opportunities(SAMPLE_LEAD, 3, 5)
    assert [o.name for o in last.opportunities] == ["Manish Garg - Opportunity 3", "Manish Garg - Opportunity"]
    assert (last.more, last.opportunities[-1].value) == (False, "200,000")


def test_opportunity_columns_and_type_are_settings(fake, store, clock):
    fake.add_opportunity(SAMPLE_LEAD, "ignored", extra={"mx_Custom_3": "Home loan", "mx_Custom_7": "9,000"})
    lsq = make(fake, store, clock, opportunity_name="mx_Custom_3", opportunity_value="mx_Custom_7")
    lsq.options = lsq.options.model_copy(update={"opportunity_type": "12005"})
    page = lsq.opportunities(SAMPLE_LEAD, 1, 50)
    asked = sent(fake, "POST", "/v2/OpportunityManagement.svc/GetOpportunitiesOfLead")[-1]
    assert asked.query == {"leadId": SAMPLE_LEAD, "opportunityType": "12005"}
    assert asked.body["Columns"] == {"Include_CSV": "mx_Custom_3,mx_Custom_2,mx_Custom_7,Status,Owner"}
    assert page.total == 6 and all(o.name == "opportunity" for o in page.opportunities)  # none of 12005 has one


def test_a_lead_without_opportunities_has_an_empty_page(lsq):
    lead = lsq.create(new(), by=ANA)
    page = lsq.opportunities(lead.id)
    assert (page.opportunities, page.total, page.more) == ([], 0, False)


def test_the_service_passes_opportunities_through_and_checks_the_page(lsq, store):
    audit = Audit(store.audit)
    backends = Backends({"local": LocalBackend(store.local, lambda: NOW), "leadsquared": lsq}, known=["leadsquared"])
    service = LeadService(backends, People(store.links, store.prefs, backends, audit), Outbox(store.outbox), audit)
    assert service.opportunities(f"leadsquared:{SAMPLE_LEAD}", page=2, size=5).page == 2
    with pytest.raises(Invalid, match="counted from 1"):
        service.opportunities(f"leadsquared:{SAMPLE_LEAD}", page=0)
    with pytest.raises(Invalid, match="1 to 100"):
        service.opportunities(f"leadsquared:{SAMPLE_LEAD}", size=500)
    with pytest.raises(Unsupported, match="Local store has no opportunities"):
        service.opportunities("local:1")


# -- a write whose reply was lost ----------------------------------------------------------------


def test_a_resent_create_that_meets_its_own_lead_carries_on_without_a_double(lsq, fake):
    due = fake.now().replace(microsecond=0) + timedelta(days=1)
    wanted = new(note="met at the expo", next_follow_up=due, receipt="0c0ffee0")
    fake.fail("POST", "/v2/Task.svc/Create", Failure("status", status=503))
    with pytest.raises(Unreachable):
        lsq.create(wanted, by=ANA)  # the lead and its note were made, the task was not
    args = {"lead": wanted.model_dump(mode="json"), "by": ANA}
    assert lsq.applied("create", args) is None  # not all there: sent again
    again = lsq.create(wanted, by=ANA)
    assert len(fake.leads) == 2 and len(fake.notes) == 1 and len(fake.tasks) == 1
    assert again.next_follow_up == due
    assert lsq.applied("create", args).id == again.id


def test_the_same_lead_made_again_is_a_duplicate_not_a_resend(lsq, fake):
    first = lsq.create(new(receipt="0000aaaa"), by=ANA)
    with pytest.raises(Duplicate, match=first.id):
        lsq.create(new(receipt="0000bbbb"), by=ANA)  # every field the same, but another create's
    again = {"lead": new(receipt="0000bbbb").model_dump(mode="json"), "by": ANA}
    assert lsq.applied("create", again) is None


def test_a_follow_up_cut_short_is_finished_by_its_resend_without_doubling_a_step(lsq, fake):
    first = fake.now().replace(microsecond=0) + timedelta(days=1)
    lead = lsq.create(new(next_follow_up=first, receipt="0000000a"), by=ANA)
    follow_up = FollowUp(
        done_at=NOW, notes="called", next_follow_up=first + timedelta(days=1), by=ANA, receipt="0000f00d"
    )
    fake.fail("POST", "/v2/ProspectActivity.svc/Create", Failure("status", status=503))
    with pytest.raises(Unreachable):
        lsq.log_follow_up(lead.id, follow_up)
    args = {"lead_id": lead.id, "follow_up": follow_up.model_dump(mode="json")}
    assert lsq.applied("log_follow_up", args) is None
    lsq.log_follow_up(lead.id, follow_up)
    assert len(fake.tasks) == 2 and len(sent(fake, "POST", "/v2/Task.svc/Update")) == 1
    assert len(fake.activities) == 1 and lsq.applied("log_follow_up", args) is not None


def test_a_stage_set_before_the_change_was_asked_is_not_taken_for_it(lsq, fake, clock):
    lead = lsq.create(new(), by=ANA)
    lsq.change_status(lead.id, StatusChange(status="Opportunity", by=ANA, at=fake.now()))
    clock.advance(3600)
    later = StatusChange(status="Opportunity", by=ANA, at=fake.now())
    assert lsq.applied("change_status", {"lead_id": lead.id, "change": later.model_dump(mode="json")}) is None


def test_settings_name_what_is_missing_and_keep_keys_out_of_the_file():
    from bot.config import ConfigError, backend_options
    from services.backends.leadsquared import SPEC

    assert backend_options(SPEC, {}, {}) is None  # not configured
    with pytest.raises(ConfigError, match="needs both LEADBOT_LEADSQUARED_ACCESS_KEY"):
        backend_options(SPEC, {"LEADBOT_LEADSQUARED_URL": "https://api-in21.leadsquared.com"}, {})
    env = {
        "LEADBOT_LEADSQUARED_URL": "https://api-in21.leadsquared.com",
        "LEADBOT_LEADSQUARED_ACCESS_KEY": "u$r1",
        "LEADBOT_LEADSQUARED_SECRET_KEY": "s3",
    }
    options = backend_options(SPEC, env, {"closed_stages": ["Customer"], "opportunity_name": "mx_Custom_3"})
    assert (options.closed_stages, options.opportunity_name, options.rate_limit) == (["Customer"], "mx_Custom_3", 25)
    with pytest.raises(ConfigError, match="set it in the environment as LEADBOT_LEADSQUARED_SECRET_KEY"):
        backend_options(SPEC, env, {"secret_key": "in-the-file"})
    with pytest.raises(ConfigError, match="not a column"):
        backend_options(SPEC, env, {"opportunity_value": "6; drop"})
