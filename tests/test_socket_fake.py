"""The Socket Mode fake itself, driven by a minimal raw WebSocket client (no Slack library in between)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fakes.socket_slack import APP_TOKEN, CLOSED, CLOSING, DRAINING, FIN, OPEN, RESET, SILENT, SocketSlack


class RawClient:
    """Just enough RFC 6455 for a client: handshake, masked frames out, frames in."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1]) if head else 0

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        b1, b2 = self._read(2)
        n = b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        return b1 & 0x0F, self._read(n)

    def message(self) -> dict:
        opcode, data = self.frame()
        assert opcode == 0x1, opcode
        return json.loads(data)

    def send(self, opcode: int, data: bytes) -> None:
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def ack(self, envelope_id: str, payload: dict | None = None) -> None:
        body = {"envelope_id": envelope_id} | ({"payload": payload} if payload is not None else {})
        self.send(0x1, json.dumps(body).encode())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def slack() -> Iterator[SocketSlack]:
    fake = SocketSlack().start()
    yield fake
    fake.stop()


def open_url(slack: SocketSlack, token: str = APP_TOKEN) -> httpx.Response:
    return httpx.post(f"{slack.api_url}apps.connections.open", headers={"Authorization": f"Bearer {token}"})


def connect(slack: SocketSlack) -> tuple[RawClient, dict]:
    client = RawClient(open_url(slack).json()["url"])
    assert client.status == 101
    return client, client.message()


def test_apps_connections_open_needs_the_app_token_and_counts_calls(slack):
    assert httpx.post(f"{slack.api_url}apps.connections.open").json() == {"ok": False, "error": "not_authed"}
    assert open_url(slack, "xapp-1-wrong").json() == {"ok": False, "error": "invalid_auth"}
    answer = open_url(slack).json()
    assert answer["ok"] is True
    assert answer["url"].startswith(f"ws://127.0.0.1:{urlsplit(slack.url).port}/link/?ticket=")
    assert len(slack.open_calls) == 3


def test_apps_connections_open_fails_on_demand(slack):
    slack.fail_open("internal_error")
    slack.fail_open("invalid_auth")
    slack.fail_open(None, status=503)
    slack.fail_open("ratelimited", status=429, retry_after=7)
    assert open_url(slack).json() == {"ok": False, "error": "internal_error"}
    assert open_url(slack).json() == {"ok": False, "error": "invalid_auth"}
    assert open_url(slack).status_code == 503
    limited = open_url(slack)
    assert (limited.status_code, limited.headers["retry-after"], limited.json()["error"]) == (429, "7", "ratelimited")
    assert open_url(slack).json()["ok"] is True
    slack.fail_open("internal_error", times=-1)
    assert [open_url(slack).json()["ok"] for _ in range(3)] == [False, False, False]
    slack.clear_failures()
    assert open_url(slack).json()["ok"] is True


def test_hello_on_connect_and_a_ticket_opens_one_link(slack):
    url = open_url(slack).json()["url"]
    client = RawClient(url)
    hello = client.message()
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0LEADBOT"} and "host" in hello["debug_info"]
    link = slack.wait_link(1)
    assert link.number == 1 and link.state == OPEN and slack.current is link
    again = RawClient(url)
    assert again.status == 401 and slack.rejected_handshakes


def test_envelopes_have_slacks_shapes_and_acks_are_recorded(slack):
    client, _ = connect(slack)
    command = slack.command("new Ada ada@example.com")
    message = client.message()
    assert message["type"] == "slash_commands" and message["accepts_response_payload"] is True
    assert message["envelope_id"] == command.envelope_id and "retry_attempt" not in message
    assert {"command", "text", "user_id", "channel_id", "response_url", "trigger_id", "team_id"} <= message[
        "payload"
    ].keys()
    assert message["payload"]["text"] == "new Ada ada@example.com"

    action = slack.action("lead_done", "local:7")
    message = client.message()
    assert message["type"] == "interactive" and message["payload"]["type"] == "block_actions"
    assert (
        message["payload"]["actions"][0].items()
        >= {"action_id": "lead_done", "value": "local:7", "type": "button"}.items()
    )

    event = slack.event()
    message = client.message()
    assert message["type"] == "events_api" and (message["retry_attempt"], message["retry_reason"]) == (0, "")
    assert message["payload"]["type"] == "event_callback" and message["payload"]["event"]["type"] == "message"

    client.ack(command.envelope_id, {"text": "Hi"})
    client.ack(action.envelope_id)
    client.ack("not-an-envelope")
    assert slack.wait_acked([command, action])
    assert command.ack.payload == {"text": "Hi"} and command.ack.link == 1 and command.ack.latency >= 0
    assert action.ack.payload is None
    assert slack.wait_for(lambda s: s.stray_acks)
    assert slack.never_acked() == [event]


def test_disconnect_drains_the_link_and_queues_until_a_new_one_says_hello(slack):
    first, _ = connect(slack)
    old = slack.disconnect("refresh_requested")
    assert first.message() == {
        "type": "disconnect",
        "reason": "refresh_requested",
        "debug_info": {"host": "applink-fake-1"},
    }
    assert old.state == DRAINING and slack.current is None
    queued = slack.command("help")
    assert slack.undelivered() == [queued] and not queued.deliveries
    second, hello = connect(slack)
    assert hello["type"] == "hello"
    assert second.message()["envelope_id"] == queued.envelope_id
    assert queued.deliveries[0][0] == 2
    first.ack(queued.envelope_id)  # an ack may still come on the draining link
    assert slack.wait_ack(queued).link == 1


@pytest.mark.parametrize("reason", ["warning", "link_disabled"])
def test_other_disconnect_reasons(slack, reason):
    client, _ = connect(slack)
    slack.disconnect(reason)
    assert client.message()["reason"] == reason


def test_close_frame_then_the_clients_answer_closes_the_link(slack):
    client, _ = connect(slack)
    link = slack.close(1001, "going away")
    opcode, data = client.frame()
    assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1001 and data[2:] == b"going away"
    assert link.state == CLOSING
    client.send(0x8, struct.pack("!H", 1000))
    assert slack.wait_closed(link) and link.client_close_code == 1000
    assert slack.wait_for(lambda s: link.closed_at is not None)
    with pytest.raises(EOFError):
        client.frame()


def test_fin_half_closes_and_the_fake_still_reads(slack):
    client, _ = connect(slack)
    envelope = slack.command("help")
    link = slack.fin()
    assert link.state == FIN
    assert client.message()["envelope_id"] == envelope.envelope_id  # what was sent before the FIN arrives
    with pytest.raises(EOFError):
        client.frame()
    client.ack(envelope.envelope_id)
    assert slack.wait_ack(envelope).link_state == FIN
    client.close()
    assert slack.wait_for(lambda s: link.closed_at is not None)


def test_rst_resets_the_connection(slack):
    client, _ = connect(slack)
    link = slack.rst()
    with pytest.raises((ConnectionResetError, EOFError)) as raised:
        client.frame()
    assert raised.type is ConnectionResetError
    assert slack.wait_for(lambda s: link.closed_at is not None) and link.state == RESET


def test_silent_link_neither_answers_pings_nor_gets_envelopes(slack):
    client, _ = connect(slack)
    link = slack.go_silent()
    assert link.state == SILENT and slack.current is None
    client.send(0x9, b"are you there")
    queued = slack.command("help")
    assert slack.undelivered() == [queued]
    client.sock.settimeout(0.3)  # the assertion is that nothing arrives: a bounded read, not a sleep
    with pytest.raises(TimeoutError):
        client.frame()
    assert link.pings == 0  # it was not even read


def test_pings_answered_or_not(slack):
    client, _ = connect(slack)
    client.send(0x9, b"p1")
    assert client.frame() == (0xA, b"p1")
    assert slack.wait_for(lambda s: slack.links[0].pings == 1)
    slack.set_answer_pings(False)
    client.send(0x9, b"p2")
    envelope = slack.command("help")
    assert client.message()["envelope_id"] == envelope.envelope_id  # the next frame is the envelope, no pong
    assert slack.wait_for(lambda s: slack.links[0].pings == 2)


def test_unacked_events_are_sent_again_commands_are_not():
    with SocketSlack(redeliver_after=0.2, max_retries=2) as slack:
        client, _ = connect(slack)
        event = slack.event()
        command = slack.command("help")
        first = client.message()
        assert client.message()["envelope_id"] == command.envelope_id
        retry = client.message()
        assert retry["envelope_id"] == first["envelope_id"] == event.envelope_id
        assert (retry["retry_attempt"], retry["retry_reason"]) == (1, "timeout")
        assert client.message()["retry_attempt"] == 2
        assert slack.wait_for(lambda s: len(event.deliveries) == 3)
        assert {e.envelope_id for e in slack.never_acked()} == {event.envelope_id, command.envelope_id}
        client.ack(event.envelope_id)
        assert slack.wait_ack(event)
        assert slack.never_acked() == [command]


def test_a_large_envelope_arrives_whole(slack):
    client, _ = connect(slack)
    envelope = slack.action(pad_to=1_300_000)
    assert 1_300_000 <= envelope.size < 1_310_000
    message = client.message()
    assert message["envelope_id"] == envelope.envelope_id and len(message["payload"]["message"]["blocks"]) > 400


def test_a_client_that_closes_is_seen(slack):
    client, _ = connect(slack)
    link = slack.wait_link(1)
    client.send(0x8, struct.pack("!H", 1000))
    assert client.frame()[0] == 0x8  # the fake answers the close
    assert slack.wait_closed(link) and link.client_close_code == 1000
    assert slack.wait_for(lambda s: link.state == CLOSED)


def test_a_drained_link_is_closed_later_if_the_client_keeps_it():
    with SocketSlack(drain_close_after=0.1) as slack:
        client, _ = connect(slack)
        link = slack.disconnect("refresh_requested")
        assert client.message()["type"] == "disconnect"
        opcode, data = client.frame()  # the close frame, 0.1 s later
        assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1001 and link.state == CLOSING
