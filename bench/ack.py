"""Leadbot's ack path against a bare Bolt app, served the same way, in one run.

    .venv/bin/python bench/ack.py [--seconds 10] [--warmup 2] [--rate-seconds 30] [--runs 1]

Prints, for the bare app and for Leadbot (`leadbot run`, HTTP mode, local backend):
1. the ack ceiling at 10 concurrent clients: requests/s and ack p50/p99 for
   `/lead help` (bare app) and `/lead help`, `/lead show REF`, `/lead new …` (Leadbot);
2. at a fixed 200 requests/s: ack p99 and completion p99 (request sent → the reply
   or card arriving at the fake Web API), and errors;
3. each server's peak RSS and time from process start to first ack.
Servers run in their own processes, both started first; the `/lead help` ceiling runs
alternate between them, and each prints the server's CPU time per ack, which the load
client's share of the cores does not move. The load client and the fake Slack Web API
share this process. Requests go to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class RemoteFake:
    """bench/fake_web_api.py, driven over its stdin/stdout."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_web_api.py"), USER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()
        self.api_url = f"{self.url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def count(self) -> int:
        return int(self.ask("count"))

    def arrivals(self) -> dict[str, float]:
        return json.loads(self.ask("dump"))

    def clear(self) -> None:
        self.ask("clear")

    def wait_count(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= n:
                return True
            time.sleep(0.05)  # a benchmark polling another process, not a test
        return False

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


SECRET = "bench-signing-secret"
USER = "UBENCH"
CONCURRENCY = 10
PREPARED_PER_S = 12_000  # requests made ready per second of a ceiling run: above any server's rate here
TARGETS = {"ack_ratio": 0.8, "p99_ratio": 1.5, "completion_p99_ms": 250, "rss_mb": 150, "first_ack_s": 2.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids += _process_tree(int(child))
    return pids


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    first_ack_s: float = 0.0

    def peak_rss_mb(self) -> float:
        """Peak RSS of the server and every process under it (Leadbot's work process)."""
        return sum(_peak_rss_kb(pid) for pid in _process_tree(self.process.pid)) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Requests:
    """Signed `/lead` requests; each has its own trigger_id and response_url key."""

    def __init__(self, fake: RemoteFake, port: int) -> None:
        self.fake = fake
        self.port = port
        self.ids = itertools.count(1)
        self.verifier = SignatureVerifier(SECRET)

    def build(self, text: str) -> tuple[str, bytes]:
        n = next(self.ids)
        key = f"b{n}"
        body = urlencode(
            {
                "token": "x",
                "team_id": "T0LEADBOT",
                "team_domain": "bench",
                "channel_id": "C0BENCH",
                "channel_name": "bench",
                "user_id": USER,
                "user_name": "bench",
                "command": "/lead",
                "text": text.replace("{n}", str(n)),
                "api_app_id": "A0LEADBOT",
                "response_url": self.fake.response_url(key),
                "trigger_id": f"{n}.bench.trigger",
            }
        )
        ts = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=ts, body=body)
        raw = body.encode()
        head = (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        ).encode()
        return key, head + raw


async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request; return its status, or -1 for an ack that turned the work away as busy."""
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    if b"busy right now" in body:
        return -1
    return int(status_line.split()[1]) if status_line else 0


@dataclass
class Result:
    acks_ms: list[float] = field(default_factory=list)
    errors: int = 0
    shed: int = 0  # acked, but told "busy": the work was not taken in
    acked: int = 0  # 200s including the warm-up: each owes a reply when the command has one
    drain_s: float = 0.0  # after the last ack, until the last reply reached the fake Web API
    seconds: float = 0.0
    cpu_s: float = 0.0  # the server's CPU time (every process of it) over the measured window
    ran_out: bool = False  # a client used up its prepared requests before the window ended
    sent_at: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.acks_ms) / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_ack(self) -> float:
        return self.cpu_s / len(self.acks_ms) * 1e6 if self.acks_ms else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.acks_ms, q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and every process under it."""
    total = 0
    for each in _process_tree(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def ceiling(requests: Requests, text: str, seconds: float, warmup: float, server_pid: int) -> Result:
    """As many requests as ``CONCURRENCY`` clients get answered, each sending its next on the last's answer.

    The server's CPU time per ack is measured too: on a shared machine the load client competes with
    the server for the cores, and CPU per ack says what the server costs whatever the client gets.
    """
    result = Result()
    prepared = [
        requests.build(text) for _ in range(int(PREPARED_PER_S * (seconds + warmup)) // CONCURRENCY * CONCURRENCY)
    ]
    chunks = [prepared[i::CONCURRENCY] for i in range(CONCURRENCY)]
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(chunk: list[tuple[str, bytes]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", requests.port)
        for _, request in chunk:
            sent = time.monotonic()
            if sent >= stop_at:
                break
            if measuring[0] is None and sent >= measure_from:
                measuring[0] = cpu_seconds(server_pid)
            status = await send(reader, writer, request)
            done = time.monotonic()
            result.acked += status == 200
            if sent >= measure_from:
                if status in (200, -1):
                    result.acks_ms.append((done - sent) * 1000)
                    result.shed += status == -1
                else:
                    result.errors += 1
        else:
            result.ran_out = True
        writer.close()

    measuring: list[float | None] = [None]  # the server's CPU time when the window opened
    await asyncio.gather(*(client(c) for c in chunks))
    result.cpu_s = cpu_seconds(server_pid) - (measuring[0] or 0.0)
    result.seconds = seconds
    return result


async def fixed_rate(requests: Requests, texts: list[str], rate: float, seconds: float) -> Result:
    result = Result()
    total = int(rate * seconds)
    prepared = [requests.build(texts[i % len(texts)]) for i in range(total)]
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", requests.port))

    async def one(key: str, request: bytes) -> None:
        reader, writer = await pool.get()
        sent = time.monotonic()
        result.sent_at[key] = sent
        try:
            status = await send(reader, writer, request)
        finally:
            pool.put_nowait((reader, writer))
        if status == 200:
            result.acks_ms.append((time.monotonic() - sent) * 1000)
        else:
            result.errors += 1

    start = time.monotonic()
    tasks = []
    for i, (key, request) in enumerate(prepared):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(key, request)))
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return result


def start_server(
    name: str, command: list[str], env: dict[str, str], port: int, requests: Requests, log: Path
) -> Server:
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    _, probe = requests.build("help")
    deadline = started + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited: {process.stderr.read().decode()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(probe)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return Server(name, process, port, time.monotonic() - started)
        except OSError:
            time.sleep(0.005)  # the server is still starting; poll again
    raise SystemExit(f"{name} did not answer within 30 s")


def seed(db: Path) -> str:
    from bot.stores.sqlite import SqliteStore
    from services.models import NewLead, StaffLink

    store = SqliteStore(db)
    now = datetime.now(UTC)
    store.links.put(StaffLink(slack_user=USER, backend="local", staff_id="bench"), by=USER, at=now)
    lead = store.local.insert(
        NewLead(name="Bench Lead", email="bench@example.com"), status="new", owner="bench", by="bench", at=now
    )
    store.close()
    return lead.ref


def median_result(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--rate-seconds", type=float, default=30)
    parser.add_argument("--runs", type=int, default=1, help="runs per case; the median is shown")
    args = parser.parse_args()

    fake = RemoteFake()
    tmp = Path(tempfile.mkdtemp(prefix="leadbot-bench-"))
    ref = seed(tmp / "bench.db")
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "LEADBOT_DB": str(tmp / "bench.db"),
        "LEADBOT_ADMINS": USER,
    }
    env.pop("SLACK_APP_TOKEN", None)
    leadbot = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or "leadbot"
    cases = {
        "bare": ([sys.executable, str(ROOT / "bench" / "bare_app.py")], ["help"]),
        "leadbot": ([leadbot, "run"], ["help", f"show {ref}", "new Bench {n} bench{n}@example.com source=bench"]),
    }
    report: dict[str, dict] = {}
    servers: dict[str, tuple[Server, Requests]] = {}
    try:
        for name, (command, _) in cases.items():
            port = free_port()
            requests = Requests(fake, port)
            server = start_server(name, command, {**env, "PORT": str(port)}, port, requests, tmp / f"{name}.log")
            servers[name] = (server, requests)
            report[name] = {"first_ack_s": server.first_ack_s, "ceiling": {}}
        # The two apps' help ceilings in turn, run by run: on a shared machine the cores' speed drifts
        # over minutes, and all of one app's runs before the other's measured the drift as well.
        help_runs: dict[str, list[Result]] = {name: [] for name in servers}
        for _ in range(args.runs):
            for name, (server, requests) in servers.items():
                fake.clear()
                help_runs[name].append(
                    asyncio.run(ceiling(requests, "help", args.seconds, args.warmup, server.process.pid))
                )
        for name, (server, requests) in servers.items():
            entry = report[name]
            texts = cases[name][1]
            entry["ceiling"]["help"] = median_result(help_runs[name])
            for text in texts[1:]:
                runs = []
                for _ in range(args.runs):
                    fake.clear()
                    run = asyncio.run(ceiling(requests, text, args.seconds, args.warmup, server.process.pid))
                    began = time.monotonic()  # let the work after the acks finish
                    fake.wait_count(run.acked, 300)
                    run.drain_s = time.monotonic() - began
                    runs.append(run)
                entry["ceiling"][text.split()[0]] = median_result(runs)
            rate_texts = texts[1:] or texts
            fixed_runs = []
            for _ in range(args.runs):
                fake.clear()
                fixed = asyncio.run(fixed_rate(requests, rate_texts, args.rate, args.rate_seconds))
                expected = len(fixed.sent_at)
                waits_for_reply = name == "leadbot"
                if waits_for_reply:
                    fake.wait_count(expected, 10)
                arrivals = fake.arrivals()
                completions = [(arrivals[key] - sent) * 1000 for key, sent in fixed.sent_at.items() if key in arrivals]
                missing = len(fixed.sent_at) - len(completions) if waits_for_reply else 0
                fixed_runs.append((fixed, completions, missing, rate_texts))
            # the run with the median ack p99
            entry["fixed"] = sorted(fixed_runs, key=lambda r: r[0].pct(99))[len(fixed_runs) // 2]
            entry["rss_mb"] = server.peak_rss_mb()
    finally:
        for server, _ in servers.values():
            server.stop()
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print_report(report, args)


def print_report(report: dict[str, dict], args: argparse.Namespace) -> None:
    bare, lead = report["bare"], report["leadbot"]
    bare_help = bare["ceiling"]["help"]
    print(
        f"\nAck ceiling, {CONCURRENCY} concurrent clients, {args.seconds:g} s after {args.warmup:g} s warm-up"
        f" (median of {args.runs}):"
    )
    print(
        f"{'server / command':<28}{'acks/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs bare':>9}"
        f"{'busy %':>8}{'backlog s':>11}{'CPU us/ack':>12}"
    )
    rows = [("bare Bolt   /lead help", bare_help)] + [
        (f"leadbot     /lead {cmd}", res) for cmd, res in lead["ceiling"].items()
    ]
    for label, res in rows:
        print(
            f"{label:<28}{res.rate:>10,.0f}{res.pct(50):>9.2f}{res.pct(99):>9.2f}{res.errors:>8}"
            f"{res.rate / bare_help.rate:>8.2f}x{100 * res.shed / max(len(res.acks_ms), 1):>8.1f}{res.drain_s:>11.1f}"
            f"{res.cpu_us_per_ack:>12.0f}"
            + ("  (a client ran out of requests: the rate is a floor)" if res.ran_out else "")
        )
    print(f"\nFixed rate {args.rate:g}/s for {args.rate_seconds:g} s (the run with the median ack p99 of {args.runs}):")
    print(f"{'server / commands':<42}{'ack p50':>9}{'ack p99':>9}{'done p50':>10}{'done p99':>10}{'errors':>8}")
    for name in ("bare", "leadbot"):
        fixed, completions, missing, texts = report[name]["fixed"]
        label = f"{name:<8}" + " + ".join(t.split()[0] for t in texts)
        done50 = f"{percentile(completions, 50):.2f}" if completions else "-"
        done99 = f"{percentile(completions, 99):.2f}" if completions else "-"
        print(
            f"{label:<42}{fixed.pct(50):>9.2f}{fixed.pct(99):>9.2f}{done50:>10}{done99:>10}{fixed.errors + missing:>8}"
        )
    print(f"\n{'server':<10}{'peak RSS MB':>12}{'first ack s':>13}")
    for name in ("bare", "leadbot"):
        print(f"{name:<10}{report[name]['rss_mb']:>12.1f}{report[name]['first_ack_s']:>13.3f}")

    fixed, completions, missing, _ = lead["fixed"]
    bare_fixed = bare["fixed"][0]
    checks = [
        (
            f"ack ceiling /lead help >= {TARGETS['ack_ratio']}x bare",
            lead["ceiling"]["help"].rate >= TARGETS["ack_ratio"] * bare_help.rate,
        ),
        (
            f"ack p99 at {args.rate:g}/s <= {TARGETS['p99_ratio']}x bare",
            fixed.pct(99) <= TARGETS["p99_ratio"] * max(bare_fixed.pct(99), 1.0),
        ),
        (
            f"completion p99 < {TARGETS['completion_p99_ms']} ms with 0 errors",
            bool(completions)
            and percentile(completions, 99) < TARGETS["completion_p99_ms"]
            and fixed.errors + missing == 0,
        ),
        (f"peak RSS < {TARGETS['rss_mb']} MB", lead["rss_mb"] < TARGETS["rss_mb"]),
        (f"first ack < {TARGETS['first_ack_s']} s", lead["first_ack_s"] < TARGETS["first_ack_s"]),
    ]
    print("\nTargets:")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {label}")
    print(
        f"  ack p99 ratio at fixed rate: {fixed.pct(99) / max(bare_fixed.pct(99), 1e-9):.2f}x;"
        f" ceiling p99 ratio for help: {lead['ceiling']['help'].pct(99) / bare_help.pct(99):.2f}x"
    )
    print(
        f"  median ack at ceiling, help: bare {statistics.median(bare_help.acks_ms):.2f} ms,"
        f" leadbot {statistics.median(lead['ceiling']['help'].acks_ms):.2f} ms"
    )
    lead_help = lead["ceiling"]["help"]
    print(
        f"  server CPU per /lead help ack: bare {bare_help.cpu_us_per_ack:.0f} us, leadbot"
        f" {lead_help.cpu_us_per_ack:.0f} us: {bare_help.cpu_us_per_ack / max(lead_help.cpu_us_per_ack, 1e-9):.2f}x"
        " the bare app's acks per CPU-second (what the ceiling ratio is where the server, not the client, is the bound)"
    )


if __name__ == "__main__":
    main()
