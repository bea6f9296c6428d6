"""The backend contract: every backend does the same things the same way, each against its fake.

A new backend is added with one entry in ``CASES``: how to build it on its
fake, a lead it accepts, two staff IDs it knows, and a status change it takes.
Every behaviour below then runs against it.

A write-only backend (Getlead: ``capabilities.read`` and ``verifiable`` False)
answers reads from what Leadbot recorded: the same contract holds for what it
wrote, an unrecorded lead is "unknown" rather than gone, and ``applied`` is None
for every write by design (the outbox then never resends one that may have landed).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from bot.stores.memory import MemoryStore
from services.backends.base import Backend, BackendContext
from services.backends.capillary import CapillaryBackend, CapillaryOptions
from services.backends.getlead import GetleadBackend, GetleadOptions
from services.backends.leadsapi import LeadsApiBackend, LeadsApiOptions
from services.backends.leadsquared import LeadSquaredBackend, LeadSquaredOptions
from services.backends.local import LocalBackend
from services.errors import LeadGone, NotFound
from services.models import FollowUp, LeadQuery, NewLead, Note, StaffLink, StatusChange
from tests.fakes import capillary as cap_fake
from tests.fakes import getlead as gl_fake
from tests.fakes import leadsapi as api_fake
from tests.fakes import leadsquared as lsq_fake

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Case:
    backend: Backend
    new: Callable[..., NewLead]
    by: str  # the staff ID writing
    other: str  # another staff ID it knows
    status: StatusChange  # a change to an open status other than the first
    closing: StatusChange  # a change to a closed status
    stop: Callable[[], None] = lambda: None
    unknown_id: str = "999999"  # a well-formed ID of no lead
    extra: dict[str, Any] = field(default_factory=dict)


def local_case() -> Case:
    store = MemoryStore()
    return Case(
        backend=LocalBackend(store.local, lambda: NOW),
        new=lambda **f: NewLead(**{"name": "Ada Lovelace", "email": "ada@example.com", **f}),
        by="ada",
        other="bob",
        status=StatusChange(status="contacted", by="ada", at=NOW),
        closing=StatusChange(status="won", by="ada", at=NOW),
    )


def capillary_case() -> Case:
    fake = cap_fake.FakeCapillary().start()
    store = MemoryStore()
    for user, staff in (("UANA", "ana.s/28812689"), ("UBOB", "bob.k/28812690")):
        store.links.put(StaffLink(slack_user=user, backend="capillary", staff_id=staff), by="UANA", at=NOW)
    options = CapillaryOptions(
        url=fake.url,
        username=cap_fake.USERNAME,
        password=SecretStr(cap_fake.PASSWORD),
        till_id=4242,
        timeout=1,
        connect_timeout=1,
    )
    return Case(
        backend=CapillaryBackend(options, BackendContext(store=store, sleep=lambda s: None)),
        new=lambda **f: NewLead(
            **{"name": "Tom Sawyer", "email": "tom.sawyer@example.com", "lead_for": "item001", **f}
        ),
        by="ana.s/28812689",
        other="bob.k/28812690",
        status=StatusChange(status="ON_HOLD", reason="2", sub_status="YetToDecide", by="ana.s/28812689", at=NOW),
        closing=StatusChange(status="WON", reason="3", by="ana.s/28812689", at=NOW),
        stop=fake.stop,
    )


def leadsapi_case() -> Case:
    fake = api_fake.FakeLeadsApi().start()
    options = LeadsApiOptions(
        url=fake.url,
        token=SecretStr(api_fake.TOKEN),
        business=[1],
        defaults={"photo": "p.png", "location": "-", "position": "-", "description": "-", "company": "-"},
        timeout=1,
        connect_timeout=1,
    )
    return Case(
        backend=LeadsApiBackend(options, BackendContext(store=MemoryStore(), sleep=lambda s: None)),
        new=lambda **f: NewLead(**{"name": "John Doe", "email": "john.doe@example.com", **f}),
        by="ana",
        other="bob",
        status=StatusChange(status="Contacted", by="ana", at=NOW),
        closing=StatusChange(status="Won", by="ana", at=NOW),
        stop=fake.stop,
    )


def leadsquared_case() -> Case:
    fake = lsq_fake.FakeLeadSquared(rate_limit=None).start()
    options = LeadSquaredOptions(
        url=fake.url,
        access_key=SecretStr(lsq_fake.ACCESS_KEY),
        secret_key=SecretStr(lsq_fake.SECRET_KEY),
        rate_limit=1000,  # the pacing has its own tests; here nothing waits
        timeout=1,
        connect_timeout=1,
    )
    ana, bob = "ana.silva@example.com", "bob.kumar@example.com"
    return Case(
        backend=LeadSquaredBackend(options, BackendContext(store=MemoryStore(), sleep=lambda s: None)),
        new=lambda **f: NewLead(**{"name": "Ada Lovelace", "email": "ada@example.com", **f}),
        by=ana,
        other=bob,
        status=StatusChange(status="Opportunity", by=ana, at=NOW),
        closing=StatusChange(status="Customer", by=ana, at=NOW),
        stop=fake.stop,
        unknown_id="00000000-0000-0000-0000-000000000000",
    )


def getlead_case() -> Case:
    fake = gl_fake.FakeGetlead().start()
    options = GetleadOptions(url=f"{fake.url}/api", token=SecretStr(gl_fake.TOKEN), timeout=1, connect_timeout=1)
    numbers = itertools.count(1)  # Getlead names a lead by its number: each new lead gets one of its own
    return Case(
        backend=GetleadBackend(options, BackendContext(store=MemoryStore(), sleep=lambda s: None)),
        new=lambda **f: NewLead(
            **{"name": "Tom Sawyer", "phone": f"+9198950{next(numbers):05d}", "email": "tom@example.com", **f}
        ),
        by="Ajay",
        other="Priya",
        status=StatusChange(status="Contacted", by="Ajay", at=NOW),
        closing=StatusChange(status="Converted", by="Ajay", at=NOW),
        stop=fake.stop,
        unknown_id="+919895099999",
    )


CASES: dict[str, Callable[[], Case]] = {
    "local": local_case,
    "capillary": capillary_case,
    "leadsapi": leadsapi_case,
    "leadsquared": leadsquared_case,
    "getlead": getlead_case,
}


# The backends whose writes can be queued: only for these does anything ask whether a write landed.
QUEUING = [name for name in CASES if name != "local"]


def _case(name: str) -> Iterator[Case]:
    made = CASES[name]()
    yield made
    made.backend.close()
    made.stop()


@pytest.fixture(params=list(CASES))
def case(request) -> Iterator[Case]:
    yield from _case(request.param)


@pytest.fixture(params=QUEUING)
def queuing_case(request) -> Iterator[Case]:
    yield from _case(request.param)


def test_queuing_lists_exactly_the_backends_that_queue_writes():
    for name in CASES:
        made = CASES[name]()
        try:
            assert made.backend.capabilities.queues_writes == (name in QUEUING), name
        finally:
            made.backend.close()
            made.stop()


def test_create_then_get_gives_the_lead_back(case):
    created = case.backend.create(case.new(next_follow_up=NOW + timedelta(days=1)), by=case.by)
    assert created.ref == f"{case.backend.name}:{created.id}"
    got = case.backend.get(created.id)
    assert (got.name, got.email, got.owner) == (created.name, created.email, case.by)
    assert got.status == case.backend.statuses()[0].value
    assert got.next_follow_up == NOW + timedelta(days=1)


def test_an_unknown_lead_is_gone_and_a_malformed_id_is_not_a_reference(case):
    if case.backend.capabilities.read:
        with pytest.raises(LeadGone):
            case.backend.get(case.unknown_id)
    else:  # it cannot be asked: a lead Leadbot has no record of is unknown, with nothing recorded
        unknown = case.backend.get(case.unknown_id)
        assert (unknown.as_recorded, unknown.history, unknown.owner) == (True, (), None)
    with pytest.raises(NotFound):
        case.backend.get("not-a-number")


def test_search_filters_by_owner_status_and_due(case):
    mine = case.backend.create(case.new(next_follow_up=NOW - timedelta(hours=1)), by=case.by)
    theirs = case.backend.create(case.new(email="other@example.com", owner=case.other), by=case.by)
    everyone = case.backend.search(LeadQuery(limit=50))
    assert {mine.id, theirs.id} <= {lead.id for lead in everyone.leads}
    assert [lead.id for lead in case.backend.search(LeadQuery(owner=case.other, limit=50)).leads] == [theirs.id]
    due = case.backend.search(LeadQuery(due_before=NOW, limit=50)).leads
    assert [lead.id for lead in due] == [mine.id]
    case.backend.change_status(mine.id, case.closing)
    assert mine.id not in {lead.id for lead in case.backend.search(LeadQuery(limit=50)).leads}  # closed: not open
    closed = case.backend.search(LeadQuery(status=case.closing.status, limit=50)).leads
    assert [lead.id for lead in closed] == [mine.id]


def test_assign(case):
    lead = case.backend.create(case.new(), by=case.by)
    assert case.backend.assign(lead.id, case.other, by=case.by).owner == case.other
    assert case.backend.get(lead.id).owner == case.other


def test_follow_up_note_status_and_reschedule_show_on_the_lead(case):
    lead = case.backend.create(case.new(), by=case.by)
    nxt = NOW + timedelta(days=2)
    followed = case.backend.log_follow_up(
        lead.id, FollowUp(done_at=NOW, notes="called", next_follow_up=nxt, by=case.by)
    )
    assert followed.next_follow_up == nxt
    case.backend.add_note(lead.id, Note(text="likes tea", by=case.by, at=NOW))
    changed = case.backend.change_status(lead.id, case.status)
    assert changed.status == case.backend.status_option(case.status.status).value
    later = NOW + timedelta(days=3)
    assert case.backend.reschedule(lead.id, later, by=case.by).next_follow_up == later
    assert case.backend.get(lead.id).next_follow_up == later
    shown = " | ".join(a.text for a in case.backend.activity(lead.id, 10))
    assert "likes tea" in shown and "called" in shown


def receipts() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"{n:08x}"


def writes(case: Case, lead_id: str, receipt: Iterator[str]) -> dict[str, dict[str, Any]]:
    """Each queued write's arguments as the LeadService stores them, each with a receipt of its own."""
    follow_up = FollowUp(done_at=NOW - timedelta(minutes=5), notes="called", by=case.by, receipt=next(receipt))
    note = Note(text="likes tea", by=case.by, at=NOW, receipt=next(receipt))
    return {
        "assign": {"lead_id": lead_id, "owner": case.other, "by": case.by, "receipt": next(receipt)},
        "log_follow_up": {"lead_id": lead_id, "follow_up": follow_up.model_dump(mode="json")},
        "add_note": {"lead_id": lead_id, "note": note.model_dump(mode="json")},
        "change_status": {"lead_id": lead_id, "change": case.closing.model_dump(mode="json")},
        "reschedule": {
            "lead_id": lead_id,
            "when": (NOW + timedelta(days=4)).isoformat(),
            "by": case.by,
            "receipt": next(receipt),
        },
    }


def make(case: Case, op: str, lead_id: str, args: dict[str, Any]) -> None:
    from services.leads import LeadService

    LeadService._call(case.backend, op, args)


def test_applied_says_whether_a_write_landed_by_its_own_receipt(queuing_case):
    case = queuing_case
    receipt = receipts()
    lead = case.backend.create(case.new(), by=case.by)
    first = writes(case, lead.id, receipt)
    if not case.backend.capabilities.verifiable:  # it cannot be asked: None, before a write and after it
        for op, args in first.items():
            make(case, op, lead.id, args)
            assert case.backend.applied(op, args) is None, f"{op}: a write-only backend cannot see it"
        return
    for op, args in first.items():
        assert case.backend.applied(op, args) is None, f"{op} seen before it was made"
    for op, args in first.items():
        make(case, op, lead.id, args)
        landed = case.backend.applied(op, args)
        assert landed is not None and landed.id == lead.id, f"{op} not seen after it was made"
    # The same writes again, by the same person, with the same text: an earlier one is no proof of these.
    again = writes(case, lead.id, receipt)
    for op in ("log_follow_up", "add_note", "reschedule"):
        assert case.backend.applied(op, again[op]) is None, f"a second {op} was taken for the first"


def test_applied_finds_a_new_lead_whose_reply_was_lost(queuing_case):
    case = queuing_case
    wanted = case.new(owner=case.by, receipt="0badc0de")
    args = {"lead": wanted.model_dump(mode="json"), "by": case.by}
    assert case.backend.applied("create", args) is None
    created = case.backend.create(wanted, by=case.by)
    found = case.backend.applied("create", args)
    if not case.backend.capabilities.verifiable:
        assert found is None  # by design: a create whose reply was lost is told "may have landed", never resent
        return
    assert found is not None and (found.id, found.owner) == (created.id, case.by)
