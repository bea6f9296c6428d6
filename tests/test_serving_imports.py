"""The process that only acks Slack's requests never loads what only the work needs (bench/README.md: RSS)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import LEADSAPI_CONFIG
from tests.slack import SIGNING_SECRET
from tests.test_run import ENV

BUILD_AS_RUN_DOES = """
import sys
from bot.app import build_app, build_runtime
from bot.config import load_settings
from bot.executor import TrackedExecutor

runtime = build_runtime(load_settings(), background=TrackedExecutor())
build_app(runtime)
print(",".join(name for name in ("httpx", "tenacity", "dateparser") if name in sys.modules))
"""


def test_a_remote_backend_configured_does_not_load_httpx_where_requests_are_acked(tmp_path, fake_slack, api_fake):
    from tests.fakes.leadsapi import TOKEN

    (tmp_path / "leadbot.toml").write_text(LEADSAPI_CONFIG)
    env = {
        **ENV,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LEADBOT_DB": str(tmp_path / "leadbot.db"),
        "LEADBOT_CONFIG": str(tmp_path / "leadbot.toml"),
        "LEADBOT_LEADSAPI_URL": api_fake.url,
        "LEADBOT_LEADSAPI_TOKEN": TOKEN,
    }
    built = subprocess.run(
        [sys.executable, "-c", BUILD_AS_RUN_DOES], env=env, capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == ""  # none of them: each loads at its first use, in the work process
    assert api_fake.received == []  # nor was the backend called to build the app
