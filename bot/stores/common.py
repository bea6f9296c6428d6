"""What every store implementation shares."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (Linux), or None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    return stat.rsplit(")", 1)[1].split()


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None where that cannot be read."""
    fields = _stat(pid)
    return fields[19] if fields else None


def process_token(pid: int | None = None) -> str:
    """This process, named so that a later process given the same pid is not taken for it.

    In a container the server is pid 1 after every restart: a pid alone would make a
    claim left by the killed pid 1 look alive for ever.
    """
    pid = os.getpid() if pid is None else pid
    started = _started(pid)
    return f"{pid}@{started}" if started is not None else str(pid)


def alive(owner: int | str | None) -> bool:
    """Whether the process that ``owner`` names (a pid, or a ``process_token``) still runs."""
    if owner is None:
        return False
    text = str(owner)
    pid_text, _, started = text.partition("@")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat(pid)
    if fields is None:
        return True  # no /proc here: the pid is all there is to go by
    # A zombie (killed, not yet reaped: common under a container's pid 1) is dead.
    return fields[0] not in ("Z", "X") and (not started or fields[19] == started)


def next_slot(slots: list[float], *, limit: int, window: float, now: float) -> float:
    """When the next call may go: at once while fewer than ``limit`` are reserved, else a
    ``window`` after the reservation ``limit`` places back, and never before the latest
    one (so reservations keep the order they were asked in, whoever asked)."""
    at = now if len(slots) < limit else max(now, slots[-limit] + window)
    return max(at, slots[-1]) if slots else at
