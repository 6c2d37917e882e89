"""The fault-injection suite's seeded sample (``benchmarks/bench_faults.py`` runs 50 kills per
case): a process SIGKILLed at a random moment while it writes leaves the old output or the new
one, whole, never deletes the user's file beside it, and the next run succeeds with nothing left
behind."""

from __future__ import annotations

import fault_suite
import pytest

TRIALS = 2


@pytest.mark.parametrize("case", list(fault_suite.CASES))
def test_a_killed_writer_leaves_the_old_or_the_new_output(case, tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache"))
    counts = fault_suite.run_case(case, TRIALS, tmp_path / "work", seed=14)
    bad = {k: v for k, v in counts.items() if k.startswith(fault_suite.BAD)}
    assert bad == {}, fault_suite.table({case: counts}, TRIALS)
    whole = sum(v for k, v in counts.items() if k.split(" (")[0] in ("old", "new", "absent"))
    assert whole == TRIALS
