"""Socket Mode: Slack's envelopes over a WebSocket, answered as the HTTP server answers requests.

Leadbot keeps its own small client on aiohttp rather than one of slack_sdk's: measured
against a fake Slack with a real WebSocket (bench/SOCKET_MODE.md), every SDK client was
deaf for seconds after a close frame, a FIN or an RST, or spun a core, or never noticed
a silent peer, or lost the acks of envelopes read just before a link dropped; none had
a way to stop that finishes what was read. Here:

* one supervisor keeps one current link: it opens a new one as soon as the current one
  closes (close frame, FIN, RST, silence) or Slack asks for a refresh (``disconnect``),
  in the refresh case before the old one is given up (Slack retires that one itself);
* every link is pinged every ``PING_INTERVAL / 2`` s and dropped once it has been silent
  (no pong, no frame) for ``PING_INTERVAL`` s;
* ``apps.connections.open`` (a Tier 1 method: "1+ per minute", small bursts tolerated) is
  retried with capped exponential backoff and ``Retry-After``, and never called more often
  than ``OpenBudget`` allows; a refused app token ends the run (``AppTokenRefused``);
* an envelope becomes the HTTP request Slack would have sent for it (``as_http``) and goes
  through the same steps as ``POST /slack/events`` (bot/server.py): the listener acks,
  work it hands off is written to the journal *before* the ack leaves, and is released to
  the executor once the ack is written;
* an ack goes back on the link its envelope came on, or, that link gone, on the next one
  (waiting up to ``ACK_WAIT`` s for it), so nothing read is left unacked by a dropped link;
* a stop (SIGTERM, SIGINT) stops reading, acks what was read (up to ``STOP_WAIT`` s),
  closes every link with a close frame and returns; the caller then drains the work
  exactly as in HTTP mode (bot/cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_bolt import BoltRequest, BoltResponse

from bot.app import LeadbotApp
from bot.executor import HeldWork
from bot.journal import Journal
from services.ports import StoreUnavailable

log = logging.getLogger("leadbot")
BOLT_LOG = logging.getLogger("leadbot.bolt")

PING_INTERVAL = 2.0  # a link silent this long is dead; pings go at half this, so a live one never is
LOOP_LAG = 0.1  # a pinger this late found the loop busy, not the link silent: it looks again
ACK_WAIT = 2.0  # an ack whose link has gone waits this long for the next (Slack waits 3 s for a command's)
HELLO_WAIT = 5.0  # a new link that has not said hello by then is given up (and another opened)
STOP_WAIT = 5.0  # a stop waits this long for the envelopes already read to be acked
RETIRE_AFTER = 10.0  # after a refresh the old link is kept (still read) this long, unless Slack closes it first
MAX_ENVELOPE = 16 << 20  # bytes; Slack's biggest (a message shortcut on a long message) is about 1.3 MB
FIRST_RETRY, MAX_RETRY = 1.0, 60.0  # seconds between tries of apps.connections.open, doubling
# apps.connections.open errors that no retry fixes: the app token is wrong, revoked or not an app token.
REFUSED = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive", "not_allowed_token_type"})


class AppTokenRefused(Exception):
    """Slack refused the app token; the message is one line for the operator."""


class _Transient(Exception):
    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class OpenBudget:
    """How often ``apps.connections.open`` may be called: a burst of ``burst``, then one per ``every`` s.

    Slack's Tier 1 is "1+ per minute; a small amount of burst behavior is tolerated". A link that
    keeps dropping (a proxy cutting every connection) must not turn into a stream of calls.
    """

    def __init__(self, burst: int = 5, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.every, self.clock = burst, every, clock
        self.tokens = float(burst)
        self.at = clock()

    def wait_time(self) -> float:
        """Seconds until a call is allowed (0: now); taking it is ``take``."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) / self.every)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.every

    def take(self) -> None:
        self.tokens -= 1


@dataclass(eq=False)
class Link:
    number: int
    ws: aiohttp.ClientWebSocketResponse
    heard_at: float
    hello: asyncio.Event = field(default_factory=asyncio.Event)
    retiring: bool = False  # Slack asked for a new link (``disconnect``): no longer the current one
    closed: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.closed and not self.ws.closed


@dataclass(frozen=True)
class Answer:
    """What becomes of an envelope: ``ack`` it (with ``payload``), then run ``then``."""

    ack: bool = True
    payload: dict[str, Any] | None = None
    then: Callable[[], None] | None = None


Handler = Callable[[dict[str, Any]], Awaitable[Answer]]


class SocketModeRunner:
    """Keeps Leadbot connected to Slack over Socket Mode until ``stop`` is set; see the module's notes."""

    def __init__(
        self,
        app_token: str,
        api_url: str,
        handle: Handler,
        *,
        ping_interval: float = PING_INTERVAL,
        budget: OpenBudget | None = None,
    ) -> None:
        self.app_token = app_token
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.handle = handle
        self.ping_interval = ping_interval
        self.budget = budget or OpenBudget()
        self.current: Link | None = None
        self.links: set[Link] = set()
        self.answering: set[asyncio.Task] = set()
        self._numbers = itertools.count(1)
        self._wanted = asyncio.Event()  # the current link has gone or is retiring: open another
        self._linked = asyncio.Condition()  # a link became current
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False  # links are no longer read, only written to (the last acks), then closed

    # -- the supervisor ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connected until ``stop`` is set, then closed cleanly; ``AppTokenRefused`` ends it early."""
        # No total: it would cut every link off after that long. Each request has its own below.
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as self._session:
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    if self.current is None or not self.current.usable or self.current.retiring:
                        await self._connect(stop)
                        continue
                    self._wanted.clear()
                    wanted = asyncio.ensure_future(self._wanted.wait())
                    await asyncio.wait({wanted, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    wanted.cancel()
            finally:
                stopping.cancel()
                await self._close_all()

    async def _connect(self, stop: asyncio.Event) -> None:
        """Open a link and make it current, trying again (with backoff) until it works or ``stop``."""
        delay = FIRST_RETRY
        while not stop.is_set():
            wait = self.budget.wait_time()
            if wait > 0:
                log.warning("Socket Mode: apps.connections.open was called often; next try in %.0f s", wait)
                await _sleep_unless(stop, wait)
                continue
            self.budget.take()
            try:
                url = await self._open_url()
                link = await self._open_link(url)
            except AppTokenRefused:
                raise
            except _Transient as exc:
                pause = exc.retry_after if exc.retry_after is not None else delay * random.uniform(0.8, 1.2)
                log.warning("Socket Mode: cannot connect (%s); trying again in %.1f s", exc, pause)
                await _sleep_unless(stop, pause)
                delay = min(delay * 2, MAX_RETRY)
                continue
            await self._promote(link)
            return

    async def _open_url(self) -> str:
        assert self._session is not None
        try:
            async with self._session.post(
                self.api_url + "apps.connections.open",
                headers={"Authorization": f"Bearer {self.app_token}"},
                timeout=aiohttp.ClientTimeout(total=15),
            ) as response:
                if response.status == 429:
                    retry_after = response.headers.get("Retry-After", "")
                    seconds = float(retry_after) if retry_after.isdigit() else MAX_RETRY
                    raise _Transient("apps.connections.open: ratelimited", seconds)
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    raise _Transient(f"apps.connections.open answered HTTP {response.status}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(f"apps.connections.open: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise _Transient(f"apps.connections.open answered HTTP {response.status}")
        error = data.get("error")
        if error in REFUSED:
            raise AppTokenRefused(f"Slack refused SLACK_APP_TOKEN ({error}): check the app-level token")
        if not data.get("ok") or not isinstance(data.get("url"), str):
            raise _Transient(f"apps.connections.open: {str(error or 'no url')[:60]}")
        return data["url"]

    async def _open_link(self, url: str) -> Link:
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(url, autoping=False, max_msg_size=MAX_ENVELOPE)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(f"the WebSocket did not open: {type(exc).__name__}") from None
        link = Link(next(self._numbers), ws, asyncio.get_running_loop().time())
        self.links.add(link)
        link.tasks = [asyncio.ensure_future(self._read(link)), asyncio.ensure_future(self._ping(link))]
        hello = asyncio.ensure_future(link.hello.wait())
        await asyncio.wait({hello, link.tasks[0]}, timeout=HELLO_WAIT, return_when=asyncio.FIRST_COMPLETED)
        hello.cancel()
        if not link.hello.is_set() or not link.usable:
            await self._drop(link)
            raise _Transient("the new link closed before it said hello")
        return link

    async def _promote(self, link: Link) -> None:
        old, self.current = self.current, link
        async with self._linked:
            self._linked.notify_all()
        log.info("Socket Mode: listening (link %d)", link.number)
        if old is not None and old.usable:
            # Slack may still write envelopes it had in flight on the old link; it closes that one itself.
            asyncio.get_running_loop().call_later(RETIRE_AFTER, lambda: asyncio.ensure_future(self._drop(old)))

    # -- one link -------------------------------------------------------------------------------

    async def _read(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await link.ws.receive()
                link.heard_at = loop.time()
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(link, message.data)
                elif message.type is aiohttp.WSMsgType.PING:
                    await link.ws.pong(message.data)
                elif message.type in (aiohttp.WSMsgType.PONG, aiohttp.WSMsgType.BINARY):
                    continue
                else:  # CLOSE (answered by aiohttp), CLOSING, CLOSED (FIN), ERROR (RST, a frame too big)
                    why = link.ws.exception() or message.extra or message.type.name
                    log.info("Socket Mode: link %d closed (%s)", link.number, why)
                    return
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.info("Socket Mode: link %d failed (%s)", link.number, type(exc).__name__)
        finally:
            if not self._stopping:  # a stop closes the links itself, once the last acks are out
                self._gone(link)
                if not link.ws.closed:
                    asyncio.ensure_future(self._drop(link))

    async def _ping(self, link: Link) -> None:
        """Ping at half the interval; a link silent for the whole interval is dropped."""
        loop = asyncio.get_running_loop()
        half = self.ping_interval / 2
        next_ping = loop.time() + half
        while link.usable:
            wake = max(loop.time(), min(next_ping, link.heard_at + self.ping_interval))
            await asyncio.sleep(wake - loop.time())
            now = loop.time()
            if now - wake > LOOP_LAG:
                # The loop was busy (a big envelope, a slow listener), and no ping went out meanwhile:
                # that time is not the link's silence. Ping now, and give the pong half an interval.
                link.heard_at = max(link.heard_at, now - half)
                next_ping = now
                continue
            if now >= link.heard_at + self.ping_interval:
                log.warning("Socket Mode: link %d silent for %.1f s; reconnecting", link.number, now - link.heard_at)
                await self._drop(link)
                return
            if now >= next_ping:
                next_ping = now + half
                with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                    await link.ws.ping()

    def _gone(self, link: Link) -> None:
        """``link`` is no use any more: its reader and pinger stop, and, if it was current, another is opened."""
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        link.closed = True
        self.links.discard(link)
        if link is self.current:
            self.current = None
            self._wanted.set()

    async def _drop(self, link: Link) -> None:
        """Close ``link`` now: a close frame if it can be written at once, else just the connection."""
        self._gone(link)
        # Cancelling aiohttp's close (it waits for the peer's close frame) closes the connection itself.
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
            await asyncio.wait_for(link.ws.close(), 0.5)

    def _on_text(self, link: Link, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("Socket Mode: a frame that is not JSON (%d characters)", len(text))
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "hello":
            link.hello.set()
            return
        if kind == "disconnect":
            log.info("Socket Mode: Slack asks for a new link (%s)", str(message.get("reason"))[:40])
            link.retiring = True
            if link is self.current:
                self._wanted.set()
            return
        envelope_id = message.get("envelope_id")
        if not isinstance(envelope_id, str) or not envelope_id:
            log.info("Socket Mode: a message of type %s ignored", str(kind)[:40])
            return
        task = asyncio.ensure_future(self._answer(link, envelope_id, message))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    async def _answer(self, link: Link, envelope_id: str, envelope: dict[str, Any]) -> None:
        try:
            answer = await self.handle(envelope)
        except Exception:
            log.exception("Socket Mode: an envelope could not be handled (type %s)", str(envelope.get("type"))[:40])
            answer = Answer()
        if not answer.ack:
            return
        frame = {"envelope_id": envelope_id}
        if answer.payload:
            frame["payload"] = answer.payload
        await self._send_ack(link, json.dumps(frame))
        if answer.then is not None:
            # Even if no link took the ack: the work is in the journal, and its reply goes by response_url.
            answer.then()

    async def _send_ack(self, link: Link, frame: str) -> bool:
        """On the envelope's own link, else on the current one (waiting up to ``ACK_WAIT`` s for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_WAIT
        target: Link | None = link
        while True:
            if target is not None and target.usable:
                try:
                    await target.ws.send_str(frame)
                    return True
                except (aiohttp.ClientError, ConnectionError, RuntimeError):
                    self._gone(target)
            left = deadline - loop.time()
            if left <= 0:
                log.error("Socket Mode: an ack could not be sent: no link for %.1f s", ACK_WAIT)
                return False
            if self.current is None or not self.current.usable:
                async with self._linked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._linked.wait(), left)
            target = self.current

    async def _close_all(self) -> None:
        """Stop reading; ack what was read; close every link with a close frame."""
        self._stopping = True
        for link in list(self.links):
            for task in link.tasks:
                task.cancel()
        if self.answering:
            _, late = await asyncio.wait(set(self.answering), timeout=STOP_WAIT)
            if late:
                log.warning("Socket Mode: %d envelope(s) not acked within %.0f s of the stop", len(late), STOP_WAIT)
                for task in late:
                    task.cancel()  # what was journalled before this runs at the next start
        for link in list(self.links):
            link.closed = True
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
                await asyncio.wait_for(link.ws.close(), 1.0)
        self.links.clear()
        self.current = None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# -- envelopes as HTTP requests ---------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def as_http(envelope: dict[str, Any]) -> tuple[bytes, dict[str, str]] | None:
    """The body and headers Slack would have sent over HTTP for this envelope (None: a kind it has not).

    So that the journal, the work process and a restart's recovery see one kind of request in both modes.
    """
    kind, payload = envelope.get("type"), envelope.get("payload")
    if not isinstance(payload, dict):
        return None
    headers = {"x-slack-request-timestamp": str(int(time.time()))}
    if kind == "events_api":
        body, headers["content-type"] = json.dumps(payload), "application/json"
        retry = envelope.get("retry_attempt")
        if isinstance(retry, int) and retry > 0:
            headers["x-slack-retry-num"] = str(retry)
            headers["x-slack-retry-reason"] = str(envelope.get("retry_reason") or "")[:40]
    elif kind == "slash_commands":
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        body, headers["content-type"] = urlencode(fields), FORM
    elif kind == "interactive":
        body, headers["content-type"] = urlencode({"payload": json.dumps(payload)}), FORM
    else:
        return None
    return body.encode("utf-8"), headers


def ack_payload(response: BoltResponse) -> dict[str, Any] | None:
    """An HTTP answer as an ack's payload, as Bolt's own Socket Mode adapters make it."""
    if response.status != 200 or not response.body:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        try:
            data = json.loads(response.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return {"text": response.body}


def envelope_handler(app: LeadbotApp, executor: HeldWork, journal: Journal | None = None) -> Handler:
    """The steps of ``POST /slack/events`` (bot/server.py) for an envelope; the signature is Slack's link."""

    async def handle(envelope: dict[str, Any]) -> Answer:
        request = as_http(envelope)
        if request is None:
            log.info("Socket Mode: an envelope of type %s acked unread", str(envelope.get("type"))[:40])
            return Answer()
        body, headers = request
        try:
            bolt_request = BoltRequest(body=body.decode("utf-8"), headers=headers, context={"logger": BOLT_LOG})
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
            log.info("Socket Mode: an envelope Bolt cannot read, acked")
            return Answer()
        with executor.holding() as held:
            try:
                response = app.dispatch_signed(bolt_request)
            except Exception:
                log.exception("Socket Mode: a request Bolt could not handle")
                response = BoltResponse(status=400, body="")
        if response.status != 200:
            log.info("Socket Mode: acked an envelope answered %s", response.status)
        payload = ack_payload(response)
        if not held:
            return Answer(payload=payload)
        entry = None
        if journal is not None:
            try:
                entry = await journal.accept(body, headers)
            except StoreUnavailable:
                executor.discard(held)
                # Not acked: Slack tells the user it failed (a command) or sends it again (an event).
                return Answer(ack=False)
        return Answer(payload=payload, then=lambda: executor.release(held, body, headers, entry))

    return handle


def serve_socket_mode(
    app: LeadbotApp, executor: HeldWork, app_token: str, api_url: str, journal: Journal | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; ``AppTokenRefused`` when Slack refuses the app token.

    Returns once every link is closed; the caller drains the acked work (bot/cli.py), during
    which a second signal is ignored, as in HTTP mode: the drain is bounded.
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await SocketModeRunner(app_token, api_url, envelope_handler(app, executor, journal)).run(stop)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
                signal.signal(signum, lambda *_: None)

    asyncio.run(main())
