"""Two real processes on one SQLite file share LeadSquared's rate budget: a burst from both meets no 429 and
every action lands once. The fake runs here on a real clock; each process runs ``tests/lsq_burst.py``.

The suite runs a short burst (notes, at 20 calls per second so that it takes a few seconds); the full one
(100 mixed actions at LeadSquared's own 25 calls per 5 s, about a minute) runs with ``LEADBOT_SLOW=1``
(``LEADBOT_SLOW=1 .venv/bin/pytest tests/test_leadsquared_processes.py``), and ``bench/leadsquared.py``
runs the same burst and prints its figures.
"""

from __future__ import annotations

import os

import pytest

from tests.fakes.leadsquared import FakeLeadSquared
from tests.lsq_burst import burst, landed_once


def test_two_processes_share_one_budget_and_meet_no_429(tmp_path):
    with FakeLeadSquared(rate_limit=20, rate_window=1.0) as fake:
        seconds, summaries = burst(fake.url, tmp_path / "shared.db", per_process=15, mix="notes", limit=20, window=1)
        assert [s["errors"] for s in summaries] == [[], []]
        assert fake.throttled == 0
        calls = len(fake.received)
        assert sum(s["calls"] for s in summaries) == calls > 20  # every call counted, and more than one window's
        assert seconds >= (calls - 1) // 20 * 1.0  # they waited for each other: one budget, not two
        landed_once(fake, summaries, "notes")


@pytest.mark.skipif(not os.environ.get("LEADBOT_SLOW"), reason="about a minute: LEADBOT_SLOW=1 runs it")
def test_100_mixed_actions_from_two_processes_at_25_per_5_seconds(tmp_path):
    with FakeLeadSquared(rate_limit=25, rate_window=5.0) as fake:
        seconds, summaries = burst(fake.url, tmp_path / "shared.db", per_process=50, mix="mixed", limit=25, window=5)
        assert [s["errors"] for s in summaries] == [[], []]
        assert fake.throttled == 0
        calls = len(fake.received)
        assert sum(s["calls"] for s in summaries) == calls
        assert seconds >= (calls - 1) // 25 * 5.0
        landed_once(fake, summaries, "mixed")
