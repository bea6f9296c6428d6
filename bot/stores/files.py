"""Why a database file cannot be opened, in words an operator can act on.

SQLite says "unable to open database file" for half a dozen different
mistakes (a missing directory, a directory, no permission), so the file
system is asked first; what SQLite says afterwards (not a database,
locked, read-only) is translated. Every explanation ends with the fix.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

ELSEWHERE = "set LEADBOT_DB to another file"


def who() -> str:
    """The user Leadbot runs as, for "not writable for …" (a container's user is rarely the file's owner)."""
    uid = os.geteuid()
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _writable(path: Path) -> bool:
    # os.access also says no on a read-only mount or an immutable file, even to root.
    return os.access(path, os.W_OK)


def file_problem(path: Path, *, must_exist: bool = False) -> str | None:
    """What is wrong with ``path`` as a database file before SQLite is asked, or None."""
    directory = path.parent
    if path.is_dir():
        return f"it is a directory; set LEADBOT_DB to a file in it, e.g. {path / 'leadbot.db'}"
    if not directory.exists():
        return f"its directory {directory} does not exist; create it or {ELSEWHERE}"
    if not directory.is_dir():
        return f"{directory} is not a directory; {ELSEWHERE}"
    if not path.exists():
        if must_exist:
            return f"there is no database there; check LEADBOT_DB (leadbot run creates it), or {ELSEWHERE}"
        if not _writable(directory):
            return (
                f"its directory {directory} is not writable for {who()}, so the file cannot be created there;"
                f" make it writable (chown) or {ELSEWHERE}"
            )
        return None
    if not os.access(path, os.R_OK):
        return f"it is not readable for {who()}; make it readable and writable (chown) or {ELSEWHERE}"
    if not _writable(path):
        return f"it is read-only for {who()}; make it writable (chown, chmod u+w; a read-only mount?) or {ELSEWHERE}"
    for sidecar in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if sidecar.exists() and not _writable(sidecar):
            return f"{sidecar} beside it is read-only for {who()}; make it writable (chown) or {ELSEWHERE}"
    if not _writable(directory):
        return (
            f"its directory {directory} is not writable for {who()}, and SQLite keeps its -wal and -shm files"
            f" beside the database; make the directory writable (chown) or {ELSEWHERE}"
        )
    return None


def explain(path: Path, error: sqlite3.Error, *, lock_wait: float) -> str:
    """What SQLite's ``error`` on opening ``path`` means, and what to do about it."""
    said = str(error).lower()
    if "not a database" in said or "malformed" in said or "file is encrypted" in said:
        return (
            "it is not a SQLite database, or it is damaged; restore it from a backup, or move it away"
            f" (Leadbot then starts with an empty one), or {ELSEWHERE}"
        )
    if "locked" in said or "busy" in said:
        return (
            f"another process has held a lock on it for over {lock_wait:g} s (a sqlite3 shell, a backup,"
            f" a stuck leadbot?); stop that process, or {ELSEWHERE}"
        )
    if "readonly" in said or "read-only" in said:
        return f"it cannot be written by {who()}; make it and its directory writable (chown) or {ELSEWHERE}"
    if "disk i/o" in said or "full" in said:
        return f"SQLite reports {error}; check the disk (full? read-only?) or {ELSEWHERE}"
    found = file_problem(path)
    if found:
        return found
    return f"SQLite reports {error}; check the file and its directory, or {ELSEWHERE}"


def cannot_open(path: Path | str, why: str) -> str:
    """The one line the operator gets (after ``leadbot: ``)."""
    return f"cannot open the database {path}: {why}"
