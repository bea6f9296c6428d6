"""Saturated, Leadbot turns every kind of request away the way Slack shows it, and takes nothing in.

Through the real server with the work queue full (``max_pending`` 0): a command says
"busy" in its ack; a button press and a message shortcut are acked and get an
ephemeral "busy" at their response URL; a modal submission gets a field error (the
modal stays open); an event is acked and dropped. None of them queues any work.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.conftest import ADMIN, REP, activity, lead, new_lead

BUSY = "Leadbot is busy right now and did not take this in"


def busy_shown(fake_slack, key_prefix: str) -> bool:
    def shown(calls) -> bool:
        return any(
            c.kind == "response" and c.name.startswith(key_prefix) and BUSY in str(c.body.get("text")) for c in calls
        )

    return fake_slack.wait_for(shown, timeout=10)


def card(bot, linked) -> tuple[str, list[dict]]:
    ref = new_lead(linked)
    bot.slack.command(f"show {ref}")
    return ref, bot.slack.last_reply()["blocks"]


def test_a_button_press_is_answered_busy_and_changes_nothing(bot, linked, fake_slack):
    ref, blocks = card(bot, linked)
    bot.executor.max_pending = 0
    assert bot.slack.click(blocks, "lead_assign_me", user=REP).status_code == 200
    assert busy_shown(fake_slack, "act")
    reply = [c.body for c in fake_slack.received("response") if c.name.startswith("act")][-1]
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False  # the card stays
    assert lead(linked, ref).owner != "ana"


def test_a_modal_submission_gets_a_field_error_and_the_modal_stays_open(bot, linked, fake_slack):
    ref, blocks = card(bot, linked)
    bot.slack.click(blocks, "lead_add_note", user=ADMIN)
    (view,) = bot.slack.opened_views()
    bot.executor.max_pending = 0
    answer = bot.slack.submit(view, {"text": "Ada wants a demo"}).json()
    assert answer["response_action"] == "errors" and BUSY in answer["errors"]["text"]
    assert activity(linked, ref) == []


def test_the_new_lead_modal_gets_a_field_error(bot, linked):
    bot.slack.command("new", user=ADMIN)
    (view,) = bot.slack.opened_views()
    bot.executor.max_pending = 0
    answer = bot.slack.submit(view, {"name": "Ada", "email": "ada@example.com"}).json()
    assert answer["response_action"] == "errors" and BUSY in next(iter(answer["errors"].values()))


def test_a_message_shortcut_is_answered_busy_and_opens_nothing(bot, linked, fake_slack):
    bot.executor.max_pending = 0
    bot.slack.message_shortcut("lead_from_message", "from Jane Doe, jane@example.com")
    assert busy_shown(fake_slack, "short")
    assert not bot.slack.opened_views()


def test_an_event_is_acked_and_dropped(bot, linked, fake_slack):
    bot.executor.max_pending = 0
    answer = bot.slack.event({"type": "app_home_opened", "user": ADMIN, "channel": "DADMIN", "tab": "home"})
    assert answer.status_code == 200
    assert not fake_slack.received("api", "views.publish")
    bot.executor.max_pending = 1000
    bot.slack.event({"type": "app_home_opened", "user": ADMIN, "channel": "DADMIN", "tab": "home"})
    assert fake_slack.received("api", "views.publish")  # served again once Leadbot is not busy


@pytest.fixture
def another_writer(runtime, settings):
    """Another connection to the database; ``lock()`` takes its write lock, which this thread will not wait for."""
    other = sqlite3.connect(settings.leadbot_db, isolation_level=None)

    def lock() -> sqlite3.Connection:
        other.execute("BEGIN IMMEDIATE")
        runtime.store.lock_wait = 0
        return other

    yield lock
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def test_a_write_waits_out_another_writers_lock(slack, linked, runtime, another_writer):
    ref = new_lead(linked)
    other = another_writer()
    paused = []

    def lock_released_meanwhile(seconds: float) -> None:
        paused.append(seconds)
        other.execute("ROLLBACK")

    runtime.store.pause = lock_released_meanwhile
    slack.command(f"note {ref} Ada wants a demo", user=ADMIN)
    assert paused  # it found the lock taken and tried again
    assert activity(linked, ref) == [("note", "Ada wants a demo")]
    assert "went wrong" not in slack.last_reply()["text"] and "busy" not in slack.last_reply()["text"]


def test_a_lock_that_is_never_let_go_is_said_honestly_not_as_database_is_locked(slack, linked, runtime, another_writer):
    ref = new_lead(linked)
    another_writer()
    runtime.store.pause = lambda seconds: None
    slack.command(f"note {ref} Ada wants a demo", user=ADMIN)
    text = slack.last_reply()["text"]
    assert "database was too busy" in text and "try again" in text
    assert "locked" not in text and "went wrong" not in text
    assert activity(linked, ref) == []
