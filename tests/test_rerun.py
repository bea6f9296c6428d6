"""A request's work run again (its process died half-way) makes none of its writes twice."""

from __future__ import annotations

import pytest

from bot.app import build_outbox_runner
from services.audit import Actor
from services.errors import Queued
from services.models import NewLead
from services.rerun import writes_of
from tests.conftest import ADMIN, REP, leadsapi_settings

REP_ACTOR = Actor(slack_user=REP)


class Died(BaseException):
    """The process dying at this point: nothing after it runs (no except clause of the product's catches it)."""


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch)


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, REP, "ana")
    service.people.link(admin, REP, "ana", backend="leadsapi")
    return service


def test_a_local_write_made_by_an_earlier_run_is_not_made_again(linked):
    with writes_of("j1"):
        first = linked.create(REP_ACTOR, NewLead(name="Ada Lovelace", email="ada@example.com"))
        linked.add_note(REP_ACTOR, first.ref, "prefers email")
    with writes_of("j1"):  # the same request, run again
        again = linked.create(REP_ACTOR, NewLead(name="Ada Lovelace", email="ada@example.com"))
        linked.add_note(REP_ACTOR, again.ref, "prefers email")
    assert again.ref == first.ref
    assert [lead.ref for lead in linked.search(backend="local").leads] == [first.ref]
    assert [a.text for a in linked.activity(linked.get(first.ref), 10) if a.kind == "note"] == ["prefers email"]
    with writes_of("j2"):  # another request: its own writes
        linked.create(REP_ACTOR, NewLead(name="Ada Lovelace", email="ada@example.com"), allow_duplicate=True)
    assert len(linked.search(backend="local").leads) == 2


def test_a_remote_write_whose_run_died_after_sending_is_looked_for_not_resent(linked, api_fake, runtime, clock):
    with writes_of("j1"):
        lead = linked.create(REP_ACTOR, NewLead(name="John Doe", email="john@example.com"), backend="leadsapi")
    backend = linked.backends.get("leadsapi")
    real = backend.add_note

    def sent_then_died(lead_id, note):
        real(lead_id, note)
        raise Died

    backend.add_note = sent_then_died
    with pytest.raises(Died), writes_of("j2"):
        linked.add_note(REP_ACTOR, lead.ref, "prefers email")
    backend.add_note = real
    with writes_of("j2"), pytest.raises(Queued, match="Leadbot restarted while saving it"):
        linked.add_note(REP_ACTOR, lead.ref, "prefers email")
    with writes_of("j2"), pytest.raises(Queued):  # and once more: still the one queued write
        linked.add_note(REP_ACTOR, lead.ref, "prefers email")
    assert len(linked.outbox.pending()) == 1
    clock.advance(minutes=3)
    build_outbox_runner(runtime).run_due()
    comments = [c["content"] for c in api_fake.history[1] if "prefers email" in c.get("content", "")]
    assert len(comments) == 1 and linked.outbox.pending() == []  # found by its receipt, never sent twice


def test_a_queued_write_is_not_queued_again_by_a_rerun(linked, api_fake):
    with writes_of("j1"):
        lead = linked.create(REP_ACTOR, NewLead(name="John Doe", email="john@example.com"), backend="leadsapi")
    api_fake.stop_listening()
    for _ in range(2):
        with writes_of("j2"), pytest.raises(Queued):
            linked.add_note(REP_ACTOR, lead.ref, "prefers email")
    assert len(linked.outbox.pending()) == 1


def test_a_refused_write_is_made_again_by_a_rerun_and_refused_again(linked, api_fake):
    from bot.loopback import Failure
    from services.errors import Rejected

    with writes_of("j1"):
        lead = linked.create(REP_ACTOR, NewLead(name="John Doe", email="john@example.com"), backend="leadsapi")
    api_fake.fail("POST", "/leads/comments/{id}", Failure("status", status=400, body={"message": "Bad"}, times=2))
    for _ in range(2):
        with writes_of("j2"), pytest.raises(Rejected):
            linked.add_note(REP_ACTOR, lead.ref, "prefers email")
    assert len(api_fake.requests("POST", "/leads/comments/1")) == 2 and linked.outbox.pending() == []
