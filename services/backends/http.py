"""What every remote backend shares: one httpx client, timeouts, retries for reads, none for writes.

Reads are retried with backoff on timeouts, connection errors, 5xx and 429,
honouring ``Retry-After`` up to a cap; a longer ``Retry-After`` fails the read
at once. Writes are sent once: a write that fails for a transient reason
raises ``Unreachable`` (with ``maybe_applied`` when the request may have
reached the backend) and the LeadService puts it in the outbox, which checks
whether it landed before sending it again.

Two hooks serve APIs with their own rules: ``before_call`` runs before every
request, resends included (a client-side rate limiter), ``check_reply`` after
every reply but a 429 (APIs that answer HTTP 200 with a failure body, or a 5xx
whose body is a definite refusal: it raises for those; when it returns, a 5xx
is an outage as usual). ``resend_429`` sends a request that got a 429 again, a
write too, after ``wait_429`` seconds (or the Retry-After): a 429 means the
request was not taken, so sending it again cannot double it.

``redact`` says what a log line may show of a path (a token in it must not
show); ``hide_in_logs`` keeps a secret out of httpx's and httpcore's own log
records too (httpx logs every request's URL at INFO).

httpx and tenacity are imported on first use: a process with only the local
backend never pays for their memory (bench/README.md).
"""

from __future__ import annotations

import functools
import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.backends.common import retry_after_seconds
from services.errors import LeadError, Unreachable

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("leadbot.backends")

# httpx's __init__ imports its command-line tool whenever click, rich and pygments are installed
# (typer brings all three): 3 MB of modules in every process that talks to a CRM, for nothing.
# None in sys.modules makes that import fail as it does when they are missing, which httpx expects.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


class Auth(Protocol):
    """Credentials that expire: headers for each request, and a way to say the ones sent were refused."""

    def headers(self) -> dict[str, str]: ...

    def refused(self) -> None:
        """The credentials just sent got a 401: get new ones before the next request."""
        ...


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    read_attempts: int = 3
    max_retry_after: float = 30.0  # a longer Retry-After fails the read now rather than hold a worker


def _unreachable_outcome(exc: Unreachable) -> str:
    if exc.rate_limited or exc.retry_after is not None:
        return "rate limited"
    if "status" in exc.facts:
        return f"http {exc.facts['status']}"
    return "timeout" if "in time" in exc.template else "unreachable"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle takes tens of milliseconds each time."""
    import httpx

    return httpx.create_ssl_context()


class ApiClient:
    """One per backend; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        title: str,
        settings: HttpSettings,
        *,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        before_call: Callable[[], None] | None = None,
        check_reply: Callable[[httpx.Response], None] | None = None,
        redact: Callable[[str], str] = lambda text: text,
        auth: Auth | None = None,
        resend_429: int = 0,
        wait_429: float = 0.0,
        observe: Callable[[str, float, str], None] | None = None,
        waiting: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self.title = title
        self.settings = settings
        self.sleep = sleep
        self.before_call = before_call
        self.check_reply = check_reply
        self.redact = redact  # what a log line may say of a URL (a token in it must not show)
        self.auth = auth
        self.resend_429 = resend_429
        self.wait_429 = wait_429
        self.observe = observe  # (read or write, seconds, outcome) of every request sent, for metrics and health
        self.waiting = waiting  # around each call: the thread waits on the network, its work slot is free meanwhile
        self._headers = headers or {}
        self._http: httpx.Client | None = None
        self._making = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """Made at the first call, so a process that never calls the backend (the one that only acks
        Slack's requests, bot/workproc.py) never loads httpx (about 10 MB; bench/README.md)."""
        if self._http is None:
            with self._making:
                if self._http is None:
                    import httpx

                    self._http = httpx.Client(
                        base_url=self.settings.base_url.rstrip("/"),
                        headers=self._headers,
                        timeout=httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout),
                        verify=tls_context(),
                    )
        return self._http

    def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

        cap = self.settings.max_retry_after

        def worth_retrying(error: BaseException) -> bool:
            if isinstance(error, Unreachable) and error.rate_limited and self.resend_429:
                return False  # already sent again after waiting out the window: backing off briefly will not help
            return isinstance(error, Unreachable) and (error.retry_after is None or error.retry_after <= cap)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, Unreachable) and error.retry_after is not None:
                return error.retry_after
            return min(0.25 * 2 ** (state.attempt_number - 1), 4.0)

        retrying = Retrying(
            retry=retry_if_exception(worth_retrying),
            stop=stop_after_attempt(self.settings.read_attempts),
            wait=wait,
            sleep=self.sleep,
            reraise=True,
        )
        with self.waiting():
            return retrying(self._send, "read", method, path, **kwargs)

    def write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.waiting():
            return self._send("write", method, path, **kwargs)

    def _send(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._untaken_again(kind, method, path, **kwargs)
        if response.status_code == 401 and self.auth is not None:
            self.auth.refused()  # an expired token: once more with a new one
            response = self._untaken_again(kind, method, path, **kwargs)
        return response

    def _untaken_again(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request, sent again up to ``resend_429`` times while the backend answers 429 (it was not taken)."""
        attempt = 0
        while True:
            try:
                return self._observed(kind, method, path, **kwargs)
            except Unreachable as exc:
                if not exc.rate_limited or attempt >= self.resend_429:
                    raise
                attempt += 1
                self.sleep(max(exc.retry_after or 0.0, self.wait_429))

    def _observed(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.observe is None:
            return self._request(method, path, **kwargs)
        started = time.monotonic()
        outcome = "error"
        try:
            response = self._request(method, path, **kwargs)
            outcome = "ok" if response.status_code < 400 else f"http {response.status_code}"
            return response
        except Unreachable as exc:
            outcome = _unreachable_outcome(exc)
            raise
        except Exception as exc:
            outcome = "rejected" if isinstance(exc, LeadError) else "error"
            raise
        finally:
            self.observe(kind, time.monotonic() - started, outcome)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        client = self.http  # made (at the first call) before a rate slot is taken, so it never delays the send
        if self.before_call is not None:
            self.before_call()
        where = f"{self.title} {method} {self.redact(path)}"
        if self.auth is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **self.auth.headers()}
        try:
            response = client.request(method, path, **kwargs)
        except httpx.ConnectError:
            log.warning("%s: could not connect", where)
            raise Unreachable("{backend} could not be reached", backend=self.title) from None
        except httpx.TimeoutException as exc:
            log.warning("%s: timed out", where)
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise Unreachable("{backend} did not answer in time", backend=self.title, maybe_applied=sent) from None
        except httpx.TransportError as exc:
            log.warning("%s: %s", where, type(exc).__name__)
            raise Unreachable("{backend} could not be reached", backend=self.title, maybe_applied=True) from None
        if response.status_code == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            log.warning("%s: 429, Retry-After %s", where, retry_after)
            if retry_after is not None and retry_after > self.settings.max_retry_after:
                raise Unreachable(
                    "{backend} is rate-limiting Leadbot and asks it to wait {seconds} s",
                    backend=self.title,
                    seconds=round(retry_after),
                    retry_after=retry_after,
                )
            raise Unreachable(
                "{backend} is rate-limiting Leadbot", backend=self.title, retry_after=retry_after, rate_limited=True
            )
        if self.check_reply is not None:
            self.check_reply(response)
        if response.status_code >= 500:
            log.warning("%s: %s", where, response.status_code)
            raise Unreachable(
                "{backend} had an error ({status})",
                backend=self.title,
                status=response.status_code,
                # 503 is "not taking requests now"; a 500 or a gateway's 502/504 may hide a write that went through.
                maybe_applied=response.status_code != 503,
            )
        return response

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


# -- secrets in other libraries' log records ------------------------------------------------------

HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _Redactor(logging.Filter):
    """Replaces every secret it was given by ``***`` in the records of the loggers it sits on.

    A filter on a logger sees only the records made on that very logger (not its
    children's), so it sits on each of httpx's and httpcore's loggers by name.
    """

    def __init__(self) -> None:
        super().__init__("leadbot-redactor")
        self.secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self.secrets = self.secrets | {secret}  # a new set: filter() never sees one being changed

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        hidden = message
        for secret in secrets:
            hidden = hidden.replace(secret, "***")
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


_REDACTOR = _Redactor()


def hidden_in_logs() -> frozenset[str]:
    """The secrets given to ``hide_in_logs`` so far (the process's log formatter hides them everywhere)."""
    return frozenset(_REDACTOR.secrets)


def hide_in_logs(secret: str) -> None:
    """Keep ``secret`` out of every record httpx and httpcore log (they log request URLs, and a URL may carry it)."""
    if not secret:
        return
    _REDACTOR.add(secret)
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


class TtlCache:
    """Lists a backend rarely changes (statuses, reasons), read again after ``seconds``.

    One load at a time per key: threads that miss together wait for the first one's
    load instead of each calling the API (a rate-limited API counts every call).
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _hit(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            hit = self._entries.get(key)
        return (True, hit[1]) if hit and hit[0] > self.clock() else (False, None)

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        found, value = self._hit(key)
        if found:
            return value
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            found, value = self._hit(key)  # loaded by whoever held the lock before
            if found:
                return value
            value = load()
            with self._lock:
                self._entries[key] = (self.clock() + self.seconds, value)
            return value

    def drop(self, key: str) -> None:
        """Forget ``key``: the next ``get`` loads it again."""
        with self._lock:
            self._entries.pop(key, None)


def json_body(response: httpx.Response, title: str) -> Any:
    """The reply's JSON, or Unreachable: a garbled reply is the backend misbehaving, not the user."""
    try:
        return response.json()
    except ValueError:
        log.warning("%s answered %s with a body that is not JSON", title, response.status_code)
        # A 2xx whose body is garbled was most likely carried out: looked for before it is sent again.
        raise Unreachable(
            "{backend} sent a reply Leadbot could not read", backend=title, maybe_applied=response.is_success
        ) from None
