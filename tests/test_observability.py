"""What an operator sees: /metrics, /healthz with each backend's last call, and the log (text or JSON, no secrets).

Requests go through the real server, signed as Slack signs them, with the REST
leads API's fake behind the bot; the one test of ``leadbot run`` itself shows that
what the work process does (the backend calls) reaches the server's /metrics.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import logs
from bot.app import build_outbox_runner
from bot.loopback import Failure
from services.backends.http import hide_in_logs
from services.leads import Actor
from tests.conftest import ADMIN, LEADSAPI_CONFIG, leadsapi_settings
from tests.fakes.leadsapi import TOKEN
from tests.slack import SIGNING_SECRET, signed_headers, text_of
from tests.test_run import ENV, LEADBOT, free_port

CONFIG = '[channels]\nC0SALES = "leadsapi"\n\n' + LEADSAPI_CONFIG


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch, config=CONFIG)


@pytest.fixture
def linked(service):
    service.people.link(Actor(slack_user=ADMIN, is_admin=True), ADMIN, "ada", backend="leadsapi")
    return service


@pytest.fixture
def log_lines():
    """The process's log as ``leadbot run`` configures it, into a buffer; ``read(form)`` switches and reads."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()

    class Log:
        def use(self, form: str, secrets=()) -> None:
            logs.configure("INFO", form, secrets, stream=buffer)

        def text(self) -> str:
            return buffer.getvalue()

        def records(self) -> list[dict]:
            return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield Log()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def metrics(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_kind_and_outcome_and_every_backend_call(bot, linked, api_fake):
    bot.slack.command("new John Doe john@example.com source=Referral")
    assert "`leadsapi:1`" in text_of(bot.slack.last_reply()["blocks"])
    bot.slack.command("show leadsapi:1")
    unsigned = httpx.post(f"{bot.url}/slack/events", content="command=%2Flead&text=help")
    assert unsigned.status_code == 401

    found = metrics(bot.url)
    assert value(found, "leadbot_requests_total", kind="/lead", outcome="acked") == 2
    assert value(found, "leadbot_requests_total", kind="unknown", outcome="unsigned") == 1
    assert value(found, "leadbot_ack_seconds_count", kind="/lead") == 2
    assert value(found, "leadbot_ack_seconds_bucket", kind="/lead", le="+Inf") == 2
    assert value(found, "leadbot_ack_seconds_sum", kind="/lead") > 0  # the time each took, not a count alone
    writes = len([r for r in api_fake.received if r.method != "GET"])
    reads = len([r for r in api_fake.received if r.method == "GET"])
    assert writes and reads
    assert value(found, "leadbot_backend_call_seconds_count", backend="leadsapi", kind="write") == writes
    assert value(found, "leadbot_backend_call_seconds_count", backend="leadsapi", kind="read") == reads
    assert not [key for key in found if key[0] == "leadbot_backend_errors_total"]
    assert value(found, "leadbot_outbox_depth") == 0
    assert value(found, "leadbot_journal_depth") == 0


def test_a_failing_backend_is_counted_shown_on_healthz_and_its_queued_write_is_measured(
    bot, linked, api_fake, runtime, clock
):
    assert httpx.get(f"{bot.url}/healthz").json()["backends"] == {"leadsapi": {"last_call": None}}
    api_fake.fail("POST", "/leads", Failure("status", status=503))
    bot.slack.command("new John Doe john@example.com source=Referral")
    assert "queued" in bot.slack.last_reply()["text"]

    found = metrics(bot.url)
    assert value(found, "leadbot_backend_errors_total", backend="leadsapi", outcome="http 503") == 1
    assert value(found, "leadbot_outbox_depth") == 1
    assert value(found, "leadbot_outbox_oldest_age_seconds") >= 0
    health = httpx.get(f"{bot.url}/healthz")
    # A backend that is down is down for every replica: this one stays in the load balancer.
    assert health.status_code == 200
    assert health.json()["backends"]["leadsapi"]["last_call"] == "http 503"

    clock.advance(minutes=10)
    build_outbox_runner(runtime).run_due()
    assert metrics(bot.url)[("leadbot_outbox_depth", ())] == 0
    assert httpx.get(f"{bot.url}/healthz").json()["backends"]["leadsapi"]["last_call"] == "ok"


def test_the_outbox_age_is_how_long_the_oldest_queued_write_has_waited(bot, linked, api_fake, clock):
    from datetime import UTC, datetime, timedelta

    api_fake.fail("POST", "/leads", Failure("status", status=503, times=100))
    clock.at = datetime.now(UTC) - timedelta(hours=2)  # the write was queued two hours ago
    bot.slack.command("new John Doe john@example.com source=Referral")
    clock.at = datetime.now(UTC) - timedelta(minutes=1)  # and another a minute ago
    bot.slack.command("new Jane Roe jane@example.com source=Referral")
    assert "queued" in bot.slack.last_reply()["text"]
    found = metrics(bot.url)
    assert value(found, "leadbot_outbox_depth") == 2
    assert 2 * 3600 <= value(found, "leadbot_outbox_oldest_age_seconds") < 3 * 3600


def test_journal_depth_counts_acked_work_not_done(bot, journal):
    journal.accept_now(b"command=%2Flead&text=help", {"content-type": "application/x-www-form-urlencoded"})
    assert value(metrics(bot.url), "leadbot_journal_depth") == 1


def test_digests_sent_are_counted(runtime):
    from bot.app import build_digest_scheduler

    scheduler = build_digest_scheduler(runtime)
    scheduler.counted("sent")
    scheduler.counted("empty")
    text = runtime.telemetry.exposition()[0].decode()
    assert 'leadbot_digests_total{outcome="sent"} 1.0' in text and 'leadbot_digests_total{outcome="empty"} 1.0' in text


def test_json_log_lines_say_who_what_which_lead_and_how_it_ended(bot, linked, log_lines):
    log_lines.use("json")
    bot.slack.command("new John Doe john@example.com source=Referral")
    records = log_lines.records()
    ack = next(r for r in records if r.get("status") == 200)
    assert ack["kind"] == "/lead" and ack["user"] == ADMIN and ack["team"].startswith("T")
    assert isinstance(ack["latency_ms"], float) and ack["request"] and ack["entry"]
    done = next(r for r in records if r["message"].startswith("work done"))
    assert done["outcome"] == "ok" and isinstance(done["latency_ms"], float)
    assert (done["request"], done["entry"]) == (ack["request"], ack["entry"])
    assert (done["kind"], done["user"], done["backend"], done["ref"]) == ("/lead", ADMIN, "leadsapi", "leadsapi:1")
    bot.slack.command("note 1 called, wants a demo")  # the reference as typed; the channel names the backend
    done = [r for r in log_lines.records() if r["message"].startswith("work done")][-1]
    assert (done["outcome"], done["backend"], done["ref"]) == ("ok", "leadsapi", "leadsapi:1")


def test_a_log_line_says_only_what_its_own_request_is_about(bot, linked, log_lines):
    log_lines.use("json")
    bot.slack.command("new John Doe john@example.com source=Referral")
    bot.slack.command("whoami", user="UOTHER9")  # no lead, no backend; likely on the same work thread
    first, second = [r for r in log_lines.records() if r["message"].startswith("work done")]
    assert (first["user"], first["ref"]) == (ADMIN, "leadsapi:1")
    assert second["user"] == "UOTHER9" and second["request"] != first["request"]
    assert "ref" not in second and "backend" not in second  # nothing left over from the lead before


def test_an_events_log_line_says_whose_event_it_was(bot, linked, log_lines):
    log_lines.use("json")
    assert bot.slack.event({"type": "app_home_opened", "user": ADMIN, "tab": "home"}).status_code == 200
    ack = next(r for r in log_lines.records() if r.get("status") == 200)
    assert (ack["kind"], ack["user"]) == ("event:app_home_opened", ADMIN)


def test_a_refused_action_logs_its_outcome_and_no_body(bot, log_lines):
    log_lines.use("text")
    bot.slack.command("new Zebulon Quux zeb@example.com")  # not linked: refused
    text = log_lines.text()
    assert "work done: refused" in text and "kind=/lead" in text and f"user={ADMIN}" in text
    assert "Zebulon" not in text and "zeb@example.com" not in text


@pytest.mark.parametrize("form", ["text", "json"])
def test_no_secret_reaches_the_log_in_a_message_or_a_traceback(settings, log_lines, form):
    # One secret the start of another: the longer is hidden whole, not left with its tail showing.
    log_lines.use(form, [*settings.secrets(), "s3cr3t-prefix", "s3cr3t-prefix-and-its-tail"])
    logging.getLogger("leadbot.test").warning("the longer one: s3cr3t-prefix-and-its-tail")
    hide_in_logs("getlead-url-token-123")
    secrets = [
        settings.slack_bot_token.get_secret_value(),
        settings.slack_signing_secret.get_secret_value(),
        TOKEN,
        "xoxb-1234-5678-pasted-elsewhere",
        "xapp-1-A0-123-abcdef",
        "getlead-url-token-123",
    ]
    log = logging.getLogger("leadbot.test")
    log.warning("settings were %s", " ".join(secrets))
    log.warning("posting to https://hooks.slack.com/actions/T0/123/abcSECRETdef")
    try:
        raise RuntimeError(f"failed with {secrets[0]} and {secrets[2]}")
    except RuntimeError:
        log.exception("a traceback")
    written = log_lines.text()
    assert "***" in written and "RuntimeError" in written
    for secret in [*secrets, "abcSECRETdef", "s3cr3t-prefix", "and-its-tail"]:
        assert secret not in written


def test_leadbot_run_counts_the_work_process_backend_calls_and_reports_them_on_healthz(tmp_path, fake_slack, api_fake):
    port = free_port()
    config = tmp_path / "leadbot.toml"
    config.write_text(CONFIG)
    env = {
        **ENV,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "LEADBOT_DB": str(tmp_path / "run.db"),
        "LEADBOT_CONFIG": str(config),
        "LEADBOT_LEADSAPI_URL": api_fake.url,
        "LEADBOT_LEADSAPI_TOKEN": TOKEN,
        "LEADBOT_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PORT": str(port),
    }
    assert "LEADBOT_WORK_PROCESS" not in env  # the default: the work after the ack in its own process
    process = subprocess.Popen([LEADBOT, "run"], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for line in process.stderr:
            if "Leadbot listening on" in line:
                break
        else:
            pytest.fail(f"leadbot run exited with {process.wait()}")
        body = "command=%2Flead&text=show+leadsapi%3A7&user_id=U1&team_id=T0LEADBOT&trigger_id=1.2.3&channel_id=C1"
        body += "&response_url=" + quote(fake_slack.response_url("obs"), safe="")
        assert httpx.post(f"{url}/slack/events", content=body, headers=signed_headers(body)).status_code == 200
        assert fake_slack.wait_for(lambda calls: any(c.name == "obs" for c in calls), timeout=10)
        found = metrics(url)
        assert value(found, "leadbot_backend_call_seconds_count", backend="leadsapi", kind="read") >= 1
        assert value(found, "leadbot_requests_total", kind="/lead", outcome="acked") == 1
        assert httpx.get(f"{url}/healthz").json()["backends"]["leadsapi"]["last_call"] == "http 404"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert not os.path.exists(tmp_path / "metrics")  # removed at the end of the run
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all(line["level"] for line in lines)
    assert not [line for line in lines if TOKEN in json.dumps(line) or "xoxb-run" in json.dumps(line)]


def test_a_request_answered_whole_in_its_ack_is_no_info_line_but_a_refused_one_is(bot, linked, log_lines):
    log_lines.use("json")
    bot.slack.command("help")
    assert not [r for r in log_lines.records() if r.get("status") == 200]  # a DEBUG line: not at INFO
    assert httpx.post(f"{bot.url}/slack/events", content="command=%2Flead&text=help").status_code == 401
    assert [r["status"] for r in log_lines.records() if "status" in r] == [401]


def test_acks_counted_between_scrapes_land_in_the_right_buckets():
    from bot.telemetry import Telemetry

    telemetry = Telemetry()
    for seconds in (0.0005, 0.001, 0.003, 0.003, 7.0):
        telemetry.request("/lead", "acked", seconds)
    telemetry.request("block_actions", "unsigned", 0.02)
    families = {f.name: f for f in text_string_to_metric_families(telemetry.exposition()[0].decode())}
    buckets = {
        s.labels["le"]: s.value
        for s in families["leadbot_ack_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["kind"] == "/lead"
    }
    assert (buckets["0.001"], buckets["0.0025"], buckets["0.005"], buckets["5.0"], buckets["+Inf"]) == (2, 2, 4, 4, 5)
    total = next(
        s for s in families["leadbot_ack_seconds"].samples if s.name.endswith("_sum") and s.labels["kind"] == "/lead"
    )
    assert abs(total.value - 7.0075) < 1e-9
    counts = {
        (s.labels["kind"], s.labels["outcome"]): s.value
        for s in families["leadbot_requests"].samples
        if s.name.endswith("_total")
    }
    assert counts == {("/lead", "acked"): 5, ("block_actions", "unsigned"): 1}
    telemetry.request("/lead", "acked", 0.003)  # counted on from there, not from zero
    families = {f.name: f for f in text_string_to_metric_families(telemetry.exposition()[0].decode())}
    assert (
        next(
            s.value
            for s in families["leadbot_requests"].samples
            if s.labels.get("kind") == "/lead" and s.name.endswith("_total")
        )
        == 6
    )


def test_a_slow_ack_is_an_info_line_whatever_it_was(bot, linked, log_lines, monkeypatch):
    import bot.server as server

    log_lines.use("json")
    monkeypatch.setattr(server, "SLOW_ACK", 0.0)  # every ack counts as slow
    bot.slack.command("help")
    assert [r["status"] for r in log_lines.records() if "status" in r] == [200]
