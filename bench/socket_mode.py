"""Socket Mode beside HTTP, the real ``leadbot run`` in each, in one run.

    .venv/bin/python bench/socket_mode.py [--seconds 10] [--rate 100] [--runs 1] [--json FILE]

Prints:
1. ack latency at a fixed rate (default 100/s for 10 s) of ``/lead help`` (answered in the ack)
   and ``/lead new NAME EMAIL`` (journalled, fsync'd, before its ack): over HTTP from the signed
   request written to its response read; in Socket Mode from the envelope frame written to its ack
   read (tests/fakes/socket_slack.py, a real WebSocket); p50, p99, max, how many over 1 s, and
   Socket Mode's p99 over HTTP's;
2. per disruption (refresh_requested, warning, close frame, FIN, RST, silent peer), each on a fresh
   ``leadbot run`` with probes (``/lead help``) at 20/s and 5 commands sent just before it (none before
   an RST, which discards what was unread): the time to the new link's hello, to the ack of the first
   probe sent after the disruption ("listening again"), the slowest ack, acks over 1 s, envelopes
   written and never acked, ``apps.connections.open`` calls, and the bot's CPU over an idle 5 s after it.
The bots, the fakes and the load share this machine; everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.fakes.socket_slack import APP_TOKEN, BOT_TOKEN, SocketSlack  # noqa: E402

USER = "U0REP1"
SECRET = "bench-signing-secret"
LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or "leadbot"
TICK = os.sysconf("SC_CLK_TCK")


class RemoteFake:
    """bench/fake_web_api.py in a process of its own, so that its threads never take the GIL of the
    load and of the Socket Mode fake, which time the acks."""

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

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pace(until: float) -> None:
    delay = until - time.monotonic()
    if delay > 0:
        threading.Event().wait(delay)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def seed(db: Path) -> None:
    from bot.stores.sqlite import SqliteStore
    from services.models import StaffLink

    store = SqliteStore(db)
    store.links.put(StaffLink(slack_user=USER, backend="local", staff_id="bench"), by=USER, at=datetime.now(UTC))
    store.close()


class Bot:
    """``leadbot run`` in its own process; Socket Mode when ``slack`` is given, else HTTP on a free port."""

    def __init__(self, db: Path, fake: RemoteFake, slack: SocketSlack | None, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}
        env |= {"SLACK_BOT_TOKEN": BOT_TOKEN, "LEADBOT_DB": str(db), "LEADBOT_LOG_LEVEL": "WARNING"}
        self.port = free_port()
        if slack is not None:
            env |= {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": slack.api_url}
        else:
            env |= {"SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url, "PORT": str(self.port)}
        self.process = subprocess.Popen([LEADBOT, "run"], env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        self.started = time.monotonic()

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                threading.Event().wait(0.05)
        raise RuntimeError("leadbot run (HTTP) never listened")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Latency:
    mode: str
    command: str
    sent: int = 0
    acked: int = 0
    ms: list[float] = field(default_factory=list)

    def row(self) -> dict:
        return {
            "mode": self.mode,
            "command": self.command,
            "acked": f"{self.acked}/{self.sent}",
            "p50_ms": pct(self.ms, 0.5),
            "p99_ms": pct(self.ms, 0.99),
            "max_ms": max(self.ms) if self.ms else None,
            "over_1s": sum(1 for m in self.ms if m > 1000),
        }


def command_form(text: str, n: int, fake: RemoteFake) -> dict[str, str]:
    return {
        "team_id": "T0LEADBOT",
        "channel_id": "C0LEADS",
        "user_id": USER,
        "user_name": "ana",
        "command": "/lead",
        "text": text,
        "api_app_id": "A0LEADBOT",
        "response_url": fake.response_url(f"b{n}"),
        "trigger_id": f"{n}.1.bench",
    }


def texts(kind: str, count: int, tag: str) -> list[str]:
    if kind == "help":
        return ["help"] * count
    return [f"new Bench{tag}{n} b{tag}{n}@example.com" for n in range(count)]


async def http_load(port: int, fake: RemoteFake, kind: str, rate: float, seconds: float, tag: str) -> Latency:
    result = Latency("HTTP", kind)
    verifier = SignatureVerifier(SECRET)
    total = int(rate * seconds)
    requests = []
    for n, text in enumerate(texts(kind, total, tag)):
        body = urlencode(command_form(text, n, fake))
        ts = str(int(time.time()))
        signature = verifier.generate_signature(timestamp=ts, body=body)
        head = (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}"
            f"\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        requests.append((head + body).encode())
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    async def one(request: bytes) -> None:
        reader, writer = await pool.get()
        sent = time.monotonic()
        try:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
        finally:
            pool.put_nowait((reader, writer))
        if status.split()[1:2] == [b"200"]:
            result.acked += 1
            result.ms.append((time.monotonic() - sent) * 1000)

    start = time.monotonic()
    tasks = []
    for i, request in enumerate(requests):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request)))
    result.sent = len(requests)
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return result


def socket_load(slack: SocketSlack, fake: RemoteFake, kind: str, rate: float, seconds: float, tag: str) -> Latency:
    result = Latency("Socket Mode", kind)
    envelopes = []
    start = time.monotonic()
    for i, text in enumerate(texts(kind, int(rate * seconds), tag)):
        pace(start + i / rate)
        form = command_form(text, i, fake)
        envelopes.append(slack.send_envelope("slash_commands", form, accepts_response_payload=True))
    slack.wait_acked(envelopes, timeout=30)
    result.sent = len(envelopes)
    for envelope in envelopes:
        if envelope.acks and envelope.deliveries:
            result.acked += 1
            result.ms.append((envelope.acks[0].at - envelope.deliveries[0][1]) * 1000)
    return result


# -- disruptions ---------------------------------------------------------------------------------------

KINDS = ("refresh_requested", "warning", "close frame", "FIN", "RST", "silent peer")


def disrupt(slack: SocketSlack, kind: str) -> None:
    if kind in ("refresh_requested", "warning"):
        slack.disconnect(kind, close_after=5.0)  # the old link is retired by Slack a while later
    elif kind == "close frame":
        slack.close(1001)
    elif kind == "FIN":
        slack.fin()
    elif kind == "RST":
        slack.rst()
    else:
        slack.go_silent()


def disruption(kind: str, fake: RemoteFake, db: Path, logs: Path) -> dict:
    with SocketSlack(web_api=fake.url) as slack:
        bot = Bot(db, fake, slack, logs / f"socket-{kind.replace(' ', '_')}.log")
        try:
            if slack.wait_link(1, timeout=60) is None:
                raise RuntimeError(f"leadbot run (Socket Mode) never connected; see {logs}")
            warm = [slack.command("help") for _ in range(20)]
            slack.wait_acked(warm, 10)
            before = [] if kind in ("RST", "silent peer") else [slack.command("help") for _ in range(5)]
            at = time.monotonic()
            disrupt(slack, kind)
            probes = []
            until = at + 6.0
            while time.monotonic() < until:
                pace(at + len(probes) / 20)
                probes.append(slack.command("help"))
            slack.wait_acked(probes, 10)
            idle_from, cpu_from = time.monotonic(), cpu_seconds(bot.process.pid)
            threading.Event().wait(5.0)  # idle: a spinning loop would show here
            cpu = (cpu_seconds(bot.process.pid) - cpu_from) / (time.monotonic() - idle_from) * 100
            hellos = [link.hello_at for link in slack.links if link.hello_at and link.hello_at > at]
            first_after = next((p for p in probes if p.acks), None)
            every = before + probes
            acked = [e for e in every if e.acks]
            latencies = [e.acks[0].at - (e.deliveries[0][1] if e.deliveries else e.created_at) for e in acked]
            waits = [e.acks[0].at - e.created_at for e in acked]  # sent to acked, time queued for a link included
            code = bot.stop()
        finally:
            if bot.process.poll() is None:
                bot.process.kill()
        return {
            "case": kind,
            "new_hello_s": (hellos[0] - at) if hellos else None,
            "listening_again_s": (first_after.acks[0].at - at) if first_after else None,
            "slowest_ack_s": max(waits) if waits else None,
            "slowest_wire_s": max(latencies) if latencies else None,
            "over_1s": sum(1 for w in latencies if w > 1.0),  # written to acked: what the bot is answerable for
            "unacked": len(slack.never_acked()) + len([e for e in every if not e.acks]),
            "unacked_of_before": sum(1 for e in before if not e.acks),
            "open_calls": len(slack.open_calls),
            "idle_cpu_pct": cpu,
            "exit": code,
        }


def fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--runs", type=int, default=1, help="latency runs; the median run by p99 is kept")
    parser.add_argument("--no-disruptions", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="leadbot-socket-bench-"))
    fake = RemoteFake()
    report: dict = {"latency": [], "disruptions": []}
    try:
        for run in range(args.runs):
            for mode in ("HTTP", "Socket Mode"):
                db = work / f"{mode.replace(' ', '')}{run}.db"
                seed(db)
                slack = SocketSlack(web_api=fake.url).start() if mode == "Socket Mode" else None
                bot = Bot(db, fake, slack, work / f"{mode.replace(' ', '')}{run}.log")
                try:
                    if slack is not None:
                        if slack.wait_link(1, timeout=60) is None:
                            raise RuntimeError(f"leadbot run (Socket Mode) never connected; see {work}")
                    else:
                        bot.wait_http()
                    for kind in ("help", "new"):
                        tag = f"{mode[0]}{run}"
                        # a second's warm-up at the same rate, not counted
                        if slack is not None:
                            socket_load(slack, fake, kind, args.rate, 1, tag + "w")
                            result = socket_load(slack, fake, kind, args.rate, args.seconds, tag)
                        else:
                            asyncio.run(http_load(bot.port, fake, kind, args.rate, 1, tag + "w"))
                            result = asyncio.run(http_load(bot.port, fake, kind, args.rate, args.seconds, tag))
                        report["latency"].append({"run": run, **result.row()})
                finally:
                    bot.stop()
                    if slack is not None:
                        slack.stop()
        if not args.no_disruptions:
            for kind in KINDS:
                db = work / f"disrupt-{kind.replace(' ', '_')}.db"
                seed(db)
                report["disruptions"].append(disruption(kind, fake, db, work))
    finally:
        fake.stop()
    print_report(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nlogs: {work}")


def print_report(report: dict, args: argparse.Namespace) -> None:
    print(f"\nAck latency at {args.rate:.0f}/s for {args.seconds:.0f} s (median run of {args.runs} by p99)")
    print("| mode | command | acked | p50 ms | p99 ms | max ms | > 1 s | p99 / HTTP p99 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = report["latency"]
    chosen = {}
    for key in {(r["mode"], r["command"]) for r in rows}:
        runs = sorted((r for r in rows if (r["mode"], r["command"]) == key), key=lambda r: r["p99_ms"] or 0)
        chosen[key] = runs[len(runs) // 2]
    for command in ("help", "new"):
        http = chosen.get(("HTTP", command))
        for mode in ("HTTP", "Socket Mode"):
            row = chosen.get((mode, command))
            if row is None:
                continue
            ratio = row["p99_ms"] / http["p99_ms"] if http and http["p99_ms"] else None
            print(
                f"| {mode} | `/lead {command}` | {row['acked']} | {fmt(row['p50_ms'])} | {fmt(row['p99_ms'])} "
                f"| {fmt(row['max_ms'])} | {row['over_1s']} | {fmt(ratio, '×')} |"
            )
    if not report["disruptions"]:
        return
    print("\nDisruptions (a fresh leadbot run each; probes /lead help at 20/s; 5 commands just before)")
    print(
        "| case | new hello | listening again | slowest ack (sent → acked) | slowest ack (written → acked) | > 1 s "
        "| unacked (of the 5 before) | apps.connections.open | idle CPU | exit |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in report["disruptions"]:
        print(
            f"| {d['case']} | {fmt(d['new_hello_s'], ' s')} | {fmt(d['listening_again_s'], ' s')} "
            f"| {fmt(d['slowest_ack_s'], ' s')} | {fmt(d['slowest_wire_s'], ' s')} | {d['over_1s']} "
            f"| {d['unacked']} ({d['unacked_of_before']}) "
            f"| {d['open_calls']} | {fmt(d['idle_cpu_pct'], ' %', 1)} | {d['exit']} |"
        )


if __name__ == "__main__":
    main()
