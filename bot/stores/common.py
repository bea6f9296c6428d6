"""What every store implementation shares."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a claim it started may be taken over only once it is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def next_slot(slots: list[float], *, limit: int, window: float, now: float) -> float:
    """When the next call may go: at once while fewer than ``limit`` are reserved, else a
    ``window`` after the reservation ``limit`` places back, and never before the latest
    one (so reservations keep the order they were asked in, whoever asked)."""
    at = now if len(slots) < limit else max(now, slots[-limit] + window)
    return max(at, slots[-1]) if slots else at
