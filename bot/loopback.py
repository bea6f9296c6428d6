"""A loopback HTTP server that fakes a remote API: routes, a record of what it received, failures on demand.

The fake Slack (``bot/fakeslack.py``, which the console runs) and every CRM fake under
``tests/fakes/`` build on ``FakeServer``, so every fake gets the same network failures,
the same controllable clock, rate limiting and restarts:

``fail(METHOD, PATTERN, Failure(kind, ...))`` makes the next ``times`` matching
requests fail (``{name}`` in a pattern matches one path segment; ``METHOD`` may be
``"*"``). ``fail`` returns the ``Failure``; its ``fired`` counts the requests it hit.
The kinds:

- ``status``: answer ``status`` with ``body`` (JSON, or bytes as they are) and ``headers``,
  e.g. 503, 500, or 429 with ``Retry-After``; the request is not carried out.
- ``malformed``: answer 200 with a garbage body (``body`` if bytes, else an HTML page);
  with ``apply=True`` the request is carried out first (a proxy mangled the reply).
- ``hang``: withhold the reply until the client gives up (the fake notices the client
  closing the connection), ``release`` is set, or ``hold`` seconds pass, and then
  answer if the client is still there. With ``apply=True`` the request is carried out
  first: a reply lost after the write was applied.
- ``drop``: carry the request out (unless ``apply=False``), then close the TCP connection
  at once without any HTTP response: the client sees a protocol error immediately.
- ``late``: do not carry the request out; park it in ``parked`` and give no reply. The
  connection is held open, without a reply, until the client gives up (a read timeout on
  its side), ``release`` is set or ``hold`` seconds pass; then the fake closes it without
  a reply. The write lands only when the test calls ``apply_parked()``: a write applied
  after the client gave up, at exactly the moment the test chooses.

``stop_listening()`` closes the listening socket and every open connection, so clients
get connection-refused; ``start_listening()`` listens again on the same port with the
same state. ``restart()`` does both and, in between, round-trips the fake's data and id
counters through the same JSON that ``--state PATH`` persists, so ids are never reused
after a restart. Hanging and late connections are cut by a restart; parked requests stay
parked (the test still decides when they land).

Time: every fake takes ``clock`` (default ``time.monotonic``); rate limits, token expiry
and the timestamps a fake writes follow it, so tests use ``ManualClock`` and ``advance()``
instead of sleeping. How long a hang or late reply is withheld is real time (it has to
outlast a real client's timeout) but it ends as soon as the client gives up.

Standalone: ``serve(fake_class, ...)`` backs each fake's ``python -m tests.fakes.NAME
--port P [--state PATH]``; with ``--state`` the data is loaded from PATH at start (when
the file exists) and written back after every request that is not a GET, and on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

KINDS = ("status", "malformed", "hang", "drop", "late")


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, a dict for a form-encoded body, else the text
    raw: bytes = b""  # the body exactly as it arrived


@dataclass
class Failure:
    """What to do instead of answering; see the module docstring for each ``kind``."""

    kind: str  # "status", "malformed", "hang", "drop", "late"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    apply: bool | None = None  # carry the request out anyway: "hang" and "malformed" default to False, "drop" to True
    hold: float = 5.0  # "hang" and "late": the longest the reply is withheld (real seconds)
    fired: int = 0  # how many requests this failure has hit so far

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r}; one of {', '.join(KINDS)}")


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the server does with one request: answer it, drop the connection, or hold it first."""

    answer: Answer | None
    drop: bool = False
    hold: float | None = None


Route = Callable[..., Answer]


class ManualClock:
    """A clock for tests: ``clock()`` is the time now, ``clock.advance(seconds)`` moves it on."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


class SlidingWindow:
    """At most ``limit`` accepted calls per key in any ``window`` seconds of ``clock``; thread-safe.

    Only accepted calls count: a refused call does not push the window on, so a client
    that keeps trying is let in again once its oldest accepted call is ``window`` old.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        with self._lock:
            now = self.clock()
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(now)
            return True


def dumps(data: Any) -> str:
    """JSON for a fake's state: datetimes survive as ``{"$datetime": ISO}``."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return {"$datetime": value.isoformat()}
        if isinstance(value, (set, tuple)):
            return list(value)
        raise TypeError(f"cannot store {type(value).__name__} in a fake's state")

    return json.dumps(data, default=default, indent=1, sort_keys=True)


def loads(text: str) -> Any:
    def hook(obj: dict[str, Any]) -> Any:
        return datetime.fromisoformat(obj["$datetime"]) if set(obj) == {"$datetime"} else obj

    return json.loads(text, object_hook=hook)


def int_keys(data: dict[str, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in data.items()}


class FakeServer:
    """Subclasses add routes with ``self.route(METHOD, PATTERN, handler)``; patterns use ``{name}``.

    Subclasses may override ``check_auth`` (refuse before routing), ``rate_key`` and
    ``too_many`` (with ``self.limiter`` set: who a call counts against, and the refusal),
    ``not_found``, and ``state`` / ``restore`` (what a restart or ``--state`` keeps).
    """

    def __init__(self, port: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.received: list[Received] = []
        self.failures: list[tuple[str, re.Pattern[str], Failure]] = []
        self.parked: list[Received] = []  # "late" requests, not carried out until apply_parked()
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)  # notified when a request arrives or is parked
        self.release = threading.Event()  # ends every hang at once (tests set it when done)
        self.clock = clock
        self.limiter: SlidingWindow | None = None
        self.throttled = 0  # how many calls the rate limit refused
        self.state_path: Path | None = None
        self._wall0, self._clock0 = datetime.now(UTC), clock()
        self._connections: set[socket.socket] = set()
        self._generation = 0  # bumped by stop_listening: held connections of an older one end
        self._listening = False
        self._handler = self._handler_class()
        self._httpd = self._bind(port)
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -- the network --------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each reply's body waits ~40 ms for a delayed ACK

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer.lock:
                    outer._connections.add(self.connection)

            def finish(self) -> None:
                with outer.lock:
                    outer._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _serve(self) -> None:
                generation = outer._generation
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                headers = dict(self.headers.items())
                request = Received(self.command, parts.path, query, headers, _parse_body(raw, headers), raw)
                outcome = outer.handle(request)
                if outcome.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if outcome.hold is not None:
                    outer._hold(self.connection, outcome.hold, generation)
                    if outcome.answer is None or not _still_there(self.connection):
                        self.close_connection = True
                        return
                answer = outcome.answer
                data = answer.body
                payload = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the client gave up waiting: nothing to tell it

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def _bind(self, port: int) -> ThreadingHTTPServer:
        return _Listener(("127.0.0.1", port), self._handler)

    def _hold(self, connection: socket.socket, seconds: float, generation: int) -> None:
        """Wait, without answering, until the client gives up, ``release``, a restart, or ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.release.is_set() and generation == self._generation:
            try:
                readable, _, _ = select.select([connection], [], [], 0.02)
            except (OSError, ValueError):
                return
            if readable and not _still_there(connection):
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server(self) -> ThreadingHTTPServer:
        """The listening ``ThreadingHTTPServer`` now (a new one after each ``start_listening``)."""
        return self._httpd

    def start(self) -> FakeServer:
        self._serve_forever()
        return self

    def __enter__(self) -> FakeServer:
        if not self._listening:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_forever(self) -> None:
        self._listening = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self.stop_listening()
        if self.state_path is not None:
            self.save_state()

    def stop_listening(self) -> None:
        """Refuse connections from now on (and cut the open ones) until ``start_listening``."""
        with self.lock:
            self._generation += 1
            open_now = list(self._connections)
        if self._listening:
            self._httpd.shutdown()
            self._listening = False
        self._httpd.server_close()
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def start_listening(self) -> None:
        """Listen again on the same port, with the same data."""
        if self._listening:
            return
        self._httpd = self._bind(self.port)
        self._serve_forever()

    def restart(self) -> None:
        """Stop and start again on the same port, keeping exactly what a ``--state`` file would keep."""
        self.stop_listening()
        with self.lock:
            self.restore(loads(dumps(self.state())))
        if self.state_path is not None:
            self.save_state()
        self.start_listening()

    # -- state --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The data and id counters a restart keeps (JSON-able via ``dumps``)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what ``state()`` gave, in place."""

    def save_state(self, path: Path | None = None) -> None:
        target = path or self.state_path
        if target is None:
            return
        with self.lock:
            text = dumps(self.state())
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)

    def load_state(self, path: Path | None = None) -> None:
        source = path or self.state_path
        if source is None or not source.exists():
            return
        with self.lock:
            self.restore(loads(source.read_text()))

    def now(self) -> datetime:
        """The time on the fake's clock, as a UTC datetime (wall time at start plus the clock's advance)."""
        return self._wall0 + timedelta(seconds=self.clock() - self._clock0)

    # -- routes and failures ------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, _compile(pattern, named=True), handler))

    def fail(self, method: str, pattern: str, failure: Failure) -> Failure:
        """The next ``failure.times`` requests matching ``METHOD pattern`` fail this way."""
        regex = _compile(pattern, named=False)
        with self.lock:
            self.failures.append((method, regex, failure))
        return failure

    def requests(self, method: str | None = None, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if (method in (None, r.method)) and (path in (None, r.path))]

    def apply_parked(self, count: int | None = None) -> list[Answer]:
        """Carry out the parked ("late") requests, oldest first (``count`` of them, or all).

        Each goes through authentication and its route as if it arrived now, but not
        through the rate limit; the answers (which nobody receives) are returned.
        """
        with self.lock:
            n = len(self.parked) if count is None else min(count, len(self.parked))
            todo, self.parked[:n] = self.parked[:n], []
        return [self._dispatch(request, limited=False) for request in todo]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Block until ``predicate()`` holds (checked as requests arrive), or ``timeout``; whether it held."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def handle(self, request: Received) -> Outcome:
        with self.lock:
            self.received.append(request)
            failure = self._take_failure(request)
            self._changed.notify_all()
        if failure is None:
            return Outcome(self._dispatch(request))
        if failure.kind == "status":
            body = failure.body if failure.body is not None else {}
            return Outcome(Answer(failure.status, body, dict(failure.headers)))
        if failure.kind == "malformed":
            if failure.apply:
                self._dispatch(request)
            garbage = failure.body if isinstance(failure.body, bytes) else b"<html>upstream error</html>"
            return Outcome(Answer(200, garbage, dict(failure.headers)))
        if failure.kind == "late":
            with self.lock:
                self.parked.append(request)
                self._changed.notify_all()
            return Outcome(None, hold=failure.hold)
        applies = failure.apply if failure.apply is not None else failure.kind == "drop"
        answer = self._dispatch(request) if applies else None
        if failure.kind == "drop":
            return Outcome(None, drop=True)
        return Outcome(answer or Answer(504, {}), hold=failure.hold)  # a hang

    def _take_failure(self, request: Received) -> Failure | None:
        for method, regex, failure in self.failures:
            if method in ("*", request.method) and regex.match(request.path) and failure.times > 0:
                failure.times -= 1
                failure.fired += 1
                return failure
        return None

    def _dispatch(self, request: Received, *, limited: bool = True) -> Answer:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        if limited and self.limiter is not None:
            key = self.rate_key(request)
            if key is not None and not self.limiter.allow(key):
                with self.lock:
                    self.throttled += 1
                return self.too_many(request)
        allowed: list[str] = []
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if match and method == request.method:
                with self.lock:
                    answer = handler(request, **match.groupdict())
                    if request.method != "GET" and self.state_path is not None:
                        self.save_state()
                return answer
            if match:
                allowed.append(method)
        return self.not_allowed(request, allowed) if allowed else self.not_found(request)

    def check_auth(self, request: Received) -> Answer | None:
        return None

    def rate_key(self, request: Received) -> str | None:
        """Whom this call counts against for ``self.limiter`` (None: not counted)."""
        return None

    def too_many(self, request: Received) -> Answer:
        return Answer(429, {"message": "Too many requests"})

    def not_found(self, request: Received) -> Answer:
        return Answer(404, {"message": "Not found"})

    def not_allowed(self, request: Received, allowed: list[str]) -> Answer:
        """A known path asked with another method; by default the same as an unknown path."""
        return self.not_found(request)


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops simultaneous connects: each then waits a 1 s SYN retry


def _compile(pattern: str, *, named: bool) -> re.Pattern[str]:
    """``/a/{id}/b.c`` as a regex: each ``{name}`` is one path segment, everything else literal."""
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else (f"(?P<{part}>[^/]+)" if named else "[^/]+") for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def _parse_body(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace"), keep_blank_values=True).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _still_there(connection: socket.socket) -> bool:
    """False once the client has closed (or reset) its end of the connection."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return not readable or connection.recv(1, socket.MSG_PEEK) != b""
    except (OSError, ValueError):
        return False


def serve(make: Callable[..., FakeServer], description: str, default_port: int, banner: Callable[[Any], str]) -> None:
    """``python -m tests.fakes.NAME [--port P] [--state PATH]``: run a fake until Ctrl-C."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--state", type=Path, default=None, help="keep the fake's data in this JSON file")
    args = parser.parse_args()
    fake = make(args.port)
    if args.state is not None:
        fake.state_path = args.state
        fake.load_state()
    fake.start()
    print(banner(fake), flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    fake.stop()
