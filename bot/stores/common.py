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
