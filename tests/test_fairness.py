"""Fair under load: one person's hung Slack call delays nobody else's reply.

Through the real server: some requests' replies (or Web API posts) hang at the fake
Slack, held open until the test ends; other people's commands sent after them are
answered while those are still hanging.
"""

from __future__ import annotations

import pytest

from bot import slackrequests as sr
from handlers import slackio
from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, new_lead

HUNG = 6  # more than the work slots (4): before, every worker was stuck and everyone waited
OTHERS = 8


@pytest.fixture
def hanging(monkeypatch, runtime, fake_slack):
    """Slack calls that hang stay hung (no timeout gives up) until the test ends."""
    monkeypatch.setattr(slackio, "RESPONSE_URL_TIMEOUT", 120)
    runtime.deps.client.timeout = 120
    yield
    fake_slack.release.set()


def command(bot, fake_slack, text: str, user: str, key: str) -> None:
    request = sr.slash_command(text, user=user, response_url=fake_slack.response_url(key), trigger_id=f"{key}.1.t")
    bot.slack.send(request, wait=False)


def others_answered(bot, fake_slack) -> None:
    for n in range(OTHERS):
        command(bot, fake_slack, "whoami", ADMIN, f"other{n}")

    def answered(calls) -> bool:
        return sum(c.kind == "response" and c.name.startswith("other") and c.answer.get("ok") for c in calls) == OTHERS

    assert fake_slack.wait_for(answered, timeout=10), "other people's replies waited for the hung ones"


def test_hung_replies_delay_no_one_else(bot, linked, fake_slack, hanging):
    for n in range(HUNG):
        fake_slack.fail(f"hung{n}", delay=120)
        command(bot, fake_slack, "whoami", REP, f"hung{n}")
    assert fake_slack.wait_for(lambda calls: sum(c.name.startswith("hung") for c in calls) == HUNG)
    others_answered(bot, fake_slack)
    assert not [c for c in fake_slack.received("response") if c.name.startswith("hung") and c.answer.get("ok")]


def test_hung_web_api_posts_delay_no_one_else(bot, linked, fake_slack, hanging):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    refs = [new_lead(linked, f"Lead {n}") for n in range(HUNG)]
    fake_slack.fail("chat.postMessage", delay=120, times=HUNG)  # the new owner's DM hangs
    for n, ref in enumerate(refs):
        command(bot, fake_slack, f"assign {ref} <@{OTHER}>", ADMIN, f"assign{n}")
    assert fake_slack.wait_for(lambda calls: sum(c.name == "chat.postMessage" for c in calls) == HUNG)
    others_answered(bot, fake_slack)


@pytest.fixture
def slow_backend_settings(tmp_path, fake_slack, api_fake, monkeypatch):
    from tests.conftest import leadsapi_settings

    config = (
        '[channels]\nC0SALES = "leadsapi"\n\n[backends.leadsapi]\nbusiness = [1]\ntimeout = 60\n'
        'defaults = { photo = "p.png", location = "-", position = "-", description = "-", company = "-" }\n'
    )
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch, config=config)


@pytest.fixture
def settings(request, tmp_path, fake_slack, monkeypatch):
    if "api_fake" in request.fixturenames:
        return request.getfixturevalue("slow_backend_settings")
    from tests.conftest import bot_settings

    return bot_settings(tmp_path, fake_slack, monkeypatch)


def test_hung_backend_calls_delay_no_one_else(bot, fake_slack, api_fake):
    from bot.loopback import Failure

    api_fake.fail("GET", "/leads/{id}", Failure("hang", hold=60, times=HUNG))  # until the test ends
    try:
        for n in range(HUNG):
            command(bot, fake_slack, f"show leadsapi:{n + 1}", REP, f"slow{n}")
        assert api_fake.wait_until(lambda: len(api_fake.requests("GET")) >= HUNG, timeout=10)
        others_answered(bot, fake_slack)
        assert not [c for c in fake_slack.received("response") if c.name.startswith("slow")]  # still waiting
    finally:
        api_fake.release.set()
