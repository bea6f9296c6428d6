"""Run a fake as ``python -m tests.fakes.NAME`` in a child process, for the tests of the standalone mode."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def standalone(module: str, port: int, *extra: str) -> Iterator[str]:
    """Start the fake, wait for its banner's first line (it is listening by then), yield the whole banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline()]
        while banner[-1] and "Ctrl-C" not in banner[-1]:
            banner.append(process.stdout.readline())
        if not banner[-1]:
            raise RuntimeError(f"{module} did not start: {process.stderr.read()}")
        yield "".join(banner)
    finally:
        process.terminate()  # SIGTERM: the fake saves its --state file and exits
        process.wait(5)
