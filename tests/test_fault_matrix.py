"""Every backend × every write × every fault: the person is told the truth and the write lands exactly once."""

from __future__ import annotations

import os

import pytest

from tests.faultmatrix import cells, run_cell


@pytest.mark.parametrize(("backend", "write", "fault"), list(cells()))
def test_the_person_is_told_the_truth_and_the_write_lands_exactly_once(backend, write, fault, tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)
    result = run_cell(backend, write, fault, tmp_path)
    assert not result.false_reports, result.summary()
    assert not result.unsettled, result.summary()
    if result.expect_refusal:
        assert (result.told, result.final) == (["⚠"], 0), result.summary()
    else:
        assert result.final == 1, result.summary()
        assert result.told[-1] == "✅", result.summary()
