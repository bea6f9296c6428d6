"""What the current request is about, for the log lines written while it is handled.

The Slack side opens a trace for each request (who, which team, what kind);
the domain adds what it learns on the way (the lead's reference, the backend).
Log lines carry them (``bot/logs.py``). Outside a trace, ``note`` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

TRACE: ContextVar[dict[str, Any] | None] = ContextVar("leadbot_trace", default=None)


@contextmanager
def tracing(**fields: Any) -> Iterator[dict[str, Any]]:
    """A trace for the work inside: the enclosing one's fields and ``fields`` (``None`` values left out)."""
    trace = {**current(), **{key: value for key, value in fields.items() if value is not None}}
    token = TRACE.set(trace)
    try:
        yield trace
    finally:
        TRACE.reset(token)


def note(**fields: Any) -> None:
    """Add to the current trace what the work has just learnt (``None`` values left out)."""
    trace = TRACE.get()
    if trace is not None:
        trace.update((key, value) for key, value in fields.items() if value is not None)


def current() -> dict[str, Any]:
    """A copy of the current trace (empty outside one)."""
    return dict(TRACE.get() or {})
