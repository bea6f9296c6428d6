"""Whatever text follows /lead, the app acks with 200 and never lets an exception escape."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN
from tests.slack import DESIGN_SUBCOMMANDS

WORDS = st.sampled_from(
    [
        *DESIGN_SUBCOMMANDS,
        *("mine", "due", "me", "local:1", "local:x", "capillary:19", "1", "<@UREP1|ana>", "@bob"),
        *("next=tomorrow", 'next="in 3 days"', "owner=me", "status=won", "backend=local", "reason=x", "x=y"),
        *("=", '"', "“quoted”", "'", "\\", "<", ">", "|", "ada@example.com", "+919895012345", "won", "lost"),
        *("payload", "payload=x", "ssl_check=1", "{x}", "{0}"),
    ]
)
TEXT = st.one_of(
    st.lists(WORDS, max_size=8).map(" ".join),
    st.text(max_size=80),
    st.lists(st.one_of(WORDS, st.text(max_size=10)), max_size=6).map(" ".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_any_text_is_acked_and_answered_without_internal_errors(slack, linked, caplog, text):
    caplog.clear()
    slack.fake.clear()  # so that only this example's replies are read
    with caplog.at_level(logging.ERROR, logger="leadbot"):
        response = slack.command(text, user=ADMIN)
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    said = [c.body for c in slack.fake.received("response")] + ([response.text] if response.text else [])
    assert said or slack.opened_views(), "neither the ack nor a reply nor a form said anything"
    assert "something went wrong" not in str(said).lower()
