"""A fake Slack for Socket Mode on 127.0.0.1: ``apps.connections.open`` over HTTP and a real WebSocket.

One asyncio server (stdlib only, in a background thread) answers both:

* ``POST /api/apps.connections.open`` with the app token as ``Authorization: Bearer xapp-…``:
  ``{"ok": true, "url": "ws://127.0.0.1:PORT/link/?ticket=…&app_id=…"}``. Calls are counted
  (:attr:`SocketSlack.open_calls`) and can be made to fail (:meth:`SocketSlack.fail_open`).
  ``POST /api/auth.test`` answers for the bot token, so a Bolt ``App(token=…)`` can start against it.
* ``GET /link/?ticket=…`` upgrades to a WebSocket (RFC 6455, written here so that every frame, FIN and
  RST is under the test's control). On connect the fake sends Slack's ``hello``; then it sends
  envelopes on demand and records each ack with its arrival time.

Everything a test does is a method that returns once it has happened on the wire, and everything a
test waits for is a condition (``wait_link``, ``wait_ack``, ``wait_closed`` …): no sleeps.

Slack's behaviour modelled here (from Slack's Socket Mode and ``apps.connections.open`` docs):

* the envelope shapes: ``{"envelope_id", "type", "payload", "accepts_response_payload"}`` plus
  ``retry_attempt`` / ``retry_reason`` on ``events_api``; slash command payloads carry the form
  fields of an HTTP slash command, ``interactive`` ones a ``block_actions`` payload;
* an ack is ``{"envelope_id": …}`` with an optional ``"payload"``;
* ``{"type": "disconnect", "reason": "warning" | "refresh_requested" | "link_disabled", …}``;
* an Events API envelope that is not acked is sent again (``retry_attempt`` + 1, ``retry_reason``
  ``"timeout"``) — turned on with ``redeliver_after``; commands and actions are never sent twice.

Assumptions (Slack does not document them): after a ``disconnect`` message the fake sends nothing new on
that link (it is "draining") and queues envelopes until a link says hello; a ticket opens one link only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

APP_TOKEN = "xapp-1-A0LEADBOT-1-1234567890123-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
BOT_TOKEN = "xoxb-1234567890-1234567890123-abcdefghijklmnopqrstuvwx"
APP_ID = "A0LEADBOT"
TEAM = "T0LEADBOT"
BOT_USER = "U0LEADBOT"
USER = "U0REP1"
CHANNEL = "C0LEADS"

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# link states: what the fake last did to a link
OPEN = "open"  # hello sent, envelopes go here
DRAINING = "draining"  # a disconnect message was sent: acks still read, nothing new sent
CLOSING = "closing"  # the fake sent a close frame and waits for the client's
FIN = "fin"  # the fake shut its write side (TCP FIN, no close frame); it still reads
RESET = "reset"  # the fake reset the TCP connection (SO_LINGER 0, close)
SILENT = "silent"  # the fake stopped reading and sending; the TCP connection stays open
CLOSED = "closed"  # the TCP connection is gone


@dataclass
class Ack:
    envelope_id: str
    payload: Any
    at: float  # time.monotonic() when the ack frame was read
    link: int  # which link it came on
    link_state: str  # that link's state then (an ack after the fake's close frame says "closing")
    latency: float  # at - the envelope's created_at


@dataclass
class Envelope:
    envelope_id: str
    type: str  # "events_api", "slash_commands", "interactive"
    payload: dict[str, Any]
    accepts_response_payload: bool
    created_at: float
    retry_attempt: int = 0
    retry_reason: str = ""
    deliveries: list[tuple[int, float]] = field(default_factory=list)  # (link number, time written)
    acks: list[Ack] = field(default_factory=list)
    size: int = 0  # bytes of the last text frame's payload

    @property
    def ack(self) -> Ack | None:
        return self.acks[0] if self.acks else None

    def message(self) -> dict[str, Any]:
        message = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api":
            message["retry_attempt"] = self.retry_attempt
            message["retry_reason"] = self.retry_reason
        return message


@dataclass
class Link:
    number: int  # 1 for the first WebSocket opened, 2 for the next …
    ticket: str
    opened_at: float  # the 101 response was written
    hello_at: float | None = None
    state: str = OPEN
    client_closed_at: float | None = None  # the client sent a close frame or EOF
    client_close_code: int | None = None
    closed_at: float | None = None  # the TCP connection is gone
    pings: int = 0  # ping frames received from the client
    pongs: int = 0  # pong frames received from the client
    texts: int = 0  # text frames received from the client
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    @property
    def gone(self) -> bool:
        return self.closed_at is not None or self.client_closed_at is not None


@dataclass
class OpenFailure:
    error: str | None = "internal_error"  # Slack's error string; None with a status ≥ 500 sends an HTML body
    status: int = 200
    retry_after: int | None = None
    times: int = 1  # how many calls fail; -1: all of them until cleared


class SocketSlack:
    """Start with ``SocketSlack().start()`` (or ``with SocketSlack() as slack:``); stop with ``stop()``."""

    def __init__(
        self,
        *,
        app_token: str = APP_TOKEN,
        app_id: str = APP_ID,
        redeliver_after: float | None = None,
        redeliver_kinds: tuple[str, ...] = ("events_api",),
        max_retries: int = 3,
        answer_pings: bool = True,
        server_ping_interval: float | None = None,
        close_timeout: float = 2.0,
        drain_close_after: float | None = None,
        web_api: str | None = None,
        forward_delay: float = 0.0,
    ) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self.redeliver_after = redeliver_after
        self.redeliver_kinds = redeliver_kinds
        self.max_retries = max_retries
        self.answer_pings = answer_pings
        self.server_ping_interval = server_ping_interval
        self.close_timeout = close_timeout  # a link the fake closed is dropped this long after, answered or not
        self.drain_close_after = drain_close_after  # after a disconnect message, send a close frame this much later
        # Every other HTTP request (Web API calls, response URLs) is passed on to this base URL (bot/fakeslack.py),
        # so a real bot sees one Slack: SLACK_API_URL serves apps.connections.open and chat.postMessage alike.
        self.web_api = web_api
        self.forward_delay = forward_delay  # each passed-on request is answered this much later: a slow Slack

        self.open_calls: list[float] = []  # time of each apps.connections.open call (failed ones too)
        self.api_calls: list[tuple[str, float]] = []  # (method, time) of every Web API call
        self.links: list[Link] = []
        self.envelopes: list[Envelope] = []
        self.stray_acks: list[dict[str, Any]] = []  # acks naming no envelope the fake sent
        self.rejected_handshakes: list[str] = []  # tickets refused (unknown or used)
        self._failures: list[OpenFailure] = []
        self._tickets: dict[str, bool] = {}  # ticket -> used
        self._by_id: dict[str, Envelope] = {}
        self._pending: list[Envelope] = []  # waiting for a link that said hello
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-slack", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._port = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> SocketSlack:
        self._thread.start()
        self._server = self._run_coro(asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 22))
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            for link in self.links:
                if link._writer is not None and not link._writer.transport.is_closing():
                    link._writer.transport.abort()
            # Every connection's task ends here: one left waiting for a read when the loop stops
            # is destroyed pending later, in whichever test is running then.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            self._run_coro(shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> SocketSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What a ``WebClient(base_url=…)`` takes."""
        return f"{self.url}/api/"

    # -- apps.connections.open ----------------------------------------------------------------

    def fail_open(
        self, error: str | None = "internal_error", *, status: int = 200, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``apps.connections.open`` fail (-1: until :meth:`clear_failures`).

        ``fail_open("internal_error")``, ``fail_open("invalid_auth")``, ``fail_open(None, status=503)``,
        ``fail_open("ratelimited", status=429, retry_after=1)``.
        """
        with self._cond:
            self._failures.append(OpenFailure(error, status, retry_after, times))

    def clear_failures(self) -> None:
        with self._cond:
            self._failures.clear()

    def wait_open_calls(self, count: int, timeout: float = 5.0) -> bool:
        return self.wait_for(lambda s: len(s.open_calls) >= count, timeout)

    # -- links ----------------------------------------------------------------------------------

    def wait_link(self, number: int = 1, timeout: float = 5.0) -> Link | None:
        """The ``number``-th link, once the fake has sent it hello; None if that did not happen in time."""
        ok = self.wait_for(lambda s: sum(1 for link in s.links if link.hello_at is not None) >= number, timeout)
        if not ok:
            return None
        with self._cond:
            return [link for link in self.links if link.hello_at is not None][number - 1]

    @property
    def current(self) -> Link | None:
        """The link new envelopes go to: the newest one that said hello and is still open."""
        with self._cond:
            return self._target()

    def wait_closed(self, link: Link, timeout: float = 5.0) -> bool:
        """Until the client has closed ``link`` (close frame or EOF) or the TCP connection is gone."""
        return self.wait_for(lambda s: link.gone, timeout)

    def live_links(self) -> list[Link]:
        with self._cond:
            return [link for link in self.links if not link.gone and link.state not in (RESET, SILENT)]

    # -- what a test makes happen ----------------------------------------------------------------

    def disconnect(
        self, reason: str = "refresh_requested", link: Link | None = None, close_after: float | None = None
    ) -> Link:
        """Send ``{"type": "disconnect", "reason": …}`` on ``link`` (default: the current one).

        ``close_after`` (default: the fake's ``drain_close_after``, None) closes the link with a close frame
        that many seconds later if the client has not closed it by then, as Slack retires an old link.
        """
        return self._on_loop(self._disconnect, reason, link, close_after)

    def close(self, code: int = 1001, reason: str = "", link: Link | None = None) -> Link:
        """Send a close frame; the TCP connection is dropped when the client answers (or after close_timeout)."""
        return self._on_loop(self._close, code, reason, link)

    def fin(self, link: Link | None = None) -> Link:
        """Shut the write side (TCP FIN) without a close frame; the fake keeps reading what the client sends."""
        return self._on_loop(self._fin, link)

    def rst(self, link: Link | None = None) -> Link:
        """Reset the TCP connection: SO_LINGER 0, then close."""
        return self._on_loop(self._rst, link)

    def go_silent(self, link: Link | None = None) -> Link:
        """Stop reading from and writing to the link (no pongs, no envelopes); the TCP connection stays open."""
        return self._on_loop(self._go_silent, link)

    def set_answer_pings(self, answer: bool) -> None:
        """Answer the client's pings with pongs or not (the link otherwise carries on as usual)."""
        self.answer_pings = answer

    def send_text(self, text: str, link: Link | None = None) -> Link:
        """Any text frame (a hand-made message) on ``link``."""
        return self._on_loop(self._send_raw_text, text, link)

    # -- envelopes ----------------------------------------------------------------------------------

    def command(
        self, text: str = "help", *, command: str = "/lead", user: str = USER, channel: str = CHANNEL
    ) -> Envelope:
        """A ``slash_commands`` envelope as Slack sends ``/lead TEXT``."""
        n = next(self._ids)
        payload = {
            "token": "fakeVerificationToken",
            "team_id": TEAM,
            "team_domain": "leadbot-test",
            "channel_id": channel,
            "channel_name": "leads",
            "user_id": user,
            "user_name": "ana",
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.url}/response/cmd{n}",
            "trigger_id": f"{n}.1234567890.{secrets.token_hex(8)}",
        }
        return self.send_envelope("slash_commands", payload, accepts_response_payload=True)

    def action(
        self,
        action_id: str = "lead_done",
        value: str = "local:1",
        *,
        block_id: str = "lead",
        user: str = USER,
        channel: str = CHANNEL,
        pad_to: int = 0,
    ) -> Envelope:
        """An ``interactive`` envelope: a ``block_actions`` payload for a button click on a message.

        ``pad_to`` grows the clicked message with section blocks (3,000 characters each, Slack's limit for
        a section's text) until the payload is about that many bytes: a click on a very large message.
        """
        n = next(self._ids)
        ts = f"{int(time.time())}.{n:06d}"
        blocks: list[dict[str, Any]] = [
            {
                "type": "actions",
                "block_id": block_id,
                "elements": [
                    {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": "Done"}}
                ],
            }
        ]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": "ana", "name": "ana", "team_id": TEAM},
            "api_app_id": self.app_id,
            "token": "fakeVerificationToken",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{n}.5678901234.{secrets.token_hex(8)}",
            "team": {"id": TEAM, "domain": "leadbot-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "leads"},
            "message": {
                "type": "message",
                "user": BOT_USER,
                "bot_id": "B0LEADBOT",
                "ts": ts,
                "text": "Lead",
                "blocks": blocks,
            },
            "state": {"values": {}},
            "response_url": f"{self.url}/response/act{n}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": "Done", "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        size = len(json.dumps(payload))
        i = 0
        while size < pad_to:
            text = "x" * min(3000, max(1, pad_to - size - 80))
            block = {"type": "section", "block_id": f"pad{i}", "text": {"type": "mrkdwn", "text": text}}
            blocks.append(block)
            size += len(json.dumps(block)) + 2
            i += 1
        return self.send_envelope("interactive", payload, accepts_response_payload=False)

    def event(self, event: dict[str, Any] | None = None) -> Envelope:
        """An ``events_api`` envelope (default: a message posted in a channel)."""
        n = next(self._ids)
        now = time.time()
        event = event or {
            "type": "message",
            "channel": CHANNEL,
            "user": USER,
            "text": f"hello {n}",
            "ts": f"{int(now)}.{n:06d}",
            "event_ts": f"{int(now)}.{n:06d}",
            "channel_type": "channel",
        }
        payload = {
            "token": "fakeVerificationToken",
            "team_id": TEAM,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{n:010d}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_hex(12)}",
        }
        return self.send_envelope("events_api", payload, accepts_response_payload=False)

    def send_envelope(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool) -> Envelope:
        """Send (or, with no link open, queue) an envelope; returns once it is written or queued."""
        envelope = Envelope(str(uuid.uuid4()), kind, payload, accepts_response_payload, time.monotonic())
        self._on_loop(self._deliver, envelope, True)
        return envelope

    def wait_ack(self, envelope: Envelope, timeout: float = 5.0) -> Ack | None:
        self.wait_for(lambda s: bool(envelope.acks), timeout)
        return envelope.ack

    def wait_acked(self, envelopes: list[Envelope], timeout: float = 5.0) -> bool:
        return self.wait_for(lambda s: all(e.acks for e in envelopes), timeout)

    def never_acked(self) -> list[Envelope]:
        """Envelopes written to some link and not acked (yet)."""
        with self._cond:
            return [e for e in self.envelopes if e.deliveries and not e.acks]

    def undelivered(self) -> list[Envelope]:
        """Envelopes still queued for want of an open link."""
        with self._cond:
            return list(self._pending)

    def wait_for(self, predicate: Callable[[SocketSlack], bool], timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    # -- loop-side implementation ------------------------------------------------------------------

    def _run_coro(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return self._run_coro(run())

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _target(self) -> Link | None:
        for link in reversed(self.links):
            if link.state == OPEN and link.hello_at is not None and not link.gone:
                return link
        return None

    def _pick(self, link: Link | None) -> Link:
        link = link or self._target()
        if link is None:
            raise RuntimeError("no open link")
        return link

    def _write_frame(self, link: Link, opcode: int, data: bytes) -> bool:
        writer = link._writer
        if writer is None or writer.transport.is_closing() or link.state in (FIN, RESET, SILENT, CLOSED):
            return False
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        writer.write(header + data)  # server frames are not masked
        return True

    def _send_json(self, link: Link, message: dict[str, Any]) -> bool:
        return self._write_frame(link, OP_TEXT, json.dumps(message).encode())

    def _send_raw_text(self, text: str, link: Link | None) -> Link:
        link = self._pick(link)
        self._write_frame(link, OP_TEXT, text.encode())
        return link

    def _deliver(self, envelope: Envelope, new: bool) -> None:
        with self._cond:
            if new:
                self.envelopes.append(envelope)
                self._by_id[envelope.envelope_id] = envelope
            link = self._target()
            if link is None:
                self._pending.append(envelope)
            else:
                data = json.dumps(envelope.message()).encode()
                envelope.size = len(data)
                envelope.deliveries.append((link.number, time.monotonic()))  # before the write: a reader sees it
                self._write_frame(link, OP_TEXT, data)
                if self.redeliver_after is not None and envelope.type in self.redeliver_kinds:
                    self._loop.call_later(self.redeliver_after, self._maybe_redeliver, envelope)
            self._cond.notify_all()

    def _maybe_redeliver(self, envelope: Envelope) -> None:
        if envelope.acks or envelope.retry_attempt >= self.max_retries:
            return
        envelope.retry_attempt += 1
        envelope.retry_reason = "timeout"
        self._deliver(envelope, False)

    def _hello(self, link: Link) -> None:
        with self._cond:
            live = sum(1 for x in self.links if not x.gone and x.state in (OPEN, DRAINING))
            link.hello_at = time.monotonic()
            self._send_json(
                link,
                {
                    "type": "hello",
                    "num_connections": live,
                    "debug_info": {
                        "host": f"applink-fake-{link.number}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                },
            )
            pending, self._pending = self._pending, []
            self._cond.notify_all()
        for envelope in pending:
            self._deliver(envelope, False)

    def _disconnect(self, reason: str, link: Link | None, close_after: float | None) -> Link:
        link = self._pick(link)
        with self._cond:  # the state first: a test reading the frame sees the state it implies
            link.state = DRAINING
            self._cond.notify_all()
        self._send_json(
            link, {"type": "disconnect", "reason": reason, "debug_info": {"host": f"applink-fake-{link.number}"}}
        )
        close_after = self.drain_close_after if close_after is None else close_after
        if close_after is not None:
            self._loop.call_later(close_after, self._retire, link)
        return link

    def _retire(self, link: Link) -> None:
        if link.state == DRAINING and not link.gone:
            self._close(1001, "", link)

    def _close(self, code: int, reason: str, link: Link | None) -> Link:
        link = self._pick(link)
        with self._cond:
            link.state = CLOSING
            self._cond.notify_all()
        self._write_frame(link, OP_CLOSE, struct.pack("!H", code) + reason.encode())
        self._loop.call_later(self.close_timeout, self._drop, link)
        return link

    def _fin(self, link: Link | None) -> Link:
        link = self._pick(link)
        with self._cond:
            link.state = FIN
            self._cond.notify_all()
        if link._writer is not None and link._writer.can_write_eof():
            link._writer.write_eof()
        return link

    def _rst(self, link: Link | None) -> Link:
        link = self._pick(link)
        with self._cond:
            link.state = RESET
            self._cond.notify_all()
        if link._writer is not None:
            sock = link._writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            link._writer.transport.abort()
        return link

    def _go_silent(self, link: Link | None) -> Link:
        link = self._pick(link)
        with self._cond:
            link.state = SILENT
            self._cond.notify_all()
        if link._writer is not None:
            link._writer.transport.pause_reading()
        return link

    def _drop(self, link: Link) -> None:
        if link._writer is not None and not link._writer.transport.is_closing():
            link._writer.transport.close()

    async def _ping_server(self, link: Link) -> None:
        while not link.gone and self.server_ping_interval:
            await asyncio.sleep(self.server_ping_interval)
            if link.state in (OPEN, DRAINING):
                self._write_frame(link, OP_PING, f"{time.time():.3f}".encode())

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                parts = urlsplit(target)
                query = dict(parse_qsl(parts.query))
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(reader, writer, parts.path, query, headers)
                    return
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if self.web_api and parts.path != "/api/apps.connections.open":
                    status, data, extra = await asyncio.to_thread(self._forward, method, target, headers, body)
                else:
                    status, data, extra = self._http(method, parts.path, headers, body)
                reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")
                out = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}"]
                out.append(
                    "Content-Type: application/json; charset=utf-8" if data[:1] == b"{" else "Content-Type: text/html"
                )
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.transport.close()

    def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict]:
        import httpx

        kept = {k: v for k, v in headers.items() if k not in ("host", "content-length", "connection")}
        if self.forward_delay:
            time.sleep(self.forward_delay)  # in a thread of its own (asyncio.to_thread): a slow answer, not a wait
        answer = httpx.request(method, self.web_api.rstrip("/") + target, headers=kept, content=body, timeout=30)
        return answer.status_code, answer.content, {k: v for k, v in answer.headers.items() if k == "retry-after"}

    def _http(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        name = path.removeprefix("/api/")
        now = time.monotonic()
        with self._cond:
            self.api_calls.append((name, now))
            if path.startswith("/response/"):
                return 200, b'{"ok": true}', {}
            if name == "auth.test":
                return 200, json.dumps(self._auth_test()).encode(), {}
            if name != "apps.connections.open":
                return 200, b'{"ok": false, "error": "unknown_method"}', {}
            self.open_calls.append(now)
            self._cond.notify_all()
            token = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not token:
                return 200, b'{"ok": false, "error": "not_authed"}', {}
            if token != self.app_token:
                return 200, b'{"ok": false, "error": "invalid_auth"}', {}
            failure = next((f for f in self._failures if f.times != 0), None)
            if failure is not None:
                failure.times -= 1 if failure.times > 0 else 0
                extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                if failure.error is None:
                    return failure.status, b"<html><body>upstream error</body></html>", extra
                return failure.status, json.dumps({"ok": False, "error": failure.error}).encode(), extra
            ticket = secrets.token_hex(16)
            self._tickets[ticket] = False
            url = f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"
            return 200, json.dumps({"ok": True, "url": url}).encode(), {}

    def _auth_test(self) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://leadbot-test.slack.com/",
            "team": "Leadbot Test",
            "user": "leadbot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": "B0LEADBOT",
            "is_enterprise_install": False,
        }

    # -- WebSocket -------------------------------------------------------------------------------------

    async def _websocket(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, query: dict, headers: dict
    ) -> None:
        ticket = query.get("ticket", "")
        with self._cond:
            valid = path.rstrip("/") == "/link" and self._tickets.get(ticket) is False
            if valid:
                self._tickets[ticket] = True
            else:
                self.rejected_handshakes.append(ticket)
                self._cond.notify_all()
        if not valid:
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        with self._cond:
            link = Link(len(self.links) + 1, ticket, time.monotonic(), _writer=writer)
            self.links.append(link)
            self._cond.notify_all()
        self._hello(link)
        if self.server_ping_interval:
            self._loop.create_task(self._ping_server(link))
        try:
            await self._read_frames(link, reader)
        finally:
            with self._cond:
                if link.client_closed_at is None and link.state not in (RESET, CLOSING):
                    link.client_closed_at = time.monotonic()
                link.closed_at = time.monotonic()
                if link.state != RESET:
                    link.state = CLOSED
                self._cond.notify_all()
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _read_frames(self, link: Link, reader: asyncio.StreamReader) -> None:
        fragments: list[bytes] = []
        fragment_opcode = OP_TEXT
        try:
            while True:
                b1, b2 = await reader.readexactly(2)
                fin, opcode, n = b1 & 0x80, b1 & 0x0F, b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await reader.readexactly(8))
                mask = await reader.readexactly(4) if b2 & 0x80 else b""
                data = await reader.readexactly(n)
                if mask and n:
                    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
                    data = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")
                if link.state == SILENT:
                    continue
                if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                    if opcode != OP_CONT:
                        fragment_opcode, fragments = opcode, []
                    fragments.append(data)
                    if fin and fragment_opcode == OP_TEXT:
                        self._on_text(link, b"".join(fragments).decode())
                elif opcode == OP_PING:
                    with self._cond:
                        link.pings += 1
                        self._cond.notify_all()
                    if self.answer_pings:
                        self._write_frame(link, OP_PONG, data)
                elif opcode == OP_PONG:
                    with self._cond:
                        link.pongs += 1
                        self._cond.notify_all()
                elif opcode == OP_CLOSE:
                    with self._cond:
                        link.client_closed_at = time.monotonic()
                        link.client_close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                        self._cond.notify_all()
                    if link.state != CLOSING:
                        self._write_frame(link, OP_CLOSE, data[:2])
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _on_text(self, link: Link, text: str) -> None:
        now = time.monotonic()
        try:
            message = json.loads(text)
        except ValueError:
            message = {"unparsed": text}
        with self._cond:
            link.texts += 1
            envelope = self._by_id.get(message.get("envelope_id", "")) if isinstance(message, dict) else None
            if envelope is None:
                self.stray_acks.append(message)
            else:
                envelope.acks.append(
                    Ack(
                        envelope.envelope_id,
                        message.get("payload"),
                        now,
                        link.number,
                        link.state,
                        now - envelope.created_at,
                    )
                )
            self._cond.notify_all()


if __name__ == "__main__":  # a fake to point a bot at by hand: SLACK_API_URL and SLACK_APP_TOKEN below
    with SocketSlack() as slack:
        print(f"SLACK_API_URL={slack.api_url}\nSLACK_APP_TOKEN={slack.app_token}\nSLACK_BOT_TOKEN={BOT_TOKEN}")
        threading.Event().wait()
