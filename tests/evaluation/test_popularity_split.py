"""Hit rates split into the least-rated 20% of the catalogue and the rest."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.evaluation.popularity_split import split_hit_rates, tail_items


def test_tail_is_exactly_the_least_rated_fifth_ties_by_index():
    counts = np.array([5, 1, 1, 1, 9, 0, 3, 2, 8, 7])
    catalogue = np.ones(10, dtype=bool)
    catalogue[5] = False  # not in the catalogue: never in the tail
    tail = tail_items(counts, catalogue)
    assert tail.sum() == 2  # round(0.2 * 9)
    np.testing.assert_array_equal(np.flatnonzero(tail), [1, 2])  # the ties at 1: lowest index


def test_hits_are_counted_per_target_in_each_group():
    tail = np.zeros(6, dtype=bool)
    tail[[4, 5]] = True
    topk = np.array([[0, 4, -1], [1, 2, 3]])
    # list 0 wants 4 (tail, hit) and 5 (tail, miss); list 1 wants 2 (head, hit) and 0 (miss)
    got = split_hit_rates(topk, np.array([0, 0, 1, 1]), np.array([4, 5, 2, 0]), tail, k=3)
    assert got == {"TailHR@3": 0.5, "HeadHR@3": 0.5, "TailTargets": 0.5}
    # the cut-off applies: at k = 1 list 0's tail hit is out of reach
    assert split_hit_rates(topk, np.array([0, 0, 1, 1]), np.array([4, 5, 2, 0]), tail,
                           k=1)["TailHR@1"] == 0.0


def test_a_group_without_targets_is_nan():
    got = split_hit_rates(np.array([[0, 1]]), np.array([0]), np.array([1]),
                          np.zeros(3, dtype=bool), k=2)
    assert got["HeadHR@2"] == 1.0 and np.isnan(got["TailHR@2"])
    assert got["TailTargets"] == pytest.approx(0.0)
