"""The REST leads API backend against a fake built from seed 002: exact requests, replies read right, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.loopback import Failure
from bot.stores.memory import MemoryStore
from services.backends.base import BackendContext
from services.backends.leadsapi import LeadsApiBackend, LeadsApiOptions
from services.errors import Duplicate, Invalid, LeadGone, Rejected, Unreachable
from services.models import FollowUp, LeadQuery, NewLead, Note, StatusChange
from tests.fakes.leadsapi import TOKEN, FakeLeadsApi

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fake():
    server = FakeLeadsApi().start()
    yield server
    server.stop()


@pytest.fixture
def store():
    return MemoryStore()


DEFAULTS = {
    "photo": "https://example.com/nobody.png",
    "location": "Unknown",
    "position": "Unknown",
    "description": "From Slack",
    "company": "Unknown",
}


def make(fake, store, **options) -> LeadsApiBackend:
    options.setdefault("token", SecretStr(TOKEN))
    options.setdefault("business", [1])
    options.setdefault("defaults", DEFAULTS)
    settings = LeadsApiOptions(url=fake.url, connect_timeout=1, timeout=0.5, **options)
    return LeadsApiBackend(settings, BackendContext(store=store, sleep=lambda s: None))


@pytest.fixture
def api(fake, store) -> LeadsApiBackend:
    return make(fake, store, business=[1])


def new(**fields) -> NewLead:
    return NewLead(**{"name": "John Doe", "email": "john.doe@example.com", "phone": "+14155550123", **fields})


def test_create_sends_every_documented_field(api, fake):
    lead = api.create(new(source="Referral", note="met at the expo", lead_for="Company Name"), by="ana")
    (sent,) = fake.requests("POST", "/leads")
    assert sent.body == {
        "firstName": "John",
        "lastName": "Doe",
        "business": [1],
        "photo": "https://example.com/nobody.png",
        "state": "Active",
        "statusId": 1,
        "source": "Referral",
        "phoneNumber": ["+14155550123"],
        "email": "john.doe@example.com",
        "description": "met at the expo",
        "location": "Unknown",
        "position": "Unknown",
        "company": "Company Name",
    }
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (lead.ref, lead.name, lead.status, lead.owner, lead.phone) == (
        "leadsapi:1",
        "John Doe",
        "New",
        "ana",
        "+14155550123",
    )


def test_a_required_field_nobody_gave_is_refused_by_name_before_sending(fake, store):
    api = make(fake, store, defaults={k: v for k, v in DEFAULTS.items() if k != "company"})
    with pytest.raises(Invalid, match=r"needs a company for every lead \(give for=COMPANY") as caught:
        api.create(new(), by="ana")
    assert caught.value.field == "lead_for" and fake.requests("POST", "/leads") == []
    lead = api.create(new(lead_for="Acme"), by="ana")
    assert fake.requests("POST", "/leads")[0].body["company"] == "Acme" and lead.lead_for == "Acme"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"business": []}, "business"),
        ({"defaults": {"photo": "x.png"}}, "requires location, position on every new lead"),
        ({"defaults": {**DEFAULTS, "colour": "blue"}}, "not fields of a new lead: colour"),
    ],
)
def test_settings_the_api_needs_are_checked_at_start_up(fake, options, expected):
    with pytest.raises(ValueError, match=expected):
        LeadsApiOptions(url=fake.url, token=SecretStr(TOKEN), **{"business": [1], "defaults": DEFAULTS, **options})


def test_the_auth_header_and_scheme_are_configurable(fake, store):
    backend = make(fake, store, auth_header="X-Api-Key", auth_scheme="")
    with pytest.raises(Rejected, match="Leadbot.s token for the REST leads API was refused"):
        backend.statuses()
    assert fake.requests("GET", "/leads/statuses")[0].headers["X-Api-Key"] == TOKEN


def test_a_duplicate_email_names_the_existing_lead(api):
    api.create(new(), by="ana")
    with pytest.raises(Duplicate) as caught:
        api.create(new(name="Johnny Doe"), by="ana")
    assert caught.value.message == "a lead with this email exists already in the REST leads API: `leadsapi:1`"
    assert caught.value.existing_ref == "leadsapi:1"


def test_every_lead_needs_an_email(api, fake):
    with pytest.raises(Invalid, match="needs an email"):
        api.create(new(email=None), by="ana")
    assert fake.requests("POST") == []


def test_statuses_come_with_colours_and_archived(api, fake):
    options = api.statuses()
    assert [(o.value, o.colour, o.open) for o in options] == [
        ("New", "blue", True),
        ("Contacted", "yellow", True),
        ("Won", "green", False),
        ("Lost", "red", False),
        ("archived", "brown", False),
    ]
    api.statuses()
    assert len(fake.requests("GET", "/leads/statuses")) == 1  # cached


def test_change_status_uses_the_bulk_endpoint_with_the_status_id(api, fake):
    api.create(new(), by="ana")
    lead = api.change_status("1", StatusChange(status="contacted", by="ana", at=NOW))
    assert fake.requests("PUT", "/leads/change-status")[0].body == {"ids": [1], "statusId": 2}
    assert lead.status == "Contacted"


def test_archive_and_restore(api, fake):
    api.create(new(), by="ana")
    assert api.change_status("1", StatusChange(status="archived", by="ana", at=NOW)).status == "archived"
    assert fake.requests("PATCH", "/leads/archive")[0].body == {"ids": [1]}
    assert api.search(LeadQuery()).leads == []
    lead = api.change_status("1", StatusChange(status="New", by="ana", at=NOW))
    assert fake.requests("PATCH", "/leads/restore")[0].body == {"ids": [1]}
    assert lead.status == "New" and 1 not in fake.archived


def test_notes_are_comments_read_back_in_the_activity(api, fake):
    api.create(new(), by="ana")
    api.add_note("1", Note(text="prefers email", by="ana", at=NOW))
    assert fake.requests("POST", "/leads/comments/1")[0].body == {"content": "prefers email"}
    shown = api.activity("1")
    assert [(a.kind, a.text, a.by) for a in shown] == [
        ("note", "prefers email", "leadbot@example.com"),
        ("log", "create lead", "leadbot@example.com"),
    ]


def test_follow_ups_and_owners_are_kept_by_leadbot_and_commented(api, fake):
    api.create(new(), by="ana")
    nxt = NOW + timedelta(days=1)
    lead = api.log_follow_up("1", FollowUp(done_at=NOW, notes="called", next_follow_up=nxt, by="ana"))
    assert lead.next_follow_up == nxt and api.get("1").next_follow_up == nxt
    assert (
        fake.history[1][-1]["content"].startswith("Follow-up by ana at ") and "called" in fake.history[1][-1]["content"]
    )
    assert api.assign("1", "bob", by="ana").owner == "bob"
    assert fake.history[1][-1]["content"] == "Assigned to bob by ana (via Leadbot)"
    assert [lead.ref for lead in api.search(LeadQuery(owner="bob")).leads] == ["leadsapi:1"]
    assert api.search(LeadQuery(owner="ana")).leads == []


def test_search_filters_status_and_due_and_pages(api):
    for n in range(12):
        api.create(new(email=f"p{n}@example.com", next_follow_up=NOW - timedelta(hours=n) if n < 5 else None), by="ana")
    api.change_status("1", StatusChange(status="Won", by="ana", at=NOW))
    assert api.search(LeadQuery(limit=10)).total == 11  # Won is closed
    due = api.search(LeadQuery(due_before=NOW, limit=10)).leads
    assert [lead.id for lead in due] == ["5", "4", "3", "2"]  # most overdue first
    assert [lead.id for lead in api.search(LeadQuery(status="won")).leads] == ["1"]


class CountingRecords:
    """The backend's record of leads (``RemoteLeads``), counting the reads."""

    def __init__(self, records) -> None:
        self.records, self.reads = records, []

    def __getattr__(self, name):
        if name.startswith("recall"):
            self.reads.append(name)
        return getattr(self.records, name)


def test_owners_come_from_leadbots_record_read_once_per_search(api, fake):
    mine = api.create(new(email="a@example.com"), by="ana")
    theirs = api.create(new(email="b@example.com", owner="bo"), by="ana")
    outside = make(fake, MemoryStore()).create(new(email="c@example.com"), by="cy")  # Leadbot has no record of it
    api.remote = counting = CountingRecords(api.remote)
    assert [lead.id for lead in api.search(LeadQuery(owner="ana")).leads] == [mine.id]
    assert [lead.id for lead in api.search(LeadQuery(owner="bo")).leads] == [theirs.id]
    assert [lead.id for lead in api.search(LeadQuery(unassigned=True)).leads] == [outside.id]
    assert {lead.id for lead in api.search(LeadQuery(limit=10)).leads} == {mine.id, theirs.id, outside.id}
    assert counting.reads == ["recall_all"] * 4  # not one read per lead listed


def test_an_unknown_lead_is_gone(api):
    with pytest.raises(LeadGone, match="no lead `leadsapi:42`"):
        api.get("42")


def test_reads_retry_on_429_honouring_retry_after(api, fake):
    fake.fail("GET", "/leads/statuses", Failure("status", status=429, headers={"Retry-After": "3"}))
    waited = []
    api.api.sleep = waited.append
    assert api.statuses()[0].value == "New"
    assert waited == [3.0]


def test_writes_are_sent_once(api, fake):
    api.create(new(), by="ana")
    fake.fail("POST", "/leads/comments/{id}", Failure("status", status=502))
    with pytest.raises(Unreachable):
        api.add_note("1", Note(text="hi", by="ana", at=NOW))
    assert len(fake.requests("POST", "/leads/comments/1")) == 1


def test_applied_finds_a_comment_or_a_lead_that_landed(api, fake):
    fake.fail("POST", "/leads", Failure("hang", apply=True))
    with pytest.raises(Unreachable, match="did not answer in time"):
        api.create(new(), by="ana")
    assert api.applied("create", {"lead": new().model_dump(mode="json"), "by": "ana"}).ref == "leadsapi:1"
    fake.fail("POST", "/leads/comments/{id}", Failure("hang", apply=True))
    note = Note(text="landed late", by="ana", at=NOW, receipt="0000000a")
    with pytest.raises(Unreachable):
        api.add_note("1", note)
    assert api.applied("add_note", {"lead_id": "1", "note": note.model_dump(mode="json")}) is not None
    # The same text again is a second note, not the first one landing: only its receipt would prove it.
    again = note.model_copy(update={"receipt": "0000000b"}).model_dump(mode="json")
    assert api.applied("add_note", {"lead_id": "1", "note": again}) is None


def test_malformed_replies_are_unreachable(api, fake):
    fake.fail("GET", "/leads/{id}", Failure("malformed", times=3))
    with pytest.raises(Unreachable, match="could not read"):
        api.get("1")
