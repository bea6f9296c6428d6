"""Daily follow-up digests: the right instant in each time zone, exactly once, catch-up, limits, and the buttons.

The clock is the service's, set by each test; nothing sleeps.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.app import build_digest_scheduler, build_runtime
from services.errors import BackendGone
from services.leads import Actor
from services.reminders import remind_instant
from tests.conftest import ADMIN, OTHER, REP, Clock, activity, bot_settings, new_lead, unreadable_backend
from tests.slack import text_of

ADMIN_ACTOR = Actor(slack_user=ADMIN, is_admin=True)


@pytest.fixture
def settings(tmp_path, fake_slack, monkeypatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_digest_rate=1000)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 8, 0, 0, tzinfo=UTC))  # a Sunday: US clocks go forward at 2am


def scheduler_of(runtime):
    built = build_digest_scheduler(runtime)
    built.sender.deps.poster.sleep = lambda seconds: None
    return built


@pytest.fixture
def scheduler(runtime):
    return scheduler_of(runtime)


@pytest.fixture
def reps(service, fake_slack):
    """ana (Asia/Kolkata), bob (America/New_York), each with one lead overdue by a day; ada has none due."""
    fake_slack.add_user("UCHATHAM", "cat", "Pacific/Chatham")
    for user, staff in ((ADMIN, "ada"), (REP, "ana"), (OTHER, "bob"), ("UCHATHAM", "cat")):
        service.people.link(ADMIN_ACTOR, user, staff)
    return service


def due_lead(service, owner: str, name: str, when: datetime) -> str:
    return new_lead(service, name, by=owner, next_follow_up=when)


def digests(fake_slack, user: str | None = None) -> list[dict]:
    """Digest DMs as delivered (by their metadata), per recipient if given."""
    channel = fake_slack.dm_channel(user) if user else None
    return [
        m
        for c, messages in fake_slack.messages.items()
        if channel in (None, c)
        for m in messages
        if (m.get("metadata") or {}).get("event_type") == "leadbot_digest"
    ]


def posts(fake_slack, user: str) -> list[dict]:
    return [c.body for c in fake_slack.received("api", "chat.postMessage") if c.body.get("channel") == user]


# -- when -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "utc"),
    [
        ("America/New_York", date(2026, 3, 7), datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),  # EST, -5
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),  # the DST day: EDT, -4
        ("America/New_York", date(2026, 11, 1), datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),  # back to EST
        ("Asia/Kolkata", date(2026, 3, 8), datetime(2026, 3, 8, 3, 30, tzinfo=UTC)),  # +5:30
        ("Pacific/Chatham", date(2026, 7, 1), datetime(2026, 6, 30, 20, 15, tzinfo=UTC)),  # +12:45
        ("Pacific/Chatham", date(2026, 1, 15), datetime(2026, 1, 14, 19, 15, tzinfo=UTC)),  # +13:45 (summer)
    ],
)
def test_nine_oclock_is_the_right_instant_in_each_zone(tz, day, utc):
    assert remind_instant(day, time(9, 0), tz) == utc


def test_a_time_skipped_by_the_dst_change_moves_forward():
    # 02:30 does not exist in New York on 8 March 2026; the digest comes at 03:30 EDT instead.
    assert remind_instant(date(2026, 3, 8), time(2, 30), "America/New_York") == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_each_owner_gets_the_digest_at_nine_their_time(scheduler, reps, clock, fake_slack):
    # Due at 06:00 UTC on the 8th: the 8th in all three zones (still the 7th in New York until 05:00 UTC).
    due = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    due_lead(reps, REP, "Kolkata Lead", due)
    due_lead(reps, OTHER, "New York Lead", due)
    due_lead(reps, "UCHATHAM", "Chatham Lead", due)

    clock.at = datetime(2026, 3, 7, 19, 14, tzinfo=UTC)  # Chatham (+13:45 in March): 08:59 on the 8th
    scheduler.run_due()
    assert digests(fake_slack) == []
    clock.at = datetime(2026, 3, 7, 19, 15, tzinfo=UTC)  # 09:00 in Chatham
    scheduler.run_due()
    assert len(digests(fake_slack, "UCHATHAM")) == 1 and len(digests(fake_slack)) == 1

    clock.at = datetime(2026, 3, 8, 3, 29, tzinfo=UTC)
    scheduler.run_due()
    assert digests(fake_slack, REP) == []
    clock.at = datetime(2026, 3, 8, 3, 30, tzinfo=UTC)  # 09:00 in Kolkata
    scheduler.run_due()
    assert len(digests(fake_slack, REP)) == 1

    clock.at = datetime(2026, 3, 8, 12, 59, tzinfo=UTC)  # 08:59 EDT on the DST day
    scheduler.run_due()
    assert digests(fake_slack, OTHER) == []
    clock.at = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT
    scheduler.run_due()
    assert len(digests(fake_slack, OTHER)) == 1
    assert digests(fake_slack, ADMIN) == []  # nothing due: no DM
    assert len(digests(fake_slack)) == 3


def test_the_digest_lists_most_overdue_first_capped_at_ten(scheduler, reps, clock, fake_slack):
    clock.at = datetime(2026, 3, 8, 3, 30, tzinfo=UTC)
    for hours in range(12):
        due_lead(reps, REP, f"Lead {hours}", clock.at - timedelta(hours=hours + 1))
    due_lead(reps, REP, "Later Today", clock.at + timedelta(hours=6))  # 15:00 in Kolkata
    due_lead(reps, REP, "Tomorrow", clock.at + timedelta(days=1))
    scheduler.run_due()
    (message,) = posts(fake_slack, REP)
    shown = text_of(message["blocks"])
    assert "Follow-ups for Sun 8 Mar" in shown
    assert ":alarm_clock: *12* overdue · *1* due today · local 13" in shown
    names = [
        b["text"]["text"].split("*")[1]
        for b in message["blocks"]
        if b["type"] == "section" and "`local:" in b["text"]["text"]
    ]
    assert names == [f"Lead {h}" for h in range(11, 1, -1)]  # the most overdue first, ten of them
    assert "3 more — `/lead list mine due`" in shown
    assert "Tomorrow" not in shown
    buttons = [e["text"]["text"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[:3] == ["Done", "Snooze to tomorrow", "Add note"]
    assert len(message["blocks"]) <= 50


# -- exactly once ---------------------------------------------------------------------------


def test_a_restart_after_sending_sends_nothing_again(settings, scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    scheduler.run_due()
    restarted = scheduler_of(build_runtime(settings, clock=clock))
    restarted.run_due()
    clock.at += timedelta(hours=10)
    restarted.run_due()
    assert len(digests(fake_slack, REP)) == 1


def test_down_across_nine_catches_up_the_same_day_only(scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)  # 15:30 in Kolkata: back after being down at 09:00
    scheduler.run_due()
    assert len(digests(fake_slack, REP)) == 1
    fake_slack.messages.clear()
    # Down all of the 9th, back on the 10th at 08:00 Kolkata: the 9th's digest is not sent late.
    clock.at = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    scheduler.run_due()
    assert digests(fake_slack, REP) == []
    clock.at = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)
    scheduler.run_due()
    (digest,) = digests(fake_slack, REP)
    assert digest["metadata"]["event_payload"]["day"] == "2026-03-10"


def test_two_schedulers_on_one_database_send_one_digest(settings, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    schedulers = []
    for _ in range(2):
        schedulers.append(scheduler_of(build_runtime(settings, clock=clock)))
    start = threading.Barrier(2)

    def run(s):
        start.wait()
        s.run_due()

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(digests(fake_slack, REP)) == 1
    assert len(posts(fake_slack, REP)) == 1


def test_a_post_that_reached_slack_but_failed_is_not_sent_twice(scheduler, reps, clock, fake_slack, slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    fake_slack.fail("chat.postMessage", status=500, error="internal_error", deliver=True)
    assert scheduler.run_due()["sent"] == 1  # looked for by its metadata before a second try: found
    assert fake_slack.received("api", "conversations.history")
    scheduler.run_due()
    assert len(digests(fake_slack, REP)) == 1
    assert len(posts(fake_slack, REP)) == 1
    (message,) = posts(fake_slack, REP)
    slack.click(message["blocks"], "lead_digest_snooze", value="local:1", user=REP, channel="DREP1")
    assert "Nothing left for today" in text_of(slack.last_reply()["blocks"])  # the digest Slack has, redrawn


def test_a_post_that_timed_out_after_delivery_is_not_sent_twice(scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    scheduler.sender.deps.poster.client.timeout = 0.2
    fake_slack.fail("chat.postMessage", status=200, error="ok", deliver=True, delay=1.0)
    assert scheduler.run_due()["sent"] == 1  # the client gave up waiting; Slack had it
    scheduler.run_due()
    assert len(digests(fake_slack, REP)) == 1 and len(fake_slack.received("api", "chat.postMessage")) == 1


def test_a_post_that_failed_before_reaching_slack_is_sent_again(scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    fake_slack.fail("chat.postMessage", status=500, error="internal_error")
    assert scheduler.run_due()["sent"] == 1  # not found in the DM: sent again at once
    assert len(digests(fake_slack, REP)) == 1 and len(fake_slack.received("api", "chat.postMessage")) == 2


def test_a_post_whose_fate_cannot_be_looked_up_is_settled_on_the_next_run(scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    fake_slack.fail("chat.postMessage", status=500, error="internal_error", deliver=True)
    fake_slack.fail("conversations.history", status=500, error="internal_error")
    assert scheduler.run_due()["unknown"] == 1  # delivered, but Leadbot could not tell: not sent again
    assert len(digests(fake_slack, REP)) == 1
    assert scheduler.run_due() == {"found": 1}
    assert len(digests(fake_slack, REP)) == 1


def test_a_429_is_waited_out_and_nothing_is_lost(scheduler, reps, clock, fake_slack):
    for user in (REP, OTHER, "UCHATHAM"):
        due_lead(reps, user, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 9, 3, 45, tzinfo=UTC)  # past 09:00 for all three (23:45 on the 8th in New York)
    fake_slack.fail("chat.postMessage", status=429, error="ratelimited", retry_after=3, times=2)
    waited = []
    poster = scheduler.sender.deps.poster
    poster.sleep = waited.append
    outcome = scheduler.run_due()
    assert outcome["sent"] == 3
    assert len(digests(fake_slack)) == 3
    assert poster.rate_limited == 2 and 3.0 in [round(w) for w in waited]


def test_an_unreachable_backend_is_named_and_the_rest_still_sent(scheduler, reps, clock, fake_slack):
    unreadable_backend(reps, REP, BackendGone("the REST leads API did not answer"))
    due_lead(reps, REP, "Local Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    scheduler.run_due()
    (message,) = posts(fake_slack, REP)
    shown = text_of(message["blocks"])
    assert "Local Lead" in shown and "Could not read leadsapi: the REST leads API did not answer" in shown


def test_a_backend_failing_with_a_bug_is_logged_and_the_rest_still_sent(scheduler, reps, clock, fake_slack, caplog):
    unreadable_backend(reps, REP, KeyError("statuses"))  # not a LeadError: a bug, or a reply nobody expected
    due_lead(reps, REP, "Local Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    with caplog.at_level("ERROR", logger="leadbot"):
        scheduler.run_due()
    (message,) = posts(fake_slack, REP)
    shown = text_of(message["blocks"])
    assert "Local Lead" in shown and "Could not read leadsapi: Leadbot could not read it (see the log)" in shown
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)


def test_unlinked_and_switched_off_owners_get_nothing(scheduler, reps, clock, fake_slack, slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    slack.command("remind off", user=REP)
    clock.at = datetime(2026, 3, 8, 23, 0, tzinfo=UTC)
    scheduler.run_due()
    assert digests(fake_slack) == []
    assert "STRANGER" not in str(fake_slack.messages)


# -- /lead remind ---------------------------------------------------------------------------


def test_remind_at_moves_the_digest(scheduler, reps, clock, fake_slack, slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    slack.command("remind at 07:15", user=REP)
    assert "will come at 07:15, your time" in slack.last_reply()["text"]
    clock.at = datetime(2026, 3, 8, 1, 44, tzinfo=UTC)  # 07:14 in Kolkata
    scheduler.run_due()
    assert digests(fake_slack, REP) == []
    clock.at = datetime(2026, 3, 8, 1, 45, tzinfo=UTC)
    scheduler.run_due()
    assert len(digests(fake_slack, REP)) == 1


@pytest.mark.parametrize("text", ["remind at 25:00", "remind at 13pm", "remind sometimes", "remind at"])
def test_remind_mistakes_are_explained(slack, reps, text):
    slack.command(text, user=REP)
    said = slack.last_reply()["text"]
    assert said.startswith(":warning:") and "/lead remind on|off|at HH:MM|now" in said


def test_remind_now_sends_todays_digest_and_counts_it(scheduler, reps, clock, fake_slack, slack):
    due_lead(reps, REP, "Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)  # 06:30 in Kolkata
    slack.command("remind now", user=REP)
    assert slack.last_reply()["text"] == "Today's digest is in your DMs from Leadbot."
    assert len(digests(fake_slack, REP)) == 1
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)  # 09:30: the scheduled one does not come too
    scheduler.run_due()
    slack.command("remind now", user=REP)
    assert "Today's digest was already sent" in slack.last_reply()["text"]
    assert len(digests(fake_slack, REP)) == 1


def test_remind_now_with_nothing_due(slack, reps, clock):
    slack.command("remind now", user=REP)
    assert "Nothing is due today" in slack.last_reply()["text"]


def test_the_setting_shows_on_the_app_home(slack, reps):
    slack.command("remind at 08:30", user=REP)
    home = slack.open_home(REP)
    assert "*Daily follow-up digest* on at 08:30" in text_of(home["blocks"])


# -- the buttons ----------------------------------------------------------------------------


@pytest.fixture
def digest(scheduler, reps, clock, fake_slack):
    due_lead(reps, REP, "First Lead", clock.at - timedelta(days=2))
    due_lead(reps, REP, "Second Lead", clock.at - timedelta(days=1))
    clock.at = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    scheduler.run_due()
    (message,) = posts(fake_slack, REP)
    return message["blocks"]


def test_snooze_moves_the_lead_to_tomorrow_at_nine_and_redraws_the_digest(slack, reps, digest, clock):
    slack.click(digest, "lead_digest_snooze", value="local:1", user=REP, channel="DREP1")
    assert reps.get("local:1").next_follow_up == datetime(2026, 3, 9, 3, 30, tzinfo=UTC)  # 09:00 Kolkata
    redrawn = slack.last_reply()
    assert redrawn["replace_original"] is True
    shown = text_of(redrawn["blocks"])
    assert "First Lead" not in shown and "Second Lead" in shown and "snoozed `local:1`" in shown
    assert "Follow-ups for Sun 8 Mar" in shown  # still the digest, not a card


def test_done_logs_a_follow_up_asks_for_the_next_date_and_redraws(slack, reps, digest, clock):
    slack.click(digest, "lead_log_follow_up", value="local:2", user=REP, channel="DREP1")
    (view,) = slack.opened_views()
    assert (
        view["callback_id"] == "lead_follow_up"
        and [b["block_id"] for b in view["blocks"] if b["type"] == "input"][-1] == "next"
    )
    nxt = int((clock.at + timedelta(days=3)).timestamp())
    slack.submit(view, {"notes": "spoke to her", "next": nxt}, user=REP)
    assert activity(reps, "local:2") == [("follow_up", "follow-up: spoke to her")]
    redrawn = slack.last_reply()
    assert redrawn["replace_original"] is True
    shown = text_of(redrawn["blocks"])
    assert "Second Lead" not in shown and "First Lead" in shown and "logged a follow-up" in shown


def test_add_note_from_the_digest_keeps_the_lead_and_redraws(slack, reps, digest):
    slack.click(digest, "lead_add_note", value="local:1", user=REP, channel="DREP1")
    (view,) = slack.opened_views()
    slack.submit(view, {"text": "voicemail full"}, user=REP)
    assert activity(reps, "local:1") == [("note", "voicemail full")]
    shown = text_of(slack.last_reply()["blocks"])
    assert "First Lead" in shown and "added a note" in shown and "Follow-ups for" in shown


def test_the_last_lead_done_says_so(slack, reps, digest):
    slack.click(digest, "lead_digest_snooze", value="local:1", user=REP, channel="DREP1")
    slack.click(digest, "lead_digest_snooze", value="local:2", user=REP, channel="DREP1")
    assert "Nothing left for today" in text_of(slack.last_reply()["blocks"])


def test_old_request_keys_are_pruned_by_the_daily_run(scheduler, reps, clock, runtime):
    claims = runtime.deps.claims
    claims.claim("a request")
    clock.at = datetime.now(UTC) + timedelta(hours=1)
    scheduler.run_due()
    assert claims.claim("a request") is False  # an hour on: a Slack retry would still be refused
    clock.at += timedelta(days=2)
    scheduler.run_due()
    assert claims.claim("a request") is True  # forgotten: no retry or double click comes this late


def test_a_failed_users_info_keeps_the_known_time_zone_and_asks_again(scheduler, reps, clock, fake_slack):
    scheduler.run_due()
    assert scheduler.reminders.settings(REP).tz == "Asia/Kolkata"
    clock.at += timedelta(days=1, minutes=1)
    fake_slack.fail("users.info", error="internal_error", times=10)
    scheduler.run_due()
    assert scheduler.reminders.settings(REP).tz == "Asia/Kolkata"  # not replaced by a guess
    assert scheduler.sender.deps.timezones.needs_check(REP)  # and asked for again next time


def test_snooze_pressed_by_someone_else_uses_the_owners_zone_and_reminder_time(slack, reps, digest, clock):
    slack.command("remind at 08:30", user=REP)  # ana, the owner, in Kolkata
    slack.click(digest, "lead_digest_snooze", value="local:1", user=OTHER, channel="C0SALES")  # bob, New York
    assert reps.get("local:1").next_follow_up == datetime(2026, 3, 9, 3, 0, tzinfo=UTC)  # 08:30 Kolkata


@pytest.mark.parametrize(("typed", "expected"), [("7pm", "19:00"), ("7:30 am", "07:30"), ("noon", "12:00")])
def test_remind_at_takes_the_times_when_takes(slack, reps, typed, expected):
    slack.command(f"remind at {typed}", user=REP)
    assert f"will come at {expected}, your time" in slack.last_reply()["text"]
