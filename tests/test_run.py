"""``leadbot run``: HTTP mode serves Slack and /healthz; an app token selects Socket Mode."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.slack import SIGNING_SECRET, signed_headers

LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_mode_serves_slack_and_healthz(tmp_path, fake_slack):
    port = free_port()
    env = {
        **ENV,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LEADBOT_DB": str(tmp_path / "run.db"),
        "PORT": str(port),
    }
    process = subprocess.Popen([LEADBOT, "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # wait for the line written once the socket is bound
            if "Leadbot listening on" in line:
                break
        else:
            pytest.fail(f"leadbot run exited with {process.wait()}")
        assert f"Leadbot listening on 127.0.0.1:{port}" in line  # this machine only, unless LEADBOT_HOST says
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"ok": True, "store": "ok", "backends": {}}
        body = "command=%2Flead&text=help&user_id=U1&team_id=T0LEADBOT&trigger_id=1.2.3&channel_id=C1"
        body += "&response_url=" + quote(fake_slack.response_url("run"), safe="")
        response = httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=signed_headers(body))
        assert response.status_code == 200 and "/lead new" in response.text
        bad = httpx.post(
            f"http://127.0.0.1:{port}/slack/events", content=body, headers=signed_headers(body, secret="wrong")
        )
        assert bad.status_code == 401
        assert fake_slack.received("api", "auth.test")  # the token was checked at start-up
        # Nothing of Leadbot speaks WebSocket (Socket Mode is a client): an upgrade is refused, not served.
        upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
        refused = httpx.get(
            f"http://127.0.0.1:{port}/slack/events", headers=upgrade | {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        )
        assert 400 <= refused.status_code < 500, refused.status_code
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_leadbot_host_chooses_the_address(tmp_path, fake_slack):
    port = free_port()
    env = {
        **ENV,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LEADBOT_DB": str(tmp_path / "run.db"),
        "LEADBOT_HOST": "0.0.0.0",
        "PORT": str(port),
    }
    process = subprocess.Popen([LEADBOT, "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        said = next((line for line in process.stderr if "Leadbot listening on" in line), "")
        assert f"Leadbot listening on 0.0.0.0:{port}" in said
    finally:
        process.terminate()
        process.wait(10)


def test_port_in_use_is_one_line(tmp_path, fake_slack):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        env = {
            **ENV,
            "SLACK_BOT_TOKEN": "xoxb-run",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": fake_slack.api_url,
            "LEADBOT_DB": str(tmp_path / "run.db"),
            "PORT": str(taken.getsockname()[1]),
        }
        result = subprocess.run([LEADBOT, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot be used" in result.stderr and "Traceback" not in result.stderr
