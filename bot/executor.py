"""Executors for the work listeners hand off after acking."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from services.rerun import writes_of
from services.trace import tracing

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.journal import Journal, JournalEntry

log = logging.getLogger("leadbot")

# Work submitted while an HTTP request is being handled, started once its response is sent.
_held: ContextVar[list[tuple[Callable[..., Any], tuple, dict]] | None] = ContextVar("leadbot_held", default=None)


class HeldWork(Protocol):
    """What the HTTP server needs from whatever runs the listeners' work."""

    def holding(self) -> AbstractContextManager[list]: ...

    def release(self, held: list, body: bytes, headers: Mapping[str, str], entry: int | None = None) -> None:
        """Start the held work; ``entry``: its journal entry, marked done when the work ends."""
        ...

    def discard(self, held: list) -> None:
        """The ack could not be made durable: the held work is dropped, not started."""
        ...

    def wait_idle(self, timeout: float = 10.0) -> bool: ...


class TrackedExecutor(ThreadPoolExecutor):
    """A thread pool that knows how much work is waiting.

    ``saturated`` lets listeners refuse new work in the ack ("busy, try again")
    instead of queueing it without bound, which under sustained overload grows
    memory without limit. Tests and benchmarks wait on ``wait_idle`` instead of
    sleeping. Few workers: every one that is busy on the CPU competes with the
    acks for the GIL (bench/README.md has the figures).
    """

    def __init__(self, max_workers: int = 4, max_pending: int = 1000, journal: Journal | None = None) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="leadbot-work")
        self.journal = journal
        self.max_pending = max_pending
        self._pending = 0
        self._idle = threading.Condition()

    def saturated(self) -> bool:
        return self._pending >= self.max_pending

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
        with self._idle:
            self._pending += 1
        held = _held.get()
        if held is not None:
            held.append((fn, args, kwargs))
            return None
        return self._start(fn, args, kwargs)

    def _start(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future:
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    @contextmanager
    def holding(self) -> Iterator[list[tuple[Callable[..., Any], tuple, dict]]]:
        """Hold work submitted in this context until ``release``.

        The HTTP server releases it after the ack is written, so a worker waking up
        never takes the GIL between the listener and the ack leaving the socket
        (that was most of Leadbot's ack p99 over the bare app's; bench/README.md).
        """
        held: list[tuple[Callable[..., Any], tuple, dict]] = []
        token = _held.set(held)
        try:
            yield held
        finally:
            _held.reset(token)

    def release(
        self,
        held: list[tuple[Callable[..., Any], tuple, dict]],
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        entry: int | None = None,
    ) -> None:
        if entry is None or self.journal is None:
            for fn, args, kwargs in held:
                self._start(fn, args, kwargs)
            return
        self._start(self._journalled, (entry, list(held)), {})
        with self._idle:  # the held work is counted as one task from here on
            self._pending -= len(held) - 1

    def _journalled(self, entry: int, held: list[tuple[Callable[..., Any], tuple, dict]]) -> None:
        journal = self.journal
        assert journal is not None
        if not journal.start(entry):
            return  # done already, or another live process has it
        try:
            with writes_of(f"j{entry}"), tracing(entry=entry):
                for fn, args, kwargs in held:
                    fn(*args, **kwargs)
        finally:
            journal.finish(entry)

    def discard(self, held: list[tuple[Callable[..., Any], tuple, dict]]) -> None:
        with self._idle:
            self._pending -= len(held)
            self._idle.notify_all()

    def recover(self, entries: list[JournalEntry], app: App) -> None:
        """Run again what an earlier process acked and did not finish (``app`` must not verify requests)."""
        from slack_bolt import BoltRequest

        for entry in entries:
            with self.holding() as held:
                app.dispatch(BoltRequest(body=entry.body, headers=entry.headers))
            if held:
                self.release(held, entry=entry.id)
            elif self.journal is not None:
                log.warning("journal entry %s produced no work when run again", entry.id)
                self.journal.finish(entry.id)

    def drain(self, timeout: float) -> bool:
        """Finish the work already acked, for up to ``timeout`` s; what is left stays in the journal."""
        finished = self.wait_idle(timeout)
        self.shutdown(wait=finished, cancel_futures=True)
        return finished

    def _done(self, _: Future) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


class InlineExecutor(Executor):
    """Runs work at once in the caller's thread: the console shows results in order."""

    def saturated(self) -> bool:
        return False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
            future.set_exception(exc)
        return future
