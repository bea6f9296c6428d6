"""The store contract: every implementation of ``services.ports`` behaves the same.

A new store is added by adding one factory to ``STORES``; every test here
then runs against it too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.stores.memory import MemoryStore
from bot.stores.postgres import PostgresStore
from bot.stores.sqlite import SqliteStore
from services.models import FollowUp, NewLead, Note, StaffLink, StatusChange
from services.ports import AuditEntry, ChannelPrefs, Conflict, RequestWrite, Store, UserPrefs

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _sqlite(request: pytest.FixtureRequest) -> Store:
    return SqliteStore(request.getfixturevalue("tmp_path") / "contract.db")


def _memory(request: pytest.FixtureRequest) -> Store:
    return MemoryStore()


def _postgres(request: pytest.FixtureRequest) -> Store:
    return PostgresStore(request.getfixturevalue("postgres"))  # this worker's database, emptied


STORES: dict[str, Callable[[pytest.FixtureRequest], Store]] = {
    "sqlite": _sqlite,
    "memory": _memory,
    "postgres": _postgres,
}


@pytest.fixture(params=list(STORES))
def store(request) -> Iterator[Store]:
    made = STORES[request.param](request)
    yield made
    made.close()


# -- staff links ----------------------------------------------------------------------------------


def test_links_are_per_user_and_backend_and_a_staff_id_has_one_holder(store):
    links = store.links
    links.put(StaffLink(slack_user="UB", backend="local", staff_id="bob"), by="UA", at=NOW)
    links.put(StaffLink(slack_user="UA", backend="local", staff_id="ada"), by="UA", at=NOW)
    links.put(StaffLink(slack_user="UA", backend="capillary", staff_id="ada.l/1"), by="UA", at=NOW)
    assert links.staff_id("UA", "local") == "ada" and links.staff_id("UA", "leadsapi") is None
    assert links.holder("local", "bob") == "UB" and links.holder("local", "nobody") is None
    assert [(k.backend, k.staff_id) for k in links.of_user("UA")] == [("capillary", "ada.l/1"), ("local", "ada")]
    assert [k.slack_user for k in links.of_backend("local")] == ["UA", "UB"]
    assert links.users() == ["UA", "UB"]
    with pytest.raises(Conflict):
        links.put(StaffLink(slack_user="UC", backend="local", staff_id="bob"), by="UA", at=NOW)
    links.put(StaffLink(slack_user="UA", backend="local", staff_id="ada2"), by="UA", at=NOW)  # re-link: replaced
    assert links.staff_id("UA", "local") == "ada2" and links.holder("local", "ada") is None
    assert links.delete("UB", "local") is True and links.delete("UB", "local") is False
    assert links.users() == ["UA"]
    # Who ever held a staff ID outlives the link (a self-link must not take a leaver's staff ID).
    assert links.held_by("local", "bob") == ["UB"] and links.held_by("local", "ada") == ["UA"]
    links.put(StaffLink(slack_user="UC", backend="local", staff_id="bob"), by="UA", at=NOW)
    assert links.held_by("local", "bob") == ["UB", "UC"] and links.held_by("local", "nobody") == []


# -- requests handled once --------------------------------------------------------------------


def test_a_request_is_claimed_once(store):
    assert store.requests.claim("command:1") is True
    assert store.requests.claim("command:1") is False
    assert store.requests.claim("command:2", until_done=True) is True
    assert store.requests.claim("command:2") is False  # started by this (live) process
    store.requests.finish(["command:2"])
    assert store.requests.claim("command:2", until_done=True) is False


def test_a_claim_left_started_by_a_dead_process_is_taken_over_once(store, dead_pid, monkeypatch):
    ledger = store.requests
    for key, pid, until_done in (("cut-off", dead_pid, True), ("in-flight", 1, True), ("finished", dead_pid, False)):
        monkeypatch.setattr(ledger, "pid", pid)
        assert ledger.claim(key, until_done=until_done)
    monkeypatch.setattr(ledger, "pid", os.getpid())
    assert ledger.claim("cut-off", until_done=True) is True  # its process died half-way
    assert ledger.claim("cut-off", until_done=True) is False  # and only one taker
    assert ledger.claim("in-flight") is False  # still being worked on by a live process (pid 1)
    assert ledger.claim("finished") is False


def test_a_requests_writes_are_recorded_replaced_forgotten_and_pruned(store):
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    sent = RequestWrite(
        key="j7#1", backend="capillary", op="add_note", args={"note": {"text": "hi"}}, state="sent", at=now
    )
    assert store.writes.get("j7#1") is None
    store.writes.record(sent)
    assert store.writes.get("j7#1") == sent
    store.writes.record(RequestWrite(**{**sent.__dict__, "state": "landed", "ref": "capillary:4"}))
    assert (store.writes.get("j7#1").state, store.writes.get("j7#1").ref) == ("landed", "capillary:4")
    store.writes.record(RequestWrite(**{**sent.__dict__, "key": "j7#2", "state": "queued", "queued_key": "q1"}))
    assert store.writes.get("j7#2").queued_key == "q1"
    store.writes.forget("j7#2")
    assert store.writes.get("j7#2") is None
    store.writes.record(RequestWrite(**{**sent.__dict__, "key": "j1#1", "at": now - timedelta(days=3)}))
    assert store.writes.prune(now - timedelta(days=2)) == 1
    assert store.writes.get("j1#1") is None and store.writes.get("j7#1") is not None


def test_a_write_and_its_record_commit_together(store):
    record = RequestWrite(key="j9#1", backend="local", op="create", args={}, state="landed", at=datetime.now(UTC))
    with pytest.raises(RuntimeError), store.atomic():
        add(store, "Ada")
        store.writes.record(record)
        raise RuntimeError("the process died half-way")
    assert store.writes.get("j9#1") is None and store.local.get(1) is None


def test_racing_claims_have_one_winner(store):
    results: list[bool] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        results.append(store.requests.claim("race"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_old_claims_are_pruned(store):
    store.requests.claim("old")
    assert store.requests.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.requests.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert store.requests.claim("old") is True


# -- settings ---------------------------------------------------------------------------------


def test_user_settings_have_defaults_and_change_field_by_field(store):
    prefs = store.prefs
    assert prefs.user("UA") == UserPrefs()
    prefs.set_user("UA", assignment_dms=False, remind_at="08:30")
    prefs.set_user("UA", tz="Asia/Kolkata", tz_checked_at=NOW)
    assert prefs.user("UA") == UserPrefs(assignment_dms=False, remind_at="08:30", tz="Asia/Kolkata", tz_checked_at=NOW)
    assert prefs.users(["UA", "UB"]) == {"UA": prefs.user("UA"), "UB": UserPrefs()}
    with pytest.raises(ValueError):
        prefs.set_user("UA", colour="blue")
    assert prefs.channel("C1") == ChannelPrefs()
    prefs.set_channel("C1", previews=True)
    assert prefs.channel("C1").previews is True and prefs.channel("C2").previews is False


def test_many_users_settings_at_once(store):
    for n in range(1200):
        store.prefs.set_user(f"U{n}", reminders=n % 2 == 0)
    found = store.prefs.users([f"U{n}" for n in range(1200)])
    assert sum(p.reminders for p in found.values()) == 600


# -- the outbox -------------------------------------------------------------------------------


def queue(store, key: str = "k1", at: datetime = NOW, **extra):
    values = {
        "key": key,
        "backend": "capillary",
        "op": "add_note",
        "args": {"lead_id": "19", "note": {"text": "café ☕"}},
        "ref": "capillary:19",
        "slack_user": "UA",
        "origin": {"response_url": "https://hooks.slack.com/x", "card": True},
        "next_at": at,
        "created_at": NOW,
        **extra,
    }
    return store.outbox.add(**values)


def test_queued_writes_come_back_as_they_went_in(store):
    write = queue(store)
    assert (write.state, write.attempts, write.args["note"]["text"], write.origin["card"]) == (
        "pending",
        1,
        "café ☕",
        True,
    )
    assert store.outbox.get(write.id) == write
    assert store.outbox.pending() == [write]
    with pytest.raises(Conflict):
        queue(store)  # the same key twice


def test_a_due_write_is_leased_to_one_runner_until_the_lease_ends(store):
    first = queue(store, "k1", NOW)
    queue(store, "k2", NOW + timedelta(hours=1))
    lease = NOW + timedelta(minutes=2)
    (taken,) = store.outbox.claim_due(NOW, lease, 10)
    assert (taken.id, taken.state, taken.next_at) == (first.id, "running", lease)
    assert store.outbox.claim_due(NOW + timedelta(minutes=1), lease, 10) == []  # leased
    (again,) = store.outbox.claim_due(lease, lease + timedelta(minutes=2), 10)  # the runner died: taken over
    assert again.id == first.id
    store.outbox.update(first.id, state="done", attempts=2, finished_at=NOW, result_ref="capillary:19")
    assert [w.key for w in store.outbox.pending()] == ["k2"]
    assert store.outbox.get(first.id).result_ref == "capillary:19"
    with pytest.raises(ValueError):
        store.outbox.update(first.id, backend="local")


def test_two_runners_never_take_the_same_write(store):
    for n in range(30):
        queue(store, f"k{n}")
    taken: list[int] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        taken.extend(w.id for w in store.outbox.claim_due(NOW, NOW + timedelta(minutes=2), 30))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted({*taken}) and len(taken) == 30


def test_an_operator_makes_waiting_writes_due_now_but_not_one_being_tried(store):
    later = queue(store, "later", NOW + timedelta(hours=1))
    overdue = queue(store, "overdue", NOW - timedelta(minutes=1))
    leased = queue(store, "leased", NOW)
    store.outbox.claim_due(NOW, NOW + timedelta(minutes=2), 10)  # takes overdue and leased
    store.outbox.update(overdue.id, state="pending", next_at=NOW - timedelta(minutes=1))  # its try ended: waiting
    assert store.outbox.retry_now(NOW, later.id) == [later.id]
    assert store.outbox.get(later.id).next_at == NOW
    assert store.outbox.retry_now(NOW, leased.id) == []  # being tried right now
    assert store.outbox.get(leased.id).next_at == NOW + timedelta(minutes=2)
    assert store.outbox.retry_now(NOW) == [later.id, overdue.id]
    assert store.outbox.get(overdue.id).next_at == NOW - timedelta(minutes=1)  # already due: kept
    assert [w.id for w in store.outbox.claim_due(NOW, NOW + timedelta(minutes=2), 10)] == [overdue.id, later.id]
    assert store.outbox.retry_now(NOW, 999) == []


def test_an_operator_drops_a_write_nobody_is_trying(store):
    waiting = queue(store, "waiting", NOW + timedelta(hours=1))
    leased = queue(store, "leased", NOW)
    landed = queue(store, "landed", NOW + timedelta(hours=1))
    store.outbox.claim_due(NOW, NOW + timedelta(minutes=2), 10)
    store.outbox.update(landed.id, state="done", finished_at=NOW)
    assert store.outbox.drop(waiting.id, NOW) is True
    dropped = store.outbox.get(waiting.id)
    assert (dropped.state, dropped.finished_at) == ("dropped", NOW)
    assert store.outbox.drop(waiting.id, NOW) is False  # once
    assert store.outbox.drop(landed.id, NOW) is False and store.outbox.drop(999, NOW) is False
    assert store.outbox.drop(leased.id, NOW + timedelta(minutes=1)) is False  # a runner holds it
    assert [w.key for w in store.outbox.pending()] == ["leased"]
    assert store.outbox.claim_due(NOW + timedelta(hours=2), NOW + timedelta(hours=3), 10)[0].key == "leased"
    assert store.outbox.drop(leased.id, NOW + timedelta(hours=3)) is True  # its runner died: the lease ran out
    assert store.outbox.pending() == []


# -- digests ----------------------------------------------------------------------------------


def test_one_digest_per_owner_and_day(store):
    day = date(2026, 12, 1)
    assert store.digests.claim("UA", day, NOW) is True
    assert store.digests.claim("UA", day, NOW) is False
    assert store.digests.claim("UA", day + timedelta(days=1), NOW) is True
    store.digests.record("UA", day, "sent", channel="DUA", ts="1.2", sent_at=NOW, leads=3)
    record = store.digests.get("UA", day)
    assert (record.state, record.channel, record.ts, record.sent_at, record.leads) == ("sent", "DUA", "1.2", NOW, 3)
    assert store.digests.taken_since(day) == {("UA", day), ("UA", day + timedelta(days=1))}
    assert store.digests.taken_since(day + timedelta(days=2)) == set()
    assert store.digests.get("UB", day) is None


def test_unsettled_digests_are_the_unknown_and_the_stale_claims(store):
    day = date(2026, 12, 1)
    for user in ("UA", "UB", "UC", "UD"):
        store.digests.claim(user, day, NOW)
    store.digests.record("UA", day, "unknown")
    store.digests.record("UB", day, "sent")
    store.digests.claim("UE", day, NOW + timedelta(minutes=10))
    assert [r.slack_user for r in store.digests.unsettled(NOW)] == ["UA", "UC", "UD"]


# -- audit ------------------------------------------------------------------------------------


def test_the_audit_trail_keeps_order_and_filters(store):
    for n, action in enumerate(("create", "assign", "create")):
        store.audit.record(
            AuditEntry(
                at=NOW + timedelta(seconds=n), slack_user="UA", action=action, lead_ref=f"local:{n}", result="ok"
            )
        )
    assert [e.lead_ref for e in store.audit.entries(action="create")] == ["local:0", "local:2"]
    assert len(store.audit.entries()) == 3
    with pytest.raises(ValueError):
        store.audit.entries(colour="blue")


# -- remote leads -----------------------------------------------------------------------------


def test_what_leadbot_knows_of_remote_leads(store):
    remote = store.remote
    assert remote.recall("capillary", "19") is None
    remote.remember("capillary", "19", name="Tom", owner="ana.s", extra={"deals": [{"amount": 5}]})
    remote.remember("capillary", "19", next_follow_up=NOW, archived=True)
    known = remote.recall("capillary", "19")
    assert (known.name, known.owner, known.next_follow_up, known.archived) == ("Tom", "ana.s", NOW, True)
    assert known.extra == {"deals": [{"amount": 5}]}
    remote.remember("leadsapi", "19", owner="bob")
    assert set(remote.recall_all("capillary")) == {"19"}
    with pytest.raises(ValueError):
        remote.remember("capillary", "19", colour="blue")


# -- the local backend's leads ----------------------------------------------------------------


def add(store, name: str, **fields):
    lead = NewLead(name=name, email=f"{name.lower()}@example.com", **fields)
    return store.local.insert(lead, status=fields.get("status") or "new", owner=fields.get("owner"), by="ada", at=NOW)


def test_local_leads_are_numbered_and_read_back(store):
    first = add(store, "Ada", note="met at the expo", next_follow_up=NOW + timedelta(days=1))
    second = add(store, "Bob")
    assert (first.id, second.id, first.ref) == ("1", "2", "local:1")
    assert store.local.get(1) == first and first.next_follow_up == NOW + timedelta(days=1)
    assert store.local.get(99) is None and store.local.get(2**70) is None
    assert [(a.kind, a.text, a.by) for a in store.local.activity(1, 10)] == [("note", "met at the expo", "ada")]


def test_every_local_lead_by_number_page_by_page(store):
    for name in ("Ada", "Bob", "Cy", "Di", "Ed"):
        add(store, name, owner="ana", next_follow_up=NOW + timedelta(days=1))
    store.local.update(3, at=NOW + timedelta(minutes=5), status="won")
    pages = [store.local.every(0, 2), store.local.every(2, 2), store.local.every(4, 2), store.local.every(5, 2)]
    assert [[lead.id for lead in page] for page in pages] == [["1", "2"], ["3", "4"], ["5"], []]
    third = pages[1][0]
    assert third == store.local.get(3)  # every field, closed leads too
    assert (third.status, third.owner, third.created_by, third.created_at) == ("won", "ana", "ada", NOW)
    assert third.last_activity == NOW + timedelta(minutes=5)


def test_local_search_orders_due_first_then_newest_and_pages(store):
    add(store, "Undated")
    add(store, "Later", next_follow_up=NOW + timedelta(days=2), owner="ana")
    add(store, "Sooner", next_follow_up=NOW + timedelta(hours=1), owner="ana")
    add(store, "Won", status="won")
    page = store.local.search(statuses=["new"], owner=None, due_before=None, offset=0, limit=10)
    assert [lead.name for lead in page.leads] == ["Sooner", "Later", "Undated"] and page.total == 3
    mine = store.local.search(statuses=["new"], owner="ana", due_before=NOW + timedelta(days=1), offset=0, limit=10)
    assert [lead.name for lead in mine.leads] == ["Sooner"]
    second = store.local.search(statuses=["new", "won"], owner=None, due_before=None, offset=2, limit=1)
    assert [lead.name for lead in second.leads] == ["Won"] and second.total == 4


def test_local_writes_and_their_history(store):
    add(store, "Ada")
    later = NOW + timedelta(minutes=5)
    assert store.local.update(1, at=later, owner="bob") is True
    assert store.local.update(99, at=later, owner="bob") is False and store.local.update(2**70, at=later) is False
    store.local.add_follow_up(
        1, FollowUp(done_at=NOW - timedelta(hours=1), notes="called", next_follow_up=later, by="ana"), at=later
    )
    store.local.add_note(1, Note(text="likes tea", by="bob", at=NOW + timedelta(minutes=6)))
    store.local.add_status(
        1, StatusChange(status="Won", reason="budget", by="ana", at=NOW + timedelta(minutes=7)), status="won"
    )
    lead = store.local.get(1)
    assert (lead.owner, lead.status, lead.next_follow_up) == ("bob", "won", later)
    assert lead.last_activity == NOW + timedelta(minutes=7)
    assert [(a.kind, a.text) for a in store.local.activity(1, 10)] == [
        ("status", "status → won (budget)"),
        ("note", "likes tea"),
        ("follow_up", "follow-up: called"),
    ]
    assert len(store.local.activity(1, 2)) == 2


# -- rate budgets -----------------------------------------------------------------------------


def test_a_rate_budget_hands_out_slots_in_the_order_they_are_asked(store):
    take = store.rates.take
    assert [take("lsq:a", limit=3, window=5.0, now=NOW) for _ in range(7)] == [0, 0, 0, 5, 5, 5, 10]
    assert take("lsq:a", limit=3, window=5.0, now=NOW + timedelta(seconds=1)) == 9  # after the ones before it
    assert take("lsq:b", limit=3, window=5.0, now=NOW) == 0  # one budget per key
    assert take("lsq:a", limit=3, window=5.0, now=NOW + timedelta(seconds=60)) == 0  # the window has passed


def test_racing_takers_never_share_a_slot(store):
    waits: list[float] = []
    start = threading.Barrier(2)

    def take(n: int) -> None:
        start.wait()
        for _ in range(n):
            waits.append(store.rates.take("lsq:race", limit=10, window=1.0, now=NOW))

    threads = [threading.Thread(target=take, args=(50,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == [float(n // 10) for n in range(100)]  # ten per window, none twice


# -- transactions -----------------------------------------------------------------------------


def test_atomic_commits_everything_or_nothing(store):
    with pytest.raises(RuntimeError), store.atomic():
        store.requests.claim("command:9", until_done=True)
        add(store, "Ada")
        raise RuntimeError("the write failed half-way")
    assert store.local.get(1) is None
    assert store.requests.claim("command:9") is True  # the claim went too
    with store.atomic():
        with store.atomic():  # nested: joins the outer one
            add(store, "Bob")
        store.prefs.set_user("UA", home_opened=True)
    assert store.local.get(1).name == "Bob" and store.prefs.user("UA").home_opened is True


def test_ping(store):
    store.ping()


def test_local_find_matching_contact_and_unassigned_alike_in_every_store(store):
    from services.search import terms

    add(store, "José", phone="+14155550123", lead_for="Acme Ltd")
    add(store, "Josephine", status="won")
    add(store, "Bob", owner="ana")
    found = store.local.find(terms("jose"), statuses=["new", "won"], offset=0, limit=10)
    assert [lead.name for lead in found.leads] == ["José", "Josephine"] and found.total == 2
    assert [lead.name for lead in store.local.find(terms("acme"), statuses=["new"], offset=0, limit=10).leads] == [
        "José"
    ]
    assert store.local.find(terms("555 0123"), statuses=["new"], offset=0, limit=10).total == 1
    store.local.update(1, at=NOW, name="Pepe", lead_for="Other Co")  # the index follows an edit
    assert store.local.find(terms("acme"), statuses=["new"], offset=0, limit=10).total == 0
    assert store.local.find(terms("pepe"), statuses=["new"], offset=0, limit=10).total == 1
    same = store.local.matching_contact(email="josé@EXAMPLE.com", phone=None, statuses=["new"])
    assert [lead.name for lead in same] == ["Pepe"]
    assert store.local.matching_contact(email=None, phone="+14155550123", statuses=["won"]) == []
    free = store.local.search(statuses=["new"], owner=None, due_before=None, offset=0, limit=10, unassigned=True)
    assert [lead.name for lead in free.leads] == ["Pepe"]
