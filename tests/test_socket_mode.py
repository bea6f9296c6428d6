"""Socket Mode against a fake Slack with a real WebSocket (tests/fakes/socket_slack.py).

The connection faults run Leadbot's real runner (bot/socketmode.py) in this process, in front of
the real app and journal; start-up, a refused token and the stop run the real ``leadbot run``.
No test waits on a clock: each waits for what Slack would see (a new link, an ack, a close).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import build_app, build_runtime
from bot.executor import TrackedExecutor
from bot.journal import Journal, journal_path
from bot.socketmode import AppTokenRefused, OpenBudget, SocketModeRunner, as_http, envelope_handler
from tests.conftest import ADMIN, REP, new_lead
from tests.fakes.socket_slack import APP_TOKEN, BOT_TOKEN, CLOSING, SocketSlack

LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}
PING = 1.0  # the runner's ping interval in these tests: a silent link is found within it


class SocketBot:
    """The runner on an event loop in a thread of its own, as ``leadbot run`` runs it on the main one."""

    def __init__(self, app, executor, journal: Journal, slack: SocketSlack, **options) -> None:
        self.loop = asyncio.new_event_loop()
        self.executor = executor
        self.handle = envelope_handler(app, executor, journal)
        self.runner = SocketModeRunner(APP_TOKEN, slack.api_url, self.handle, ping_interval=PING, **options)
        self.stopped: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="socket-bot", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self.stopped = asyncio.Event()
            await self.runner.run(self.stopped)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.thread.is_alive() and self.stopped is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


@pytest.fixture
def socket_slack(fake_slack) -> Iterator[SocketSlack]:
    with SocketSlack(web_api=fake_slack.url) as fake:
        yield fake


@pytest.fixture
def socket_bot(settings, socket_slack, journal) -> Iterator[SocketBot]:
    executor = TrackedExecutor(journal=journal)
    runtime = build_runtime(settings, background=executor, sleep=lambda seconds: None)
    bot = SocketBot(build_app(runtime), executor, journal, socket_slack)
    assert socket_slack.wait_link(1), "the bot never connected"
    yield bot
    bot.stop()
    executor.shutdown()
    runtime.close()


def probe(slack: SocketSlack) -> None:
    """A command sent after a fault is acked, with its answer, on a link that said hello after the fault."""
    links = len(slack.links)
    envelope = slack.command("help")
    ack = slack.wait_ack(envelope)
    assert ack is not None, "the bot is not listening"
    assert "/lead new" in ack.payload["text"]
    assert ack.link == links  # the newest link


def commands(slack: SocketSlack, count: int = 5) -> list:
    return [slack.command("help") for _ in range(count)]


# -- the faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
def test_a_disconnect_message_opens_a_new_link_before_the_old_one_goes(socket_bot, socket_slack, reason):
    before = commands(socket_slack)
    old = socket_slack.disconnect(reason, close_after=0.3)  # Slack retires the old link itself, a little later
    assert socket_slack.wait_link(2)
    assert socket_slack.wait_acked(before)  # read before the refresh, acked (on either link)
    probe(socket_slack)
    assert socket_slack.wait_closed(old)
    probe(socket_slack)  # the old link closing is no reason for another
    assert len(socket_slack.open_calls) == 2 and len(socket_slack.live_links()) == 1
    assert socket_slack.never_acked() == []


def test_a_close_frame_is_answered_and_a_new_link_opened(socket_bot, socket_slack):
    before = commands(socket_slack)
    old = socket_slack.close(1001, "going away")
    assert socket_slack.wait_link(2)
    assert old.client_close_code is not None  # answered with a close frame, not just dropped
    assert socket_slack.wait_acked(before)
    probe(socket_slack)
    assert len(socket_slack.open_calls) == 2 and socket_slack.never_acked() == []


def test_a_fin_without_a_close_frame(socket_bot, socket_slack):
    before = commands(socket_slack)
    socket_slack.fin()
    assert socket_slack.wait_link(2)
    # Read before the FIN: acked on the old link if it was still writable, else on the new one.
    assert socket_slack.wait_acked(before)
    probe(socket_slack)
    assert len(socket_slack.open_calls) == 2 and socket_slack.never_acked() == []


def test_a_reset_connection(socket_bot, socket_slack):
    socket_slack.rst()
    assert socket_slack.wait_link(2)
    probe(socket_slack)
    assert len(socket_slack.open_calls) == 2


def test_a_silent_peer_is_left_within_the_ping_interval(socket_bot, socket_slack):
    socket_slack.go_silent()
    assert socket_slack.wait_link(2, timeout=PING + 5)
    probe(socket_slack)
    assert len(socket_slack.open_calls) == 2


def test_a_peer_that_stops_answering_pings_is_left(socket_bot, socket_slack):
    socket_slack.set_answer_pings(False)
    assert socket_slack.wait_link(2, timeout=PING + 5)
    socket_slack.set_answer_pings(True)
    probe(socket_slack)


def test_a_big_envelope_is_read_and_acked(socket_bot, socket_slack):
    big = socket_slack.action("lead_refresh", pad_to=1_300_000)  # a click on a very large message
    assert big.size > 1_300_000
    assert socket_slack.wait_ack(big) is not None
    probe(socket_slack)
    assert len(socket_slack.links) == 1


def test_an_ack_whose_link_went_waits_for_the_next(socket_bot, socket_slack):
    # The bot reads the envelope, and the link is gone before the ack is written: it goes on the next link.
    gate = threading.Event()
    handle = socket_bot.runner.handle

    async def slow(envelope):
        await asyncio.to_thread(gate.wait, 5)
        return await handle(envelope)

    socket_bot.runner.handle = slow
    envelope = socket_slack.command("help")
    socket_slack.rst()
    assert socket_slack.wait_link(2)
    gate.set()
    ack = socket_slack.wait_ack(envelope)
    assert ack is not None and ack.link == 2 and "/lead new" in ack.payload["text"]


def test_an_envelope_of_a_kind_leadbot_does_not_know_is_acked(socket_bot, socket_slack):
    odd = socket_slack.send_envelope("some_future_kind", {"x": 1}, accepts_response_payload=False)
    ack = socket_slack.wait_ack(odd)
    assert ack is not None and ack.payload is None
    socket_slack.send_text("not json")
    socket_slack.send_text('{"type": "something_new"}')
    probe(socket_slack)


def test_an_unused_event_and_an_old_cards_button_are_acked(socket_bot, socket_slack, fake_slack):
    event = socket_slack.event({"type": "reaction_added", "user": "U0REP1", "reaction": "eyes", "item": {}})
    stale = socket_slack.action("lead_button_of_an_older_version")
    assert socket_slack.wait_ack(event) is not None and socket_slack.wait_ack(stale) is not None
    assert fake_slack.wait_for(lambda calls: any(c.kind == "response" for c in calls))
    (reply,) = [c.body for c in fake_slack.received("response")]
    assert "This card is out of date" in reply["text"] and reply["response_type"] == "ephemeral"


def test_an_event_slack_sends_again_is_acked_and_handled_once(socket_bot, socket_slack, fake_slack, linked):
    ref = new_lead(linked)
    assert socket_slack.wait_ack(socket_slack.command("previews on", user=ADMIN, channel="C0SALES")) is not None
    assert socket_bot.executor.wait_idle()  # previews are on (the work after that ack is done)
    said = {"type": "message", "channel": "C0SALES", "user": "UREP1", "text": f"about {ref}", "ts": "1700000000.000100"}
    first, again = socket_slack.event(said), socket_slack.event(said)  # Slack's retry: a new envelope, the same event
    assert socket_slack.wait_acked([first, again])
    assert fake_slack.wait_for(lambda calls: any(c.name == "chat.postMessage" for c in calls), 15)
    socket_bot.executor.wait_idle()
    (preview,) = fake_slack.received("api", "chat.postMessage")
    assert preview.body["thread_ts"] == "1700000000.000100"


def test_slacks_pings_are_answered_and_acks_are_not_held_by_nagle(socket_bot, socket_slack):
    socket_slack.server_ping_interval = 0.05  # pings from Slack's side on the next link
    socket_slack.rst()
    link = socket_slack.wait_link(2)
    assert socket_slack.wait_for(lambda s: link.pongs >= 2)
    sock = socket_bot.runner.current.ws.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # an ack never waits for the one before's ACK
    probe(socket_slack)


# -- apps.connections.open -------------------------------------------------------------------------


def test_an_app_token_revoked_while_running_ends_the_run(socket_bot, socket_slack):
    socket_slack.fail_open("token_revoked", times=-1)
    socket_slack.rst()
    socket_bot.thread.join(10)
    assert isinstance(socket_bot.error, AppTokenRefused)
    assert "token_revoked" in str(socket_bot.error)
    assert len(socket_slack.open_calls) == 2  # once: no retry fixes a revoked token


def test_open_failing_during_a_refresh_is_tried_again(socket_bot, socket_slack):
    socket_slack.fail_open("internal_error")
    socket_slack.disconnect("refresh_requested")
    assert socket_slack.wait_link(2, timeout=10)
    assert len(socket_slack.open_calls) == 3  # the first try failed; the next (after a backoff) worked
    probe(socket_slack)


def test_a_rate_limited_open_waits_as_told(socket_bot, socket_slack):
    socket_slack.fail_open("ratelimited", status=429, retry_after=1)
    socket_slack.rst()
    assert socket_slack.wait_link(2, timeout=10)
    calls = socket_slack.open_calls
    assert len(calls) == 3 and calls[2] - calls[1] >= 1.0  # Retry-After: 1, honoured


def test_open_calls_keep_to_slacks_budget():
    now = [0.0]
    budget = OpenBudget(burst=5, every=60.0, clock=lambda: now[0])
    allowed = 0
    for _ in range(20):  # a link dropping as soon as it opens, for two minutes
        if budget.wait_time() == 0:
            budget.take()
            allowed += 1
        now[0] += 6.0
    assert 5 < allowed <= 5 + 2  # the burst, then one a minute
    assert budget.wait_time() > 0


# -- envelopes as the HTTP requests they stand for ------------------------------------------------


def test_envelopes_become_the_requests_slack_would_have_sent():
    body, headers = as_http({"type": "slash_commands", "payload": {"command": "/lead", "text": "show local:1"}})
    assert headers["content-type"] == "application/x-www-form-urlencoded" and b"text=show+local%3A1" in body
    body, headers = as_http({"type": "events_api", "payload": {"type": "event_callback"}, "retry_attempt": 2})
    assert headers["content-type"] == "application/json" and headers["x-slack-retry-num"] == "2"
    body, headers = as_http({"type": "interactive", "payload": {"type": "block_actions"}})
    assert body.startswith(b"payload=")
    assert as_http({"type": "hello"}) is None and as_http({"type": "slash_commands", "payload": "x"}) is None


# -- the real `leadbot run` ------------------------------------------------------------------------


def bot_env(db: Path, slack: SocketSlack, **extra: str) -> dict[str, str]:
    return {
        **ENV,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "LEADBOT_DB": str(db),
        "LEADBOT_ADMINS": ADMIN,
        **extra,
    }


def run_bot(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([LEADBOT, "run"], env=env, stderr=subprocess.PIPE, text=True)


def lead_names(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(row[0] for row in conn.execute("select name from local_leads"))


def unfinished(db: Path) -> int:
    with sqlite3.connect(journal_path(str(db))) as conn:
        return conn.execute("select count(*) from journal where state in ('accepted', 'started')").fetchone()[0]


def test_leadbot_run_in_socket_mode_serves_and_drains_on_sigterm(settings, linked, fake_slack):
    db = settings.leadbot_db
    # Slack answers every call 0.3 s late: at the stop, acked work is still running.
    with SocketSlack(web_api=fake_slack.url, forward_delay=0.3) as slack:
        slack.fail_open(None, status=503)  # the first apps.connections.open: an HTML error page
        process = run_bot(bot_env(db, slack))
        try:
            assert slack.wait_link(1, timeout=60), "leadbot run never connected"
            assert len(slack.open_calls) == 2  # tried again after the failure
            help_ack = slack.wait_ack(slack.command("help"))
            assert help_ack is not None and "/lead new" in help_ack.payload["text"]
            new = [slack.command(f"new Lead{n} lead{n}@example.com", user=REP) for n in range(8)]
            assert slack.wait_acked(new, timeout=10)
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
        log = process.stderr.read()
        assert (slack.links[0].client_close_code, slack.links[0].state) == (1000, "closed")  # a close frame
        assert "cannot connect (apps.connections.open answered HTTP 503); trying again in" in log
        assert "Leadbot stopped" in log and "Traceback" not in log
    assert lead_names(db) == [f"Lead{n}" for n in range(8)]  # every acked /lead new happened
    assert unfinished(db) == 0
    shown = [c.body.get("text", "") for c in fake_slack.received("response")]
    assert sum("Lead" in text for text in shown) >= 8  # and each was told


def test_leadbot_run_sigkilled_loses_nothing_acked(settings, linked, fake_slack):
    db = settings.leadbot_db
    # The work on threads this time (LEADBOT_WORK_PROCESS=0): the journal is the same either way.
    with SocketSlack(web_api=fake_slack.url, forward_delay=1.0) as slack:
        process = run_bot(bot_env(db, slack, LEADBOT_WORK_PROCESS="0"))
        try:
            assert slack.wait_link(1, timeout=60)
            acked = slack.wait_ack(slack.command("new Kept Lead kept@example.com", user=REP))
            assert acked is not None
            process.kill()  # while the work waits on Slack
            process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
        assert unfinished(db) == 1  # in the journal, before the ack left
        slack.forward_delay = 0.0
        again = run_bot(bot_env(db, slack, LEADBOT_WORK_PROCESS="0"))
        try:
            assert fake_slack.wait_for(
                lambda calls: any("Kept Lead" in str(c.body) for c in calls if c.kind == "response"), 60
            )
            assert slack.wait_link(2, timeout=60)
            again.send_signal(signal.SIGINT)  # Ctrl-C: the same stop as SIGTERM
            assert again.wait(60) == 0
        finally:
            if again.poll() is None:
                again.kill()
    assert lead_names(db) == ["Kept Lead"] and unfinished(db) == 0


def test_a_refused_app_token_is_one_line_and_exit_2(tmp_path, fake_slack):
    with SocketSlack(web_api=fake_slack.url, app_token="xapp-someone-elses") as slack:
        result = subprocess.run(
            [LEADBOT, "run"], env=bot_env(tmp_path / "socket.db", slack), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2
        assert "leadbot: Slack refused SLACK_APP_TOKEN (invalid_auth): check the app-level token" in result.stderr
        assert "Traceback" not in result.stderr and APP_TOKEN not in result.stderr
        assert len(slack.open_calls) == 1  # not tried again: no retry fixes a wrong token


def test_acks_under_a_stop_are_sent_before_the_close(socket_bot, socket_slack):
    handle = socket_bot.runner.handle
    read = threading.Semaphore(0)

    async def slow(envelope):  # a journal commit that takes a while: the stop comes before these acks
        read.release()
        await asyncio.sleep(0.3)
        return await handle(envelope)

    socket_bot.runner.handle = slow
    before = commands(socket_slack, 10)
    assert all(read.acquire(timeout=10) for _ in before)  # the bot has read them all
    socket_bot.stop()
    assert socket_bot.error is None
    assert socket_slack.wait_closed(socket_slack.links[0]) and socket_slack.links[0].client_close_code == 1000
    # The fake reads in order: whatever the bot read was acked on the link, before its close frame.
    assert all(e.acks for e in before)
    assert all(e.ack.link_state != CLOSING for e in before)
