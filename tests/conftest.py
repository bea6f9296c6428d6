from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn

from bot.app import Runtime, build_app, build_runtime
from bot.config import load_settings
from bot.executor import InlineExecutor, TrackedExecutor
from bot.fakeslack import FakeSlack
from bot.journal import Journal, open_journal
from bot.server import asgi_app
from bot.stores.sqlite import SqliteStore
from bot.workproc import WorkProcess
from services.audit import Actor
from services.leads import LeadService
from services.models import Lead, NewLead
from tests.slack import SIGNING_SECRET, DispatchTransport, HttpTransport, SlackDriver

pytest_plugins = ["tests.pgfixtures"]  # PostgreSQL for the store contract and the journal

ADMIN = "UADMIN"
REP = "UREP1"
OTHER = "UREP2"
STRANGER = "USTRANGER"


@pytest.fixture
def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs
    return gone.pid


@pytest.fixture(autouse=True)
def no_log_handler_left_writing_to_a_closed_stream() -> Iterator[None]:
    """A test that runs ``leadbot run`` in this process (typer's CliRunner) must put the log back.

    ``run`` installs the process's log handler on the runner's stderr, which closes after the call;
    left in place, every later log line in this worker failed ("--- Logging error ---").
    """
    yield
    root = logging.getLogger()
    stale = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False)]
    assert not stale, f"log handlers left writing to a closed stream: {stale}"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_user(ADMIN, "ada", "Europe/London")
    fake.add_user(REP, "ana", "Asia/Kolkata")
    fake.add_user(OTHER, "bob", "America/New_York")
    yield fake
    fake.stop()


@functools.cache
def migrated_store() -> Path:
    """An empty store with every migration applied, made once per test process.

    Each test's database starts as a copy: migrating a new file took 18 ms, copying it takes 1,
    and nearly every test opens one. Migrations themselves run where a test opens a store at a
    path of its own (tests/test_sqlite_store.py, tests/test_store_contract.py, start-up tests).
    """
    folder = Path(tempfile.mkdtemp(prefix="leadbot-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    SqliteStore(folder / "leadbot.db").close()
    return folder / "leadbot.db"


def bot_settings(
    tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, *, config: str | None = None, **extra
):
    """Settings as the tests run the bot: the fake Slack, a fresh database, ``config`` as LEADBOT_CONFIG."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)
    # Most tests have reps act on each other's leads freely, as Leadbot did before ownership rules;
    # tests/test_ownership.py runs the default rule ("owner").
    extra.setdefault("leadbot_ownership", "open")
    if config is not None:
        path = tmp_path / "leadbot.toml"
        path.write_text(config)
        extra["leadbot_config"] = path
    database = tmp_path / "leadbot.db"
    if not database.exists():
        shutil.copyfile(migrated_store(), database)
    return load_settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.api_url,
        leadbot_db=database,
        leadbot_admins=ADMIN,
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch)


# The REST leads API's Required strings Leadbot cannot get from what was typed, and a short timeout.
LEADSAPI_CONFIG = (
    "[backends.leadsapi]\nbusiness = [1]\ntimeout = 0.3\n"
    'defaults = { photo = "p.png", location = "-", position = "-", description = "-", company = "-" }\n'
)


@pytest.fixture
def api_fake():
    """The REST leads API's fake (tests/fakes/leadsapi.py)."""
    from tests.fakes.leadsapi import FakeLeadsApi

    fake = FakeLeadsApi().start()
    yield fake
    fake.stop()


def leadsapi_settings(tmp_path: Path, fake_slack: FakeSlack, api_fake, monkeypatch: pytest.MonkeyPatch, config=None):
    """Settings with the REST leads API configured on ``api_fake`` (``config``: LEADSAPI_CONFIG by default)."""
    from tests.fakes.leadsapi import TOKEN

    return bot_settings(
        tmp_path,
        fake_slack,
        monkeypatch,
        config=config or LEADSAPI_CONFIG,
        leadbot_leadsapi_url=api_fake.url,
        leadbot_leadsapi_token=TOKEN,
    )


class Clock:
    """The time every part of the bot reads: real unless a test sets ``at`` (then it stands still)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)

    def advance(self, **delta: float) -> None:
        self.at = self() + timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(request, settings, clock) -> Iterator[Runtime]:
    """The process's dependencies. Work after the ack runs inline, unless the test serves over HTTP (``bot``)."""
    marker = request.node.get_closest_marker("work_process")
    if marker is not None:
        background = WorkProcess(settings, **marker.kwargs)
        background.start()
    elif "bot" in request.fixturenames:
        background = TrackedExecutor(journal=request.getfixturevalue("journal"))
    else:
        background = InlineExecutor()
    # Backends back off between retried reads without waiting: the tests' time is the Clock's.
    built = build_runtime(settings, background=background, clock=clock, sleep=lambda seconds: None)
    built.deps.poster.sleep = lambda seconds: None  # nor do posts wait for their pace (tests of pacing set it)
    yield built
    if hasattr(background, "shutdown"):
        background.shutdown()
    built.close()


@pytest.fixture
def service(runtime: Runtime) -> LeadService:
    return runtime.service


@pytest.fixture
def app(runtime: Runtime):
    return build_app(runtime)


@pytest.fixture
def slack(request, app, runtime: Runtime, fake_slack) -> SlackDriver:
    """Slack's requests into ``app.dispatch``; with the ``bot`` fixture (or a work process), over HTTP."""
    if "bot" in request.fixturenames or request.node.get_closest_marker("work_process"):
        return request.getfixturevalue("bot").slack
    return SlackDriver(DispatchTransport(app), fake_slack, lambda timeout=10: True)


@pytest.fixture
def journal(settings) -> Iterator[Journal]:
    """The journal of acked requests in the test's database, as ``leadbot run`` keeps it."""
    kept = open_journal(str(settings.leadbot_db))
    yield kept
    kept.close()


class RunningBot:
    """The ASGI app under uvicorn on a loopback socket, as ``leadbot run`` serves it (with its journal)."""

    def __init__(self, runtime: Runtime, app, fake: FakeSlack, journal: Journal) -> None:
        self.runtime = runtime
        self.executor = runtime.deps.background
        self.service = runtime.service
        self.journal = journal
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # accepted connections queue here until uvicorn's loop runs
        config = uvicorn.Config(
            asgi_app(
                app,
                runtime.store,
                self.executor,
                journal,
                telemetry=runtime.telemetry,
                backends=[backend.name for backend in runtime.service.backends if backend.name != "local"],
            ),
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        host, port = self.sock.getsockname()
        self.url = f"http://{host}:{port}"
        self.slack = SlackDriver(HttpTransport(self.url), fake, self.executor.wait_idle)

    def stop(self) -> None:
        """Stop taking requests, then let the work already acked finish."""
        self.server.should_exit = True
        self.thread.join(10)
        self.executor.shutdown()


@pytest.fixture
def bot(runtime, app, fake_slack, journal) -> Iterator[RunningBot]:
    """The real server in front of the app; ``@pytest.mark.work_process(...)`` puts the work in another process."""
    running = RunningBot(runtime, app, fake_slack, journal)
    yield running
    running.stop()


@pytest.fixture
def linked(service: LeadService) -> LeadService:
    """The admin and one rep linked on the local backend."""
    admin = Actor(slack_user=ADMIN, is_admin=True)
    service.people.link(admin, ADMIN, "ada")
    service.people.link(admin, REP, "ana")
    return service


def new_lead(service: LeadService, name: str = "Ada Lovelace", *, by: str = ADMIN, **fields) -> str:
    """Create a lead directly through the service (setup, not the thing under test); return its ref.

    Setup may make several leads with one email (the duplicate warning is tested in tests/test_duplicates.py).
    """
    fields.setdefault("email", "ada@example.com")
    actor = Actor(slack_user=by, is_admin=by == ADMIN)
    lead = service.create(actor, NewLead(name=name, **fields), allow_duplicate=True)
    return lead.ref


def lead(service: LeadService, ref: str) -> Lead:
    """The lead as its backend has it now."""
    return service.get(ref)


def activity(service: LeadService, ref: str, limit: int = 20) -> list[tuple[str, str]]:
    """The lead's history as (kind, text), newest first, as its backend has it."""
    return [(a.kind, a.text) for a in service.activity(service.get(ref), limit)]


def leads(service: LeadService, **query) -> list[Lead]:
    """The local backend's leads matching ``query`` (open ones by default), as ``/lead list`` would find them."""
    return service.search(backend="local", limit=1000, **query).leads


def audited(service: LeadService, **where) -> list[tuple[str, str]]:
    """What the audit trail says happened: (result, detail) per entry."""
    return [(e.result, e.detail) for e in service.audit.log.entries(**where)]


def unreadable_backend(service: LeadService, slack_user: str, error: Exception) -> None:
    """Configure a second backend (``leadsapi``) whose every search raises ``error``, and link ``slack_user`` on it."""
    from services.backends.local import LocalBackend

    class Unreadable(LocalBackend):
        name = "leadsapi"
        title = "REST leads API"

        def search(self, query):
            raise error

    local = service.backends.get("local")
    service.backends.configured["leadsapi"] = Unreadable(local.leads, local.clock)
    service.people.link(Actor(slack_user=ADMIN, is_admin=True), slack_user, "77", backend="leadsapi")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that mostly wait (on a real clock, a rate window, processes) start first, while the other
    workers keep the cores busy; left last, the longest of them (10 s) was the run's tail."""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """An empty run is a broken run (a bad path or import), never a green one."""
    if not session.items and not session.config.option.keyword:
        raise pytest.UsageError("no tests were collected: check testpaths and imports")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Under xdist the workers collect; the controller says it here, and the exit status stays 5.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.config.get_terminal_writer().line("no tests were collected: check testpaths and imports", red=True)
