"""The store's own top-k agrees with the models' shared top_k, ties, NaN and -inf included."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models.base import top_k
from movierec.serving.store import _best


@pytest.mark.parametrize("seed", range(40))
def test_best_is_top_k(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = rng.integers(-3, 4, size=n).astype(np.float32)  # many ties
    scores[rng.random(n) < 0.1] = np.nan
    scores[rng.random(n) < 0.1] = -np.inf
    allowed = rng.random(n) < 0.7
    k = int(rng.integers(1, 12))
    got = _best(scores, k, allowed)
    want = top_k(scores, k, allowed & ~np.isnan(scores))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
