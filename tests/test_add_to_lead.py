"""The "Add to lead" message shortcut: pick a lead by reference or by search, the message and its link become a note."""

from __future__ import annotations

from tests.conftest import REP, STRANGER, activity, new_lead
from tests.slack import text_of


def open_form(slack, text="Ada called back: wants the enterprise plan"):
    slack.message_shortcut("lead_add_to", text, user=REP)
    (view,) = slack.opened_views()
    return view


def test_a_message_becomes_a_note_on_the_lead_found_by_search(slack, linked):
    new_lead(linked, "Ada Lovelace", email="ada@example.com")
    new_lead(linked, "Grace Hopper", email="grace@example.com")
    view = open_form(slack)
    assert view["callback_id"] == "lead_add_to_view" and view["title"]["text"] == "Add to lead"
    assert "Ada called back: wants the enterprise plan" in text_of(view["blocks"])
    response = slack.submit(view, {"lead": "lovelace"}, user=REP)
    assert response.status_code == 200 and response.text == ""
    (kind, text), *_ = activity(linked, "local:1")
    assert kind == "note" and text.startswith("Ada called back: wants the enterprise plan")
    assert "From Slack: https://" in text  # the message's link
    card = text_of(slack.last_reply()["blocks"])
    assert "`local:1` · Local store" in card and f"<@{REP}> added a note" in card
    assert activity(linked, "local:2") == []


def test_a_reference_picks_the_lead_and_ambiguous_words_are_said_in_the_form(slack, linked):
    new_lead(linked, "Ada Lovelace", email="ada@example.com")
    new_lead(linked, "Ada Byron", email="byron@example.com")
    view = open_form(slack)
    body = slack.submit(view, {"lead": "ada"}, user=REP).json()
    assert body["response_action"] == "errors" and body["errors"]["lead"].startswith("2 leads match: local:")
    body = slack.submit(view, {"lead": "nobody"}, user=REP).json()
    assert body["errors"]["lead"] == "No lead matches “nobody”; try its reference."
    body = slack.submit(view, {"lead": "local:99"}, user=REP).json()
    assert "there is no lead `local:99`" in body["errors"]["lead"].lower()
    slack.submit(view, {"lead": "local:2"}, user=REP)
    assert activity(linked, "local:2")[0][0] == "note"


def test_someone_unlinked_is_refused_and_told(slack, linked):
    new_lead(linked, "Ada Lovelace", email="ada@example.com")
    slack.message_shortcut("lead_add_to", "a message", user=STRANGER)
    (view,) = slack.opened_views()
    slack.submit(view, {"lead": "local:1"}, user=STRANGER)
    assert "not linked to a staff ID in local" in slack.last_reply()["text"]
    assert activity(linked, "local:1") == []
