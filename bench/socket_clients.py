"""Socket Mode clients compared on one machine in one run, against the fake Slack in tests/fakes/socket_slack.py.

Each candidate runs a minimal Bolt app (a ``/lead`` command listener and a ``lead_done`` action listener that
only ``ack()``, ``process_before_response=True`` as Leadbot's app) in its own subprocess, so a crash or a
spinning thread shows up against that client alone. The fake runs in this process and timestamps both sides.

Candidates:
  builtin           slack_bolt.adapter.socket_mode.SocketModeHandler (slack_sdk's built-in client), sync App
  websocket_client  slack_bolt.adapter.socket_mode.websocket_client.SocketModeHandler, sync App
  aiohttp           slack_bolt.adapter.socket_mode.aiohttp.AsyncSocketModeHandler, AsyncApp
  websockets        slack_bolt.adapter.socket_mode.websockets.AsyncSocketModeHandler, AsyncApp
  aiohttp@3         the same with ping_interval=3 (NAME@N runs any candidate with ping_interval=N)
  wired             the aiohttp adapter wired as a product would (see wired() below), ping_interval=2
all others with the handlers' defaults (ping_interval=10, concurrency=10 for the sync ones).

Per client: ack latency at 100 envelopes/s; for each disruption (disconnect refresh_requested / warning,
refresh while apps.connections.open fails once, close frame, RST, a 1.3 MB envelope, TCP FIN with 10 s idle,
silent peer) the time until a probe command sent after it is acked, the slowest probe ack, envelopes never
acked (5 sent just before each disruption, probes at 20/s after it), apps.connections.open calls; the start
with apps.connections.open failing; SIGTERM. Then an HTTP baseline: bench/bare_app.py (sync App,
process_before_response=True, Starlette, uvicorn) receiving 100 signed /lead commands/s.

    .venv/bin/python bench/socket_clients.py            # about 5 minutes
    .venv/bin/python bench/socket_clients.py --quick    # about 2.5 minutes, shorter windows
    .venv/bin/python bench/socket_clients.py --clients builtin,aiohttp --json out.json

Needs websocket-client and aiohttp installed for those candidates (websockets comes with uvicorn[standard]).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.socket_slack import BOT_TOKEN, Envelope, SocketSlack  # noqa: E402

CLIENTS = ("builtin", "websocket_client", "aiohttp", "websockets", "aiohttp@3", "wired")  # NAME@N: ping_interval=N
SIGNING_SECRET = "bench-signing-secret"
TICK = os.sysconf("SC_CLK_TCK")


# -- the client under test (child process) ---------------------------------------------------------------


def child(kind: str) -> None:
    kind, _, ping = kind.partition("@")
    options = {"ping_interval": float(ping)} if ping else {}
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logger = logging.getLogger("bench.bolt")
    logger.setLevel(logging.WARNING)
    api, app_token = os.environ["SLACK_API_URL"], os.environ["SLACK_APP_TOKEN"]
    if kind in ("builtin", "websocket_client"):
        from slack_bolt import App
        from slack_sdk import WebClient

        app = App(client=WebClient(token=BOT_TOKEN, base_url=api), process_before_response=True, logger=logger)

        @app.command("/lead")
        def lead(ack):
            ack()

        @app.action("lead_done")
        def done(ack):
            ack()

        if kind == "builtin":
            from slack_bolt.adapter.socket_mode import SocketModeHandler
        else:
            from slack_bolt.adapter.socket_mode.websocket_client import SocketModeHandler
        SocketModeHandler(app, app_token, **options).start()
        return

    if kind == "wired":
        sys.exit(asyncio.run(wired(api, app_token, options.get("ping_interval", 2.0), logger)))

    async def main() -> None:
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        app = AsyncApp(
            client=AsyncWebClient(token=BOT_TOKEN, base_url=api), process_before_response=True, logger=logger
        )

        @app.command("/lead")
        async def lead(ack):
            await ack()

        @app.action("lead_done")
        async def done(ack):
            await ack()

        if kind == "aiohttp":
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
        else:
            from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler
        await AsyncSocketModeHandler(app, app_token, **options).start_async()

    asyncio.run(main())


FATAL_OPEN_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}


async def wired(api: str, app_token: str, ping_interval: float, logger: logging.Logger) -> int:
    """The aiohttp adapter as a product would wire it (see bench/SOCKET_MODE.md): returns the exit code.

    * ``ping_interval`` short: aiohttp's heartbeat closes a silent link after 1.5 × it, and the SDK's monitor
      and its sleeps after a dropped connection tick at that interval;
    * a watchdog that reconnects as soon as the socket is closed (FIN, RST), instead of at the monitor's tick;
    * ``apps.connections.open`` retried with capped exponential backoff (Retry-After honoured), and an
      auth error at start is fatal (exit 2) instead of retried forever;
    * SIGTERM: stop reading envelopes, let the in-flight ones finish and ack, close the socket, exit 0;
    * a catch-all action listener registered last, so an action nobody handles is still acked.
    """
    import random
    import re

    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.errors import SlackApiError
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.web.async_client import AsyncWebClient

    class FatalOpenError(Exception):
        pass

    class Client(SocketModeClient):
        async def issue_new_wss_url(self) -> str:
            delay = 1.0
            while True:
                try:
                    return (await self.web_client.apps_connections_open(app_token=self.app_token))["url"]
                except SlackApiError as e:
                    error = e.response.get("error") if isinstance(e.response.data, dict) else None
                    if error in FATAL_OPEN_ERRORS:
                        raise FatalOpenError(error) from e
                    retry_after = e.response.headers.get("Retry-After") if e.response.status_code == 429 else None
                    wait = float(retry_after) if retry_after else delay * random.uniform(0.8, 1.2)
                except Exception:  # connection refused, timeout, a 5xx that is not JSON
                    wait = delay * random.uniform(0.8, 1.2)
                logger.warning("apps.connections.open failed; next try in %.1f s", wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, 60.0)

    class Handler(AsyncSocketModeHandler):
        def __init__(self, app: AsyncApp) -> None:  # the adapter's __init__, with our client
            self.app, self.app_token, self.inflight = app, app_token, 0
            self.client = Client(app_token, logger=logger, web_client=app.client, ping_interval=ping_interval)
            self.client.socket_mode_request_listeners.append(self.handle)

        async def handle(self, client, req) -> None:
            self.inflight += 1
            try:
                await super().handle(client, req)
            finally:
                self.inflight -= 1

    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=api), process_before_response=True, logger=logger)

    @app.command("/lead")
    async def lead(ack):
        await ack()

    @app.action("lead_done")
    async def done(ack):
        await ack()

    @app.action(re.compile(".*"))  # last: an action no listener above matched
    async def unknown_action(ack, body):
        await ack()
        logger.warning("no listener for action %s", body.get("actions", [{}])[0].get("action_id"))

    handler = Handler(app)
    client = handler.client
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        client.wss_uri = await client.issue_new_wss_url()  # here, so that a bad token ends the process
    except FatalOpenError as e:
        logger.error("apps.connections.open: %s; check SLACK_APP_TOKEN", e)
        await client.close()
        return 2
    await handler.connect_async()

    async def watchdog() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1)
            session = client.current_session
            if client.auto_reconnect_enabled and not client.closed and (session is None or session.closed):
                try:
                    await client.connect_to_new_endpoint()
                except Exception as e:  # FatalOpenError after start: keep the old behaviour, log and go on
                    logger.error("reconnect failed: %s", e)

    guard = asyncio.ensure_future(watchdog())
    await stop.wait()
    # graceful stop: no new envelopes, finish those read, close the link
    guard.cancel()
    client.auto_reconnect_enabled = client.default_auto_reconnect_enabled = False
    if client.message_receiver is not None:
        client.message_receiver.cancel()
    deadline = loop.time() + 5
    while (handler.inflight or not client.message_queue.empty()) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    await handler.close_async()
    return 0


# -- measuring ---------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def pace(until: float) -> None:
    """Wait for the next send time of an open-loop load (pacing, not synchronisation)."""
    delay = until - time.monotonic()
    if delay > 0:
        threading.Event().wait(delay)


def wire_latency(envelope: Envelope) -> float | None:
    """From the envelope's first frame written to its first ack read."""
    if not envelope.acks or not envelope.deliveries:
        return None
    return envelope.acks[0].at - envelope.deliveries[0][1]


class Client:
    """One candidate in its subprocess, with its own fake Slack."""

    def __init__(self, kind: str, slack: SocketSlack, logdir: Path, tag: str = "") -> None:
        self.kind = kind
        self.slack = slack
        self.log = logdir / f"{kind.replace('@', '-ping')}{tag}.log"
        env = os.environ | {
            "SLACK_API_URL": slack.api_url,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        self.started = time.monotonic()
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--child", kind], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)


@dataclass
class Case:
    name: str
    recovered_s: float | None = None  # until the first probe sent after the disruption was acked
    reconnect_s: float | None = None  # until a new link said hello
    probe_ack_max_s: float | None = None  # the slowest probe, from its creation (time queued counts)
    over_1s: int = 0  # envelopes of this case acked more than 1 s after their creation, or never
    unacked: int = 0  # sent (or queued) and never acked
    unacked_before: int = 0  # of those, among the 5 sent just before the disruption
    open_calls: int = 0
    new_links: int = 0
    cpu_pct: float | None = None
    note: str = ""


@dataclass
class Result:
    client: str
    start_s: float | None = None
    load: dict[str, Any] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)
    startup_failure: dict[str, Any] = field(default_factory=dict)
    sigterm: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    crashed: str = ""
    restarts: int = 0  # fresh processes the bench had to start after a case left the client deaf or dead
    errors: dict[str, int] = field(default_factory=dict)


def load(client: Client, rate: int, seconds: float) -> dict[str, Any]:
    slack = client.slack
    warm = [slack.command("warm") for _ in range(20)]
    slack.wait_acked(warm, 10)
    cpu0, t0 = client.cpu(), time.monotonic()
    sent = []
    for i in range(int(rate * seconds)):
        pace(t0 + i / rate)
        sent.append(slack.command("help"))
    wall = time.monotonic() - t0
    slack.wait_acked(sent, 5)
    cpu = (client.cpu() - cpu0) / wall * 100
    unknown = slack.wait_ack(slack.action("no_such_action"), 2) is not None
    latencies = [x for x in (wire_latency(e) for e in sent) if x is not None]
    return {
        "sent": len(sent),
        "acked": len(latencies),
        "p50_ms": (pct(latencies, 0.5) or 0) * 1000,
        "p99_ms": (pct(latencies, 0.99) or 0) * 1000,
        "max_ms": (max(latencies) if latencies else 0) * 1000,
        "over_1s": sum(1 for x in latencies if x > 1) + len(sent) - len(latencies),
        "cpu_pct": cpu,
        "unknown_action_acked": unknown,
    }


def disrupt(client: Client, name: str, cap: float, idle: float = 0.0, rate: float = 20.0, before: int = 5) -> Case:
    slack = client.slack
    case = Case(name)
    if slack.current is None and not slack.wait_for(lambda s: s.current is not None, cap):
        case.note = "no open link before the case"
        return case
    calls0, links0 = len(slack.open_calls), len(slack.links)
    sent_before = [slack.command("before") for _ in range(before)]
    big = None
    t0 = time.monotonic()
    if name in ("refresh_requested", "warning"):
        slack.disconnect(name)
    elif name == "refresh, open fails once":
        slack.fail_open("internal_error")
        slack.disconnect("refresh_requested")
    elif name == "close frame":
        slack.close(1001)
    elif name == "RST":
        slack.rst()
    elif name.startswith("FIN"):
        slack.fin()
    elif name.startswith("silent"):
        slack.go_silent()
    elif name == "1.3 MB envelope":
        big = slack.action(pad_to=1_300_000)
    cpu0 = client.cpu()
    if idle:  # no envelopes: what the client does by itself (CPU), and whether it reconnects
        slack.wait_for(lambda s: len(s.links) > links0 and s.links[-1].hello_at is not None, idle)
        pace(t0 + idle)
        case.cpu_pct = (client.cpu() - cpu0) / (time.monotonic() - t0) * 100
    probes: list[Envelope] = []
    first_ok = None
    next_at = time.monotonic()
    while client.alive():
        now = time.monotonic()
        if first_ok is None:
            acked = [p.acks[0].at for p in probes if p.acks]
            first_ok = min(acked) if acked else None
        if (first_ok is not None and now >= first_ok + 1.0) or now >= t0 + cap + idle:
            break
        if now >= next_at:
            probes.append(slack.command("probe"))
            next_at += 1 / rate
        pace(min(next_at, now + 0.01))
    everything = sent_before + probes + ([big] if big else [])
    slack.wait_acked(everything, 2)
    case.recovered_s = first_ok - t0 if first_ok is not None else None
    new = [link for link in slack.links[links0:] if link.hello_at is not None]
    case.reconnect_s = new[0].hello_at - t0 if new else None
    latencies = [p.acks[0].at - p.created_at for p in probes if p.acks]
    case.probe_ack_max_s = max(latencies) if latencies else None
    case.over_1s = sum(1 for e in everything if not e.acks or e.acks[0].at - e.created_at > 1)
    case.unacked = sum(1 for e in everything if not e.acks)
    case.unacked_before = sum(1 for e in sent_before if not e.acks)
    case.open_calls = len(slack.open_calls) - calls0
    case.new_links = len(slack.links) - links0
    if big is not None:
        case.note = "1.3 MB acked" if big.acks else "1.3 MB never acked"
    if first_ok is None:
        case.note = (case.note + "; " if case.note else "") + f"not acking after {cap + idle:.0f} s"
    if not client.alive():
        case.note += f"; process exited {client.proc.returncode}"
    return case


def sigterm(client: Client) -> dict[str, Any]:
    slack = client.slack
    link = slack.current
    inflight = [slack.command("last") for _ in range(5)]
    client.proc.send_signal(signal.SIGTERM)
    try:
        rc = client.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = "still running after 10 s"
    slack.wait_acked(inflight, 1)
    if link is not None:
        slack.wait_closed(link, 2)
    return {
        "rc": rc,
        "close_frame": link is not None and link.client_close_code is not None,
        "inflight_unacked": sum(1 for e in inflight if not e.acks),
    }


def errors_in(text: str) -> dict[str, int]:
    wanted = ("RecursionError", "Traceback", "BrokenPipeError", "Failed to send", "ConnectionResetError")
    return {w: text.count(w) for w in wanted if w in text}


def start_and_load(kind: str, args: argparse.Namespace, logdir: Path) -> tuple[Result, SocketSlack, list[Client]]:
    result = Result(kind)
    slack = SocketSlack(drain_close_after=args.drain_close_after).start()
    clients = [Client(kind, slack, logdir)]
    link = slack.wait_link(1, 20)
    if link is None:
        result.crashed = f"no link within 20 s (exit {clients[0].proc.poll()})"
        return result, slack, clients
    result.start_s = link.hello_at - clients[0].started
    result.load = load(clients[0], 100, args.load_seconds)
    return result, slack, clients


def ready(result: Result, slack: SocketSlack, clients: list[Client], logdir: Path, cap: float) -> str:
    """Make sure a client is listening; start a fresh process if the last case left it deaf or dead."""
    if clients[-1].alive() and slack.wait_for(lambda s: s.current is not None, cap):
        return ""
    note = f"(fresh process: the last one was {'deaf' if clients[-1].alive() else 'dead'}) "
    clients[-1].stop()
    clients.append(Client(result.client, slack, logdir, f"-{len(clients)}"))
    if not slack.wait_for(lambda s: s.current is not None, 20):
        return note + "no link"
    return note


def disruptions(result: Result, slack: SocketSlack, clients: list[Client], args: argparse.Namespace, logdir: Path):
    try:
        if result.crashed:
            return
        cases = ["refresh_requested", "warning", "refresh, open fails once", "close frame", "RST", "1.3 MB envelope"]
        for name in [*cases, "FIN"]:
            note = ready(result, slack, clients, logdir, args.cap)
            if note.endswith("no link"):
                result.cases.append(Case(name, note=note))
                continue
            if name == "FIN":
                case = disrupt(clients[-1], f"FIN, {args.idle:.0f} s idle", args.fin_cap, idle=args.idle)
            else:  # after an RST the client's kernel drops what it had not read: send nothing just before
                case = disrupt(clients[-1], name, args.cap, before=0 if name == "RST" else 5)
            case.note = note + case.note
            result.cases.append(case)
        if not ready(result, slack, clients, logdir, args.cap).endswith("no link"):
            result.peak_rss_mb = peak_rss_mb(clients[-1].proc.pid)
            result.sigterm = sigterm(clients[-1])
    finally:
        for client in clients:
            client.stop()
            for key, count in errors_in(client.log_text()).items():
                result.errors[key] = result.errors.get(key, 0) + count
        slack.stop()
        result.restarts = len(clients) - 1


def run_silent(kind: str, args: argparse.Namespace, logdir: Path) -> Case:
    slack = SocketSlack().start()
    client = Client(kind, slack, logdir, "-silent")
    try:
        if slack.wait_link(1, 20) is None:
            return Case("silent peer", note="no link")
        warm = [slack.command("warm") for _ in range(3)]
        slack.wait_acked(warm, 10)
        return disrupt(client, "silent peer", args.silent_cap, rate=5, before=0)  # acks to a dead path are lost
    finally:
        client.stop()
        slack.stop()


def run_startup_failure(kind: str, error: str, times: int, window: float, logdir: Path) -> dict[str, Any]:
    slack = SocketSlack().start()
    slack.fail_open(error, times=times)
    client = Client(kind, slack, logdir, f"-start-{error}")
    try:
        slack.wait_for(lambda s: any(link.hello_at for link in s.links) or not client.alive(), window)
        link = slack.links[0] if slack.links else None
        ok = None
        if link is not None:
            probe = slack.command("probe")
            ok = slack.wait_ack(probe, 5) is not None
        text = client.log_text()
        return {
            "error": error,
            "exit": client.proc.poll(),
            "open_calls": len(slack.open_calls),
            "connected_s": (link.hello_at - client.started) if link else None,
            "acks": ok,
            "traceback": "Traceback" in text,
        }
    finally:
        client.stop()
        slack.stop()


# -- the HTTP baseline --------------------------------------------------------------------------------------


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def http_baseline(args: argparse.Namespace, logdir: Path) -> dict[str, Any]:
    slack = SocketSlack().start()  # answers auth.test for App(token=…)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PORT": str(port),
    }
    log = (logdir / "http.log").open("w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_app.py")], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                pace(time.monotonic() + 0.05)  # bounded polling for a port: the server says nothing when ready
        jobs: queue.Queue = queue.Queue()
        latencies: list[float] = []
        failures = [0]

        def worker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            while (job := jobs.get()) is not None:
                body = urlencode(job)
                headers = signed(body)
                started = time.monotonic()
                try:
                    conn.request("POST", "/slack/events", body, headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        latencies.append(time.monotonic() - started)
                    else:
                        failures[0] += 1
                except OSError:
                    failures[0] += 1
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for w in workers:
            w.start()

        def command(n: int) -> dict[str, str]:
            return {
                "token": "x",
                "team_id": "T0LEADBOT",
                "team_domain": "leadbot-test",
                "channel_id": "C0LEADS",
                "channel_name": "leads",
                "user_id": "U0REP1",
                "user_name": "ana",
                "command": "/lead",
                "text": "help",
                "api_app_id": "A0LEADBOT",
                "response_url": f"{slack.url}/response/{n}",
                "trigger_id": f"{n}.1.x",
            }

        for n in range(20):
            jobs.put(command(n))
        while not jobs.empty():
            pace(time.monotonic() + 0.05)
        pace(time.monotonic() + 0.5)
        latencies.clear()
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        total = int(100 * args.load_seconds)
        for i in range(total):
            pace(t0 + i / 100)
            jobs.put(command(i))
        for _ in workers:
            jobs.put(None)
        for w in workers:
            w.join(10)
        wall = time.monotonic() - t0
        return {
            "sent": total,
            "acked": len(latencies),
            "p50_ms": (pct(latencies, 0.5) or 0) * 1000,
            "p99_ms": (pct(latencies, 0.99) or 0) * 1000,
            "max_ms": (max(latencies) if latencies else 0) * 1000,
            "failures": failures[0],
            "cpu_pct": (cpu_seconds(proc.pid) - cpu0) / wall * 100,
        }
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
        slack.stop()


# -- report -------------------------------------------------------------------------------------------------


def fmt(x: float | None, unit: str = "s", digits: int = 2) -> str:
    if x is None:
        return "—"
    return f"{x * 1000:.0f} ms" if unit == "ms" else f"{x:.{digits}f} {unit}".rstrip()


def report(results: list[Result], http: dict[str, Any], args: argparse.Namespace) -> str:
    out = []
    out.append(f"## Ack latency, 100 envelopes/s for {args.load_seconds:.0f} s (frame written → ack read)\n")
    out.append(
        "| client | acked | p50 ms | p99 ms | max ms | > 1 s | CPU % | p99 / HTTP p99 | start s | peak RSS MB "
        "| unknown action acked |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    base = http.get("p99_ms") or float("nan")
    for r in results:
        if not r.load:
            out.append(f"| {r.client} | {r.crashed} |")
            continue
        ld = r.load
        out.append(
            f"| {r.client} | {ld['acked']}/{ld['sent']} | {ld['p50_ms']:.1f} | {ld['p99_ms']:.1f} | {ld['max_ms']:.1f} "
            f"| {ld['over_1s']} | {ld['cpu_pct']:.0f} | {ld['p99_ms'] / base:.2f}× | {fmt(r.start_s)} "
            f"| {r.peak_rss_mb or 0:.0f} | {'yes' if ld.get('unknown_action_acked') else 'no'} |"
        )
    if http:
        out.append(
            f"| HTTP baseline (bare_app.py, uvicorn) | {http['acked']}/{http['sent']} | {http['p50_ms']:.1f} "
            f"| {http['p99_ms']:.1f} | {http['max_ms']:.1f} | {http['failures']} | {http['cpu_pct']:.0f} "
            "| 1.00× | — | — |"
        )
    out.append("\n## Disruptions (probes: /lead commands at 20/s, 5/s when silent; 5 commands sent just before)\n")
    out.append(
        "| client | case | listening again | new hello | slowest probe | > 1 s | unacked (of the 5 before) "
        "| apps.connections.open | links | CPU % | note |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        for c in r.cases:
            out.append(
                f"| {r.client} | {c.name} | {fmt(c.recovered_s)} | {fmt(c.reconnect_s)} | {fmt(c.probe_ack_max_s)} "
                f"| {c.over_1s} | {c.unacked} ({c.unacked_before}) | {c.open_calls} | {c.new_links} "
                f"| {'' if c.cpu_pct is None else f'{c.cpu_pct:.0f}'} | {c.note} |"
            )
    out.append("\n## apps.connections.open failing at start\n")
    out.append("| client | apps.connections.open answers | exit code | calls | connected after | acks |")
    out.append("|---|---|---:|---:|---:|---|")
    for r in results:
        for f in r.startup_failure.get("runs", []):
            exit_code = "still running" if f["exit"] is None else f["exit"]
            answers = "internal_error twice, then ok" if f["error"] == "internal_error" else f"{f['error']} always"
            out.append(
                f"| {r.client} | {answers} | {exit_code}{' (traceback)' if f['traceback'] else ''} "
                f"| {f['open_calls']} | {fmt(f['connected_s'])} | {'yes' if f['acks'] else '—'} |"
            )
    out.append("\n## SIGTERM with 5 commands in flight; errors in the client's logs\n")
    out.append("| client | exit code | close frame sent | in-flight unacked | fresh processes needed | log |")
    out.append("|---|---:|---|---:|---:|---|")
    for r in results:
        term = r.sigterm
        errors = ", ".join(f"{k} ×{v}" for k, v in r.errors.items()) or "—"
        out.append(
            f"| {r.client} | {term.get('rc', '—')} | {'yes' if term.get('close_frame') else 'no'} "
            f"| {term.get('inflight_unacked', '—')} | {r.restarts} | {errors} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter windows (about 2 minutes)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset of " + ", ".join(CLIENTS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP baseline")
    parser.add_argument("--report-from", type=Path, help="print the tables of an earlier run's --json file")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.report_from:
        data = json.loads(args.report_from.read_text())
        results = [Result(**(r | {"cases": [Case(**c) for c in r["cases"]]})) for r in data["clients"]]
        args.load_seconds = data.get("load_seconds", 10.0)
        print(report(results, data["http"], args))
        return
    args.load_seconds = 3.0 if args.quick else 10.0
    args.cap = 8.0 if args.quick else 12.0  # how long a disruption may take before it is reported as not recovered
    args.idle = 5.0 if args.quick else 10.0
    args.fin_cap = 15.0 if args.quick else 55.0
    args.drain_close_after = 5.0  # an assumption: Slack's delay is not documented
    args.silent_cap = 25.0 if args.quick else 50.0
    args.start_window = 12.0 if args.quick else 25.0
    kinds = [k for k in args.clients.split(",") if k]
    logdir = Path(tempfile.mkdtemp(prefix="socket-bench-"))
    started = time.monotonic()
    print(
        f"# Socket Mode clients — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}; logs in {logdir}\n",
        flush=True,
    )

    # one at a time: ack latency and CPU without a neighbour
    started_clients = []
    for kind in kinds:
        print(f"- {kind}: start, {args.load_seconds:.0f} s at 100 envelopes/s …", flush=True)
        started_clients.append(start_and_load(kind, args, logdir))
    results = [r for r, _, _ in started_clients]

    # side by side (each client has its own fake and process): the disruptions are waits of seconds
    print("- disruptions, all clients at once …", flush=True)
    threads = [threading.Thread(target=disruptions, args=(*x, args, logdir)) for x in started_clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    print("- silent peer and failing starts, all clients at once …", flush=True)
    outcomes: dict[tuple[str, str], Any] = {}

    def silent(kind: str) -> None:
        outcomes[(kind, "silent")] = run_silent(kind, args, logdir)

    def start_fail(kind: str, error: str, times: int) -> None:
        outcomes[(kind, error)] = run_startup_failure(kind, error, times, args.start_window, logdir)

    threads = [threading.Thread(target=silent, args=(k,)) for k in kinds]
    threads += [threading.Thread(target=start_fail, args=(k, "internal_error", 2)) for k in kinds]
    threads += [threading.Thread(target=start_fail, args=(k, "invalid_auth", -1)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if (r.client, "silent") in outcomes:
            r.cases.append(outcomes[(r.client, "silent")])
        r.startup_failure = {"runs": [outcomes[(r.client, e)] for e in ("internal_error", "invalid_auth")]}

    http: dict[str, Any] = {}
    if not args.no_http:
        print("- HTTP baseline …", flush=True)
        http = http_baseline(args, logdir)
    print()
    print(report(results, http, args))
    print(f"\n(whole run {time.monotonic() - started:.0f} s)")
    if args.json:
        figures = {"clients": [asdict(r) for r in results], "http": http, "load_seconds": args.load_seconds}
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
