"""Assignment DMs (and `/lead notify`), and the lead feed channel."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.models import NewLead
from tests.conftest import ADMIN, REP, audited, bot_settings, new_lead
from tests.slack import text_of

FEED = "C0FEED"


@pytest.fixture
def settings(tmp_path, fake_slack, monkeypatch):
    """The usual test settings, plus a lead feed for the local backend."""
    return bot_settings(tmp_path, fake_slack, monkeypatch, config=f'[feeds]\nlocal = "{FEED}"\n')


def dms_to(fake_slack, user: str) -> list[dict]:
    return [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body["channel"] == user]


def feed_posts(fake_slack) -> list[dict]:
    return dms_to(fake_slack, FEED)


def test_the_new_owner_gets_a_dm_with_the_card(slack, linked, fake_slack):
    ref = new_lead(linked)
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    (dm,) = dms_to(fake_slack, REP)
    assert dm["text"] == f"<@{ADMIN}> assigned you Ada Lovelace ({ref})"
    shown = text_of(dm["blocks"])
    assert "`/lead notify off` stops these messages" in shown
    assert f"*Owner*\n<@{REP}>" in shown and "Log follow-up" in shown  # the card, with its buttons
    assert "Assign to me" not in shown  # but none to take what is theirs already


def test_no_dm_for_assigning_yourself(slack, linked, fake_slack):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    slack.click(slack.last_reply()["blocks"], "lead_assign_me", user=REP)
    assert linked.get(ref).owner == "ana"
    assert dms_to(fake_slack, REP) == []


def test_notify_off_stops_the_dms_and_on_brings_them_back(slack, linked, fake_slack):
    ref = new_lead(linked)
    slack.command("notify off", user=REP)
    assert "You will no longer get DMs" in slack.last_reply()["text"]
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    assert dms_to(fake_slack, REP) == []
    slack.command(f"assign {ref} me", user=ADMIN)
    slack.command("notify on", user=REP)
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    assert len(dms_to(fake_slack, REP)) == 1
    assert [detail for _, detail in audited(linked, action="notify")] == ["off", "on"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("notify", "`on|off` is missing"), ("notify maybe", "`maybe` is neither on nor off"), ("notify on off", "")],
)
def test_notify_mistakes_show_the_usage(slack, linked, text, expected):
    slack.command(text, user=REP)
    reply = slack.last_reply()["text"]
    assert expected in reply and "/lead notify on|off" in reply


def test_the_assign_picker_and_quick_create_tell_the_new_owner(slack, linked, fake_slack):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    slack.pick_user(slack.last_reply()["blocks"], "lead_assign_to", REP, user=ADMIN)
    slack.command(f"new Grace Hopper grace@navy.mil owner=<@{REP}|ana>", user=ADMIN)
    assert [d["text"] for d in dms_to(fake_slack, REP)] == [
        f"<@{ADMIN}> assigned you Ada Lovelace ({ref})",
        f"<@{ADMIN}> assigned you Grace Hopper (local:2)",
    ]


def test_a_dm_that_cannot_be_sent_does_not_undo_the_assignment(slack, linked, fake_slack, caplog):
    ref = new_lead(linked)
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    with caplog.at_level(logging.WARNING, logger="leadbot"):
        slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    assert linked.get(ref).owner == "ana"
    assert ":warning:" not in slack.last_reply()["text"]
    assert f"assignment DM to {REP} not sent (channel_not_found)" in caplog.text


def test_every_new_lead_is_posted_to_the_feed_once(slack, linked, fake_slack):
    slack.command("new Ada ada@example.com", user=ADMIN, trigger_id="feed.1")
    slack.command("new Ada ada@example.com", user=ADMIN, trigger_id="feed.1")  # a Slack retry
    slack.command("new", user=REP)
    view = slack.opened_views()[-1]
    when = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    slack.submit(view, {"name": "Grace Hopper", "email": "grace@navy.mil", "next": when}, user=REP)
    posts = feed_posts(fake_slack)
    assert [p["text"] for p in posts] == ["New lead Ada (local:1)", "New lead Grace Hopper (local:2)"]
    assert f"Created by <@{REP}>" in text_of(posts[1]["blocks"])


def test_a_feed_card_a_dying_run_posted_is_not_posted_again_by_the_run_that_takes_over(
    slack, linked, fake_slack, runtime, dead_pid, monkeypatch
):
    from handlers.notifier import SlackNotifier
    from services.events import LeadCreated

    created: list[LeadCreated] = []
    runtime.service.events.subscribe(lambda event: isinstance(event, LeadCreated) and created.append(event))
    ledger = runtime.store.requests
    monkeypatch.setattr(ledger, "pid", dead_pid)  # the first run's process posts the card ...
    monkeypatch.setattr(ledger, "finish", lambda keys: None)  # ... and dies before its work ends
    slack.command("new Ada ada@example.com", user=ADMIN)
    assert len(feed_posts(fake_slack)) == 1
    monkeypatch.undo()
    notifier = SlackNotifier(runtime.deps)
    with runtime.deps.claims.until_done():  # the run that takes the request over tells the same event again
        notifier(created[0])
    assert [p["text"] for p in feed_posts(fake_slack)] == ["New lead Ada (local:1)"]  # looked for, found: once
    slack.command("new Bob bob@example.com", user=ADMIN)  # a run that lives posts as ever
    assert [p["text"] for p in feed_posts(fake_slack)][1:] == ["New lead Bob (local:2)"]


def test_leads_created_outside_leadbot_are_not_fed(slack, linked, fake_slack):
    local = linked.backends.get("local")
    lead = local.create(NewLead(name="Ada Lovelace", email="ada@example.com"), by="ada")  # as another tool would
    slack.command(f"show {lead.ref}")
    assert feed_posts(fake_slack) == []
