"""Fair under load: other people's replies with and without 10 hung Slack calls, and the worst parses.

    .venv/bin/python bench/fairness.py [--others 40] [--hung 10]

1. `leadbot run` (HTTP, its work process, local backend) against a fake Slack in this
   process. ``--others`` `/lead show REF` commands from other people, 10 a second, are
   sent twice: alone, and right after ``--hung`` commands whose response URL never
   answers (held open until Leadbot gives up). Printed side by side: the other people's
   reply times (command sent → reply at the fake Slack), p50 / p99 / max.
2. The parse time of the worst inputs for each parser of user text, at Slack's limits, and
   "Create lead from message" on a 40,000-character message: request → ``views.open``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ack import free_port, percentile, seed  # noqa: E402
from bot.fakeslack import FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
USER = "UBENCH"  # the user bench.ack.seed links


class Leadbot:
    def __init__(self, fake: FakeSlack, tmp: Path) -> None:
        self.ref = seed(tmp / "bench.db")
        self.port = free_port()
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "LEADBOT_DB": str(tmp / "bench.db"),
            "LEADBOT_ADMINS": USER,
            "PORT": str(self.port),
        }
        env.pop("SLACK_APP_TOKEN", None)
        leadbot = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or "leadbot"
        self.log = (tmp / "leadbot.log").open("w")
        self.process = subprocess.Popen([leadbot, "run"], env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.verifier = SignatureVerifier(SECRET)
        self.fake = fake
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.command("help", "probe").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("leadbot did not start") from None
                time.sleep(0.05)  # still starting: poll again (a benchmark, not a test)

    def command(self, text: str, key: str, user: str = USER) -> httpx.Response:
        body = urlencode(
            {
                "team_id": "T0LEADBOT",
                "channel_id": "C0BENCH",
                "user_id": user,
                "command": "/lead",
                "text": text,
                "api_app_id": "A0LEADBOT",
                "response_url": self.fake.response_url(key),
                "trigger_id": f"{key}.bench.trigger",
            }
        )
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
        }
        return self.http.post("/slack/events", content=body, headers=headers)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def others_reply_ms(bot: Leadbot, fake: FakeSlack, run: str, others: int, hung: int) -> list[float]:
    for n in range(hung):
        fake.fail(f"{run}-hung{n}", delay=60)
        bot.command(f"show {bot.ref}", f"{run}-hung{n}")
    if hung:
        fake.wait_for(lambda calls: sum(f"{run}-hung" in c.name for c in calls) >= hung, timeout=10)
    sent: dict[str, float] = {}
    for n in range(others):
        key = f"{run}-other{n}"
        sent[key] = time.monotonic()
        bot.command(f"show {bot.ref}", key)
        time.sleep(0.1)  # 10 commands a second, the pace of a busy team
    fake.wait_for(lambda calls: sum(f"{run}-other" in c.name for c in calls) >= others, timeout=60)
    arrived = {c.name: c.received_at for c in fake.received("response") if c.name in sent}
    return [(arrived[k] - sent[k]) * 1000 if k in arrived else float("inf") for k in sent]


def fairness(others: int, hung: int) -> None:
    fake = FakeSlack().start()
    fake.add_user(USER, "bench", "UTC")
    tmp = Path(tempfile.mkdtemp(prefix="leadbot-fairness-"))
    bot = Leadbot(fake, tmp)
    try:
        others_reply_ms(bot, fake, "warm", 10, 0)
        alone = others_reply_ms(bot, fake, "alone", others, 0)
        beside = others_reply_ms(bot, fake, "hung", others, hung)
        hung_answered = [c for c in fake.received("response") if "-hung" in c.name and c.answer.get("ok")]
    finally:
        fake.release.set()
        bot.stop()
        fake.stop()
    print(f"other people's replies to /lead show ({others} at 10/s), ms:")
    print(f"{'':28}{'p50':>9}{'p99':>9}{'max':>9}")
    for label, values in (("alone", alone), (f"beside {hung} hung replies", beside)):
        print(f"{label:28}" + "".join(f"{percentile(values, q):9.1f}" for q in (50, 99)) + f"{max(values):9.1f}")
    print(f"p99 difference: {percentile(beside, 99) - percentile(alone, 99):+.1f} ms (must be under 1,000)")
    print(f"hung replies shown: {len(hung_answered)} of {hung} (their URLs never answered)")


N = 40_000  # Slack's longest message
WORST_MESSAGES = {
    "one 40,000-letter word, no @": "x" * N,
    "40,000 letters, then an email": "x" * (N - 40) + " from Jane Doe, jane.doe@example.com",
    "20,000 @s": "a@" * (N // 2),
    "40,000 digits": "1" * N,
    "13,333 '12 '": "12 " * (N // 3),
    "'name:' then spaces": "name:" + " " * (N - 5),
    "a capitalised 40,000-letter word and an email": "A" + "a" * (N - 20) + " a@example.com",
}


def worst_parses() -> None:
    from handlers.parsing import split_options, tokenize
    from services.contact import find_contact
    from services.errors import LeadError
    from services.when import parse_when

    print("\nparse time of the worst inputs, ms (median of 5):")
    for label, text in WORST_MESSAGES.items():
        _row(f"find_contact, {label}", _median_ms(lambda t=text: find_contact(t, "IN")))
    option_text = "note=" + "x " * ((N - 5) // 2)

    def options() -> None:
        _, tokens = tokenize(option_text)
        split_options(tokens, ("note",), "usage")

    _row("tokenize + split_options, note= and 20,000 words", _median_ms(options))
    parse_when("tomorrow", "UTC")  # dateparser's import, once

    def date() -> None:
        with contextlib.suppress(LeadError):
            parse_when("1 " * 50, "UTC")

    _row("parse_when, 100 characters (the cap)", _median_ms(date))
    _row("Create lead from message, 40,000 chars: request → views.open", shortcut_ms())


def _row(label: str, ms: float) -> None:
    print(f"  {label:64}{ms:8.1f}")


def _median_ms(fn) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[2]


def shortcut_ms() -> float:
    """The message shortcut on the worst 40,000-character message, dispatched as Slack sends it."""
    from bot.app import build_app, build_runtime
    from bot.config import load_settings
    from bot.executor import InlineExecutor
    from tests.slack import DispatchTransport, SlackDriver

    fake = FakeSlack().start()
    tmp = Path(tempfile.mkdtemp(prefix="leadbot-parse-"))
    for name in [n for n in os.environ if n.startswith(("SLACK_", "LEADBOT_"))]:
        del os.environ[name]
    settings = load_settings(
        slack_bot_token="xoxb-bench",
        slack_signing_secret="test-signing-secret",
        slack_api_url=fake.api_url,
        leadbot_db=tmp / "leadbot.db",
    )
    runtime = build_runtime(settings, background=InlineExecutor())
    driver = SlackDriver(DispatchTransport(build_app(runtime)), fake, lambda timeout=10: True)
    text = WORST_MESSAGES["a capitalised 40,000-letter word and an email"]
    driver.message_shortcut("lead_from_message", "warm up a@example.com")
    times = []
    for _ in range(5):
        fake.clear()
        started = time.monotonic()
        driver.message_shortcut("lead_from_message", text)
        (opened,) = fake.received("api", "views.open")
        times.append((opened.received_at - started) * 1000)
    runtime.close()
    fake.stop()
    return sorted(times)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--others", type=int, default=40)
    parser.add_argument("--hung", type=int, default=10)
    parser.add_argument("--parse-only", action="store_true", help="only the parse times")
    args = parser.parse_args()
    if not args.parse_only:
        fairness(args.others, args.hung)
    worst_parses()


if __name__ == "__main__":
    main()
