"""Signatures, replays and retries: what reaches the handlers and how often."""

from __future__ import annotations

import time

from bot import slackrequests as sr
from tests.conftest import ADMIN, activity, audited, leads
from tests.slack import SIGNING_SECRET, signed_headers


def test_bad_signature_gets_401_and_changes_nothing(slack, linked):
    body = "command=%2Flead&text=new+Ada+ada%40example.com&user_id=UADMIN&trigger_id=1.2.3&team_id=T1"
    headers = signed_headers(body, secret="not-the-secret")
    response = slack.post(body, headers)
    assert response.status_code == 401
    assert leads(linked) == []
    assert slack.replies() == []


def test_missing_signature_gets_401_and_changes_nothing(slack, linked):
    request = sr.slash_command(
        "new Ada ada@example.com", user=ADMIN, response_url=slack.fake.response_url("u"), trigger_id="9.1"
    )
    for headers in ({}, {"X-Slack-Request-Timestamp": str(int(time.time()))}, {"X-Slack-Signature": "v0=abc"}):
        response = slack.post(request.body, {"Content-Type": request.content_type, **headers})
        assert response.status_code == 401 and response.json() == {"error": "invalid request"}
    assert leads(linked) == []
    assert slack.replies() == []


def test_stale_and_future_timestamps_get_401(slack, linked):
    request = sr.slash_command(
        "new Ada ada@example.com", user=ADMIN, response_url="http://127.0.0.1:9/x", trigger_id="9.9"
    )
    for skew in (-6 * 60, +6 * 60):  # correctly signed, but five minutes or more off: a replayed or forged request
        headers = request.headers(SIGNING_SECRET, timestamp=int(time.time()) + skew)
        assert slack.post(request.body, headers).status_code == 401, skew
    assert leads(linked) == []
    fresh = request.headers(SIGNING_SECRET)
    assert slack.post(request.body, fresh).status_code == 200  # the same request, signed now, is taken
    assert len(leads(linked)) == 1


def test_slack_retry_creates_nothing_twice(slack, linked):
    first = slack.command("new Ada ada@example.com", user=ADMIN, trigger_id="77.1.retry")
    retry = slack.command(
        "new Ada ada@example.com",
        user=ADMIN,
        trigger_id="77.1.retry",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first.status_code == retry.status_code == 200
    assert len(leads(linked)) == 1
    assert len(slack.replies()) == 1
    assert len(audited(linked, action="create")) == 1


def test_replayed_followup_is_logged_once(slack, linked):
    from tests.conftest import new_lead

    ref = new_lead(linked)
    for _ in range(2):
        slack.command(f"followup {ref} called", user=ADMIN, trigger_id="88.1.replay")
    assert activity(linked, ref) == [("follow_up", "follow-up: called")]


def test_repeated_action_payload_is_applied_once(slack, linked):
    from tests.conftest import REP, new_lead

    ref = new_lead(linked)
    slack.command(f"show {ref}")
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_assign_me", user=REP, trigger_id="99.1.same")
    slack.click(card, "lead_assign_me", user=REP, trigger_id="99.1.same")
    assert len(audited(linked, action="assign")) == 1
    assert len(slack.replies()) == 2  # the card from show, and one update


def test_a_retried_press_that_opens_a_form_opens_it_once_and_says_nothing(slack, linked):
    """Slack's retry carries the same trigger_id, which opens one modal at most (Slack refuses it again)."""
    from tests.conftest import REP, new_lead

    ref = new_lead(linked)
    slack.command(f"show {ref}")
    card = slack.last_reply()["blocks"]
    for action_id in ("lead_add_note", "lead_log_follow_up"):
        slack.fake.clear()
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        element, block = sr.find_element(card, action_id)
        press = sr.block_actions(
            sr.button_action(element, block),
            user=REP,
            trigger_id=f"41.{action_id}",
            response_url=slack.fake.response_url(action_id),
            message_ts="1700000000.000100",
            message_blocks=card,
        )
        assert slack.send(press).status_code == slack.send(press, retry).status_code == 200
        assert len(slack.opened_views()) == 1, action_id
        assert slack.replies() == []  # no "something went wrong" from a second views.open


def test_a_retried_message_shortcut_opens_its_form_once(slack, linked):
    request = sr.message_action(
        "lead_from_message",
        "Jane Doe jane@acme.example wants a demo",
        user=ADMIN,
        trigger_id="42.shortcut",
        response_url=slack.fake.response_url("short"),
    )
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert slack.send(request).status_code == slack.send(request, retry).status_code == 200
    assert len(slack.opened_views()) == 1
    assert slack.replies() == []


def test_healthz(bot, monkeypatch):
    import httpx

    from services.ports import StoreUnavailable

    response = httpx.get(f"{bot.url}/healthz")
    assert response.status_code == 200 and response.json() == {"ok": True, "store": "ok", "backends": {}}

    def down() -> None:
        raise StoreUnavailable("disk I/O error")

    monkeypatch.setattr(bot.runtime.store, "ping", down)
    response = httpx.get(f"{bot.url}/healthz")
    assert response.status_code == 503 and response.json() == {"ok": False, "store": "unavailable", "backends": {}}


def test_ack_never_waits_for_the_work(bot, fake_slack, linked):
    """The ack returns while the lazy listener is still blocked on the Web API."""
    import threading

    from tests.slack import signed_headers as sign

    gate = threading.Event()
    original = fake_slack._users_info

    def slow_users_info(body):
        gate.wait(5)
        return original(body)

    fake_slack._users_info = slow_users_info
    from urllib.parse import urlencode

    body = urlencode(
        {
            "command": "/lead",
            "text": "whoami",
            "user_id": ADMIN,
            "trigger_id": "5.5.5",
            "team_id": "T0LEADBOT",
            "channel_id": "C1",
            "response_url": fake_slack.response_url("w"),
        }
    )
    import httpx

    response = httpx.post(f"{bot.url}/slack/events", content=body, headers=sign(body), timeout=5)
    assert response.status_code == 200
    assert fake_slack.received("response") == []  # the reply is still waiting on users.info
    gate.set()
    assert bot.executor.wait_idle(5)
    assert "Leadbot admin" in fake_slack.received("response")[-1].body["text"]


def test_a_saturated_bot_says_busy_in_the_ack_and_takes_nothing_in(bot, linked):
    bot.executor.max_pending = 0
    body = bot.slack.command("new Ada ada@example.com", user=ADMIN).json()
    assert "Leadbot is busy right now and did not take this in" in body["text"]
    assert leads(linked) == []
    assert bot.slack.command("help").status_code == 200  # what needs no work is still answered


def test_secrets_stay_out_of_the_logs_even_at_debug(slack, linked, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        slack.command("new Ada ada@example.com next=tomorrow", user=ADMIN)
        slack.command("new", user=ADMIN)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "views.open" in logged or "users.info" in logged  # the SDK did log its calls
    assert "xoxb-test-token" not in logged and "test-signing-secret" not in logged


def test_an_unexpected_failure_is_logged_with_a_reference_and_never_shown(slack, linked, caplog, monkeypatch):
    import logging
    import re

    from tests.conftest import new_lead

    ref = new_lead(linked)

    def broken(lead_id):
        raise RuntimeError("disk on fire at /var/secret/path")

    monkeypatch.setattr(linked.backends.get("local"), "get", broken)
    with caplog.at_level(logging.ERROR, logger="leadbot"):
        slack.command(f"show {ref}")
    shown = slack.last_reply()["text"]
    assert "disk on fire" not in shown and "secret" not in shown
    match = re.search(r"Something went wrong on our side \(ref `([0-9a-f]{8})`\)", shown)
    assert match, shown
    (record,) = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert record.exc_info and "disk on fire" in str(record.exc_info[1])


def test_a_listener_that_fails_before_its_ack_still_acks_and_logs_the_traceback(slack, linked, caplog, monkeypatch):
    # A bug in what a listener does before its ack: the New lead form is read before the ack.
    import handlers.views

    def broken(view, deps, now):
        raise AttributeError("a bug in reading the form")

    monkeypatch.setattr(handlers.views, "read_new_lead_form", broken)
    view = {"id": "V1", "type": "modal", "callback_id": "lead_new", "state": {"values": {}}, "private_metadata": "{}"}
    payload = {"type": "view_submission", "user": {"id": ADMIN}, "view": view, "team": {"id": "T0LEADBOT"}}
    with caplog.at_level("ERROR", logger="leadbot"):
        answer = slack.interact(payload)
    assert answer.status_code == 200
    (record,) = [r for r in caplog.records if "failed before acking" in r.getMessage()]
    assert record.exc_info is not None and isinstance(record.exc_info[1], AttributeError)


# -- bounded bodies, and no body in the log ---------------------------------------------------


def _raw_http(bot, head: bytes, chunks: list[bytes]) -> bytes:
    """Send ``head`` and then ``chunks`` on a socket, stopping when the server answers; what it answered."""
    import socket

    host, port = bot.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head)
        for chunk in chunks:
            try:
                conn.sendall(chunk)
            except OSError:  # the server answered and closed while we were still sending
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = conn.recv(65536)
            if not data:
                break
            answer += data
        return answer


def test_a_body_declared_over_the_limit_is_a_413_before_any_of_it_is_read(bot, linked):
    from bot.server import MAX_BODY

    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: leadbot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {10 * MAX_BODY}\r\n\r\n".encode()
    )
    answer = _raw_http(bot, head, [])  # not one byte of the body is sent: the answer cannot have waited for it
    assert answer.startswith(b"HTTP/1.1 413 ") and b"request bodies are limited to 1048576 bytes" in answer
    assert leads(linked) == []


def test_after_a_413_the_server_closes_the_connection_instead_of_reading_the_rest(bot, linked):
    import socket

    from bot.server import MAX_BODY

    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: leadbot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {10 * MAX_BODY}\r\n\r\n".encode()
    )
    host, port = bot.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head + b"x" * 1000)  # a little of the ten megabytes it announced
        answer = b""
        while data := conn.recv(65536):  # until the server closes; a socket timeout if it waits for the rest
            answer += data
    assert answer.startswith(b"HTTP/1.1 413 ") and b"\r\nconnection: close\r\n" in answer.lower()


def test_a_chunked_body_is_counted_while_it_is_read_and_cut_off_at_the_limit(bot, linked):
    from bot.server import MAX_BODY

    head = (
        b"POST /slack/events HTTP/1.1\r\nHost: leadbot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    # Twice the limit, never terminated: the server must answer on counting, not at the end of the body.
    answer = _raw_http(bot, head, [chunk] * (2 * MAX_BODY // len(piece)))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert leads(linked) == []


def test_a_chunked_body_within_the_limit_is_served(bot, linked):
    import httpx

    request = sr.slash_command(
        "new Ada ada@example.com", user=ADMIN, response_url=bot.slack.fake.response_url("c"), trigger_id="c.1"
    )
    body = request.body.encode()
    pieces = (body[i : i + 7] for i in range(0, len(body), 7))  # a generator: httpx sends it chunked
    response = httpx.post(f"{bot.url}/slack/events", content=pieces, headers=request.headers(SIGNING_SECRET))
    assert response.status_code == 200 and "content-length" not in response.request.headers
    assert bot.executor.wait_idle(10)
    assert [lead.name for lead in leads(linked)] == ["Ada"]


def test_a_body_at_the_limit_is_read(bot, linked):
    from bot.server import MAX_BODY

    def command(padding: int) -> str:
        response_url = bot.slack.fake.response_url("l")
        return sr.slash_command(
            "note local:1 " + "x" * padding, user=ADMIN, response_url=response_url, trigger_id="l.1"
        ).body

    body = command(MAX_BODY - len(command(0)))
    assert len(body.encode()) == MAX_BODY
    answer = bot.slack.post(body, signed_headers(body))
    assert answer.status_code == 200
    assert "at most 40,000" in answer.json()["text"]  # read, parsed and answered (longer than Slack's longest)


def test_a_chunked_body_at_the_limit_is_read_and_one_byte_more_is_a_413(bot, linked):
    import httpx

    from bot.server import MAX_BODY

    def command(padding: int) -> str:
        response_url = bot.slack.fake.response_url("lc")
        return sr.slash_command(
            "note local:1 " + "x" * padding, user=ADMIN, response_url=response_url, trigger_id="lc.1"
        ).body

    def chunked(body: bytes):
        return (body[i : i + 65536] for i in range(0, len(body), 65536))  # a generator: httpx sends it chunked

    at_limit = command(MAX_BODY - len(command(0))).encode()
    assert len(at_limit) == MAX_BODY
    url = f"{bot.url}/slack/events"
    response = httpx.post(url, content=chunked(at_limit), headers=signed_headers(at_limit.decode()))
    assert response.status_code == 200 and "content-length" not in response.request.headers
    assert "it can be at most 40,000 (Slack's limit)" in response.json()["text"]  # read, parsed and answered
    over = at_limit + b"x"
    response = httpx.post(url, content=chunked(over), headers=signed_headers(over.decode()))
    assert response.status_code == 413 and "limited to 1048576 bytes" in response.json()["error"]


def _refuse_eight_big_bodies(slack, caplog, *, limited: bool) -> None:
    """Eight unsigned or wrongly signed bodies of 100 KB and more: 401 each, and not a byte of them in the log.

    Bolt's own check logged each refused body whole at INFO (``Invalid request signature detected``).
    """
    import logging
    import uuid

    from bot.server import MAX_BODY

    caplog.set_level(logging.DEBUG)
    markers = [f"body{n}-{uuid.uuid4().hex}" for n in range(8)]
    for n, marker in enumerate(markers):
        text = " ".join([marker] * (100_000 // len(marker) + n * 4000))
        body = f"command=%2Flead&user_id=UADMIN&trigger_id={n}.1&text={text}"
        assert len(body) > 100_000
        if n % 2:
            headers = signed_headers(body, secret="not-the-secret")
        else:
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        expected = 413 if limited and len(body) > MAX_BODY else 401  # the limit is the HTTP server's
        assert slack.post(body, headers).status_code == expected, n
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert "refused a request without a valid signature" in logged  # the refusals were logged ...
    assert not [m for m in markers if m in logged]  # ... without the bodies
    assert not [m for m in markers if m[: len("body0-") + 8] in logged]


def test_refused_bodies_are_never_logged_over_http(bot, caplog):
    _refuse_eight_big_bodies(bot.slack, caplog, limited=True)


def test_refused_bodies_are_never_logged_by_the_app(slack, caplog):
    _refuse_eight_big_bodies(slack, caplog, limited=False)  # Socket Mode and the console dispatch into the app directly


def test_slacks_certificate_check_is_answered_signed_or_not(bot, app, linked):
    from tests.slack import DispatchTransport

    body = "ssl_check=1&token=some-token"
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = (bot.slack.post(body, unsigned), bot.slack.post(body), DispatchTransport(app).send(body, unsigned))
    for answer in answers:
        assert (answer.status_code, answer.text) == (200, "")
    assert bot.slack.fake.received("response") == [] and leads(linked) == []


def test_the_app_skips_the_signature_only_for_a_real_certificate_check(slack, linked):
    from urllib.parse import urlencode

    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    for text in ("new Ada ada@example.com ssl_check", "new Ada ada@example.com ssl_check=1"):
        fields = {"command": "/lead", "text": text, "user_id": ADMIN, "trigger_id": "s.1"}
        body = urlencode({**fields, "response_url": slack.fake.response_url("s")})
        assert slack.post(body, unsigned).status_code == 401, text
    # A forged command with the field itself: Bolt answers it as the check, and no listener runs.
    fields = {"command": "/lead", "text": "new Ada ada@example.com", "user_id": ADMIN, "trigger_id": "s.2"}
    body = urlencode({**fields, "response_url": slack.fake.response_url("s"), "ssl_check": "1"})
    assert slack.post(body, unsigned).status_code == 200
    assert leads(linked) == [] and slack.fake.received("response") == []


def test_only_a_small_real_certificate_check_is_answered_unsigned(bot, linked):
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    command = "command=%2Flead&text=new+Ada+ada%40example.com&user_id=UADMIN&trigger_id=1.2.3"
    for body in (
        "ssl_check=1&token=" + "t" * 600,  # Slack's check is a few bytes: a big body is read as any other
        "ssl_check=0&token=some-token",
        "token=ssl_check=1",  # the words, but not the field
        f"{command}&x=ssl_check=1",
    ):
        assert bot.slack.post(body, unsigned).status_code == 401, body[:40]
    assert leads(linked) == []


def test_no_response_url_or_customer_email_is_logged_even_at_debug(slack, linked, fake_slack, caplog):
    import logging

    from tests.conftest import new_lead

    ref = new_lead(linked, email="grace.hopper@navy.example")
    with caplog.at_level(logging.DEBUG):
        slack.command("new Ada Lovelace ada.lovelace@example.com note=mail ada.lovelace@example.com", user=ADMIN)
        slack.command(f"show {ref}", user=ADMIN)
        slack.command("new Ada x@", user=ADMIN)  # an error that quotes what was typed
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Sending a request" in logged  # slack_sdk did log its posts to the response URLs, at DEBUG
    assert fake_slack.url not in logged and "/response/" not in logged
    assert "ada.lovelace@example.com" not in logged and "ada.lovelace%40example.com" not in logged
    assert "grace.hopper@navy.example" not in logged and "[email]" in logged


def test_redact_scrubs_slacks_bearer_urls_and_emails():
    from bot.redact import redact

    line = (
        'payload {"response_url": "https://hooks.slack.com/commands/T1/2/abc", "text": "ada@example.com"}'
        " form response_url=https%3A%2F%2Fhooks.slack.com%2Factions%2FT1%2F9%2Fx&user=U1 mail bob%40example.org"
        " <@U123> ok@localhost"
    )
    clean = redact(line)
    assert "hooks.slack.com/commands" not in clean and "abc" not in clean and "%2Factions" not in clean
    assert "ada@example.com" not in clean and "bob%40example.org" not in clean
    assert "<@U123>" in clean and "ok@localhost" in clean  # mentions stay; no domain, no email
