"""A loopback HTTP server that fakes a CRM: routes, a record of what it received, and failures on demand."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    """What to do instead of answering: a status with a body, a garbled body, or no answer in time."""

    kind: str  # "status", "malformed", "hang"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    apply: bool = False  # "hang": carry the request out anyway, as a server that got it but answered late


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[..., Answer]


class FakeServer:
    """Subclasses add routes with ``self.route(METHOD, PATTERN, handler)``; patterns use ``{name}``."""

    def __init__(self, port: int = 0) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.received: list[Received] = []
        self.failures: list[tuple[str, re.Pattern[str], Failure]] = []
        self.lock = threading.RLock()
        self.release = threading.Event()  # ends every hang at once (tests set it when done)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each reply's body waits ~40 ms for a delayed ACK

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Received(self.command, parts.path, query, dict(self.headers.items()), body)
                status, data, headers = outer.handle(request)
                payload = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a "hang"): nothing to tell it

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, pattern: str, handler: Route) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self.routes.append((method, regex, handler))

    def fail(self, method: str, pattern: str, failure: Failure) -> None:
        """The next ``failure.times`` requests matching ``METHOD pattern`` fail this way."""
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"[^/]+", pattern) + "$")
        with self.lock:
            self.failures.append((method, regex, failure))

    def requests(self, method: str | None = None, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if (method in (None, r.method)) and (path in (None, r.path))]

    def handle(self, request: Received) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.received.append(request)
            failure = self._take_failure(request)
        if failure is not None and failure.kind != "hang":
            if failure.kind == "malformed":
                return 200, b"<html>upstream error</html>", {}
            return failure.status, failure.body if failure.body is not None else {}, failure.headers
        answer = self._dispatch(request) if failure is None or failure.apply else None
        if failure is not None:  # a hang: answer (if at all) only after the client stopped waiting
            self.release.wait(5)
            if answer is None:
                return 504, {}, {}
        return answer.status, answer.body, answer.headers

    def _take_failure(self, request: Received) -> Failure | None:
        for method, regex, failure in self.failures:
            if method == request.method and regex.match(request.path) and failure.times > 0:
                failure.times -= 1
                return failure
        return None

    def _dispatch(self, request: Received) -> Answer:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if match and method == request.method:
                with self.lock:
                    return handler(request, **match.groupdict())
        return self.not_found(request)

    def check_auth(self, request: Received) -> Answer | None:
        return None

    def not_found(self, request: Received) -> Answer:
        return Answer(404, {"message": "Not found"})
