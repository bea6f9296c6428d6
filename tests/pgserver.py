"""A throwaway PostgreSQL server for the tests (and ``.ci/run``): initdb, pg_ctl, 127.0.0.1 only.

``python -m tests.pgserver start DIR`` prints the DSN of a server whose files are in DIR;
``python -m tests.pgserver stop DIR`` stops it. initdb refuses to run as root: as root the
server runs as the ``postgres`` user (Debian's package makes it), via ``runuser``.
Durability is switched off (fsync, synchronous_commit): these databases are thrown away.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "listen_addresses=127.0.0.1",
)


def binaries() -> dict[str, str] | None:
    """Where initdb and pg_ctl are (on PATH, or Debian's versioned directory), or None."""
    found = {name: shutil.which(name) for name in ("initdb", "pg_ctl")}
    if all(found.values()):
        return found  # type: ignore[return-value]
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if debian:
        bin_dir = debian[-1].parent
        return {name: str(bin_dir / name) for name in ("initdb", "pg_ctl")}
    return None


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(directory: Path) -> str:
    """Start a server with its files in ``directory`` (made); its DSN (user postgres, trust on 127.0.0.1)."""
    tools = binaries()
    if tools is None:
        raise RuntimeError("no PostgreSQL server here (initdb, pg_ctl): apt-get install postgresql")
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        _as_owner([tools["initdb"], "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = " ".join(f"-c {s}" for s in (*SETTINGS, f"port={port}", f"unix_socket_directories={directory}"))
    subprocess.run(
        _as_owner([tools["pg_ctl"], "-D", str(data), "-l", str(directory / "log"), "-o", options, "-w", "start"]),
        check=True,
        capture_output=True,
    )
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    (directory / "dsn").write_text(dsn)
    return dsn


def stop(directory: Path) -> None:
    tools = binaries()
    if tools and (directory / "data").exists():
        subprocess.run(
            _as_owner([tools["pg_ctl"], "-D", str(directory / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(where))
    else:
        stop(where)
