"""Every backend × every write × every fault: the person is told the truth and the write lands exactly once."""

from __future__ import annotations

import os

import pytest

from tests.faultmatrix import TARGETS, rows, run_row


@pytest.mark.parametrize(("backend", "fault"), list(rows()))
def test_the_person_is_told_the_truth_and_each_write_lands_exactly_once(backend, fault, tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)
    verifiable = TARGETS[backend]().verifiable
    wrong = {}
    for write, result in run_row(backend, fault, tmp_path).items():
        if result.false_reports or result.unsettled:
            wrong[write] = f"{result.summary()}: {'; '.join(result.false_reports) or 'still queued'}"
        elif result.expect_refusal:
            if (result.told, result.final) != (["⚠"], 0):
                wrong[write] = f"{result.summary()}: a refusal must be ⚠ at once with nothing written"
        elif result.told[-1] == "?":  # may or may not have landed: only for a backend that cannot be read back
            if verifiable or result.final not in (0, 1):
                wrong[write] = f"{result.summary()}: 'may have landed' from a backend that can be read back"
        elif (result.told[-1], result.final) != ("✅", 1):
            wrong[write] = f"{result.summary()}: must end ✅ with the write held once"
    assert wrong == {}
