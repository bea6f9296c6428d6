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
import time
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
        self.digests = Counter(
            "leadbot_digests", "Daily digests by how they ended", ["outcome"], registry=self.registry
        )

    # -- recording ---------------------------------------------------------------------------

    def request(self, kind: str, outcome: str, seconds: float) -> None:
        self.requests.labels(kind, outcome).inc()
        self.ack_seconds.labels(kind).observe(seconds)

    def backend_call(self, backend: str, kind: str, seconds: float, outcome: str) -> None:
        self.backend_seconds.labels(backend, kind).observe(seconds)
        if outcome != "ok":
            self.backend_errors.labels(backend, outcome).inc()
        self.backend_last.labels(backend, outcome).set(time.time())

    def digest(self, outcome: str) -> None:
        self.digests.labels(outcome).inc()

    # -- reading -----------------------------------------------------------------------------

    def _collected(self) -> Any:
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
