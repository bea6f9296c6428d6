"""What every remote backend shares: one httpx client, timeouts, retries for reads, none for writes.

Reads are retried with backoff on timeouts, connection errors, 5xx and 429,
honouring ``Retry-After`` up to a cap; a longer ``Retry-After`` fails the read
at once. Writes are sent once: a write that fails for a transient reason
raises ``Unreachable`` (with ``maybe_applied`` when the request may have
reached the backend) and the LeadService puts it in the outbox, which checks
whether it landed before sending it again.

Two hooks serve APIs with their own rules: ``before_call`` runs before every
request (a client-side rate limiter), ``check_reply`` after every reply with
a 2xx/4xx status (APIs that answer HTTP 200 with a failure body).

httpx and tenacity are imported on first use: a process with only the local
backend never pays for their memory (bench/README.md).
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.backends.common import retry_after_seconds
from services.errors import Unreachable

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("leadbot.backends")


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
    ) -> None:
        import httpx

        self.title = title
        self.settings = settings
        self.sleep = sleep
        self.before_call = before_call
        self.check_reply = check_reply
        self.redact = redact  # what a log line may say of a URL (a token in it must not show)
        self.auth = auth
        self.http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers or {},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            verify=tls_context(),
        )

    def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

        cap = self.settings.max_retry_after

        def worth_retrying(error: BaseException) -> bool:
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
        return retrying(self._send, method, path, **kwargs)

    def write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, path, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._request(method, path, **kwargs)
        if response.status_code == 401 and self.auth is not None:
            self.auth.refused()  # an expired token: once more with a new one
            response = self._request(method, path, **kwargs)
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        if self.before_call is not None:
            self.before_call()
        where = f"{self.title} {method} {self.redact(path)}"
        if self.auth is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **self.auth.headers()}
        try:
            response = self.http.request(method, path, **kwargs)
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
            raise Unreachable("{backend} is rate-limiting Leadbot", backend=self.title, retry_after=retry_after)
        if response.status_code >= 500:
            log.warning("%s: %s", where, response.status_code)
            raise Unreachable(
                "{backend} had an error ({status})",
                backend=self.title,
                status=response.status_code,
                # 503 is "not taking requests now"; a 500 or a gateway's 502/504 may hide a write that went through.
                maybe_applied=response.status_code != 503,
            )
        if self.check_reply is not None:
            self.check_reply(response)
        return response

    def close(self) -> None:
        self.http.close()


class TtlCache:
    """Lists a backend rarely changes (statuses, reasons), read again after ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self.seconds, value)
        return value


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
