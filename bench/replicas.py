"""Three `leadbot run` replicas on one PostgreSQL under load, one killed and restarted; then one on SQLite.

    .venv/bin/python bench/replicas.py [--users 200] [--notes 4] [--seconds 30] [--postgres postgresql://…]

200 simulated people each create a lead (`/lead new`), add notes to one (`/lead note`)
and change its status from the card's menu (a button press), in a random order at a
steady offered rate, spread round-robin over the replicas as a load balancer would.
5 % of requests are sent again as Slack retries (the same body, `X-Slack-Retry-Num: 1`)
to a *different* replica. The REST leads API fake answers 10 % of its writes with 503
(the outbox retries them), and every person has a digest due, so all three replicas
race to send 200 digests at start-up; new leads go to a feed channel. Half-way through,
one replica's process group is SIGKILLed, and restarted 2 s later.

Prints acks/s, ack p99, completion p99 (request sent → the first reply reaching Slack's
response_url), and what must be 0: writes lost (acked, never in the backend), writes
doubled, digests and feed posts duplicated. Then the same run on one replica on SQLite
(killed and restarted too), and PostgreSQL's figures as a ratio of SQLite's. Without
``--postgres`` a throwaway server is started (tests/pgserver.py). 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.loopback import Answer, Outcome  # noqa: E402
from tests.fakes.leadsapi import TOKEN, FakeLeadsApi  # noqa: E402
from tests.pgserver import start as start_postgres  # noqa: E402
from tests.pgserver import stop as stop_postgres  # noqa: E402
from tests.slack import SIGNING_SECRET, signed_headers  # noqa: E402

FAILURE_RATE = 0.10
RETRY_SHARE = 0.05
FEED = "C0FEED"
CONFIG = (
    "[backends.leadsapi]\nbusiness = [1]\ntimeout = 2\n"
    'defaults = { photo = "p.png", location = "-", position = "-", description = "-", company = "-" }\n'
    f'[feeds]\nleadsapi = "{FEED}"\n'
)


def user(n: int) -> str:
    return f"U{n:05d}"


# -- the fakes, in a process of their own (their threads must not take the load client's GIL) ------


class FlakyLeadsApi(FakeLeadsApi):
    """The REST leads API fake, answering a share of writes 503 (not carried out), counting what it did."""

    def __init__(self) -> None:
        super().__init__()
        self.random = random.Random(7)
        self.create_attempts: dict[str, int] = {}

    def handle(self, request):  # type: ignore[no-untyped-def]
        if request.method in ("POST", "PUT") and self.random.random() < FAILURE_RATE:
            with self.lock:
                self.received.append(request)
            return Outcome(Answer(503, {"message": "Service Unavailable"}))
        if request.method == "POST" and request.path == "/leads" and isinstance(request.body, dict):
            with self.lock:
                email = str(request.body.get("email"))
                self.create_attempts[email] = self.create_attempts.get(email, 0) + 1
        return super().handle(request)


def serve_fakes(users: int) -> None:
    from bot.fakeslack import FakeSlack
    from services.backends.common import unmarked

    slack = FakeSlack().start()
    for n in range(1, users + 1):
        slack.add_user(user(n), f"rep{n}", "UTC")
    api = FlakyLeadsApi().start()
    for n in range(1, users + 1):  # one lead per person, for their notes and status changes
        api.leads[n] = {
            "id": n,
            "firstName": "Seed",
            "lastName": str(n),
            "business": [1],
            "photo": "p.png",
            "state": "open",
            "statusId": 1,
            "source": "bench",
            "phoneNumber": ["+15550100"],
            "email": f"seed{n}@example.com",
            "description": "-",
            "location": "-",
            "position": "-",
            "company": "-",
        }
    print(json.dumps({"slack": slack.api_url, "slack_url": slack.url, "leadsapi": api.url}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "responses":
            first: dict[str, float] = {}
            for call in slack.received("response"):
                first.setdefault(call.name, call.received_at)
            print(json.dumps(first), flush=True)
        elif command == "stats":
            with api.lock:
                comments: dict[str, int] = {}
                statuses: dict[int, int] = {}
                for lead_id, entries in api.history.items():
                    for entry in entries:
                        if entry["action"] == "AddComment":
                            text = unmarked(entry.get("content", "")).strip()  # without Leadbot's receipt
                            comments[text] = comments.get(text, 0) + 1
                        if entry["action"] == "ChangeStatus":
                            statuses[lead_id] = statuses.get(lead_id, 0) + 1
                emails = [lead["email"] for lead in api.leads.values()]
                attempts = dict(api.create_attempts)
            digests = [
                (channel, m["metadata"]["event_payload"]["day"])
                for channel, messages in list(slack.messages.items())
                for m in list(messages)
                if (m.get("metadata") or {}).get("event_type") == "leadbot_digest"
            ]
            feed = [m.get("text", "") for m in list(slack.messages.get(FEED, []))]
            print(
                json.dumps(
                    {
                        "comments": comments,
                        "statuses": {str(k): v for k, v in statuses.items()},
                        "emails": emails,
                        "create_attempts": attempts,
                        "digests": len(digests),
                        "digests_distinct": len(set(digests)),
                        "feed": len(feed),
                        "feed_distinct": len(set(feed)),
                    }
                ),
                flush=True,
            )
    api.stop()
    slack.stop()


class Fakes:
    def __init__(self, users: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-fakes", str(users)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        urls = json.loads(self.process.stdout.readline())
        self.api_url, self.slack_url, self.leadsapi = urls["slack"], urls["slack_url"], urls["leadsapi"]

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


# -- the store, seeded as people would have left it ---------------------------------------------


def seed(location: str, users: int) -> None:
    from bot.stores import open_store
    from services.models import NewLead, StaffLink

    store = open_store(location)
    now = datetime.now(UTC)
    for n in range(1, users + 1):
        store.links.put(StaffLink(slack_user=user(n), backend="leadsapi", staff_id=str(1000 + n)), by="U0", at=now)
        store.links.put(StaffLink(slack_user=user(n), backend="local", staff_id=f"rep{n}"), by="U0", at=now)
        # A follow-up due, and a digest time passed: every replica wants to send this person's digest.
        store.local.insert(
            NewLead(name=f"Due {n}", email=f"due{n}@example.com", next_follow_up=now - timedelta(hours=1)),
            status="new",
            owner=f"rep{n}",
            by="U0",
            at=now,
        )
        store.prefs.set_user(user(n), remind_at="00:00", tz="UTC", tz_checked_at=now)
    store.close()


# -- the replicas -------------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    up: bool = False

    def start(self) -> None:
        leadbot = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or "leadbot"
        self.process = subprocess.Popen(
            [leadbot, "run"],
            env={**self.env, "PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    self.up = True
                    return
            except httpx.HTTPError:
                time.sleep(0.05)  # a benchmark polling a process that is starting, not a test
        raise SystemExit(f"{self.name} did not answer within 60 s; see {self.log}")

    def kill(self) -> None:
        self.up = False
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Event:
    key: str
    kind: str  # new, note, status
    who: int
    body: str
    content_type: str = "application/x-www-form-urlencoded"
    expect: str = ""  # what the backend must hold: an email, a note's text, a lead id


@dataclass
class Run:
    acks_ms: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    last_ack: float = 0.0
    retries: int = 0
    lost_acks: int = 0  # sent, no answer in 10 s (its replica was killed, or swamped): sent again as Slack would
    unanswered: int = 0  # never acked by any replica
    seconds: float = 0.0  # from the first request sent to the last ack


def events(users: int, notes: int, slack_url: str) -> list[Event]:
    found: list[Event] = []
    for n in range(1, users + 1):
        u = user(n)
        made = [("new", f"new Bench{n} Person bench{n}@example.com", f"bench{n}@example.com")]
        made += [("note", f"note leadsapi:{n} bench-note-{n}-{k}", f"bench-note-{n}-{k}") for k in range(notes)]
        for i, (kind, text, expect) in enumerate(made):
            key = f"{kind}-{n}-{i}"
            body = urlencode(
                {
                    "command": "/lead",
                    "text": text,
                    "user_id": u,
                    "user_name": f"rep{n}",
                    "team_id": "T0LEADBOT",
                    "channel_id": "C0SALES",
                    "api_app_id": "A0LEADBOT",
                    "response_url": f"{slack_url}/response/{key}",
                    "trigger_id": f"{n}{i}.{random.randrange(10**9)}.bench",
                }
            )
            found.append(Event(key, kind, n, body, expect=expect))
        key = f"status-{n}"
        payload = {
            "type": "block_actions",
            "user": {"id": u, "username": f"rep{n}", "name": f"rep{n}", "team_id": "T0LEADBOT"},
            "api_app_id": "A0LEADBOT",
            "trigger_id": f"{n}.{random.randrange(10**9)}.press",
            "team": {"id": "T0LEADBOT", "domain": "bench"},
            "container": {"type": "message", "message_ts": f"1700000000.{n:06d}", "channel_id": "C0SALES"},
            "channel": {"id": "C0SALES", "name": "sales"},
            "response_url": f"{slack_url}/response/{key}",
            "message": {"type": "message", "ts": f"1700000000.{n:06d}", "text": "card", "blocks": []},
            "actions": [
                {
                    "action_id": "lead_set_status",
                    "block_id": "status",
                    "type": "static_select",
                    "action_ts": f"{time.time():.6f}",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "Contacted"},
                        "value": f"leadsapi:{n}|Contacted",
                    },
                }
            ],
        }
        found.append(Event(key, "status", n, urlencode({"payload": json.dumps(payload)}), expect=str(n)))
    return found


async def load(replicas: list[Replica], todo: list[Event], seconds: float, kill: Replica | None) -> Run:
    run = Run()
    rng = random.Random(11)
    retried = {e.key for e in rng.sample(todo, int(len(todo) * RETRY_SHARE))}
    rate = len(todo) / seconds
    turn = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=1.0), limits=limits)

    def next_replica(avoid: Replica | None = None) -> Replica | None:
        nonlocal turn
        for _ in range(len(replicas) * 2):
            turn += 1
            candidate = replicas[turn % len(replicas)]
            if candidate.up and (candidate is not avoid or len(replicas) == 1):
                return candidate
        return None

    async def post(replica: Replica, event: Event, retry: bool) -> int | None:
        headers = {**signed_headers(event.body, secret=SIGNING_SECRET), "Content-Type": event.content_type}
        if retry:
            headers |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        try:
            answer = await client.post(
                f"http://127.0.0.1:{replica.port}/slack/events", content=event.body, headers=headers
            )
        except httpx.ConnectError:
            return None  # nobody there (killed): the load balancer tries another
        except httpx.HTTPError:
            return -1  # sent, and no answer: its replica died with it
        return answer.status_code

    async def deliver(event: Event, retry: bool, avoid: Replica | None = None) -> Replica | None:
        """One delivery through the load balancer; the replica that acked it, or None."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replica = next_replica(avoid)
            if replica is None:
                await asyncio.sleep(0.05)  # every replica down (one on SQLite, killed): wait for it
                continue
            began = time.monotonic()
            status = await post(replica, event, retry)
            if status is None:
                continue
            if status == -1:
                run.lost_acks += 1
                retry, avoid = True, replica  # Slack sends it again, here to another replica
                continue
            if status == 200:
                if not retry:
                    run.acks_ms.append((time.monotonic() - began) * 1000)
                run.last_ack = time.monotonic()
                run.acked.add(event.key)
                return replica
            return None
        return None

    async def one(event: Event) -> None:
        run.sent_at[event.key] = time.monotonic()
        first = await deliver(event, retry=False)
        if event.key in retried:
            run.retries += 1
            await deliver(event, retry=True, avoid=first)  # a Slack retry, to another replica
        if event.key not in run.acked:
            run.unanswered += 1

    async def killer() -> None:
        if kill is None:
            return
        await asyncio.sleep(seconds / 2)
        kill.kill()
        await asyncio.sleep(2)
        await asyncio.to_thread(kill.start)

    start = time.monotonic()
    tasks = [asyncio.create_task(killer())]
    for i, event in enumerate(todo):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(event)))
    await asyncio.gather(*tasks)
    run.seconds = run.last_ack - start
    await client.aclose()
    return run


def settle(location: str, fakes: Fakes, run: Run, timeout: float) -> tuple[int, float]:
    """Wait until nothing is queued or journaled and every acked request was answered; (still queued, seconds)."""
    from bot.stores import open_store

    store = open_store(location)
    began = time.monotonic()
    try:
        while True:
            queued = len(store.outbox.pending())
            answered = fakes.ask("responses")
            if (queued == 0 and run.acked <= set(answered)) or time.monotonic() - began > timeout:
                return queued, time.monotonic() - began
            time.sleep(0.5)  # a benchmark polling the store, not a test
    finally:
        store.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def one_run(label: str, location: str, replicas_n: int, args: argparse.Namespace, tmp: Path) -> dict:
    fakes = Fakes(args.users)
    seed(location, args.users)
    (tmp / f"{label}.toml").write_text(CONFIG)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))},
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fakes.api_url,
        "LEADBOT_DB": location,
        "LEADBOT_ADMINS": user(1),
        "LEADBOT_CONFIG": str(tmp / f"{label}.toml"),
        "LEADBOT_DEFAULT_BACKEND": "leadsapi",
        "LEADBOT_LEADSAPI_URL": fakes.leadsapi,
        "LEADBOT_LEADSAPI_TOKEN": TOKEN,
        "LEADBOT_SWEEP_SECONDS": "2",
        "LEADBOT_LOG_LEVEL": "WARNING",
    }
    from tests.fakes.testing import free_port

    replicas = [Replica(f"{label}-{i + 1}", free_port(), env, tmp / f"{label}-{i + 1}.log") for i in range(replicas_n)]
    try:
        for replica in replicas:
            replica.start()
        todo = events(args.users, args.notes, fakes.slack_url)
        random.Random(3).shuffle(todo)
        run = asyncio.run(load(replicas, todo, args.seconds, kill=replicas[min(1, replicas_n - 1)]))
        queued, settled_s = settle(location, fakes, run, args.drain)
        answered = fakes.ask("responses")
        stats = fakes.ask("stats")
    finally:
        for replica in replicas:
            replica.stop()
        fakes.stop()
    completions = [(answered[k] - run.sent_at[k]) * 1000 for k in run.acked if k in answered]
    by_key = {e.key: e for e in todo}
    lost = doubled = 0
    lost_kinds: dict[str, int] = {}
    for key in run.acked:
        event = by_key[key]
        if event.kind == "note":
            seen = stats["comments"].get(event.expect, 0)
        elif event.kind == "status":
            seen = stats["statuses"].get(event.expect, 0)
        else:
            seen = stats["create_attempts"].get(event.expect, 0) if event.expect in stats["emails"] else 0
        lost += seen == 0
        doubled += seen > 1
        if seen == 0:
            lost_kinds[event.kind] = lost_kinds.get(event.kind, 0) + 1
    return {
        "label": label,
        "replicas": replicas_n,
        "requests": len(todo),
        "acks_per_s": len(run.acks_ms) / run.seconds,
        "ack_p50": percentile(run.acks_ms, 50),
        "ack_p99": percentile(run.acks_ms, 99),
        "done_p50": percentile(completions, 50),
        "done_p99": percentile(completions, 99),
        "retries": run.retries,
        "lost_acks": run.lost_acks,
        "unanswered": run.unanswered,
        "no_reply": len(run.acked - set(answered)),
        "lost": lost,
        "lost_kinds": lost_kinds,
        "doubled": doubled,
        "still_queued": queued,
        "settled_s": settled_s,
        "digests": stats["digests"],
        "digests_doubled": stats["digests"] - stats["digests_distinct"],
        "feed": stats["feed"],
        "feed_doubled": stats["feed"] - stats["feed_distinct"],
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-fakes":
        serve_fakes(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--notes", type=int, default=4, help="notes per person")
    parser.add_argument("--seconds", type=float, default=30, help="how long the requests are spread over")
    parser.add_argument("--drain", type=float, default=240, help="how long to wait for queued writes to land")
    parser.add_argument("--postgres", help="a server to use (a role that may create databases)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="leadbot-replicas-"))
    pg_dir = None
    server = args.postgres
    if server is None:
        pg_dir = Path(tempfile.mkdtemp(prefix="leadbot-bench-pg-"))
        server = start_postgres(pg_dir)
    results = []
    try:
        import psycopg

        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute("drop database if exists leadbot_bench with (force)")
            admin.execute("create database leadbot_bench")
        dsn = server.rsplit("/", 1)[0] + "/leadbot_bench"
        results.append(one_run("postgres", dsn, 3, args, tmp))
        if not args.skip_sqlite:
            results.append(one_run("sqlite", str(tmp / "leadbot.db"), 1, args, tmp))
    finally:
        if pg_dir is not None:
            stop_postgres(pg_dir)
            shutil.rmtree(pg_dir, ignore_errors=True)
        if os.environ.get("BENCH_KEEP"):
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\n{args.users} people, {results[0]['requests']} requests over {args.seconds:g} s"
        f" ({RETRY_SHARE:.0%} sent again to another replica), {FAILURE_RATE:.0%} of backend writes refused 503,"
        " one replica SIGKILLed half-way and restarted"
    )
    columns = [
        ("replicas", "replicas", "{:d}"),
        ("acks/s", "acks_per_s", "{:.1f}"),
        ("ack p50 ms", "ack_p50", "{:.1f}"),
        ("ack p99 ms", "ack_p99", "{:.1f}"),
        ("done p50 ms", "done_p50", "{:.0f}"),
        ("done p99 ms", "done_p99", "{:.0f}"),
        ("no ack, sent again", "lost_acks", "{:d}"),
        ("never acked", "unanswered", "{:d}"),
        ("acked, no reply", "no_reply", "{:d}"),
        ("writes lost", "lost", "{:d}"),
        ("writes doubled", "doubled", "{:d}"),
        ("still queued", "still_queued", "{:d}"),
        ("settled after s", "settled_s", "{:.1f}"),
        ("digests sent", "digests", "{:d}"),
        ("digests doubled", "digests_doubled", "{:d}"),
        ("feed posts", "feed", "{:d}"),
        ("feed doubled", "feed_doubled", "{:d}"),
    ]
    print(f"{'':20}" + "".join(f"{r['label']:>12}" for r in results) + ("   pg/sqlite" if len(results) == 2 else ""))
    for title, key, fmt in columns:
        line = f"{title:<20}" + "".join(f"{fmt.format(r[key]):>12}" for r in results)
        if len(results) == 2 and key in ("acks_per_s", "ack_p50", "ack_p99", "done_p50", "done_p99"):
            line += f"{results[0][key] / results[1][key]:>11.2f}x"
        print(line)
    for r in results:
        if r["lost_kinds"]:
            print(f"{r['label']}: lost by kind {r['lost_kinds']}")
    bad = [r["label"] for r in results if r["lost"] or r["doubled"] or r["digests_doubled"] or r["feed_doubled"]]
    print("\nwrites lost, doubled, digests and feed posts duplicated: " + ("all 0" if not bad else f"NOT 0 in {bad}"))


if __name__ == "__main__":
    main()
