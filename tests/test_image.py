"""The container image: what the Dockerfile promises, and the very command and health check it runs.

No Docker engine runs where these tests run, so the image is not built here;
instead its CMD runs with its ENV (``/data`` moved under a temporary
directory), and its HEALTHCHECK command is run against it, as Docker would.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from tests.slack import SIGNING_SECRET
from tests.test_run import free_port

ROOT = Path(__file__).resolve().parents[1]
LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined, found = "", []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        joined += line.rstrip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
            continue
        word, _, rest = joined.strip().partition(" ")
        found.append((word.upper(), rest.strip()))
        joined = ""
    return found


def one(word: str) -> str:
    (found,) = [rest for w, rest in instructions() if w == word]
    return found


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def test_the_image_is_slim_runs_as_its_own_user_and_keeps_the_database_on_a_volume():
    assert one("FROM") in ("python:3.11-slim", "python:3.12-slim")
    assert one("USER") not in ("root", "0") and one("USER") == "leadbot"
    assert json.loads(one("VOLUME")) == ["/data"]
    assert image_env()["LEADBOT_DB"] == "/data/leadbot.db"
    assert one("EXPOSE") == image_env()["PORT"] == str(Settings.model_fields["port"].default)
    assert json.loads(one("CMD")) == ["leadbot", "run"]
    installs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    assert installs and all("[" not in run for run in installs)  # the package alone: no test extras


def test_the_build_context_keeps_what_pip_install_needs_and_nothing_it_should_not():
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]

    def excluded(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in ignored)

    sources = {part for word, rest in instructions() if word == "COPY" for part in rest.split()[:-1]}
    assert sources == {"pyproject.toml", "README.md", "bot", "handlers", "services"}
    assert not any(excluded(path) for path in sources)
    for never in (".venv", ".git", "leadbot.db", "leadbot.db-wal", ".env", "tests"):
        assert excluded(never), never


@pytest.fixture
def data(tmp_path) -> Path:
    """The image's /data volume, here."""
    volume = tmp_path / "data"
    volume.mkdir()
    return volume


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The HEALTHCHECK's command, with this interpreter as the image's ``python``."""
    rest = one("HEALTHCHECK")
    command = json.loads(rest[rest.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30)


def test_the_image_command_serves_healthz_and_its_healthcheck_passes(data, fake_slack):
    port = str(free_port())
    env = {k: v.replace("/data", str(data)) for k, v in image_env().items()} | {"PORT": port}
    # What the README's docker run line passes in.
    env |= {
        "SLACK_BOT_TOKEN": "xoxb-image",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }
    command = json.loads(one("CMD"))
    process = subprocess.Popen([LEADBOT, *command[1:]], env={**ENV, **env}, cwd=data, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # the line written once the socket is bound
            if "Leadbot listening on" in line:
                break
        else:
            pytest.fail(f"{' '.join(command)} exited with {process.wait()}")
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert (answer.status_code, answer.json()) == (200, {"ok": True, "store": "ok", "backends": {}})
        checked = healthcheck({**ENV, **env})
        assert checked.returncode == 0, checked.stderr
        assert (data / "leadbot.db").exists()  # the database is on the volume
    finally:
        process.terminate()
        process.wait(10)
    assert healthcheck({**ENV, **env}).returncode != 0  # and it fails when nothing answers
