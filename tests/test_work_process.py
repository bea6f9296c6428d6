"""The work after the ack in its own process, as ``leadbot run`` serves HTTP.

The scenarios imported below run here a second time with the production
executor: the request is acked by the serving process and replayed into the
work process, which writes to the same store and posts to the same fake Slack.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import ADMIN, REP, leads

# One scenario per kind of request (command, button, form, event), plus retries and saturation, and
# generated form submissions (what the worker logs is not seen here: only what it sent to Slack).
from tests.test_app_home import test_opening_the_tab_shows_my_open_leads_due_first  # noqa: F401 - collected again
from tests.test_commands import test_quick_create_posts_a_card_in_channel_and_audits  # noqa: F401
from tests.test_hostile import (
    hostile,  # noqa: F401 - its fixture
    test_view_submissions_with_any_state_and_private_metadata,  # noqa: F401
)
from tests.test_interactions import (  # noqa: F401
    test_assign_to_me_updates_the_card_in_place,
    test_modal_submission_creates_the_lead_and_posts_the_card,
)
from tests.test_requests import (  # noqa: F401
    test_a_saturated_bot_says_busy_in_the_ack_and_takes_nothing_in,
    test_slack_retry_creates_nothing_twice,
)

pytestmark = pytest.mark.work_process


def test_work_runs_in_another_process(bot, linked, fake_slack):
    bot.slack.command("new Ada ada@example.com", user=ADMIN)
    assert bot.executor.process.pid != os.getpid()
    (reply,) = fake_slack.received("response")
    assert reply.body["response_type"] == "in_channel"


def test_a_dead_work_process_is_replaced_and_the_next_request_served(bot, linked, fake_slack):
    dead = bot.executor.process
    dead.kill()
    dead.join()
    bot.slack.command("new Ada ada@example.com", user=ADMIN)
    assert bot.executor.process.pid != dead.pid
    assert len(leads(linked)) == 1
    assert fake_slack.received("response")[-1].body["response_type"] == "in_channel"


@pytest.mark.work_process(threads=1)
def test_work_cut_off_or_queued_in_a_dead_work_process_is_done_by_the_next(bot, linked, fake_slack):
    gate, entered = threading.Event(), threading.Event()
    users_info = fake_slack._users_info

    def stuck(body):
        entered.set()
        gate.wait(10)
        return users_info(body)

    fake_slack._users_info = stuck
    bot.slack.command("whoami", user=ADMIN, wait=False)
    assert entered.wait(10)  # the only work thread is busy on it
    fake_slack._users_info = users_info
    bot.slack.command("new Ada ada@example.com", user=ADMIN, wait=False)  # queued behind it
    dead = bot.executor.process
    dead.kill()
    dead.join()
    gate.set()
    assert bot.executor.wait_idle(10)
    assert bot.executor.process.pid != dead.pid
    assert len(leads(linked)) == 1
    # Both replies arrive once: the queued `new`, and the `whoami` the dead process had claimed
    # and started (its claim is taken over, not taken as "already handled").
    replies = sorted((r.body["response_type"], r.body["text"][:20]) for r in fake_slack.received("response"))
    assert [kind for kind, _ in replies] == ["ephemeral", "in_channel"]
    assert "Ada" in replies[1][1]


def test_shutdown_finishes_the_work_already_acked(bot, linked, fake_slack):
    for n in range(20):
        assert bot.slack.command(f"new Lead{n} l{n}@example.com", user=ADMIN, wait=False).status_code == 200
    bot.stop()
    assert len(leads(linked)) == 20
    assert len(fake_slack.received("response")) == 20


@pytest.mark.parametrize("cut_off_at", ["the assignment DM", "the reply"])
def test_a_worker_killed_after_its_write_does_not_make_it_twice(bot, linked, fake_slack, cut_off_at):
    gate, entered = threading.Event(), threading.Event()
    reply = fake_slack._reply
    where = ("api", "chat.postMessage") if cut_off_at == "the assignment DM" else ("response", None)

    def stuck(kind, name, body):
        if (kind, name if where[1] else None) == where and not gate.is_set():
            entered.set()
            gate.wait(10)  # the lead is in the store; the worker is telling people
        return reply(kind, name, body)

    fake_slack._reply = stuck
    bot.slack.command(f"new Ada ada@example.com owner=<@{REP}>", user=ADMIN, wait=False)
    assert entered.wait(10)
    dead = bot.executor.process
    dead.kill()
    dead.join()
    gate.set()
    assert bot.executor.wait_idle(10)
    assert [lead.name for lead in leads(linked)] == ["Ada"]  # run again, found made: not made twice
    cards = [c.body for c in fake_slack.received("response")]
    assert cards[-1]["response_type"] == "in_channel" and "Ada" in cards[-1]["text"]
    assert bot.journal.depth() == 0


def test_the_work_process_is_tuned(bot, linked, fake_slack):
    bot.slack.command("new Ada ada@example.com", user=ADMIN)  # served: the worker is up and running
    child = bot.executor.process
    lines = Path(f"/proc/{child.pid}/environ").read_text().split("\0")
    environ = dict(line.split("=", 1) for line in lines if "=" in line)
    assert environ["MALLOC_ARENA_MAX"] == "2" and environ["MALLOC_TRIM_THRESHOLD_"] == "131072"
    assert environ["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=0"
    assert os.getpriority(os.PRIO_PROCESS, child.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 5


def test_an_operators_malloc_setting_wins(settings, monkeypatch):
    from bot.workproc import _Child

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    child = _Child.start(settings, 1)
    try:
        environ = Path(f"/proc/{child.pid}/environ").read_text().split("\0")
        assert "MALLOC_ARENA_MAX=4" in environ
        child.close()  # the lifeline closes: the child ends on its own
        child.join(10)
        assert not child.is_alive()
        child.jobs.put((1, None))  # to a child that is gone: nothing raised (its reader sees it die)
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)


def test_sending_work_never_waits_for_a_worker_that_is_not_reading(settings):
    import signal

    from bot.workproc import _Child

    child = _Child.start(settings, 1)
    os.kill(child.pid, signal.SIGSTOP)  # a worker still starting, or stuck: it reads nothing
    try:
        sender = threading.Thread(target=lambda: [child.jobs.put((n, "x" * 10_000)) for n in range(100)])
        sender.start()
        sender.join(5)  # 1 MB: far more than a pipe holds
        assert not sender.is_alive(), "putting work waited for the worker to read it"
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
        child.join(5)
        child.close()


def test_the_work_process_hands_freed_memory_back(bot, linked, fake_slack):
    bot.slack.command("new Ada ada@example.com", user=ADMIN)
    child = bot.executor.process
    names = [p.read_text().strip() for p in Path(f"/proc/{child.pid}/task").glob("*/comm")]
    assert "leadbot-trim" in names


def test_presses_that_open_a_form_are_taken_before_the_work_waiting_ahead_of_them():
    # A form must open within the 3 s its trigger_id lives: behind a backlog of other work it failed in Slack.
    import json
    from urllib.parse import urlencode

    from bot.workproc import ForwardedRequest, JobQueue

    def interaction(kind: str, action_id: str | None = None) -> str:
        payload = {"type": kind, "user": {"id": REP}, "trigger_id": "1.2"}
        if action_id:
            payload["actions"] = [{"action_id": action_id, "value": "local:1"}]
        return urlencode({"payload": json.dumps(payload)})

    waiting = {
        "new": urlencode({"command": "/lead", "text": "new Ada", "user_id": REP}),
        "Refresh": interaction("block_actions", "lead_refresh"),
        "submitted": interaction("view_submission"),
        "Add note": interaction("block_actions", "lead_add_note"),
        "event": json.dumps({"type": "event_callback", "event": {"type": "app_home_opened"}}),
        "shortcut": interaction("message_action"),
        "Log follow-up": interaction("block_actions", "lead_log_follow_up"),
        "not JSON": "payload=%7Bnope",
        "global shortcut": interaction("shortcut"),
    }
    queue = JobQueue()
    for n, body in enumerate(waiting.values()):
        queue.put((n, ForwardedRequest(body, {})))
    queue.put(None)
    names = list(waiting)
    taken = [names[job[0]] for job in iter(queue.get, None)]
    first = ["Add note", "shortcut", "Log follow-up", "global shortcut"]
    assert taken == [*first, "new", "Refresh", "submitted", "event", "not JSON"]
