"""The fault matrix, printed: every backend × every write × every way a network fails.

    .venv/bin/python bench/faults.py [--backend NAME]

Each cell is a fresh bot driven as Slack drives it (``tests/faultmatrix.py``): a ``/lead``
command while the backend's fake fails in one way, then the outbox runner on a moving
clock until nothing is queued. A cell shows what the person was told, in order
(✅ a card or a DM saying it landed, ⏳ queued, ⚠ refused, ? may or may not have
landed) and ✗ when something was wrong. Then the counts: writes lost, doubled and
falsely reported (✅ before the fake held it, ⚠ after it did) — all three must be 0;
the exit status is 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faultmatrix import FAULTS, TARGETS, WRITES, Result, run_all  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(TARGETS), help="one backend only")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run_all(only=args.backend)
    took = time.perf_counter() - started

    faults = list(FAULTS)
    print(f"{'':24}" + "".join(f"{i + 1:>5}" for i in range(len(faults))))
    for backend in TARGETS:
        for write in WRITES:
            row = [results.get((backend, write, fault)) for fault in faults]
            if all(r is None for r in row):
                continue
            print(f"{backend + ' ' + write:24}" + "".join(_padded(_cell(r), 5) for r in row))
    print()
    for i, fault in enumerate(faults):
        print(f"{i + 1:>3}  {fault}")
    print()
    bad = {cell: r for cell, r in results.items() if not r.ok}
    lost = sum(r.lost for r in results.values())
    doubled = sum(r.doubled for r in results.values())
    false = sum(bool(r.false_reports) for r in results.values())
    unsettled = sum(r.unsettled for r in results.values())
    print(
        f"{len(results)} cells in {took:.1f} s: lost {lost}, doubled {doubled}, falsely reported {false},"
        f" still queued {unsettled}"
    )
    slowest = max((r.settled_after for r in results.values()), default=None)
    if slowest is not None:
        print(f"the slowest queued write settled {slowest.total_seconds() / 60:.1f} min after it was asked")
    for (backend, write, fault), r in bad.items():
        print(f"  ✗ {backend} {write} / {fault}: {r.summary()}; {'; '.join(r.false_reports)}")
    return 1 if bad else 0


def _padded(text: str, width: int) -> str:
    shown = sum(2 if mark in "⏳✅" else 1 for mark in text)  # how wide a terminal draws it
    return " " * max(width - shown, 1) + text


def _cell(result: Result | None) -> str:
    if result is None:
        return "—"
    if not result.ok:
        return "✗"
    return "".join(result.told)


if __name__ == "__main__":
    raise SystemExit(main())
