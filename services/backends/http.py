"""What every remote backend shares: one httpx client, timeouts, retries for reads, none for writes.

Reads are retried with backoff on timeouts, connection errors, 5xx and 429
(honouring ``Retry-After`` up to a cap). Writes are sent once: a write that
fails for a transient reason raises ``Unreachable`` and the LeadService puts
it in the outbox, which checks whether it landed before sending it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from services.errors import Rejected, Unreachable

__all__ = ["ApiClient", "HttpSettings", "Rejected", "TtlCache", "Unreachable", "json_body"]

log = logging.getLogger("leadbot.backends")


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    read_attempts: int = 3
    max_retry_after: float = 30.0  # a longer Retry-After fails the read now rather than hold a worker


def _retry_wait(state: RetryCallState, cap: float) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, Unreachable) and error.retry_after is not None:
        return min(error.retry_after, cap)
    return min(0.25 * 2 ** (state.attempt_number - 1), 4.0)


class ApiClient:
    """One per backend; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        title: str,
        settings: HttpSettings,
        *,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.title = title
        self.settings = settings
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers=headers or {},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            transport=transport,
        )

    def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = Retrying(
            retry=retry_if_exception_type(Unreachable),
            stop=stop_after_attempt(self.settings.read_attempts),
            wait=lambda state: _retry_wait(state, self.settings.max_retry_after),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(self._send, method, path, **kwargs)

    def write(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, path, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            log.warning("%s %s %s: timed out", self.title, method, path)
            raise Unreachable(f"{self.title} did not answer in time") from None
        except httpx.TransportError as exc:
            log.warning("%s %s %s: %s", self.title, method, path, type(exc).__name__)
            raise Unreachable(f"{self.title} could not be reached") from None
        if response.status_code == 429:
            retry_after = _seconds(response.headers.get("Retry-After"))
            log.warning("%s %s %s: 429, Retry-After %s", self.title, method, path, retry_after)
            raise Unreachable(f"{self.title} is rate-limiting Leadbot", retry_after=retry_after)
        if response.status_code >= 500:
            log.warning("%s %s %s: %s", self.title, method, path, response.status_code)
            raise Unreachable(f"{self.title} had an error ({response.status_code})")
        return response

    def close(self) -> None:
        self.http.close()


class TtlCache:
    """Lists a backend rarely changes (statuses, reasons), read again after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self.seconds, value)
        return value


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: rare in practice; the usual backoff applies


def json_body(response: httpx.Response, title: str) -> Any:
    """The reply's JSON, or Unreachable: a garbled reply is the backend misbehaving, not the user."""
    try:
        return response.json()
    except ValueError:
        log.warning("%s answered %s with a body that is not JSON", title, response.status_code)
        raise Unreachable(f"{title} sent a reply Leadbot could not read") from None
