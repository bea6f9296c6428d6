"""bench/load.py's core, briefly: a few users on the real ``leadbot run`` with Slack retrying a third of
their requests; nothing is answered as an error, nothing is made or said twice, nothing acked is lost."""

from __future__ import annotations

import asyncio

from bench.load import arguments, run_load


def test_a_short_load_run_has_no_errors_duplicates_or_lost_requests():
    config = arguments(
        ["--users", "4", "--seconds", "1", "--think", "0.15", "--ramp", "0.2", "--warmup", "0"]
        + ["--backend-latency", "0.02", "--retry-share", "0.35", "--drain", "20", "--reply-timeout", "10"]
    )
    report = asyncio.run(run_load(config, "full"))
    assert report.requests >= 12 and report.retries >= 2  # it did work, and Slack did retry
    assert {kind.partition(":")[0] for kind in report.kinds} >= {"new", "press"}
    assert report.errors == {} and report.duplicates == {} and report.lost == {}
    assert report.exit_status == 0 and report.log_problems == []
