"""Running an acked request again never makes its writes twice.

Leadbot keeps every acked request in a journal until its work is done (``bot/journal.py``);
a process that dies half-way through one leaves it there, and the next process runs it
again. Inside that work, ``writes_of(request)`` numbers each write the LeadService makes
(``j42#1``, ``j42#2``, …) and ``RequestWrites`` remembers how each one ended:

- a write to the local store commits together with its record, so a re-run finds it
  either made and recorded, or neither;
- a write to a remote backend is recorded as *sent* before it leaves and as *landed*
  (or *queued*) once it is answered. A re-run that finds it *sent* cannot know whether
  it landed, so it hands the very same write (same receipt) to the outbox, which looks
  for it before sending it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class RequestScope:
    """The writes of one request's work, keyed by their order in it."""

    def __init__(self, request: str) -> None:
        self.request = request
        self._made = 0

    def next_key(self) -> str:
        self._made += 1
        return f"{self.request}#{self._made}"

    def peek_key(self) -> str:
        """The key the next write will get (a check before it may ask whether an earlier run made it)."""
        return f"{self.request}#{self._made + 1}"


CURRENT: ContextVar[RequestScope | None] = ContextVar("leadbot_request_scope", default=None)


@contextmanager
def writes_of(request: str) -> Iterator[RequestScope]:
    """Inside: the work of the journalled request ``request``; its writes are made at most once."""
    scope = RequestScope(request)
    token = CURRENT.set(scope)
    try:
        yield scope
    finally:
        CURRENT.reset(token)
