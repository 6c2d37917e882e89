"""Multi-target list metrics (P4 / P5) on hand-computed lists."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import percentileofscore

from movierec.errors import EvaluationError
from movierec.evaluation import list_metrics as L

LOG3 = math.log2(3)

# list 0: [hit, miss, hit] of 4 relevant; list 1: [miss, hit, -1] of 1 relevant;
# list 2 has no relevant item (left out of every mean)
TOPK = np.array([[1, 2, 3], [0, 4, -1], [5, 6, 7]])
REL = sp.csr_matrix(np.array([
    [0, 1, 0, 1, 0, 0, 0, 0, 1, 1],
    [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
], dtype=bool))


def test_hand_lists():
    h = L.list_hits(TOPK, REL)
    assert h.hits.tolist() == [[True, False, True], [False, True, False]]
    assert h.n_relevant.tolist() == [4, 1]
    assert L.hit_rate(h, 1) == 0.5 and L.hit_rate(h, 3) == 1.0
    assert L.precision(h, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)  # the empty slot is a miss
    assert L.recall(h, 3) == pytest.approx((2 / 4 + 1) / 2)
    assert L.recall_capped(h, 3) == pytest.approx((2 / 3 + 1) / 2)  # / min(3, 4) and / min(3, 1)
    assert L.recall_capped(h, 2) == pytest.approx((1 / 2 + 1) / 2)
    # NDCG@3: list 0 DCG 1 + 1/2, IDCG 1 + 1/log2(3) + 1/2; list 1 DCG 1/log2(3), IDCG 1
    assert L.ndcg(h, 3) == pytest.approx(((1.5) / (1.5 + 1 / LOG3) + 1 / LOG3) / 2)
    # MAP@3: list 0 (P@1 + P@3) / min(3, 4) = (1 + 2/3) / 3; list 1 P@2 / 1 = 1/2
    assert L.average_precision(h, 3) == pytest.approx(((1 + 2 / 3) / 3 + 0.5) / 2)
    # Microsoft Recommenders' MAP divides by every relevant item: (1 + 2/3) / 4 and 1/2 / 1
    assert L.average_precision(h, 3, by="relevant") == pytest.approx(((1 + 2 / 3) / 4 + 0.5) / 2)
    with pytest.raises(EvaluationError, match="cut-off"):
        L.ndcg(h, 4)


def test_popularity_percentile_is_scipys_weak_percentile():
    rng = np.random.default_rng(0)
    pop = rng.integers(0, 6, 50)  # many ties
    catalogue = rng.random(50) < 0.8
    pct = L.popularity_percentiles(pop, catalogue)
    for i in range(50):
        assert pct[i] == pytest.approx(percentileofscore(pop[catalogue], pop[i], kind="weak"))
    assert pct[np.argmax(np.where(catalogue, pop, -1))] == 100.0
    topk = np.array([[int(np.argmax(pop)), 3, -1]])
    assert L.popularity_percentile(topk, pop, catalogue) == pytest.approx((pct[topk[0, 0]]
                                                                           + pct[3]) / 2)
