"""Work slots: at most N requests' work runs at once, and one waiting on Slack does not count.

The work after the ack runs on threads, few of them running Python at a time
(every one competes for the GIL; bench/README.md). A thread waiting on Slack
(a ``response_url`` that hangs, a Web API call being retried) uses no CPU, but
when it also held one of those few threads, six hung replies made eight other
people wait up to 30 s. So the threads are many and the *slots* are few: a
thread takes a slot to run a request's work and gives it up for as long as it
waits on the network (``waiting``) for longer than ``GRACE``, taking one again
to go on. A hung call then delays only the request it belongs to (by ``GRACE``
at most); ``THREADS`` bounds how many can wait at once. Slack's usual answer,
in a few milliseconds, keeps the slot: giving it up for each one made a flood of
work grow the threads, each with its SQLite connections, to ``THREADS``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient

# Threads per process for the work after the ack: as many requests can wait on Slack or a CRM at
# once. Each costs memory (its stack, its SQLite connection, malloc's share): under bench/load.py
# 64 threads peaked at 112 MB for the work process and 102 acks/s, 40 at 98 MB and 96 acks/s.
THREADS = 40
GRACE = 0.1  # seconds a wait on Slack keeps its slot before the slot is given to other work

_local = threading.local()  # the slots the current thread holds one of, if any


class _Wait:
    __slots__ = ("started", "freed")

    def __init__(self, started: float) -> None:
        self.started = started
        self.freed = False


class Slots:
    def __init__(self, count: int, grace: float = GRACE) -> None:
        self.count = count
        self.grace = grace
        self._taken = threading.Condition()
        self._free = count
        self._resuming = 0  # threads back from a wait, wanting their slot again: they go before new work
        self._waits: dict[int, _Wait] = {}
        self._changed = threading.Condition()
        self._watcher: threading.Thread | None = None

    def _begin_wait(self) -> int:
        with self._changed:
            key = threading.get_ident()
            self._waits[key] = _Wait(time.monotonic())
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="leadbot-slots", daemon=True)
                self._watcher.start()
            self._changed.notify()
            return key

    def _end_wait(self, key: int) -> bool:
        """Whether the wait's slot was given away (and must be taken again)."""
        with self._changed:
            return self._waits.pop(key).freed

    def _watch(self) -> None:
        """Gives the slot of each wait that passes ``grace`` to other work."""
        with self._changed:
            while True:
                now = time.monotonic()
                due: list[float] = []
                for wait in self._waits.values():
                    if wait.freed:
                        continue
                    if now - wait.started >= self.grace:
                        wait.freed = True
                        self.release()
                    else:
                        due.append(wait.started + self.grace - now)
                self._changed.wait(min(due) if due else None)

    def acquire(self) -> None:
        """Take a slot for new work (waiting for one, and for every thread resuming work first)."""
        with self._taken:
            self._taken.wait_for(lambda: self._free > 0 and not self._resuming)
            self._free -= 1

    def resume(self) -> None:
        """Take a slot back after a wait: before any new work, which would otherwise keep the
        threads already half-way through a request (each holding its memory) waiting behind it."""
        with self._taken:
            self._resuming += 1
            self._taken.wait_for(lambda: self._free > 0)
            self._resuming -= 1
            self._free -= 1

    def release(self) -> None:
        with self._taken:
            self._free += 1
            self._taken.notify_all()

    @contextmanager
    def held(self, *, acquired: bool = False, keep: bool = False) -> Iterator[None]:
        """Run the body in a slot (waiting for one, unless ``acquired``); ``waiting`` inside gives it up a while.

        ``keep``: the slot is still taken after the body, for the caller to ``release``.
        """
        if not acquired:
            self.acquire()
        outer = getattr(_local, "slots", None)
        _local.slots = self
        try:
            yield
        finally:
            _local.slots = outer
            if not keep:
                self.release()

    def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self.held():
            return fn(*args, **kwargs)

    def run_acquired(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``run``, in a slot taken with ``acquire`` and still taken after it (``release`` it)."""
        with self.held(acquired=True, keep=True):
            return fn(*args, **kwargs)


class Hands:
    """Threads for work, each run in a slot: one more thread only when none is idle.

    A thread says it is idle before it gives its slot back, so the work handed over next,
    in that slot, finds it; with a thread pool's own accounting the next work came first,
    and a flood grew the threads (each with its SQLite connections) to the most allowed.
    With every thread taken, new work gives its slot back until one is idle: with every
    thread waiting to resume, a slot kept for work no thread could run left them all
    waiting for ever.
    """

    def __init__(self, slots: Slots, most: int = THREADS, name: str = "leadbot-work") -> None:
        self.slots = slots
        self.most = most
        self.name = name
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._idle = 0
        self._threads: list[threading.Thread] = []

    def hand(self, work: Callable[[], None]) -> None:
        """Run ``work`` on an idle thread (or a new one, up to ``most``) in a slot, waiting for both."""
        while True:
            self.slots.acquire()
            with self._room:
                if self._idle:
                    self._idle -= 1
                    break
                if len(self._threads) < self.most:
                    thread = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}")
                    self._threads.append(thread)
                    thread.start()
                    break
            self.slots.release()  # every thread is busy or waiting to resume: one of them needs this slot
            with self._room:
                self._room.wait_for(lambda: self._idle)
        self._work.put(work)

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            try:
                self.slots.run_acquired(work)
            finally:
                with self._room:
                    self._idle += 1
                    self._room.notify()
                self.slots.release()

    def join(self) -> None:
        """Let every thread finish what it was handed, then end."""
        with self._room:
            threads = list(self._threads)
        for _ in threads:
            self._work.put(None)
        for thread in threads:
            thread.join()


@contextmanager
def waiting() -> Iterator[None]:
    """Around a network wait: past ``GRACE``, the current thread's slot is free for others until it ends."""
    slots: Slots | None = getattr(_local, "slots", None)
    if slots is None:
        yield
        return
    _local.slots = None  # a nested wait inside this one has nothing to give up
    key = slots._begin_wait()
    try:
        yield
    finally:
        if slots._end_wait(key):
            slots.resume()
        _local.slots = slots


@contextmanager
def waiting_long() -> Iterator[None]:
    """Around a wait that is slow by nature (a CRM's API: hundreds of ms): the slot is free at once."""
    slots: Slots | None = getattr(_local, "slots", None)
    if slots is None:
        yield
        return
    _local.slots = None
    slots.release()
    try:
        yield
    finally:
        slots.resume()
        _local.slots = slots


class SlotFreeingClient(WebClient):
    """A ``WebClient`` whose every call gives the caller's work slot up while it waits on Slack."""

    def api_call(self, *args: Any, **kwargs: Any) -> Any:
        with waiting():
            return super().api_call(*args, **kwargs)
