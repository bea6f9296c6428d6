"""A LeadSquared action that waits for the shared rate budget tells its person it is still under way, once."""

from __future__ import annotations

import pytest

from tests.conftest import REP, bot_settings
from tests.fakes.leadsquared import ACCESS_KEY, SECRET_KEY, FakeLeadSquared
from tests.test_leadsquared_slack import REF, linked  # noqa: F401 - the same people, linked


@pytest.fixture
def lsq_fake():
    fake = FakeLeadSquared(rate_limit=None).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, fake_slack, lsq_fake, monkeypatch):
    # Two calls per 5 s: a card (several calls) must wait for the budget. The tests' waits take no time.
    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config="[backends.leadsquared]\nrate_limit = 2\nrate_window = 5\n",
        leadbot_leadsquared_url=lsq_fake.url,
        leadbot_leadsquared_access_key=ACCESS_KEY,
        leadbot_leadsquared_secret_key=SECRET_KEY,
    )


def test_a_card_held_by_the_rate_budget_says_it_is_still_working_then_arrives(slack, linked):  # noqa: F811
    slack.command(f"show {REF}", user=REP)
    replies = slack.replies()
    notices = [r for r in replies if r["text"].startswith(":hourglass_flowing_sand: Still working")]
    assert len(notices) == 1 and notices[0]["response_type"] == "ephemeral"
    assert "LeadSquared allows 2 calls in 5 s and other actions are ahead" in notices[0]["text"]
    assert replies.index(notices[0]) < len(replies) - 1 and "*Opportunities*" in str(replies[-1]["blocks"])
