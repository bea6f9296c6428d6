"""What an operator can see of a running Leadbot: ``/metrics`` (Prometheus) and the backends' health.

``leadbot run`` serves Slack from one process and may do the work after the
ack in another (the work process), where the backend calls happen. So the
counters live in prometheus-client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set before prometheus-client is imported
(``leadbot run`` sets it to a fresh directory of its own); elsewhere (tests,
the console) they are one process's.

A backend's health is the outcome of its latest call, from any process: a
gauge per backend and outcome holds the time of the latest call that ended
that way, merged across processes by its maximum.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


def use_multiprocess_dir() -> Path:
    """Make this process and its children count into one fresh directory (before prometheus-client is imported)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        if path.exists():
            shutil.rmtree(path)  # an earlier run's counts are not this run's
        path.mkdir(parents=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="leadbot-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def end_multiprocess_dir(path: Path) -> None:
    """Remove the run's counts, and the variable if it names them (processes started later count alone)."""
    shutil.rmtree(path, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == str(path):
        del os.environ[MULTIPROC_ENV]


class Telemetry:
    """The metrics one process records, and what ``/metrics`` and ``/healthz`` read of every process's."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        # Multiprocess mode is chosen once, when prometheus-client is imported: the variable set later is not it.
        counting_in_files = values.ValueClass.__name__ == "MmapedValue"
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) if counting_in_files else None
        # In multiprocess mode values go to files whatever the registry; exposition reads the files.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadbot_requests",
            "Requests from Slack by kind and how they were answered",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "leadbot_ack_seconds",
            "Time from a request's arrival to its answer",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.backend_seconds = Histogram(
            "leadbot_backend_call_seconds",
            "Backend requests by backend and read or write",
            ["backend", "kind"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "leadbot_backend_errors",
            "Backend requests that did not succeed, by backend and outcome",
            ["backend", "outcome"],
            registry=self.registry,
        )
        self.backend_last = Gauge(
            "leadbot_backend_last_call_timestamp_seconds",
            "When a backend's latest call with this outcome ended",
            ["backend", "outcome"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        self._pending_lock = threading.Lock()
        self._pending_requests: dict[tuple[str, str], int] = {}
        self._pending_acks: dict[str, list] = {}  # kind -> a count per bucket (the last +Inf), then the sum
        self.digests = Counter(
            "leadbot_digests", "Daily digests by how they ended", ["outcome"], registry=self.registry
        )

    # -- recording ---------------------------------------------------------------------------

    def request(self, kind: str, outcome: str, seconds: float) -> None:
        """Counted here, and into prometheus-client when ``/metrics`` is read (``_flush``).

        An ``inc`` and an ``observe`` per request cost 4-5 % of the ack path (in multiprocess
        mode each is a locked write to a file); these are a dict's and a list's.
        """
        with self._pending_lock:
            key = (kind, outcome)
            self._pending_requests[key] = self._pending_requests.get(key, 0) + 1
            counts = self._pending_acks.get(kind)
            if counts is None:
                counts = self._pending_acks[kind] = [0] * (len(ACK_BUCKETS) + 1) + [0.0]
            counts[bisect_left(ACK_BUCKETS, seconds)] += 1
            counts[-1] += seconds

    def _flush(self) -> None:
        with self._pending_lock:
            requests, self._pending_requests = self._pending_requests, {}
            acks, self._pending_acks = self._pending_acks, {}
        for (kind, outcome), n in requests.items():
            self.requests.labels(kind, outcome).inc(n)
        for kind, counts in acks.items():
            child = self.ack_seconds.labels(kind)
            for bucket, n in enumerate(counts[:-1]):
                if n:
                    child._buckets[bucket].inc(n)  # what ``observe`` does for one value in that bucket
            child._sum.inc(counts[-1])

    def backend_call(self, backend: str, kind: str, seconds: float, outcome: str) -> None:
        self.backend_seconds.labels(backend, kind).observe(seconds)
        if outcome != "ok":
            self.backend_errors.labels(backend, outcome).inc()
        self.backend_last.labels(backend, outcome).set(time.time())

    def digest(self, outcome: str) -> None:
        self.digests.labels(outcome).inc()

    # -- reading -----------------------------------------------------------------------------

    def _collected(self) -> Any:
        self._flush()
        if self.multiprocess_dir is None:
            return self.registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return registry

    def exposition(self, live: Callable[[], Iterable[tuple[str, str, float]]] = tuple) -> tuple[bytes, str]:
        """``/metrics``: every process's counts, and ``live`` gauges (name, help, value) read now."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.core import GaugeMetricFamily

        text = generate_latest(self._collected())
        families = [GaugeMetricFamily(name, help_text, value=value) for name, help_text, value in live()]

        class Live:
            def collect(self) -> list[GaugeMetricFamily]:
                return families

        from prometheus_client import CollectorRegistry

        now = CollectorRegistry()
        now.register(Live())
        return text + generate_latest(now), CONTENT_TYPE_LATEST

    def backend_health(self) -> dict[str, tuple[str, float]]:
        """Each backend called so far: the outcome of its latest call and when it ended (Unix seconds)."""
        latest: dict[str, tuple[str, float]] = {}
        for family in self._collected().collect():
            if family.name != "leadbot_backend_last_call_timestamp_seconds":
                continue
            for sample in family.samples:
                backend, outcome = sample.labels["backend"], sample.labels["outcome"]
                if backend not in latest or sample.value > latest[backend][1]:
                    latest[backend] = (outcome, sample.value)
        return latest
