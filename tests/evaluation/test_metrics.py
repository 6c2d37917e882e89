"""Metrics against small hand-computed cases (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.errors import EvaluationError
from movierec.evaluation import metrics as m

LOG3 = math.log2(3)  # discount at position 1 is 1 / log2(3)


def test_hit_rate_and_ndcg_count_rank_below_k():
    ranks = np.array([0, 3, 9, 10, 50])
    # ranks < 10: 0, 3, 9 -> 3 of 5
    assert m.hit_rate(ranks, 10) == pytest.approx(3 / 5)
    # 1/log2(0+2) + 1/log2(3+2) + 1/log2(9+2) + 0 + 0, over 5
    expected = (1 / math.log2(2) + 1 / math.log2(5) + 1 / math.log2(11)) / 5
    assert m.ndcg(ranks, 10) == pytest.approx(expected)
    # k = 1: only rank 0 counts, with gain 1
    assert m.hit_rate(ranks, 1) == pytest.approx(1 / 5)
    assert m.ndcg(ranks, 1) == pytest.approx(1 / 5)


def test_mrr_full_and_truncated():
    ranks = np.array([0, 1, 3])
    # (1/1 + 1/2 + 1/4) / 3
    assert m.mrr(ranks) == pytest.approx((1 + 0.5 + 0.25) / 3)
    # at k = 2 the rank-3 target contributes 0
    assert m.mrr(ranks, k=2) == pytest.approx((1 + 0.5) / 3)


def test_rank_metrics_reject_bad_ranks_and_return_nan_for_none():
    with pytest.raises(EvaluationError, match="non-negative"):
        m.hit_rate(np.array([0, -1]), 10)
    with pytest.raises(EvaluationError, match="non-negative integers"):
        m.ndcg(np.array([0.5]), 10)
    with pytest.raises(EvaluationError, match="1-d"):
        m.mrr(np.zeros((2, 2), dtype=int))
    assert math.isnan(m.hit_rate(np.array([], dtype=np.int64), 10))


def _relevant() -> sp.csr_matrix:
    # list 0: relevant {2, 7}; list 1: {5}; list 2: nothing (8 items)
    dense = np.zeros((3, 8), dtype=bool)
    dense[0, [2, 7]] = True
    dense[1, 5] = True
    return sp.csr_matrix(dense)


TOPK = np.array([[1, 2, 3], [4, 5, -1], [0, 1, 2]])


def test_precision_counts_hits_over_k_and_empty_slots_as_misses():
    # hits @3: list 0 {2} -> 1/3, list 1 {5} -> 1/3 (the -1 slot is a miss), list 2 -> 0
    assert m.precision_at_k(TOPK, _relevant()) == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    # @2: list 0 [1, 2] -> 1/2, list 1 [4, 5] -> 1/2, list 2 -> 0
    assert m.precision_at_k(TOPK, _relevant(), k=2) == pytest.approx((0.5 + 0.5) / 3)
    # a dense boolean matrix gives the same
    assert m.precision_at_k(TOPK, _relevant().toarray()) == pytest.approx(2 / 9)


def test_recall_leaves_out_lists_without_relevant_items():
    # list 0: 1 of 2 relevant found; list 1: 1 of 1; list 2 has none -> left out
    assert m.recall_at_k(TOPK, _relevant()) == pytest.approx((0.5 + 1.0) / 2)
    # @1: list 0 [1] -> 0, list 1 [4] -> 0
    assert m.recall_at_k(TOPK, _relevant(), k=1) == 0.0


def test_precision_rejects_misaligned_relevance():
    with pytest.raises(EvaluationError, match="2 rows but there are 3"):
        m.precision_at_k(TOPK, _relevant()[:2])


def test_coverage_counts_distinct_items_ignoring_empty_slots():
    # distinct {0, 1, 2} of a 10-item catalogue
    assert m.coverage(np.array([[0, 1], [1, 2], [-1, 2]]), 10) == pytest.approx(0.3)
    with pytest.raises(EvaluationError):
        m.coverage(TOPK, 0)


# genres A, B, C; item 0 {A,B}, 1 {A}, 2 {}, 3 {}, 4 {C}
GENRES = sp.csr_matrix(
    np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32)
)


def test_diversity_hand_case():
    topk = np.array([[0, 1, 2], [2, 3, -1], [4, -1, -1]])
    # list 0: (0,1) J = |{A}|/|{A,B}| = 1/2 -> 0.5; (0,2) J = 0/2 -> 1; (1,2) J = 0/1 -> 1
    #         mean over its 3 pairs = 2.5 / 3
    # list 1: (2,3) two empty genre sets: J = 0 -> 1 (the -1 slot forms no pair)
    # list 2: a single item, no pair -> left out
    assert m.diversity(topk, GENRES) == pytest.approx((2.5 / 3 + 1.0) / 2)
    # a full list of 10 has 45 pairs: ten copies of item 1 are not diverse at all
    assert m.diversity(np.full((1, 10), 1), GENRES) == 0.0


def test_novelty_hand_case():
    counts = np.array([10, 5, 0, 1, 2])
    # items 0, 1, 2 recommended; n_users = 10:
    # -log2(10/10) = 0, -log2(5/10) = 1, item 2 has 0 users -> clipped to 1: -log2(1/10)
    expected = (0 + 1 + math.log2(10)) / 3
    assert m.novelty(np.array([[0, 1], [2, -1]]), counts, 10) == pytest.approx(expected)


def test_genre_ndcg_hand_case():
    topk = np.array([[4, 0], [4, 1], [0, 1], [0, 1]])
    test_items = np.array([0, 4, 2, 1])
    cand = np.ones((4, 5), dtype=bool)
    cand[0, 1] = False  # user 0 trained on item 1
    # user 0, test {A,B}: gains 0:1, 1:1/2 (not a candidate), 2:0, 3:0, 4:0
    #   DCG = 0 + 1/log2(3); IDCG = 1 (only item 0 has gain among candidates)
    # user 1, test {C}: gains 4:1, all others 0. DCG = 1 + 0; IDCG = 1
    # user 2, test {} : every gain 0 -> IDCG 0 -> left out
    # user 3, test {A}: gains 0:1/2, 1:1. DCG = 1/2 + 1/log2(3); IDCG = 1 + (1/2)/log2(3)
    u0 = 1 / LOG3
    u3 = (0.5 + 1 / LOG3) / (1 + 0.5 / LOG3)
    assert m.genre_ndcg(topk, test_items, cand, GENRES) == pytest.approx((u0 + 1 + u3) / 3)
    dcg, idcg = m.genre_dcg(topk, test_items, cand, GENRES)
    assert idcg[2] == 0.0
    assert idcg[0] == pytest.approx(1.0)


def test_genre_gains_are_jaccard_with_empty_pairs_zero():
    g = m.genre_gains(np.array([0, 2]), GENRES)
    # row 0 vs {A,B}: {A,B} 1, {A} 1/2, {} 0, {} 0, {C} 0/3
    np.testing.assert_allclose(g[0], [1, 0.5, 0, 0, 0])
    # row 1 is the empty set: Jaccard with anything (empty included) is 0
    np.testing.assert_allclose(g[1], 0.0)


def test_rmse_mae_hand_case():
    # errors 1, 0, 2: MAE = 3/3; RMSE = sqrt((1 + 0 + 4) / 3)
    assert m.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert m.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    with pytest.raises(EvaluationError, match="predictions"):
        m.rmse([1, 2], [1, 2, 3])
    with pytest.raises(EvaluationError, match="NaN"):
        m.mae([1, 2], [1, float("nan")])


def test_top_k_tie_rule_and_short_rows():
    s = np.array([[1.0, 3, 3, -np.inf, 3, 0], [-np.inf, 2, -np.inf, -np.inf, -np.inf, 2]])
    top = m.top_k(s, 4)
    # row 0: three 3s in ascending column order, then 1.0
    # row 1: only two candidates; the rest are empty slots
    np.testing.assert_array_equal(top, [[1, 2, 4, 0], [1, 5, -1, -1]])
    np.testing.assert_array_equal(m.top_k(s[:, :2], 3), [[1, 0, -1], [1, -1, -1]])


@pytest.mark.parametrize("seed", range(4))
def test_top_k_matches_a_full_stable_sort_on_wide_rows(seed):
    rng = np.random.default_rng(seed)
    # wide rows (the chunk pre-filter path), few distinct values (ties), some -inf
    s = rng.integers(0, 6, (50, 1000)).astype(np.float32)
    s[rng.random(s.shape) < 0.3] = -np.inf
    s[0, :] = -np.inf
    s[0, [5, 900]] = 1  # a row with only two candidates
    s[1, :] = 2.0  # all tied: the lowest columns win
    expected = np.argsort(-s, axis=1, kind="stable")[:, :10]
    expected = np.where(np.take_along_axis(s, expected, 1) == -np.inf, -1, expected)
    np.testing.assert_array_equal(m.top_k(s, 10), expected)
    np.testing.assert_array_equal(m.top_k(s, 10)[0, :3], [5, 900, -1])
    np.testing.assert_array_equal(m.top_k(s, 10)[1], np.arange(10))


@pytest.mark.parametrize("seed", range(4))
def test_top_values_matches_a_full_sort(seed):
    rng = np.random.default_rng(seed)
    x = rng.choice([0.0, 0.2, 1 / 3, 0.5, 1.0], size=(40, 700), p=[0.8, 0.1, 0.05, 0.04, 0.01])
    x[3] = 0.0
    x[4, -1] = 7.0  # the largest value in the tail past the last full chunk
    np.testing.assert_array_equal(m.top_values(x, 10), -np.sort(-x, axis=1)[:, :10])
    np.testing.assert_array_equal(m.top_values(x[:, :20], 10), -np.sort(-x[:, :20], axis=1)[:, :10])


def test_genre_dcg_from_set_counts_equals_the_mask_form():
    """P2 at ML-20M counts candidates per genre set instead of building a users x items mask;
    the figures must be the same floats."""
    rng = np.random.default_rng(0)
    genres = sp.csr_matrix(rng.random((300, 6)) < 0.3)
    cand = rng.random((40, 300)) < 0.5
    cand[0] = False
    cand[0, :3] = True  # fewer candidates than the list is long
    test_items = rng.integers(0, 300, 40)
    topk = np.stack([rng.choice(np.flatnonzero(c), min(10, c.sum()), replace=False).tolist()
                     + [-1] * (10 - min(10, c.sum())) for c in cand])
    sets = m.genre_sets(genres)
    counts = np.stack([np.bincount(sets[1][c], minlength=len(sets[0])) for c in cand])
    want = m.genre_dcg(topk, test_items, cand, genres, sets=sets)
    got = m.genre_dcg_from_counts(topk, test_items, counts, sets)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
