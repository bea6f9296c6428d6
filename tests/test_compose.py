"""deploy/compose.yaml: two replicas of the image on one PostgreSQL behind a proxy that checks /healthz.

No Docker engine (nor the compose plugin) runs where these tests run, so the stack is not
brought up here; instead the file is read as compose reads it, and the replicas' very
command and environment are run, twice, on the tests' PostgreSQL. Where ``docker compose``
is installed, it checks the file too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.slack import SIGNING_SECRET
from tests.test_image import ENV, LEADBOT, one
from tests.test_run import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOTENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "SLACK_BOT_TOKEN": "xoxb-compose",
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "LEADBOT_ADMINS": "U012AB3CD",
}


def interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``."""

    def one_variable(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3) or ""
        if name in env and env[name] != "":
            return env[name]
        if op == ":?":
            raise KeyError(rest)
        return rest

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one_variable, value)


@pytest.fixture
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def replicas(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "leadbot"}


def test_two_replicas_of_the_image_on_one_postgresql_behind_a_proxy(compose):
    found = replicas(compose)
    assert sorted(found) == ["leadbot-1", "leadbot-2"]
    for service in found.values():
        assert (DEPLOY / service["build"] / "Dockerfile").exists()  # built from this repository's Dockerfile
        assert service.get("command") in (None, json.loads(one("CMD")))  # the image's own command: leadbot run
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        url = urlsplit(interpolated(service["environment"]["LEADBOT_DB"], DOTENV))
        db = compose["services"]["db"]["environment"]
        assert (url.scheme, url.hostname, url.username) == ("postgresql", "db", db["POSTGRES_USER"])
        assert url.path == f"/{db['POSTGRES_DB']}"
        assert url.password == "pg-secret" and "POSTGRES_PASSWORD" in db["POSTGRES_PASSWORD"]
        with pytest.raises(KeyError):  # a secret left unset stops compose, rather than starting without it
            interpolated(service["environment"]["SLACK_SIGNING_SECRET"], {})
    assert compose["services"]["db"]["image"].startswith("postgres:")
    proxy = compose["services"]["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"reverse_proxy leadbot-1:3000 leadbot-2:3000", caddy) and "health_uri /healthz" in caddy


def test_docker_compose_accepts_the_file_where_it_is_installed(tmp_path):
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    if not has_compose:
        return  # said in the README: there is no compose here to ask
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    checked = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(tmp_path / ".env"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_replicas_command_and_environment_serve_healthz_on_one_database(compose, postgres, fake_slack, tmp_path):
    processes = []
    try:
        for name, service in replicas(compose).items():
            env = {k: interpolated(str(v), DOTENV) for k, v in service["environment"].items()}
            port = free_port()
            # The compose network's "db" is the tests' server here; Slack is the fake.
            env |= {"LEADBOT_DB": postgres, "PORT": str(port), "SLACK_API_URL": fake_slack.api_url}
            command = service.get("command") or json.loads(one("CMD"))
            process = subprocess.Popen(
                [LEADBOT, *command[1:]], env={**ENV, **env}, cwd=tmp_path, stderr=subprocess.PIPE, text=True
            )
            processes.append((name, port, process))
        for name, port, process in processes:
            for line in process.stderr:  # the line written once the socket is bound
                if "Leadbot listening on" in line:
                    break
            else:
                pytest.fail(f"{name} exited with {process.wait()}")
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz")
            assert (answer.status_code, answer.json()["ok"], answer.json()["store"]) == (200, True, "ok"), name
    finally:
        for _, _, process in processes:
            process.terminate()
        for _, _, process in processes:
            process.wait(30)
