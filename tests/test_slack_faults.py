"""Slack's Web API failing: every kind of post Leadbot makes arrives, and arrives once.

429 (with Retry-After) is waited out; a 5xx or a timeout is tried again, after looking
for the message in case Slack posted it anyway; what replaces a card or a view is simply
sent again. The fake Slack records what it showed, whatever it answered.
"""

from __future__ import annotations

import pytest

from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, new_lead

FAULTS = {
    "429 Retry-After": {"status": 429, "error": "ratelimited", "retry_after": 2, "times": 2},
    "500, not posted": {"status": 500, "error": "internal_error"},
    "500, posted": {"status": 500, "error": "internal_error", "deliver": True},
    "timeout, posted": {"status": 200, "error": "ok", "deliver": True, "delay": 1.0},
}


@pytest.fixture
def quick(runtime):
    """The poster's waits take no time (the pace's and the retries'), and a timeout is 0.5 s.

    Not shorter: on a loaded machine a post the fake answers at once could time out too (it then
    lands after the look for it: in CI, one "500, posted" DM arrived twice with 0.2 s).
    """
    poster = runtime.deps.poster
    poster.sleep = lambda seconds: None
    poster.client.timeout = 0.5
    return poster


def posted(fake_slack, channel: str, text: str) -> list[dict]:
    return [m for m in fake_slack.messages.get(channel, []) if text in (m.get("text") or "")]


@pytest.mark.parametrize("fault", FAULTS)
def test_an_assignment_dm_arrives_once(slack, linked, fake_slack, quick, fault):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    ref = new_lead(linked)
    fake_slack.fail("chat.postMessage", **FAULTS[fault])
    slack.command(f"assign {ref} <@{OTHER}>")
    assert len(posted(fake_slack, fake_slack.dm_channel(OTHER), "assigned you")) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_thread_reply_under_a_card_arrives_once(slack, linked, fake_slack, quick, fault):
    new_lead(linked)
    slack.command("show local:1")
    card = slack.last_reply()["blocks"]
    fake_slack.fail("chat.postMessage", **FAULTS[fault])
    slack.click(card, "lead_assign_me", user=REP)
    replies = [m for m in posted(fake_slack, "C0SALES", "took this lead") if m.get("thread_ts")]
    assert len(replies) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_feed_card_arrives_once(slack, linked, fake_slack, runtime, quick, fault):
    runtime.deps.feeds["local"] = "C0FEED"
    fake_slack.fail("chat.postMessage", **FAULTS[fault])
    slack.command("new Ada Lovelace ada@example.com")
    assert len(posted(fake_slack, "C0FEED", "Ada Lovelace")) == 1


@pytest.mark.parametrize("fault", ["429 Retry-After", "500, not posted", "timeout, posted"])
def test_the_app_home_is_published(slack, linked, fake_slack, quick, fault):
    new_lead(linked)
    fake_slack.fail("views.publish", **FAULTS[fault])
    slack.event({"type": "app_home_opened", "user": ADMIN, "channel": "DADMIN", "tab": "home"})
    answered = [c for c in fake_slack.received("api", "views.publish") if c.answer.get("ok")]
    assert answered or FAULTS[fault].get("deliver")  # sent again until Slack took it


@pytest.mark.parametrize("fault", ["429 Retry-After", "500, not posted", "500, posted"])
def test_a_card_redrawn_in_place_is_shown(slack, linked, fake_slack, quick, fault):
    new_lead(linked)
    slack.command("show local:1")
    card = slack.last_reply()["blocks"]
    fake_slack.fail("response", **FAULTS[fault])
    slack.click(card, "lead_assign_me", user=REP)
    redrawn = [body for body in fake_slack.shown if body.get("replace_original") in (True, "true")]
    assert redrawn  # replacing a card twice shows it once


def test_a_new_reply_whose_answer_was_lost_is_not_sent_twice(slack, linked, fake_slack, quick, caplog):
    fake_slack.fail("response", status=500, error="internal_error", deliver=True)
    slack.command("whoami")
    assert len(fake_slack.shown) == 1  # shown, and not shown again: a 500 may hide a reply Slack showed
    fake_slack.fail("response", status=429, error="ratelimited", retry_after=1)
    slack.command("whoami")
    assert len(fake_slack.shown) == 2  # a 429 was not shown: sent again


def test_a_post_that_cannot_be_looked_for_is_not_sent_again_and_is_logged(slack, linked, fake_slack, quick, caplog):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    ref = new_lead(linked)
    fake_slack.fail("chat.postMessage", status=500, error="internal_error", deliver=True)
    fake_slack.fail("conversations.history", status=500, error="internal_error")
    slack.command(f"assign {ref} <@{OTHER}>")
    assert len(posted(fake_slack, fake_slack.dm_channel(OTHER), "assigned you")) == 1
    assert len(fake_slack.received("api", "chat.postMessage")) == 1
    assert any("not sent" in r.getMessage() and "assigned you" in r.getMessage() for r in caplog.records)


def test_a_reply_is_sent_again_after_a_refused_connection_and_a_card_after_a_timeout():
    from urllib.error import URLError

    from handlers.slackio import RetriedRespond

    def failing(*errors):
        sent = []

        def respond(**reply):
            if errors[len(sent)] is not None:
                sent.append("failed")
                raise errors[len(sent) - 1]
            sent.append(reply)

        return respond, sent

    respond, sent = failing(URLError(ConnectionRefusedError()), None)
    RetriedRespond(respond, lambda seconds: None)(text="hello")
    assert sent == ["failed", {"text": "hello"}]  # refused: never reached Slack
    respond, sent = failing(TimeoutError(), None)
    RetriedRespond(respond, lambda seconds: None)(text="hello")
    assert sent == ["failed"]  # may have been shown: not sent twice
    respond, sent = failing(TimeoutError(), None)
    RetriedRespond(respond, lambda seconds: None)(text="card", replace_original=True)
    assert sent == ["failed", {"text": "card", "replace_original": True}]  # a card replaced twice shows once


@pytest.mark.parametrize("target", ["response", "chat.postMessage"])
def test_a_connection_reset_after_slack_took_a_post_does_not_post_it_twice(slack, linked, fake_slack, quick, target):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    ref = new_lead(linked)
    fake_slack.fail(target, deliver=True, drop=True)
    slack.command(f"assign {ref} <@{OTHER}>")
    assert len(posted(fake_slack, fake_slack.dm_channel(OTHER), "assigned you")) == 1
    assert len([body for body in fake_slack.shown if "assigned" in str(body.get("text"))]) == 1


@pytest.mark.parametrize("status", [404, 500])
def test_a_reply_that_is_finally_lost_is_logged_with_what_it_said_and_not_its_url(
    slack, linked, fake_slack, quick, caplog, status
):
    fake_slack.fail("response", status=status, error="expired_url", times=5)
    slack.command("whoami")
    assert not fake_slack.shown
    lost = [r.getMessage() for r in caplog.records if "reply not sent" in r.getMessage()]
    assert lost and f"HTTP {status}" in lost[0] and "Linked as" in lost[0]
    assert not [r for r in caplog.records if "/response/" in r.getMessage()]
