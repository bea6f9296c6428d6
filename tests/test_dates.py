"""Dates read as the person means them (services/when.py's rules), in commands as Slack sends them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.audit import Actor
from services.when import parse_when
from tests.conftest import ADMIN, OTHER, REP, bot_settings, new_lead
from tests.slack import text_of

# Wednesday 2 December 2026, 14:30 in London (UTC in winter).
NOW = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "tz", "expected"),
    [
        ("03/04/2027", "Europe/London", "2027-04-03 09:00"),  # day first for a UK rep
        ("03/04/2027", "Asia/Kolkata", "2027-04-03 09:00"),
        ("03/04/2027", "America/New_York", "2027-03-04 09:00"),  # month first in the US
        ("tonight", "Europe/London", "2026-12-02 19:00"),
        ("eod", "Europe/London", "2026-12-02 17:00"),
        ("tmrw", "Europe/London", "2026-12-03 09:00"),
        ("tmrw 3pm", "Europe/London", "2026-12-03 15:00"),
        ("in a week", "Europe/London", "2026-12-09 09:00"),  # a span of days means 09:00, like next week
        ("in 3 days", "Europe/London", "2026-12-05 09:00"),
        ("in 2 hours", "Europe/London", "2026-12-02 16:30"),  # a span of hours keeps the clock
        ("fri", "Europe/London", "2026-12-04 09:00"),
    ],
)
def test_the_date_table(typed, tz, expected):
    got = parse_when(typed, tz, NOW).astimezone(ZoneInfo(tz))
    assert got.strftime("%Y-%m-%d %H:%M") == expected


def test_next_week_and_in_a_week_follow_one_rule():
    assert parse_when("next week", "Europe/London", NOW).hour == 9
    assert parse_when("in a week", "Europe/London", NOW).hour == 9


def test_leadbot_date_order_overrides_the_zone():
    got = parse_when("03/04/2027", "America/New_York", NOW, order="DMY")
    assert (got.month, got.day) == (4, 3)


@pytest.mark.parametrize("typed", ["10", "7", "2027"])
def test_a_bare_number_is_refused(typed):
    with pytest.raises(Exception, match="alone could be a day, an hour or a month"):
        parse_when(typed, "Europe/London", NOW)


def test_a_past_date_is_refused_showing_how_it_was_read():
    with pytest.raises(Exception, match=r"reads as Wed 25 Nov 2026 09:00 \(Europe/London\), which has passed"):
        parse_when("last week", "Europe/London", NOW, future=True)
    with pytest.raises(Exception, match="which has passed"):
        parse_when("tonight", "Europe/London", NOW.replace(hour=21), future=True)


def reply_text(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def test_commands_refuse_a_past_next_follow_up_as_the_form_does(slack, linked):
    ref = new_lead(linked)
    slack.command(f'followup {ref} next="last week" called', user=REP)
    assert "which has passed: give a time ahead" in reply_text(slack)
    slack.command('new Grace Hopper grace@example.com next="yesterday"', user=REP)
    assert "which has passed" in reply_text(slack)
    slack.command(f"followup {ref} next=10 called", user=REP)
    text = reply_text(slack)
    assert "can't read" in text or "alone could be" in text
    slack.command(f"followup {ref} next=tmrw called her", user=REP)
    assert linked.get(ref).next_follow_up > datetime.now(UTC)


def test_closing_a_lead_drops_its_next_follow_up_and_shows_no_overdue(slack, linked):
    from datetime import timedelta

    ref = new_lead(linked, next_follow_up=datetime.now(UTC) + timedelta(days=1))
    linked.change_status(Actor(slack_user=ADMIN, is_admin=True), ref, "won")
    assert linked.get(ref).next_follow_up is None
    slack.command(f"show {ref}", user=REP)
    assert "Next follow-up" not in reply_text(slack) and "overdue" not in reply_text(slack)


@pytest.fixture
def dmy_settings(tmp_path, fake_slack, monkeypatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_date_order="dmy")


def test_the_setting_is_read_and_checked(dmy_settings, tmp_path, fake_slack, monkeypatch):
    from bot.config import ConfigError

    assert dmy_settings.leadbot_date_order == "DMY"
    with pytest.raises(ConfigError, match="LEADBOT_DATE_ORDER is invalid .*: expected DMY"):
        bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_date_order="DDMM")


def test_an_american_rep_and_a_british_one_read_the_same_text_their_own_way(slack, linked):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")  # bob is in New York
    ref = new_lead(linked)
    slack.command(f"followup {ref} next=03/04/2099", user=OTHER)
    assert (linked.get(ref).next_follow_up.month, linked.get(ref).next_follow_up.day) == (3, 4)
    slack.command(f"followup {ref} next=03/04/2099", user=ADMIN)  # ada is in London
    assert (linked.get(ref).next_follow_up.month, linked.get(ref).next_follow_up.day) == (4, 3)
