"""One set of limits (services/models.py), said the same way from the command, the modals and the domain."""

from __future__ import annotations

import pytest

from services.models import NAME_MAX, NOTE_MAX
from tests.conftest import ADMIN, REP, activity, leads, new_lead

NOTE_TOO_LONG = f"the note is {NOTE_MAX + 1:,} characters long; the limit is {NOTE_MAX:,}"


def reply_text(slack) -> str:
    return slack.last_reply()["text"]


@pytest.mark.parametrize("how", ["/lead note", "/lead new note=", "/lead followup"])
def test_a_note_over_the_limit_is_refused_by_every_command_in_the_same_words(slack, linked, how):
    ref = new_lead(linked)
    note = "x" * (NOTE_MAX + 1)
    command = {
        "/lead note": f"note {ref} {note}",
        "/lead new note=": f"new Bob Smith bob@example.com note={note}",
        "/lead followup": f"followup {ref} {note}",
    }[how]
    slack.command(command, user=REP)
    shown = reply_text(slack).lower()
    assert NOTE_TOO_LONG.replace("the note", "the notes" if how == "/lead followup" else "the note") in shown
    assert len(leads(linked)) == 1 and activity(linked, ref) == []


def test_a_note_at_the_limit_is_taken_whole(slack, linked):
    slack.command(f"new Bob Smith bob@example.com note={'x' * NOTE_MAX}", user=REP)
    (bob,) = leads(linked)
    assert activity(linked, bob.ref) == [("note", "x" * NOTE_MAX)]


def test_a_name_over_the_limit_is_refused_not_cut(slack, linked):
    slack.command(f"new {'A' * (NAME_MAX + 1)} bob@example.com", user=REP)
    assert f"the name is {NAME_MAX + 1:,} characters long; the limit is {NAME_MAX:,}" in reply_text(slack).lower()
    assert leads(linked) == []


def test_the_new_lead_modal_refuses_a_long_note_under_its_field_in_the_same_words(slack, linked):
    slack.command("new", user=ADMIN)
    (view,) = slack.opened_views()
    errors = slack.submit(view, {"name": "Bob", "email": "bob@example.com", "note": "x" * (NOTE_MAX + 1)}).json()
    assert errors["errors"] == {"note": NOTE_TOO_LONG[:1].upper() + NOTE_TOO_LONG[1:]}
    assert leads(linked) == []


def test_every_modal_input_is_capped_at_the_domains_limit(slack, linked):
    slack.command("new", user=ADMIN)
    (view,) = slack.opened_views()
    caps = {b["block_id"]: b["element"].get("max_length") for b in view["blocks"] if b.get("type") == "input"}
    assert caps["name"] == NAME_MAX and caps["note"] == NOTE_MAX
