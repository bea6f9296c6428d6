"""A database file that cannot be used stops ``run``, ``console`` and ``doctor`` with one line naming it and the fix.

Each case is the real command in a process of its own, as an operator (or a
container's restart loop) sees it: exit status 2, one line on stderr, no traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.stores.sqlite import SqliteStore

LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_", "PORT"))}
COMMANDS = {
    "run": ["run"],
    "console": ["console"],
    "doctor": ["doctor"],
}
# A sqlite3 shell left in BEGIN EXCLUSIVE: in WAL mode others still read, so only a write shows it.
# It holds the lock until its stdin closes and says "locked" once it has it.
LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("locked", flush=True)
sys.stdin.read()
"""


def a_database(path: Path) -> None:
    SqliteStore(path).close()


def missing_directory(tmp_path: Path, cleanup: Callable) -> Path:
    return tmp_path / "nowhere" / "leadbot.db"


def read_only(tmp_path: Path, cleanup: Callable) -> Path:
    path = tmp_path / "leadbot.db"
    a_database(path)
    path.chmod(0o444)
    if os.geteuid() == 0:  # root writes through permission bits; an immutable file it cannot write
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: cannot make a file read-only")
        cleanup(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))
    return path


def corrupt(tmp_path: Path, cleanup: Callable) -> Path:
    path = tmp_path / "leadbot.db"
    path.write_bytes(b"\x00\xffnot a database\x13" * 300)
    return path


def a_directory(tmp_path: Path, cleanup: Callable) -> Path:
    path = tmp_path / "leadbot.db"
    path.mkdir()
    return path


def locked(tmp_path: Path, cleanup: Callable) -> Path:
    path = tmp_path / "leadbot.db"
    a_database(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def release() -> None:
        holder.stdin.close()
        holder.wait(10)

    cleanup(release)
    assert holder.stdout.readline().strip() == "locked"
    return path


FAULTS: dict[str, tuple[Callable[[Path, Callable], Path], Callable[[Path], str]]] = {
    "missing directory": (
        missing_directory,
        lambda p: f"its directory {p.parent} does not exist; create it or set LEADBOT_DB to another file",
    ),
    "read-only": (read_only, lambda p: "it is read-only for"),
    "corrupt": (corrupt, lambda p: "it is not a SQLite database, or it is damaged; restore it from a backup"),
    "a directory": (a_directory, lambda p: f"it is a directory; set LEADBOT_DB to a file in it, e.g. {p}/leadbot.db"),
    "locked": (locked, lambda p: "another process has held a lock on it for over 2 s"),
}


@pytest.fixture
def cleanup() -> Iterator[Callable[[Callable[[], object]], None]]:
    undo: list[Callable[[], object]] = []
    yield undo.append
    for step in reversed(undo):
        step()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_database_that_cannot_be_used_stops_each_command_with_one_line(tmp_path, cleanup, fault):
    make, expected = FAULTS[fault]
    path = make(tmp_path, cleanup)
    env = {
        **ENV,
        "LEADBOT_DB": str(path),
        "SLACK_BOT_TOKEN": "xoxb-startup",
        "SLACK_SIGNING_SECRET": "startup-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # the discard port: nothing past the database is reached
    }
    # The three at once: each waits out the same lock, and the cores share the start-ups.
    running = {
        command: subprocess.Popen(
            [LEADBOT, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, args in COMMANDS.items()
    }
    for command, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        said = f"{command}: {stderr}"
        assert process.returncode == 2, said
        assert "Traceback" not in stderr + stdout, said
        assert stderr.count("\n") == 1, said
        assert stderr.startswith(f"leadbot: cannot open the database {path}: "), said
        assert expected(path) in stderr, said
    if fault == "missing directory":
        assert not path.parent.exists()  # nothing was made on the way


def test_a_database_url_of_another_engine_is_said_plainly():
    from bot.stores import open_store
    from services.ports import StoreUnavailable

    with pytest.raises(StoreUnavailable) as refused:
        open_store("mysql://leadbot:pw@db.example/leadbot")
    assert str(refused.value) == (
        "cannot open the database mysql://…: LEADBOT_DB is a SQLite file path or a postgresql:// URL"
    )
    assert "pw" not in str(refused.value)  # a URL can carry a password


def test_a_postgresql_database_that_does_not_answer_is_said_without_its_password():
    from bot.stores import open_store
    from services.ports import StoreUnavailable

    with pytest.raises(StoreUnavailable) as refused:
        open_store("postgresql://leadbot:s3cret@127.0.0.1:1/leadbot")  # nothing listens on port 1
    said = str(refused.value)
    assert said.startswith("cannot open the database postgresql://leadbot@127.0.0.1:1/leadbot: "), said
    assert "s3cret" not in said
