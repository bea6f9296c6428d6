"""Helpers for the fakes' own tests: cheap httpx clients, and a fake run standalone in a child process."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
_TLS = ssl.create_default_context()  # loaded once: a new httpx.Client would read the CA bundle each time (~30 ms)


def client(base_url: str = "", **options: Any) -> httpx.Client:
    """An ``httpx.Client`` (2 s timeout unless given) that does not reload the CA bundle."""
    options.setdefault("timeout", 2.0)
    return httpx.Client(base_url=base_url, verify=_TLS, **options)


def get(url: str, **options: Any) -> httpx.Response:
    with client() as http:
        return http.get(url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    with client() as http:
        return http.post(url, **options)


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
