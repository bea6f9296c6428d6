"""Leadbot under load: simulated users on the real ``leadbot run`` (HTTP), a slow backend, Slack's retries.

    .venv/bin/python bench/load.py [--users 200] [--seconds 60] [--backend-latency 0.2] [--retry-share 0.01]
                                   [--backend leadsapi|local] [--journal full|normal|off] [--compare-journal]
                                   [--workers N] [--env NAME=VALUE] [--detail] [--keep-log PATH]

Each simulated user works on leads of their own as a person would in Slack: ``/lead new``, ``show``,
``note``, ``followup``, ``assign``, ``status`` and ``list``, and presses on the cards they got back
(Assign to me, Assign…, the Status select, Refresh, and Add note and Log follow-up, whose modals
they fill in and submit), waiting for each reply and thinking a moment (``--think``) before the next.
Every request is signed as Slack signs it; ``--retry-share`` of them are sent again by "Slack"
(same body, ``X-Slack-Retry-Num: 1``) shortly after the first was acked.

The fake Slack (bot/fakeslack.py) and the backend's fake (tests/fakes/leadsapi.py, answering each
call ``--backend-latency`` s late; with ``--backend local`` there is none) run in a process of
their own, so their threads never take the load client's GIL; Leadbot is ``leadbot run`` in its
own process group (the server and its work process).

Printed: acks/s; ack p50/p99/max (request sent → the ack back); completion p99 (ack → the reply at
the fake Slack, or the modal opened); errors (non-200 acks, acks over Slack's 3 s, "busy", error
or queued replies, modals opened after their trigger expired); duplicates (replies, thread replies,
DMs, leads or notes made twice, read from the fake Slack and the backend); lost (acked requests, or
the thread replies and DMs they owed, with nothing to show for them after the drain); the peak RSS
of the server's process group. Requests go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot import slackrequests as sr  # noqa: E402
from bot.journal import journal_path  # noqa: E402
from handlers.presses import BURST_SECONDS  # noqa: E402

SECRET = "load-signing-secret"
CHANNEL = "C0LOAD"
ACK_LIMIT = 3.0  # Slack shows the user an error when the ack takes longer
TRIGGER_LIFE = 3.0  # a trigger_id opens a modal within 3 s of the press, once
TARGETS = {"ack_p99_ms": 50.0, "ack_max_ms": 3000.0, "rss_mb": 150.0}
LEADSAPI_CONFIG = (
    "[backends.leadsapi]\nbusiness = [1]\ntimeout = 10\n"
    'defaults = { photo = "p.png", location = "-", position = "-", description = "-", company = "-" }\n'
)
REF = re.compile(r"\((\w+:\d+)\)")
NUMBER = re.compile(r"/\d+")


# -- the fakes, in a process of their own ---------------------------------------------------------


def serve_fakes(latency: float, backend: str) -> None:
    """Print the fakes' URLs as one JSON line, then one JSON line per thing Slack received.

    On stdin: ``report`` prints what the backend holds (leads' emails, notes' texts); EOF stops.
    """
    from bot.fakeslack import FakeSlack
    from bot.loopback import Received

    out = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event)
        with out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    class WatchedSlack(FakeSlack):
        """Tells the load client what arrived, as it arrives; a trigger_id opens one modal, as on Slack."""

        def __init__(self) -> None:
            super().__init__()
            self.triggers: set[str] = set()

        def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
            trigger = str(body.get("trigger_id"))
            if trigger in self.triggers:
                raise _Refused("trigger_exchanged")
            self.triggers.add(trigger)
            return super()._views_open(body)

        def _reply(self, kind: str, name: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
            try:
                return super()._reply(kind, name, body)
            except _Refused as refused:
                return 200, {"ok": False, "error": str(refused)}, {}

        def handle(self, request: Received):  # noqa: ANN201 - the base's Outcome
            outcome = super().handle(request)
            call = self.calls[-1] if self.calls else None
            kind, _, name = request.path.strip("/").partition("/")
            now = time.monotonic()
            if kind == "response":
                emit({"e": "post", "key": name, "t": now, "body": self._body(request)})
            elif name == "views.open" and call is not None and call.answer.get("ok"):
                emit({"e": "view", "trigger": call.body.get("trigger_id"), "t": now, "view": call.answer["view"]})
            elif name == "chat.postMessage" and call is not None and call.answer.get("ok"):
                body = call.body
                emit({"e": "message", "channel": call.answer["channel"], "thread": body.get("thread_ts"), "t": now,
                      "text": body.get("text")})  # fmt: skip
            return outcome

    slack = WatchedSlack().start()
    crm = None
    if backend == "leadsapi":
        from tests.fakes.leadsapi import FakeLeadsApi

        class SlowLeadsApi(FakeLeadsApi):
            def handle(self, request: Received):  # noqa: ANN201
                time.sleep(latency)  # on this connection's own thread: the others are answered meanwhile
                return super().handle(request)

        crm = SlowLeadsApi().start()
    emit({"slack": slack.url, "crm": crm.url if crm else None})
    for line in sys.stdin:
        if line.strip() == "report" and crm is not None:
            with crm.lock:
                emails = [lead.get("email") for lead in crm.leads.values()]
                notes = [e.get("content", "") for entries in crm.history.values() for e in entries if "content" in e]
                calls = Counter(r.method + " " + NUMBER.sub("/ID", r.path) for r in crm.received)
            emit({"e": "report", "emails": emails, "notes": notes, "calls": calls})
        elif line.strip() == "report":
            emit({"e": "report"})
    slack.stop()
    if crm is not None:
        crm.stop()


class _Refused(Exception):
    pass


class Fakes:
    """The load client's side of the fakes' process."""

    def __init__(self, process: asyncio.subprocess.Process, urls: dict[str, Any]) -> None:
        self.process = process
        self.slack_url = urls["slack"]
        self.crm_url = urls["crm"]
        self.posts: dict[str, list[tuple[float, dict]]] = defaultdict(list)
        self.views: dict[str, list[tuple[float, dict]]] = defaultdict(list)
        self.messages: list[dict[str, Any]] = []
        self.waiters: dict[tuple[str, str], asyncio.Event] = {}
        self.report: asyncio.Future | None = None
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, latency: float, backend: str) -> Fakes:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-fakes", str(latency), backend,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24,
        )  # fmt: skip
        first = await process.stdout.readline()
        if not first:
            raise SystemExit("the fakes' process did not start")
        return cls(process, json.loads(first))

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            event = json.loads(line)
            kind = event.get("e")
            if kind == "post":
                self.posts[event["key"]].append((event["t"], event["body"]))
                self._wake("post", event["key"])
            elif kind == "view":
                self.views[event["trigger"]].append((event["t"], event["view"]))
                self._wake("view", event["trigger"])
            elif kind == "message":
                self.messages.append(event)
            elif kind == "report" and self.report is not None:
                self.report.set_result(event)

    def _wake(self, kind: str, key: str) -> None:
        waiter = self.waiters.get((kind, key))
        if waiter is not None:
            waiter.set()

    async def wait(self, kind: str, key: str, timeout: float, after: int = 0) -> bool:
        """Until more than ``after`` posts (or views) have come for ``key``; whether they did in ``timeout``."""
        seen = self.posts if kind == "post" else self.views
        if len(seen.get(key, ())) > after:
            return True
        waiter = self.waiters.setdefault((kind, key), asyncio.Event())
        deadline = time.monotonic() + timeout
        try:
            while len(seen.get(key, ())) <= after:
                waiter.clear()
                await asyncio.wait_for(waiter.wait(), max(0.0, deadline - time.monotonic()))
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters.pop((kind, key), None)

    async def crm_report(self) -> dict[str, Any]:
        self.report = asyncio.get_running_loop().create_future()
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        return await asyncio.wait_for(self.report, 30)

    async def stop(self) -> None:
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
        self.reader.cancel()


# -- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                pids += _tree(int(child))
    return pids


def _proc_kb(pid: int, file: str, field: str) -> int:
    """A ``field:  N kB`` line of ``/proc/PID/file``; 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    return _proc_kb(pid, "smaps_rollup", "Pss")


def _peak_kb(pid: int) -> int:
    return _proc_kb(pid, "status", "VmHWM")


class Server:
    """``leadbot run`` in its own process group, on a port of its own."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        leadbot = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or "leadbot"
        self.port = port
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [leadbot, "run"], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        listening = threading.Event()

        def read_log() -> None:
            for line in self.process.stderr:
                self.log.append(line)
                if "Leadbot listening on" in line:
                    listening.set()

        threading.Thread(target=read_log, daemon=True).start()
        deadline = time.monotonic() + 60
        while not listening.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"leadbot run did not start:\n{''.join(self.log)[-2000:]}")

    def watch_memory(self, every: float = 0.5) -> None:
        """Samples the group's PSS (each shared page split among the processes mapping it) until it exits.

        The kernel keeps each process's peak RSS, not its peak PSS; summed RSS counts the pages
        of libpython, OpenSSL and pydantic-core once per process.
        """

        def sample() -> None:
            while self.process.poll() is None:
                total = sum(_pss_kb(pid) for pid in _tree(self.process.pid))
                self.pss_peak_kb = max(self.pss_peak_kb, total)
                time.sleep(every)  # a sampling period, not a wait for anything

        self.pss_peak_kb = 0
        threading.Thread(target=sample, name="pss", daemon=True).start()

    def peak_rss_mb(self) -> float:
        """The server's and every process under it (the work process), each at its peak."""
        return sum(self.peaks().values())

    def peaks(self) -> dict[str, float]:
        """Each process's peak RSS in MB, by what it is."""
        found = {}
        for pid in _tree(self.process.pid):
            with contextlib.suppress(OSError):
                words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                what = "server" if pid == self.process.pid else ("work" if b"child_main" in b" ".join(words) else "")
                what = what or ("resource tracker" if b"resource_tracker" in b" ".join(words) else str(pid))
                found[what] = _peak_kb(pid) / 1024
        return found

    def stop(self) -> int:
        """SIGTERM to the group, as ``docker stop`` sends it; the exit status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def seed(db: Path, users: list[str], backend: str) -> None:
    from bot.stores.sqlite import SqliteStore
    from services.models import StaffLink

    store = SqliteStore(db)
    now = datetime.now(UTC)
    for n, user in enumerate(users):
        store.links.put(StaffLink(slack_user=user, backend=backend, staff_id=f"rep{n}"), by=users[0], at=now)
    store.close()


# -- what was sent and what came of it ------------------------------------------------------------


@dataclass
class Sent:
    kind: str  # "new", "show", …, "press:ACTION", "submit:CALLBACK"
    key: str  # the response URL's key
    expect: str  # "post": a reply at the response URL; "view": a modal opened with ``trigger``
    trigger: str
    sent: float
    acked: float | None = None
    status: int = 0
    body: bytes = b""
    retry: bool = False
    before: int = 0  # replies already at ``key`` when this was sent: its own is the next one


@dataclass
class Card:
    ref: str
    blocks: list[dict[str, Any]]
    ts: str | None  # a message in the channel (None: an ephemeral reply, which has no thread)
    owner: str
    status: str | None


@dataclass
class Tally:
    requests: list[Sent] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # what went wrong, and how often
    posts_expected: Counter = field(default_factory=Counter)  # response URL key -> replies owed
    threads_expected: Counter = field(default_factory=Counter)  # card message ts -> thread replies owed
    dms_expected: Counter = field(default_factory=Counter)  # (DM channel, ref) -> DMs owed
    emails: list[str] = field(default_factory=list)  # leads created (acked, answered with their card)
    notes: list[str] = field(default_factory=list)  # markers of notes and follow-ups written
    started: float = 0.0
    stopped: float = 0.0


class Client:
    """Signed requests over a pool of keep-alive connections, as a load balancer would hold them."""

    def __init__(self, port: int, fakes: Fakes, tally: Tally, seed: int, connections: int) -> None:
        self.port = port
        self.fakes = fakes
        self.tally = tally
        self.pool: asyncio.Queue = asyncio.Queue()
        self.connections = connections
        self.opened = 0
        self.keys = itertools.count(1)
        self.rng = random.Random(seed)  # which requests Slack sends again, and when
        self.resending: set[asyncio.Task] = set()

    def new_key(self, prefix: str) -> str:
        return f"{prefix}{next(self.keys)}"

    def response_url(self, key: str) -> str:
        return f"{self.fakes.slack_url}/response/{key}"

    def _raw(self, request: sr.SlackRequest, extra: dict[str, str] | None = None) -> bytes:
        body = request.body.encode()
        headers = {**request.headers(SECRET), **(extra or {})}
        head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (head + "\r\n").encode() + body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.pool.empty() and self.opened < self.connections:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.pool.get()

    async def _exchange(self, raw: bytes, sent: Sent | None = None) -> tuple[int, bytes]:
        reader, writer = await self._connection()
        if sent is not None:
            sent.sent = time.monotonic()  # the ack is timed from here: a wait for a connection is the client's
        try:
            writer.write(raw)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
            self.opened -= 1
            return 0, b""
        self.pool.put_nowait((reader, writer))
        return (int(status_line.split()[1]) if status_line else 0), body

    async def send(self, sent: Sent, request: sr.SlackRequest, retry_share: float) -> Sent:
        sent.before = len(self.fakes.posts.get(sent.key, ())) if sent.expect == "post" else 0
        self.tally.requests.append(sent)
        status, body = await self._exchange(self._raw(request), sent)
        sent.acked, sent.status, sent.body = time.monotonic(), status, body
        self._judge_ack(sent)
        if self.rng.random() < retry_share:
            task = asyncio.create_task(self._resend(sent, request))
            self.resending.add(task)
            task.add_done_callback(self.resending.discard)
        return sent

    async def _resend(self, first: Sent, request: sr.SlackRequest) -> None:
        """Slack's retry: the same body, signed again, with its retry headers."""
        await asyncio.sleep(self.rng.uniform(0, 0.5))
        again = Sent(first.kind, first.key, first.expect, first.trigger, time.monotonic(), retry=True)
        again.before = first.before
        self.tally.requests.append(again)
        headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        status, body = await self._exchange(self._raw(request, headers), again)
        again.acked, again.status, again.body = time.monotonic(), status, body
        self._judge_ack(again)

    def _judge_ack(self, sent: Sent) -> None:
        errors = self.tally.errors
        if sent.status != 200:
            errors[f"ack {sent.status or 'failed'}"] += 1
        elif sent.acked - sent.sent > ACK_LIMIT:
            errors["ack over 3 s"] += 1
        elif b"busy right now" in sent.body:
            errors["answered busy"] += 1
        elif b'"response_action"' in sent.body:
            errors["form refused"] += 1
        elif sent.body:
            with contextlib.suppress(ValueError):
                if reply_error(json.loads(sent.body)):
                    errors["error in the ack"] += 1


def reply_error(body: dict[str, Any]) -> str | None:
    text = str(body.get("text") or "")
    if text.startswith((":warning:", ":x:")):
        return "error reply"
    if text.startswith(":hourglass"):
        return "queued reply"
    if "busy right now" in text:
        return "busy reply"
    return None


class User:
    """One person in Slack, working on their own leads; ``peers`` are who they may assign to."""

    def __init__(self, n: int, user: str, peers: list[str], client: Client, config: argparse.Namespace) -> None:
        self.n = n
        self.user = user
        self.peers = peers
        self.client = client
        self.config = config
        self.tally = client.tally
        self.fakes = client.fakes
        self.card: Card | None = None
        self.refs: list[str] = []
        self.shown: dict[tuple[str, str], float] = {}  # (ref, button) -> when this user last pressed it
        self.made = 0
        self.rng = random.Random(config.seed * 1000 + n)

    # -- one action at a time -----------------------------------------------------------------

    async def run(self, until: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.config.ramp))  # people do not all start in one second
        await self.command("new")
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(0, 2 * self.config.think))
            if time.monotonic() >= until:
                break
            await self.step()

    async def step(self) -> None:
        if not self.refs:
            await self.command("new")
            return
        choice = self.rng.random()
        if choice < 0.4 and self.card is not None:
            await self.press()
        elif choice < 0.5:
            await self.command("new")
        else:
            await self.command(self.rng.choice(["show", "show", "note", "followup", "assign", "status", "list"]))

    # -- commands -------------------------------------------------------------------------------

    def _mark(self) -> str:
        self.made += 1
        return f"m{self.n}x{self.made}"

    async def command(self, name: str) -> None:
        ref = self.card.ref if self.card else (self.refs[-1] if self.refs else None)
        card = self.card if self.card and self.card.ref == ref else None
        mark = None
        if name == "new":
            self.made += 1
            email = f"load{self.n}.{self.made}@example.com"
            text = f"new Load Person {self.n}-{self.made} {email} source=load"
        elif name == "show":
            text = f"show {self.rng.choice(self.refs)}"
        elif name == "note":
            mark = self._mark()
            text = f"note {ref} called about pricing {mark}"
        elif name == "followup":
            mark = self._mark()
            text = f'followup {ref} next="tomorrow 10am" left a voicemail {mark}'
        elif name == "assign":
            if card is None or card.owner == self.user:
                assignee = self.rng.choice(self.peers)
                text = f"assign {ref} <@{assignee}|rep>"
            elif not card.owner:
                assignee = self.user
                text = f"assign {ref} me"
            else:
                return await self.command("show")  # someone else's lead: only they or an admin reassign it
        elif name == "status":
            if card is not None and card.owner not in ("", self.user):
                return await self.command("show")  # someone else's lead: only they or an admin close it
            status = self._other_status(card)
            if status is None:
                return await self.command("show")
            text = f"status {ref} {status}"
        else:
            text = "list mine"
        key = self.client.new_key("c")
        trigger = f"{key}.{self.n}.load"
        request = sr.slash_command(
            text, user=self.user, response_url=self.client.response_url(key), trigger_id=trigger, channel=CHANNEL
        )
        self.tally.posts_expected[key] += 1
        sent = Sent(name, key, "post", trigger, time.monotonic())
        sent = await self.client.send(sent, request, self.config.retry_share)
        body = await self._reply(sent)
        if body is None:
            return
        if name == "new":
            self.tally.emails.append(email)
        if mark:
            self.tally.notes.append(mark)
        if name == "assign" and assignee != self.user:
            self.tally.dms_expected[(sr_dm(assignee), ref)] += 1
        self._take_card(body, in_channel=body.get("response_type") == "in_channel", key=key)

    def _other_status(self, card: Card | None) -> str | None:
        options = _status_options(card.blocks) if card else []
        choices = [o for o in options if o["value"].rpartition("|")[2] != (card.status if card else None)]
        return self.rng.choice(choices)["value"].rpartition("|")[2] if choices else None

    # -- presses on the card --------------------------------------------------------------------

    async def press(self) -> None:
        card = self.card
        assert card is not None
        # Leadbot's default ownership rule: a lead's owner reassigns and closes it, anyone takes an unassigned one.
        # Leadbot acts on a button that only shows something (a redraw, a form) once per burst of
        # presses (handlers/presses.py); nobody presses it again on a card that has just shown it.
        actions = [
            a
            for a in ("refresh", "note", "followup")
            if time.monotonic() - self.shown.get((card.ref, a), 0.0) > 2 * BURST_SECONDS
        ]
        if card.owner in ("", self.user):
            actions += ["status", "assign_to"]
        if not card.owner:
            actions.append("assign_me")
        if not actions:
            return await self.command("show")
        what = self.rng.choice(actions)
        if what in ("refresh", "note", "followup"):
            self.shown[(card.ref, what)] = time.monotonic()
        key = self.client.new_key("p")
        trigger = f"{key}.{self.n}.load"
        element, block, action = self._action(card, what)
        if action is None:
            return await self.command("show")
        request = sr.block_actions(
            action, user=self.user, trigger_id=trigger, response_url=self.client.response_url(key),
            channel=CHANNEL, message_ts=card.ts, message_blocks=card.blocks, ephemeral=card.ts is None,
        )  # fmt: skip
        modal = what in ("note", "followup")
        expect = "view" if modal else "post"
        if not modal:
            self.tally.posts_expected[key] += 1
        kind = f"press:{element['action_id']}"
        sent = Sent(kind, key, expect, trigger, time.monotonic())
        sent = await self.client.send(sent, request, self.config.retry_share)
        if modal:
            await self._fill_in(sent, card, what)
            return
        body = await self._reply(sent)
        if body is None:
            return
        if what != "refresh" and card.ts is not None:
            self.tally.threads_expected[card.ts] += 1
        if what == "assign_to":
            self.tally.dms_expected[(sr_dm(action["selected_user"]), card.ref)] += 1
        self._take_card(body, in_channel=card.ts is not None, key=key, ts=card.ts)

    def _action(self, card: Card, what: str) -> tuple[dict, dict, dict | None]:
        ids = {
            "refresh": "lead_refresh", "note": "lead_add_note", "followup": "lead_log_follow_up",
            "status": "lead_set_status", "assign_to": "lead_assign_to", "assign_me": "lead_assign_me",
        }  # fmt: skip
        try:
            element, block = sr.find_element(card.blocks, ids[what])
        except LookupError:
            return {}, {}, None
        if what == "status":
            options = [o for o in element.get("options", []) if o["value"].rpartition("|")[2] != card.status]
            if not options:
                return element, block, None
            return element, block, sr.select_action(element, block, self.rng.choice(options))
        if what == "assign_to":
            picked = self.rng.choice([p for p in self.peers if p != card.owner] or self.peers)
            return element, block, sr.user_select_action(element, block, picked)
        return element, block, sr.button_action(element, block)

    async def _fill_in(self, press: Sent, card: Card, what: str) -> None:
        if press.status != 200 or not await self.fakes.wait("view", press.trigger, self.config.reply_timeout):
            return
        opened_at, view = self.fakes.views[press.trigger][0]
        if opened_at - press.sent > TRIGGER_LIFE:
            self.tally.errors["modal opened after its trigger expired"] += 1
            return
        await asyncio.sleep(self.rng.uniform(0.2, 1.0))  # typing
        mark = self._mark()
        values = {"text": f"prefers email {mark}"} if what == "note" else {"notes": f"called back {mark}"}
        if what == "followup":
            values["done_at"] = int(time.time()) - 60
        trigger = f"{self.client.new_key('v')}.{self.n}.load"
        request = sr.view_submission(view, values, user=self.user, trigger_id=trigger)
        self.tally.posts_expected[press.key] += 1
        sent = await self.client.send(
            Sent(f"submit:{view.get('callback_id')}", press.key, "post", trigger, time.monotonic()),
            request,
            self.config.retry_share,
        )
        body = await self._reply(sent)
        if body is None:
            return
        self.tally.notes.append(mark)
        if card.ts is not None:
            self.tally.threads_expected[card.ts] += 1
        self._take_card(body, in_channel=card.ts is not None, key=press.key, ts=card.ts)

    # -- replies --------------------------------------------------------------------------------

    async def _reply(self, sent: Sent) -> dict[str, Any] | None:
        """The reply the request owes (a good one), or None (its failure is counted where it is seen)."""
        if sent.status != 200 or sent.body:
            return None  # refused, or answered in the ack (which only help, a mistake or "busy" are)
        if not await self.fakes.wait("post", sent.key, self.config.reply_timeout, after=sent.before):
            return None
        body = self.fakes.posts[sent.key][sent.before][1]
        return None if reply_error(body) else body

    def _take_card(self, body: dict[str, Any], *, in_channel: bool, key: str, ts: str | None = None) -> None:
        blocks = body.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        ref = REF.search(str(body.get("text") or ""))
        try:
            sr.find_element(blocks, "lead_refresh")
        except LookupError:
            return  # a list, not a card
        ref_text = ref.group(1) if ref else None
        if ref_text is None:
            ref_text = str(sr.find_element(blocks, "lead_refresh")[0].get("value"))
        if ref_text not in self.refs:
            self.refs.append(ref_text)
        if in_channel and ts is None:
            ts = f"{int(time.time())}.{int(key[1:]):06d}"  # the message Slack made of an in-channel reply
        self.card = Card(ref_text, blocks, ts if in_channel else None, _owner(blocks), _status(blocks))


def sr_dm(user: str) -> str:
    return "D" + user[1:]


def _status_options(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        element, _ = sr.find_element(blocks, "lead_set_status")
    except LookupError:
        return []
    return element.get("options", [])


def _status(blocks: list[dict[str, Any]]) -> str | None:
    try:
        element, _ = sr.find_element(blocks, "lead_set_status")
    except LookupError:
        return None
    initial = element.get("initial_option") or {}
    return str(initial.get("value", "")).rpartition("|")[2] or None


def _owner(blocks: list[dict[str, Any]]) -> str:
    found = re.search(r"Owner[^<]*<@(U\w+)>", json.dumps(blocks))
    return found.group(1) if found else ""


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Report:
    label: str
    seconds: float
    acks_ms: list[float]
    completions_ms: list[float]
    errors: Counter
    duplicates: Counter
    lost: Counter
    rss_mb: float
    requests: int
    retries: int
    exit_status: int
    log_problems: list[str]
    kinds: dict[str, tuple[int, float, float, float]] = field(default_factory=dict)  # n, ack p99, done p50, p99
    backend_calls: dict[str, int] = field(default_factory=dict)
    posted: int = 0  # chat.postMessage calls that landed: thread replies and DMs
    pss_mb: float = 0.0  # the group's peak PSS, sampled: shared pages counted once

    @property
    def acks_per_s(self) -> float:
        return len(self.acks_ms) / self.seconds if self.seconds else 0.0

    def ok(self) -> bool:
        return not (self.errors or self.duplicates or self.lost)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run_load(config: argparse.Namespace, journal: str) -> Report:
    """Start the fakes and ``leadbot run``, let ``config.users`` users work ``config.seconds``, judge it."""
    tmp = Path(tempfile.mkdtemp(prefix="leadbot-load-"))
    fakes = await Fakes.start(config.backend_latency, config.backend)
    server = None
    try:
        users = [f"ULOAD{n:04d}" for n in range(config.users + 1)]  # the last one only receives assignments
        db = tmp / "load.db"
        seed(db, users, config.backend)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}
        env |= {
            "SLACK_BOT_TOKEN": "xoxb-load",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": f"{fakes.slack_url}/api/",
            "LEADBOT_DB": str(db),
            "LEADBOT_ADMINS": users[0],
            "LEADBOT_DEFAULT_BACKEND": config.backend,
            "LEADBOT_JOURNAL": journal,
            "LEADBOT_LOG_LEVEL": "INFO",  # says when it listens
            "PORT": str(port),
        }
        if config.workers:
            env["LEADBOT_WORKERS"] = str(config.workers)
        env |= dict(setting.partition("=")[::2] for setting in config.env)
        if config.backend == "leadsapi":
            from tests.fakes.leadsapi import TOKEN

            (tmp / "leadbot.toml").write_text(LEADSAPI_CONFIG)
            env |= {"LEADBOT_CONFIG": str(tmp / "leadbot.toml"), "LEADBOT_LEADSAPI_URL": fakes.crm_url}
            env["LEADBOT_LEADSAPI_TOKEN"] = TOKEN
        server = await asyncio.to_thread(Server, env, port)
        server.watch_memory()
        tally = Tally()
        client = Client(port, fakes, tally, config.seed, connections=config.users + 8)
        await warm_up(client, users[0], config.reply_timeout + 30)
        people = [User(n, user, [u for u in users if u != user], client, config) for n, user in enumerate(users[:-1])]
        tally.started = time.monotonic()
        until = tally.started + config.seconds
        await asyncio.gather(*(person.run(until) for person in people))
        tally.stopped = min(time.monotonic(), until)
        await asyncio.gather(*client.resending)
        await drain(fakes, tally, config.drain)
        crm = await fakes.crm_report()
        rss = server.peak_rss_mb()
        if config.detail:
            print("  peak RSS MB: " + ", ".join(f"{k} {v:.1f}" for k, v in server.peaks().items()), file=sys.stderr)
        status = await asyncio.to_thread(server.stop)
        report = judge(tally, fakes, crm, db, config, journal, rss, status, server.log)
        report.pss_mb = server.pss_peak_kb / 1024
        if config.keep_log:
            Path(config.keep_log).write_text("".join(server.log))
        server = None
        return report
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
        await fakes.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def warm_up(client: Client, user: str, timeout: float) -> None:
    """One reply from the work process (it is still starting when the server listens); not counted."""
    key = client.new_key("w")
    request = sr.slash_command(
        "list mine", user=user, response_url=client.response_url(key), trigger_id=f"{key}.load", channel=CHANNEL
    )
    status, _ = await client._exchange(client._raw(request))
    if status != 200 or not await client.fakes.wait("post", key, timeout):
        raise SystemExit(f"leadbot run did not answer a first command (ack {status})")
    client.tally.posts_expected[key] += 1


async def drain(fakes: Fakes, tally: Tally, timeout: float) -> None:
    """Wait, up to ``timeout`` s, for what every acked request owes (and the notices after it) to arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if not _missing(fakes, tally) and not _notices_missing(fakes, tally):
            await asyncio.sleep(0.5)  # late duplicates, if any, come now
            return


def _missing(fakes: Fakes, tally: Tally) -> list[Sent]:
    return [
        s
        for s in tally.requests
        if not s.retry
        and s.status == 200
        and not s.body
        and not (fakes.posts.get(s.key, [])[s.before :] if s.expect == "post" else fakes.views.get(s.trigger))
    ]


def _threads(fakes: Fakes) -> Counter:
    return Counter(m["thread"] for m in fakes.messages if m.get("thread"))


def _dms(fakes: Fakes) -> Counter:
    """Assignment DMs by (DM channel, ref). Only those: a queued write's report ("Your queued status
    change on … reached …") is a DM too, owed by no request the users sent, and was counted as a
    duplicate assignment DM."""
    found: Counter = Counter()
    for m in fakes.messages:
        text = str(m.get("text") or "")
        if m["channel"].startswith("D") and not m.get("thread") and "assigned you" in text:
            ref = REF.search(text)
            found[(m["channel"], ref.group(1) if ref else "")] += 1
    return found


def _notices_missing(fakes: Fakes, tally: Tally) -> int:
    threads, dms = _threads(fakes), _dms(fakes)
    short = sum(max(0, n - threads[ts]) for ts, n in tally.threads_expected.items())
    return short + sum(max(0, n - dms[k]) for k, n in tally.dms_expected.items())


def judge(
    tally: Tally,
    fakes: Fakes,
    crm: dict[str, Any],
    db: Path,
    config: argparse.Namespace,
    journal: str,
    rss: float,
    status: int,
    log: list[str],
) -> Report:
    errors = Counter(tally.errors)
    duplicates: Counter = Counter()
    lost: Counter = Counter()
    completions = []
    by_kind: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    measured_from = tally.started + config.warmup
    for s in tally.requests:
        if s.acked is not None and s.status == 200 and s.sent >= measured_from:
            by_kind[s.kind][0].append((s.acked - s.sent) * 1000)
    for s in tally.requests:
        if s.retry or s.status != 200 or s.acked is None:
            continue
        seen = fakes.posts.get(s.key, [])[s.before :] if s.expect == "post" else fakes.views.get(s.trigger)
        arrivals = [t for t, _ in seen or []]
        if arrivals and s.sent >= measured_from:
            completions.append((min(arrivals) - s.acked) * 1000)
            by_kind[s.kind][1].append(completions[-1])
        elif not arrivals and not s.body:
            lost["acked, nothing came of it"] += 1
            if config.detail:
                print(f"  lost: {s.kind} {s.key} expecting a {s.expect}", file=sys.stderr)
    for key, posts in fakes.posts.items():
        for _, body in posts:
            problem = reply_error(body)
            if problem:
                errors[problem] += 1
        # A card redrawn in place (replace_original) is one message however often it is redrawn; what
        # a redraw shows is checked where it matters (the writes, once each, in the backend).
        redraws = sum(1 for _, body in posts if body.get("replace_original") is True)
        extra = len(posts) - redraws + min(redraws, 1) - tally.posts_expected.get(key, 0)
        if extra > 0:
            duplicates["replies"] += extra
            if config.detail:
                kinds = [f"{s.kind}{' (retry)' if s.retry else ''}" for s in tally.requests if s.key == key]
                texts = [str(body.get("text"))[:80] for _, body in posts]
                print(f"  {key}: {len(posts)} replies to {kinds}: {texts}", file=sys.stderr)
    threads, dms = _threads(fakes), _dms(fakes)
    for ts, n in threads.items():
        duplicates["thread replies"] += max(0, n - tally.threads_expected.get(ts, 0))
        if config.detail and n > tally.threads_expected.get(ts, 0):
            texts = [str(m.get("text"))[:80] for m in fakes.messages if m.get("thread") == ts]
            print(f"  thread {ts}: {n} replies, {tally.threads_expected.get(ts, 0)} owed: {texts}", file=sys.stderr)
    for ts, n in tally.threads_expected.items():
        lost["thread replies"] += max(0, n - threads[ts])
    for k, n in dms.items():
        duplicates["assignment DMs"] += max(0, n - tally.dms_expected.get(k, 0))
    for k, n in tally.dms_expected.items():
        lost["assignment DMs"] += max(0, n - dms[k])
    emails, notes = _written(crm, db, config.backend)
    made = Counter(emails)
    duplicates["leads"] += sum(n - 1 for n in made.values() if n > 1)
    lost["leads"] += sum(1 for e in tally.emails if not made[e])
    for mark in tally.notes:
        count = sum(1 for text in notes if re.search(rf"\b{mark}\b", text))
        if count > 1:
            duplicates["notes and follow-ups"] += count - 1
        elif count == 0:
            lost["notes and follow-ups"] += 1
    if status != 0:
        errors[f"server exit status {status}"] += 1
    if journal != "off":
        with sqlite3.connect(journal_path(str(db))) as conn:
            left = conn.execute("select count(*) from journal where state in ('accepted', 'started')").fetchone()[0]
        lost["journal entries left after SIGTERM"] += left
    problems = [line.rstrip() for line in log if "Traceback" in line or " ERROR " in line]
    window = max(tally.stopped - measured_from, 1e-9)
    acks = [
        (s.acked - s.sent) * 1000
        for s in tally.requests
        if s.acked is not None and s.status == 200 and s.sent >= measured_from
    ]
    label = f"{config.backend}, journal {journal}"
    kinds = {
        kind: (len(a), percentile(a, 99), percentile(d, 50), percentile(d, 99)) for kind, (a, d) in by_kind.items()
    }
    return Report(
        label, window, acks, completions, +errors, +duplicates, +lost, rss,
        len(tally.requests), sum(1 for s in tally.requests if s.retry), status, problems,
        kinds, crm.get("calls", {}), len(fakes.messages),
    )  # fmt: skip


def _written(crm: dict[str, Any], db: Path, backend: str) -> tuple[list[str], list[str]]:
    """The emails of the leads and the texts of the notes and follow-ups the backend holds."""
    if backend == "leadsapi":
        return [e for e in crm.get("emails", []) if e], crm.get("notes", [])
    with sqlite3.connect(db) as conn:
        emails = [row[0] for row in conn.execute("select email from local_leads where email is not null")]
        notes = [row[0] or "" for row in conn.execute("select text from local_notes")]
        notes += [row[0] or "" for row in conn.execute("select notes from local_follow_ups")]
    return emails, notes


# -- the report -----------------------------------------------------------------------------------


def print_reports(reports: list[Report], config: argparse.Namespace) -> None:
    print(
        f"\n{config.users} users for {config.seconds:g} s, think {config.think:g} s, backend latency"
        f" {config.backend_latency * 1000:.0f} ms, {config.retry_share:.1%} re-sent by Slack"
        f" (LEADBOT_WORKERS={config.workers or 'default'}{''.join(' ' + e for e in config.env)});"
        f" users start within {config.ramp:g} s, timings from {config.warmup:g} s on;"
        " errors, duplicates and lost count everything"
    )
    head = f"{'run':<26}{'acks/s':>8}{'ack p50':>9}{'ack p99':>9}{'ack max':>9}{'done p99':>10}{'RSS MB':>8}"
    print(head + f"{'errors':>8}{'dups':>6}{'lost':>6}{'requests':>10}{'retries':>9}")
    for r in reports:
        print(
            f"{r.label:<26}{r.acks_per_s:>8.1f}{percentile(r.acks_ms, 50):>9.2f}{percentile(r.acks_ms, 99):>9.2f}"
            f"{max(r.acks_ms, default=float('nan')):>9.1f}{percentile(r.completions_ms, 99):>10.0f}{r.rss_mb:>8.1f}"
            f"{sum(r.errors.values()):>8}{sum(r.duplicates.values()):>6}{sum(r.lost.values()):>6}"
            f"{r.requests:>10}{r.retries:>9}"
        )
    for r in reports:
        print(
            f"  {r.label}: peak PSS {r.pss_mb:.1f} MB (pages the processes share counted once;"
            " the RSS column counts them in each)"
        )
        for title, counts in (("errors", r.errors), ("duplicates", r.duplicates), ("lost", r.lost)):
            if counts:
                print(f"  {r.label} {title}: " + ", ".join(f"{what} {n}" for what, n in counts.most_common()))
        if r.log_problems:
            print(f"  {r.label}: {len(r.log_problems)} ERROR/Traceback line(s) in the log, first:")
            for line in r.log_problems[:5]:
                print(f"    {line[:200]}")
    if config.detail:
        for r in reports:
            print(f"\n{r.label}: {'kind':<28}{'n':>6}{'ack p99':>9}{'done p50':>10}{'done p99':>10}")
            for kind, (n, a99, d50, d99) in sorted(r.kinds.items()):
                print(f"{'':<{len(r.label) + 2}}{kind:<28}{n:>6}{a99:>9.2f}{d50:>10.0f}{d99:>10.0f}")
            if r.backend_calls:
                print(f"  backend calls: {dict(sorted(r.backend_calls.items(), key=lambda kv: -kv[1]))}")
            print(f"  messages posted (thread replies, DMs): {r.posted}")
    print("\nTargets:")
    for r in reports:
        checks = [
            ("0 errors, 0 duplicates, 0 lost", r.ok()),
            (f"ack p99 < {TARGETS['ack_p99_ms']:g} ms", percentile(r.acks_ms, 99) < TARGETS["ack_p99_ms"]),
            (f"ack max < {TARGETS['ack_max_ms'] / 1000:g} s", max(r.acks_ms, default=0) < TARGETS["ack_max_ms"]),
            (f"peak RSS < {TARGETS['rss_mb']:g} MB", r.rss_mb < TARGETS["rss_mb"]),
        ]
        print(f"  {r.label}: " + "; ".join(f"{'PASS' if ok else 'MISS'} {what}" for what, ok in checks))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--backend-latency", type=float, default=0.2, help="seconds the backend's fake waits")
    parser.add_argument("--retry-share", type=float, default=0.01, help="share of requests Slack sends again")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a user waits between actions")
    parser.add_argument("--ramp", type=float, default=5.0, help="users start at random within this many seconds")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds at the start left out of the timings (never of the counts)"
    )
    parser.add_argument("--backend", choices=["leadsapi", "local"], default="leadsapi")
    parser.add_argument("--journal", choices=["full", "normal", "off"], default="full", help="LEADBOT_JOURNAL")
    parser.add_argument("--compare-journal", action="store_true", help="run with the journal full, then off")
    parser.add_argument("--workers", type=int, default=0, help="LEADBOT_WORKERS (0: Leadbot's default)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for leadbot run (repeatable)"
    )
    parser.add_argument("--reply-timeout", type=float, default=30, help="how long a user waits for a reply")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for what is owed after the run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-log", metavar="PATH", help="write the server's log there")
    parser.add_argument("--detail", action="store_true", help="figures per kind of request, backend calls")
    return parser.parse_args(argv)


def main() -> None:
    if sys.argv[1:2] == ["--serve-fakes"]:
        serve_fakes(float(sys.argv[2]), sys.argv[3])
        return
    config = arguments()
    modes = ["full", "off"] if config.compare_journal else [config.journal]
    reports = [asyncio.run(run_load(config, mode)) for mode in modes]
    print_reports(reports, config)
    sys.exit(0 if all(r.ok() for r in reports) else 1)


if __name__ == "__main__":
    main()
