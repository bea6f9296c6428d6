"""Nothing acked is lost: ``leadbot run`` killed mid-burst finishes every acked command once after a restart,
and SIGTERM finishes what was acked before exiting 0. Real processes, the fake Slack in this one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime

import httpx
import pytest

from bot.journal import journal_path
from bot.stores.sqlite import SqliteStore
from services.models import StaffLink
from tests.slack import SIGNING_SECRET, signed_headers
from tests.test_run import ENV, LEADBOT, free_port

pytestmark = pytest.mark.parametrize("work_process", ["true", "false"], ids=["work process", "threads"])
ADMIN = "UADMIN"


class Server:
    """``leadbot run`` on a port of its own, in its own process group (as a container runs it)."""

    def __init__(self, tmp_path, fake_slack, work_process: str) -> None:
        self.db = tmp_path / "leadbot.db"
        self.port = free_port()
        self.env = {
            **ENV,
            "SLACK_BOT_TOKEN": "xoxb-run",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
            "LEADBOT_DB": str(self.db),
            "LEADBOT_ADMINS": ADMIN,
            "LEADBOT_WORK_PROCESS": work_process,
            "PORT": str(self.port),
        }
        self.fake = fake_slack
        self.process: subprocess.Popen | None = None
        self.n = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [LEADBOT, "run"], env=self.env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        for line in self.process.stderr:  # the line written once the socket is bound
            if "Leadbot listening on" in line:
                break
        else:
            pytest.fail(f"leadbot run exited with {self.process.wait()}")
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()

    def command(self, text: str) -> int:
        self.n += 1
        body = (
            f"command=%2Flead&text={text}&user_id={ADMIN}&team_id=T0LEADBOT&channel_id=C0SALES"
            f"&trigger_id={self.n}.1.t&response_url={self.fake.response_url(f'cmd{self.n}')}"
        )
        answer = httpx.post(f"http://127.0.0.1:{self.port}/slack/events", content=body, headers=signed_headers(body))
        return answer.status_code

    def signal(self, sig: int) -> int:
        assert self.process is not None
        os.killpg(self.process.pid, sig)  # the whole group: the server and its work process
        return self.process.wait(60)


def lead_names(db) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(row[0] for row in conn.execute("select name from local_leads"))


def journal_left(db) -> int:
    with sqlite3.connect(journal_path(str(db))) as conn:
        return conn.execute("select count(*) from journal where state in ('accepted', 'started')").fetchone()[0]


@pytest.fixture
def server(tmp_path, fake_slack, work_process):
    store = SqliteStore(tmp_path / "leadbot.db")
    store.links.put(StaffLink(slack_user=ADMIN, backend="local", staff_id="ada"), by=ADMIN, at=datetime.now(UTC))
    store.close()
    running = Server(tmp_path, fake_slack, work_process)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.signal(signal.SIGKILL)


def block_replies(fake_slack) -> tuple[threading.Event, threading.Event, list[int]]:
    """Every reply Leadbot posts waits at the fake Slack: the work is in flight, its leads already made.

    ``release`` lets them through; bumping ``generation[0]`` first cuts off the ones waiting
    (their process is gone: they are never recorded) and lets later ones through.
    """
    reply = fake_slack._reply
    entered, release, generation = threading.Event(), threading.Event(), [0]

    def held(kind, name, body):
        if kind == "response":
            mine = generation[0]
            entered.set()
            while not release.wait(0.05):
                pass
            if generation[0] != mine:
                raise ConnectionAbortedError("the process that sent this is gone")
        return reply(kind, name, body)

    fake_slack._reply = held
    return entered, release, generation


def test_a_kill_mid_burst_loses_no_acked_command_and_doubles_none(server, fake_slack):
    entered, release, generation = block_replies(fake_slack)
    server.start()
    acked = [n for n in range(12) if server.command(f"new Lead{n:02d} l{n}@example.com") == 200]
    assert len(acked) == 12
    assert entered.wait(10)  # work is under way (its first leads made), the rest waits behind it
    server.signal(signal.SIGKILL)
    generation[0] += 1
    release.set()
    assert journal_left(server.db) > 0  # what was acked and not finished is on disk
    server.start()
    assert fake_slack.wait_for(lambda calls: len({c.name for c in calls if c.kind == "response"}) >= 12, 30)
    replied = {c.name for c in fake_slack.received("response") if c.body.get("response_type") == "in_channel"}
    assert replied == {f"cmd{n}" for n in range(1, 13)}  # every acked command was answered
    assert server.signal(signal.SIGTERM) == 0
    assert lead_names(server.db) == [f"Lead{n:02d}" for n in range(12)]  # each once
    assert journal_left(server.db) == 0


def test_sigterm_finishes_what_was_acked_and_exits_0(server, fake_slack):
    entered, release, _ = block_replies(fake_slack)
    server.start()
    assert all(server.command(f"new Lead{n:02d} l{n}@example.com") == 200 for n in range(10))
    assert entered.wait(10)
    os.killpg(server.process.pid, signal.SIGTERM)  # as docker stop, systemd or Ctrl-C's group signal
    release.set()  # the replies go through while the server is stopping
    assert server.process.wait(60) == 0
    assert lead_names(server.db) == [f"Lead{n:02d}" for n in range(10)]
    assert {c.name for c in fake_slack.received("response")} == {f"cmd{n}" for n in range(1, 11)}
    assert journal_left(server.db) == 0
    said = "".join(server.stderr)
    assert "Traceback" not in said and "leaked semaphore" not in said
