from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from bot.app import build_app, build_service
from bot.config import load_settings
from bot.executor import TrackedExecutor
from bot.fakeslack import FakeSlack
from bot.server import asgi_app
from bot.workproc import WorkProcess
from services.leads import LeadService
from tests.slack import SIGNING_SECRET, SlackDriver

ADMIN = "UADMIN"
REP = "UREP1"
OTHER = "UREP2"
STRANGER = "USTRANGER"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_user(ADMIN, "ada", "Europe/London")
    fake.add_user(REP, "ana", "Asia/Kolkata")
    fake.add_user(OTHER, "bob", "America/New_York")
    yield fake
    fake.stop()


def bot_settings(
    tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, *, config: str | None = None, **extra
):
    """Settings as the tests run the bot: the fake Slack, a fresh database, ``config`` as LEADBOT_CONFIG."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)
    if config is not None:
        path = tmp_path / "leadbot.toml"
        path.write_text(config)
        extra["leadbot_config"] = path
    return load_settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.api_url,
        leadbot_db=tmp_path / "leadbot.db",
        leadbot_admins=ADMIN,
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch)


@pytest.fixture
def service(settings) -> LeadService:
    return build_service(settings)


class RunningBot:
    """The ASGI app under uvicorn on a loopback socket, as ``leadbot run`` serves it.

    ``work_process`` (``WorkProcess`` options; a test asks with
    ``@pytest.mark.work_process(...)``) runs the work after the ack in a separate
    process, as production does; the default keeps it on threads in this process
    so tests can reach into the service.
    """

    def __init__(self, settings, service: LeadService, fake: FakeSlack, *, work_process: dict | None = None) -> None:
        if work_process is not None:
            self.executor: TrackedExecutor | WorkProcess = WorkProcess(settings, **work_process)
            self.executor.start()
        else:
            self.executor = TrackedExecutor()
        self.app = build_app(settings, service, executor=self.executor)
        self.service = service
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # accepted connections queue here until uvicorn's loop runs
        config = uvicorn.Config(asgi_app(self.app, service.store, self.executor), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        host, port = self.sock.getsockname()
        self.url = f"http://{host}:{port}"
        self.slack = SlackDriver(self.url, fake, self.executor)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.executor.shutdown()


@pytest.fixture
def bot(request, settings, service, fake_slack) -> Iterator[RunningBot]:
    marker = request.node.get_closest_marker("work_process")
    running = RunningBot(settings, service, fake_slack, work_process=marker and marker.kwargs)
    yield running
    running.stop()


@pytest.fixture
def slack(bot: RunningBot) -> SlackDriver:
    return bot.slack


@pytest.fixture
def linked(service: LeadService) -> LeadService:
    """The admin and one rep linked on the local backend."""
    from services.leads import Actor

    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.link(admin, ADMIN, "ada")
    service.link(admin, REP, "ana")
    return service


def new_lead(service: LeadService, name: str = "Ada Lovelace", *, by: str = ADMIN, **fields) -> str:
    """Create a lead directly through the service (setup, not the thing under test); return its ref."""
    from services.leads import Actor
    from services.models import NewLead

    fields.setdefault("email", "ada@example.com")
    lead = service.create(Actor(slack_user=by, is_admin=by == ADMIN), NewLead(name=name, **fields))
    return lead.ref


def pytest_collection_finish(session: pytest.Session) -> None:
    """An empty run is a broken run (a bad path or import), never a green one."""
    if not session.items and not session.config.option.keyword:
        raise pytest.UsageError("no tests were collected: check testpaths and imports")
