"""Work slots: at most N requests' work runs at once, and one waiting on Slack does not count.

The work after the ack runs on threads, few of them running Python at a time
(every one competes for the GIL; bench/README.md). A thread waiting on Slack
(a ``response_url`` that hangs, a Web API call being retried) uses no CPU, but
when it also held one of those few threads, six hung replies made eight other
people wait up to 30 s. So the threads are many and the *slots* are few: a
thread takes a slot to run a request's work and gives it up for as long as it
waits on the network (``waiting``), taking one again to go on. A hung call then
delays only the request it belongs to; the threads' own cap (``io_threads``)
bounds how many can wait at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient

# Threads per process for the work after the ack: as many requests can wait on Slack at once.
THREADS = 64

_local = threading.local()  # the slots the current thread holds one of, if any


class Slots:
    def __init__(self, count: int) -> None:
        self.count = count
        self._free = threading.Semaphore(count)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Run the body in a slot (waiting for one); ``waiting`` inside it gives the slot up for a while."""
        self._free.acquire()
        outer = getattr(_local, "slots", None)
        _local.slots = self
        try:
            yield
        finally:
            _local.slots = outer
            self._free.release()

    def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self.held():
            return fn(*args, **kwargs)


@contextmanager
def waiting() -> Iterator[None]:
    """Around a network wait: the current thread's slot is free for others until the wait ends."""
    slots: Slots | None = getattr(_local, "slots", None)
    if slots is None:
        yield
        return
    _local.slots = None  # a nested wait inside this one has nothing to give up
    slots._free.release()
    try:
        yield
    finally:
        slots._free.acquire()
        _local.slots = slots


class SlotFreeingClient(WebClient):
    """A ``WebClient`` whose every call gives the caller's work slot up while it waits on Slack."""

    def api_call(self, *args: Any, **kwargs: Any) -> Any:
        with waiting():
            return super().api_call(*args, **kwargs)
