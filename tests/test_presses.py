"""Repeated presses are idempotent in what the user sees: one modal per trigger, one redraw per burst."""

from __future__ import annotations

import time

from bot import slackrequests as sr
from tests.conftest import ADMIN, REP, new_lead

CARD_TS = "1700000000.000100"


def card(slack, linked) -> list[dict]:
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    return slack.last_reply()["blocks"]


def press(slack, blocks, action_id: str, *, user: str = ADMIN, at: float | None = None, trigger: str | None = None):
    """A press of ``action_id`` at Slack's time ``at`` (``action_ts``), as Slack sends it."""
    element, block = sr.find_element(blocks, action_id)
    action = {**sr.button_action(element, block), "action_ts": f"{at if at is not None else time.time():.6f}"}
    n = sr.next_id()
    request = sr.block_actions(
        action,
        user=user,
        trigger_id=trigger or f"{n}.5678.trigger",
        response_url=slack.fake.response_url(f"press{n}"),
        message_ts=CARD_TS,
        message_blocks=blocks,
    )
    return slack.send(request)


def redraws(fake_slack) -> list[dict]:
    return [c.body for c in fake_slack.received("response") if c.name.startswith("press")]


def test_add_note_pressed_five_times_with_one_trigger_opens_one_modal(slack, linked, fake_slack):
    blocks = card(slack, linked)
    now = time.time()
    for n in range(5):
        press(slack, blocks, "lead_add_note", at=now + 3 * n, trigger="same.trigger")  # a burst apart each
    assert len(fake_slack.received("api", "views.open")) == 1
    assert not [r for r in redraws(fake_slack) if "went wrong" in str(r)]


def test_add_note_pressed_five_times_in_a_burst_opens_one_modal(slack, linked, fake_slack):
    blocks = card(slack, linked)
    now = time.time()
    for n in range(5):
        press(slack, blocks, "lead_add_note", at=now + 0.2 * n)
    assert len(fake_slack.received("api", "views.open")) == 1


def test_refresh_pressed_five_times_redraws_once_and_again_after_the_burst(slack, linked, fake_slack):
    blocks = card(slack, linked)
    now = time.time()
    for n in range(5):
        press(slack, blocks, "lead_refresh", at=now + 0.3 * n)
    assert len(redraws(fake_slack)) == 1
    press(slack, blocks, "lead_refresh", at=now + 1.2 + 2.5)  # a while after the last one acted on
    assert len(redraws(fake_slack)) == 2
    press(slack, blocks, "lead_refresh", at=now + 3.7, user=REP)  # someone else's press is their own
    assert len(redraws(fake_slack)) == 3


def test_app_home_refresh_pressed_five_times_publishes_once(slack, linked, fake_slack):
    home = slack.open_home(ADMIN)
    fake_slack.clear()
    now = time.time()
    element, block = sr.find_element(home["blocks"], "lead_home_refresh")
    for n in range(5):
        action = {**sr.button_action(element, block), "action_ts": f"{now + 0.1 * n:.6f}"}
        slack.send(sr.block_actions(action, user=ADMIN, trigger_id=f"h{n}.1.t", home_view=home))
    assert len(fake_slack.received("api", "views.publish")) == 1


def test_presses_that_write_are_each_acted_on(slack, linked, fake_slack):
    blocks = card(slack, linked)
    now = time.time()
    press(slack, blocks, "lead_assign_me", user=REP, at=now)
    press(slack, blocks, "lead_assign_me", user=REP, at=now + 0.1)
    said = [str(r.get("text")) for r in redraws(fake_slack)]
    assert len(said) == 2 and "already" in said[1].lower()  # the second press is answered too
