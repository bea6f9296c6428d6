"""After-ack work in a process of its own, so it never competes with the acks for the GIL.

The HTTP process runs the listeners only to ack. When a listener hands work off,
the raw request (body and headers, as Slack sent them) is forwarded, once the ack
is written, to a worker process that dispatches it into its own copy of the same
Bolt app; there the listener runs again, its ack goes nowhere, and its work runs.
Requests are the jobs because they are what the listeners already understand and
they pickle for free; closures would not.

With the work on threads in the serving process, SQLite, Block Kit and Web API
posts held the GIL while acks waited (bench/README.md has the figures).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs

from bot.config import Settings
from bot.journal import JournalEntry, open_journal
from bot.slots import THREADS, Hands, Slots
from services.rerun import writes_of
from services.trace import tracing

log = logging.getLogger("leadbot")

# glibc's malloc, for a process of many threads: two arenas, not one per thread (8 per core);
# freed memory handed back above 128 KiB; and no per-thread cache of freed blocks (tcache), which
# sixty threads each kept full, out of reach of the trim. In bench/load.py the work process
# peaked 13 MB lower with the first two (141 -> 128 MB), and 14 MB lower again without the
# caches (88 -> 74 MB), at the same throughput.
MALLOC_TUNING = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_TRIM_THRESHOLD_": "131072",
    "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
}
WORK_NICENESS = 5  # how much lower than the serving process's the work process's CPU priority is

_forwarding: ContextVar[list[bool] | None] = ContextVar("leadbot_forwarding", default=None)


@dataclass(frozen=True)
class ForwardedRequest:
    body: str
    headers: dict[str, str]
    entry: int | None = None  # its journal entry (bot/journal.py): started and finished by the worker


class WorkProcess:
    """The serving process's side: listeners ``submit``, the server ``release``s.

    Every forwarded request is kept here until the worker reports it done, over a
    pipe of its own. If the worker dies, a reader thread sees the pipe close,
    starts a new worker and sends it what was unfinished (once: a request that
    kills two workers is logged and dropped rather than looping). Nothing shared
    with the worker needs a lock that a killed worker could leave held.
    """

    def __init__(self, settings: Settings, threads: int = 4, max_pending: int = 1000) -> None:
        self.settings = settings
        self.threads = threads
        self.max_pending = max_pending
        self._state = threading.Condition()
        self._pending = 0  # acked requests whose work is not done, counted from the listener on
        self._outstanding: dict[int, tuple[ForwardedRequest, int]] = {}  # id -> (request, tries)
        self._ids = itertools.count(1)
        self._stopping = False
        self._process: Any = None

    def start(self) -> None:
        with self._state:
            self._spawn()

    def _spawn(self) -> None:
        self._process = _Child.start(self.settings, self.threads)
        self._jobs = self._process.jobs
        threading.Thread(target=self._read_done, args=(self._process.done, self._process), daemon=True).start()

    def _read_done(self, done: Any, process: Any) -> None:
        while True:
            try:
                job_id = int.from_bytes(done.recv_bytes())
            except (EOFError, OSError):
                break
            with self._state:
                if self._outstanding.pop(job_id, None) is not None:
                    self._pending -= 1
                self._state.notify_all()
        done.close()
        with self._state:
            if not self._stopping and process is self._process:
                self._replace(process)

    def _replace(self, dead: _Child) -> None:
        dead.join()
        dead.close()
        log.error("the work process died (exit code %s); starting a new one", dead.exitcode)
        self._spawn()
        for job_id, (request, tries) in list(self._outstanding.items()):
            if tries >= 2:
                log.error("dropping a request that was in flight when two work processes died: %s", request.headers)
                del self._outstanding[job_id]
                self._pending -= 1
                continue
            self._outstanding[job_id] = (request, tries + 1)
            self._jobs.put((job_id, request))
        self._state.notify_all()

    def saturated(self) -> bool:
        return self._pending >= self.max_pending

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
        forwarding = _forwarding.get()
        if forwarding is None:
            raise RuntimeError("work can only be forwarded from inside an HTTP request")
        if not forwarding:
            # Counted now, before the ack leaves, so that ``wait_idle`` never sees a gap.
            with self._state:
                self._pending += 1
            forwarding.append(True)
        return None

    @contextmanager
    def holding(self) -> Iterator[list[bool]]:
        forwarding: list[bool] = []
        token = _forwarding.set(forwarding)
        try:
            yield forwarding
        finally:
            _forwarding.reset(token)

    def release(self, held: list[bool], body: bytes, headers: Mapping[str, str], entry: int | None = None) -> None:
        self._send(ForwardedRequest(body=body.decode("utf-8"), headers=dict(headers), entry=entry))

    def _send(self, request: ForwardedRequest) -> None:
        with self._state:
            job_id = next(self._ids)
            self._outstanding[job_id] = (request, 1)
            self._jobs.put((job_id, request))

    def discard(self, held: list[bool]) -> None:
        with self._state:
            self._pending -= 1
            self._state.notify_all()

    def recover(self, entries: list[JournalEntry]) -> None:
        """Hand the worker what an earlier process acked and did not finish."""
        for entry in entries:
            with self._state:
                self._pending += 1
            self._send(ForwardedRequest(body=entry.body, headers=entry.headers, entry=entry.id))

    def drain(self, timeout: float) -> bool:
        """Let the worker finish what it was given, for up to ``timeout`` s; what is left stays in the journal."""
        finished = self.wait_idle(timeout)
        self.shutdown(timeout=1 if not finished else 30)
        return finished

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._state:
            return self._state.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Let the worker finish what it was given, then stop it."""
        with self._state:
            if self._process is None:
                return
            self._stopping = True
            process = self._process
            self._jobs.put(None)
        process.join(timeout)
        if process.is_alive():
            log.warning("the work process did not finish within %.0f s; stopping it", timeout)
            process.terminate()
            process.join(5)
        process.close()
        self._process = None

    @property
    def process(self) -> _Child | None:
        """The current worker, or None before ``start``."""
        return self._process


class _Jobs:
    """The serving process's end of the job pipe: ``put`` never blocks, a sender thread writes.

    A pipe holds 64 KiB: a worker still starting (or stopped) would have held whoever sent, under
    ``WorkProcess``'s lock, and with it every ack. A dead worker's pipe is ignored: its reader sees
    it die and sends what was outstanding to the next one.
    """

    _CLOSE = object()

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._queued: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sender = threading.Thread(target=self._send, name="leadbot-jobs", daemon=True)
        self._sender.start()

    def put(self, message: Any) -> None:
        self._queued.put(message)

    def _send(self) -> None:
        while (message := self._queued.get()) is not self._CLOSE:
            try:
                self.connection.send(message)
            except OSError:
                return

    def close(self) -> None:
        self._queued.put(self._CLOSE)
        self._sender.join(5)
        with suppress(OSError):
            self.connection.close()


class _Child:
    """The work process: a plain ``python`` child with three pipes, not ``multiprocessing``'s.

    ``multiprocessing`` starts a process of its own to track semaphores for every spawned child
    (13 MB of peak RSS in bench/load.py), and its queue needs one. Here the jobs, the reports of
    work done and a lifeline are pipes: the worker exits when the lifeline closes, however this
    process ends, and this process sees the worker die when the done pipe closes.
    """

    def __init__(self, popen: subprocess.Popen, jobs: Connection, done: Connection, lifeline: int) -> None:
        self.popen = popen
        self.jobs = _Jobs(jobs)
        self.done = done
        self._lifeline = lifeline

    @classmethod
    def start(cls, settings: Settings, threads: int) -> _Child:
        jobs_in, jobs_out = os.pipe()
        done_in, done_out = os.pipe()
        lifeline_in, lifeline_out = os.pipe()
        theirs = (jobs_in, done_out, lifeline_in)
        try:
            popen = subprocess.Popen(
                [sys.executable, "-c", "from bot.workproc import child_main; child_main()", *map(str, theirs)],
                pass_fds=theirs,
                env=MALLOC_TUNING | os.environ,  # what the operator set wins
            )
        finally:
            for fd in theirs:
                os.close(fd)
        jobs = Connection(jobs_out, readable=False)
        jobs.send((settings, threads))
        return cls(popen, jobs, Connection(done_in, writable=False), lifeline_out)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def kill(self) -> None:
        self.popen.kill()

    def terminate(self) -> None:
        self.popen.terminate()

    def close(self) -> None:
        with suppress(OSError):
            os.close(self._lifeline)
        self.jobs.close()


class JobQueue:
    """The work process's waiting jobs: presses that open a form first, then the rest, each in order.

    A form (Add note, Log follow-up, Edit…, a message shortcut) must be opened within the 3 s its
    trigger_id lives; behind a backlog of other work it failed in Slack (bench/README.md has the
    figures). Only those go first, so the rest waits behind as few as can be. ``None`` comes last.
    """

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()

    def put(self, job: tuple[int, ForwardedRequest] | None) -> None:
        rank = 2 if job is None else 0 if _opens_a_form(job[1].body) else 1
        self._queue.put((rank, next(self._order), job))

    def get(self) -> tuple[int, ForwardedRequest] | None:
        return self._queue.get()[2]


def _opens_a_form(body: str) -> bool:
    if not body.startswith("payload="):  # slash commands, events: never first
        return False
    from handlers.actions import opens_a_form

    try:
        payload = json.loads(parse_qs(body).get("payload", [""])[0])
    except (ValueError, RecursionError):  # never to stop the reader: a body it cannot read is not a press
        return False
    return opens_a_form(payload)


def child_main() -> None:
    """The work process's entry point: ``python -c`` with the pipes' descriptors as arguments."""
    jobs_fd, done_fd, lifeline_fd = map(int, sys.argv[1:4])
    jobs = Connection(jobs_fd, writable=False)
    settings, threads = jobs.recv()
    queued = JobQueue()

    def read_jobs() -> None:
        # Read at once, whatever the work threads are doing, so the serving process never waits to send.
        try:
            while (job := jobs.recv()) is not None:
                queued.put(job)
        except (EOFError, OSError):
            pass
        queued.put(None)

    threading.Thread(target=read_jobs, name="leadbot-jobs", daemon=True).start()
    _serve(settings, queued, Connection(done_fd, readable=False), Connection(lifeline_fd, writable=False), threads)


def _serve(settings: Settings, jobs: Any, done: Any, lifeline: Any, threads: int) -> None:
    # Ctrl-C and a SIGTERM to the whole group (docker stop, systemd) reach us too; the serving
    # process decides when we stop, after its drain, and the lifeline ends us if it dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # ``kill -USR1``: every thread's stack to stderr
    # The acks must leave within Slack's 3 s whatever the work does; the work can wait a few ms for a core.
    with suppress(OSError):
        os.nice(WORK_NICENESS)
    from bot import logs

    logs.configure(settings.leadbot_log_level, settings.leadbot_log_format, settings.secrets())
    from slack_bolt import BoltRequest

    from bot.app import build_app, build_runtime
    from bot.memory import keep_trimming

    slots = Slots(threads)
    counting = _CountingInline()
    app = build_app(build_runtime(settings, background=counting), verify_requests=False)
    journal = open_journal(str(settings.leadbot_db)) if str(settings.leadbot_db) != ":memory:" else None
    reporting = threading.Lock()

    def watch_lifeline() -> None:
        with suppress(EOFError):
            lifeline.recv()
        os._exit(0)

    threading.Thread(target=watch_lifeline, name="leadbot-lifeline", daemon=True).start()
    keep_trimming()

    def work(job: tuple[int, ForwardedRequest]) -> None:
        job_id, request = job
        try:
            run(request)
        finally:
            with reporting:
                done.send_bytes(job_id.to_bytes(8))

    def run(request: ForwardedRequest) -> None:
        entry = request.entry if journal is not None else None
        if entry is not None and not journal.start(entry):
            return  # done already, or another live process has it
        try:
            with writes_of(f"j{entry}") if entry is not None else nullcontext(), tracing(entry=entry):
                ran = counting.count(app.dispatch, BoltRequest(body=request.body, headers=request.headers))
            if not ran:
                # The ack was decided again here and came out differently (a time-based check at
                # a boundary); the user saw the first ack, so say so in the log at least.
                log.warning("a forwarded request produced no work in the work process")
        except Exception:
            log.exception("a forwarded request failed in the work process")
        if entry is not None:
            journal.finish(entry)  # the work ran (what failed in it was told or logged): not again

    # ``threads`` run at once (bot/slots.py). A job is taken only once a slot is free, so a thread is
    # made only when every one is busy and some wait on Slack: a flood of work keeps ``threads`` threads
    # (and their SQLite connections, each with its page cache), not THREADS.
    hands = Hands(slots, THREADS)
    while (job := jobs.get()) is not None:
        hands.hand(lambda job=job: work(job))
    hands.join()


class _CountingInline:
    """Runs work inline in the worker thread and counts it, per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def saturated(self) -> bool:
        return False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        self._local.ran = getattr(self._local, "ran", 0) + 1
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def count(self, dispatch: Callable[[Any], object], request: Any) -> int:
        self._local.ran = 0
        dispatch(request)
        return self._local.ran
