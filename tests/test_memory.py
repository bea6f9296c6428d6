"""bot/memory.py: freed memory handed back to the system, every few seconds."""

from __future__ import annotations

import threading

from bot import memory


class FakeLibc:
    def __init__(self) -> None:
        self.trims: list[int] = []
        self.trimmed = threading.Event()
        self.names: list[bytes] = []

    def malloc_trim(self, pad: int) -> int:
        self.trims.append(pad)
        self.trimmed.set()
        return 1

    def pthread_setname_np(self, thread, name: bytes) -> int:
        self.names.append(name)
        return 0


def test_the_heap_is_trimmed_until_stopped():
    libc = FakeLibc()
    stop = memory.keep_trimming(0.001, libc=libc)
    assert stop is not None
    assert libc.trimmed.wait(5)
    assert libc.trims[0] == 0  # every free page, not only those above a pad
    assert libc.names == [b"leadbot-trim"]
    stop.set()
    trimmer = next(t for t in threading.enumerate() if t.name == "leadbot-trim")
    trimmer.join(5)
    assert not trimmer.is_alive()


def test_without_malloc_trim_nothing_runs(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    before = {t.name for t in threading.enumerate()}
    assert memory.keep_trimming(0.001) is None
    assert "leadbot-trim" not in {t.name for t in threading.enumerate()} - before


def test_this_machines_c_library_is_found():
    libc = memory._glibc()
    assert libc is not None and hasattr(libc, "malloc_trim")  # glibc here: the trimming really runs


def test_talking_to_a_crm_does_not_load_httpxs_command_line_tool():
    import subprocess
    import sys

    code = "import services.backends.http, httpx, sys; print(sorted({'rich', 'pygments', 'click'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert callable(__import__("httpx").Client)
