"""`leadbot run` when Slack cannot be reached: one line naming the thing and the fix, exit 2."""

from __future__ import annotations

import socket
import subprocess

from tests.console_env import ENV, LEADBOT


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens there once the socket is closed


def test_slack_unreachable_is_one_line_and_exit_2(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/api/"
    env = {
        **ENV,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": "s" * 32,
        "SLACK_API_URL": url,
        "LEADBOT_DB": str(tmp_path / "leadbot.db"),
        "LEADBOT_WORK_PROCESS": "false",
    }
    result = subprocess.run([LEADBOT, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"leadbot: Slack cannot be reached at {url} (")
    assert lines[0].endswith("): check SLACK_API_URL and the network")
