"""P4 (new users): a hand-computed case, a naive per-user reference on random data with many ties
and unknown picks, the seeded draws, and implicit's own fold-in as the iALS reference."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.errors import EvaluationError
from movierec.evaluation import newuser as NU

LOG3 = math.log2(3)


class FoldTable:
    """A folding model whose score for a person is the sum of fixed rows ``W[pick]``."""

    name = "foldtable"

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float32)
        self.calls: list[list[int]] = []

    def fold_in(self, item_idx, ratings=None):
        assert ratings is None  # P4 picks are interactions, not stars
        self.calls.append(sorted(int(i) for i in item_idx))
        return self.table[np.unique(item_idx)].sum(axis=0)

    def score_folded(self, state):
        return np.asarray(state, dtype=np.float32)


def _frame(rows):
    return pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"], orient="row")


# ---------------------------------------------------------------------- the hand case
# items idx 0..5 = ids 100..105; item 5 is never rated (outside the catalogue), item 4 is rated by
# the held-out user only (the model has no data for it). Train users 1 {0,1,2}, 2 {0,1}, 3 {0,3}.
# Held-out user 9 rated 3 (t5), 1 (t5), 4 (t2), 2 (t1): in (timestamp, id) order 2, 4, 1, 3.
TRAIN = [(1, 100, 4, 1), (1, 101, 4, 2), (1, 102, 4, 3), (2, 100, 4, 1), (2, 101, 4, 2),
         (3, 100, 4, 1), (3, 103, 4, 2)]
HELD = [(9, 103, 4, 5), (9, 101, 4, 5), (9, 104, 4, 2), (9, 102, 4, 1)]
W = np.zeros((6, 6))
W[2] = [3, 1, 9, 1, 7, 8]  # pick 2 alone: 0 -> 3, then 1 and 3 tie at 1 (id breaks: 1 first)
W[4] = [0, 0, 0, 5, 0, 0]  # the unknown pick still counts for this model


def _hand_split():
    items = pl.DataFrame({"item_id": list(range(100, 106))})
    full = Dataset.from_frames("hand", _frame(TRAIN + HELD), items)
    return NU.split_by_users(full, full.user_index([9]))


def test_p4_hand_case():
    split = _hand_split()
    assert split.train.n_ratings == 7 and split.n_train_users == 3
    np.testing.assert_array_equal(split.catalogue, [1, 1, 1, 1, 1, 0])
    model = FoldTable(W)
    rows = NU.evaluate_p4(model, split, ns=(3, 1, 5), k=2)
    assert [r["n"] for r in rows] == [1, 3, 5]
    assert model.calls == [[2], [1, 2, 4]]  # the first n by (timestamp, id); nobody has 6
    one, three, five = rows
    # n=1: candidates {0, 1, 3, 4}; 4 was never trained -> lowest; top [0, 1]; targets {4, 1, 3}
    assert one["users"] == 1 and one["TargetsPerUser"] == 3
    assert one["HR@2"] == 1.0
    assert one["NDCG@2"] == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))  # IDCG: min(2, 3) hits
    assert one["Recall@2"] == pytest.approx(1 / 2)  # 1 hit / min(2, 3)
    assert one["Coverage@2"] == pytest.approx(2 / 5)
    # train users per item: 0 -> 3, 1 -> 2, 2 -> 1, 3 -> 1, 4 -> 0 (3 train users)
    assert one["Novelty@2"] == pytest.approx((0 - math.log2(2 / 3)) / 2)
    # popularity percentiles over the catalogue [0, 1, 1, 2, 3]: item 0 -> 100, item 1 -> 80
    assert one["PopularityPercentile@2"] == pytest.approx(90)
    assert one["UnknownPicks"] == 0
    # n=3: picks {2, 4, 1}; candidates {0 (3), 3 (1 + 5)}; target {3} is first
    assert three["HR@2"] == 1 and three["NDCG@2"] == 1 and three["Recall@2"] == 1
    assert three["Novelty@2"] == pytest.approx((-math.log2(1 / 3) + 0) / 2)
    assert three["PopularityPercentile@2"] == pytest.approx((60 + 100) / 2)
    assert three["UnknownPicks"] == pytest.approx(1 / 3)
    assert five["users"] == 0 and math.isnan(five["HR@2"])


# ---------------------------------------------------------------------- naive reference
def _random_full(seed: int, hold: float = 0.25) -> Dataset:
    """40 users, 60 items; the last 4 never rated; items 52..55 rated only by users that
    ``hold_out_users(full, hold, seed)`` holds out (the model has no data for them)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 60
    pairs = rng.random((n_users, n_items - 4)) < 0.35  # the last 4 items are never rated
    pairs[:, :2] = True
    held = np.random.default_rng(seed).choice(n_users, round(hold * n_users), replace=False)
    pairs[:, 52:] = False
    pairs[held[:2], 52:] = True
    u, i = np.nonzero(pairs)
    ratings = pl.DataFrame({"user_id": u * 3 + 1, "item_id": i * 2 + 5,
                            "rating": np.full(len(u), 4.0),
                            "timestamp": rng.integers(0, 6, len(u))})  # many ties in time
    names = np.array(["A", "B", "C", "D"])
    draw = np.random.default_rng(seed + 100)  # its own stream: the ratings stay as they were
    genres = [list(names[draw.random(4) < 0.4]) for _ in range(n_items)]  # some genre-less
    items = pl.DataFrame({"item_id": np.arange(n_items) * 2 + 5, "genres": genres},
                         schema_overrides={"genres": pl.List(pl.String)})
    return Dataset.from_frames("rnd", ratings, items)


def _jaccard(g, a, b):
    return len(g[a] & g[b]) / len(g[a] | g[b]) if g[a] | g[b] else 0.0


def _naive(table, full, held_ids, n, k):
    """P4's first-n form by the book, one user at a time, in plain Python."""
    held = set(held_ids)
    ratings = list(zip(full.user_ids[full.user_idx].tolist(), full.item_idx.tolist(),
                       full.timestamp.tolist(), strict=True))
    train = [(u, i) for u, i, _ in ratings if u not in held]
    catalogue = sorted({i for _, i, _ in ratings})
    pop = {i: len({u for u, j in train if j == i}) for i in catalogue}
    n_train_users = len({u for u, _ in train})
    g = [set(x) for x in full.items.get_column("genres").to_list()]
    disc = [1 / math.log2(p + 2) for p in range(k)]
    hr, nd, rc, tops, div, gnd = [], [], [], [], [], []
    for user in sorted(held):
        mine = sorted(((t, full.item_ids[i], i) for u, i, t in ratings if u == user))
        if len(mine) < n + 1:
            continue
        picks = [i for _, _, i in mine[:n]]
        targets = {i for _, _, i in mine[n:]}
        scores = np.asarray(table)[sorted(set(picks))].sum(axis=0)
        cand = [i for i in catalogue if i not in picks]
        top = sorted(cand, key=lambda i: (pop[i] == 0, -scores[i] if pop[i] else 0, i))[:k]
        hits = [p for p, i in enumerate(top) if i in targets]
        ideal = sum(1 / math.log2(p + 2) for p in range(min(k, len(targets))))
        hr.append(bool(hits))
        nd.append(sum(1 / math.log2(p + 2) for p in hits) / ideal)
        rc.append(len(hits) / min(k, len(targets)))
        tops.append(top)
        pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1:]]
        div.append(np.mean([1 - _jaccard(g, a, b) for a, b in pairs]))
        for t in sorted(targets):  # genre-NDCG against each target, ideal from the candidates
            ideal = sorted((_jaccard(g, i, t) for i in cand), reverse=True)
            idcg = sum(x * d for x, d in zip(ideal, disc, strict=False))
            if idcg > 0:
                gnd.append(sum(_jaccard(g, i, t) * d for i, d in zip(top, disc, strict=False))
                           / idcg)
    recs = [i for top in tops for i in top]
    pct = {i: 100 * sum(pop[c] <= pop[i] for c in catalogue) / len(catalogue) for i in catalogue}
    return {
        "users": len(tops), f"HR@{k}": np.mean(hr), f"NDCG@{k}": np.mean(nd),
        f"Recall@{k}": np.mean(rc), f"Coverage@{k}": len(set(recs)) / len(catalogue),
        f"Novelty@{k}": np.mean([-math.log2(max(pop[i], 1) / n_train_users) for i in recs]),
        f"PopularityPercentile@{k}": np.mean([pct[i] for i in recs]),
        f"Diversity@{k}": np.mean(div), f"GenreNDCG@{k}": np.mean(gnd),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_p4_matches_naive_reference(seed):
    full = _random_full(seed)
    split = NU.hold_out_users(full, 0.25, seed)
    # the protocol's draw: default_rng(seed).choice over the users in ascending id order
    expected = np.random.default_rng(seed).choice(np.sort(full.user_ids), 10, replace=False)
    np.testing.assert_array_equal(full.user_ids[split.users], np.sort(expected))
    assert not np.isin(split.train.user_idx, split.users).any()
    assert split.train.n_ratings + split.heldout.n_ratings == full.n_ratings
    rng = np.random.default_rng(seed + 10)
    table = rng.integers(0, 3, (full.n_items, full.n_items))  # ties everywhere
    unknown = np.flatnonzero((split.item_user_counts == 0) & split.catalogue)
    for n in (1, 3, 20):
        for k in (5, 10):
            for batch_size in (1, 3, None):  # blocks of people change nothing
                got = NU.evaluate_p4(FoldTable(table), split, ns=(n,), k=k,
                                     batch_size=batch_size)[0]
                want = _naive(table, full, set(full.user_ids[split.users].tolist()), n, k)
                for key, value in want.items():
                    assert got[key] == pytest.approx(value), (n, k, key)
    np.testing.assert_array_equal(unknown, [52, 53, 54, 55])
    assert NU.evaluate_p4(FoldTable(table), split, ns=(20,))[0]["UnknownPicks"] > 0


def test_vae_form_draws_80_20_per_user_and_scores_by_the_book():
    full = _random_full(3)
    split = NU.hold_out_users(full, 0.25, 3)
    rng = np.random.default_rng(3)
    rng.choice(np.sort(full.user_ids), 10, replace=False)
    np.testing.assert_array_equal(split.keys, rng.random(split.heldout.n_ratings))
    people = NU.vae_people(split)
    ho = split.heldout
    for j, u in enumerate(people.users):
        rows = np.flatnonzero(ho.user_idx == u)
        n_t = int(0.2 * len(rows))
        want_targets = np.sort(ho.item_idx[rows[np.argsort(split.keys[rows])[:n_t]]])
        targets = people.target_items[people.target_ptr[j]:people.target_ptr[j + 1]]
        picks = people.pick_items[people.pick_ptr[j]:people.pick_ptr[j + 1]]
        np.testing.assert_array_equal(np.sort(targets), want_targets)
        assert len(picks) + len(targets) == len(rows) and not np.isin(picks, targets).any()
    # a table scorer: NDCG@100 and recall@20/50 against a plain loop
    table = np.random.default_rng(4).random((full.n_items, full.n_items))
    res = NU.evaluate_p4_vae(FoldTable(table), split)
    pop = split.item_user_counts
    nd, r20 = [], []
    for j in range(len(people)):
        picks = set(people.pick_items[people.pick_ptr[j]:people.pick_ptr[j + 1]].tolist())
        targets = set(people.target_items[people.target_ptr[j]:people.target_ptr[j + 1]].tolist())
        s = table[sorted(picks)].sum(axis=0)
        cand = [i for i in np.flatnonzero(split.catalogue) if i not in picks]
        top = sorted(cand, key=lambda i: (pop[i] == 0, -s[i] if pop[i] else 0, i))[:100]
        hits = [p for p, i in enumerate(top) if i in targets]
        nd.append(sum(1 / math.log2(p + 2) for p in hits)
                  / sum(1 / math.log2(p + 2) for p in range(min(100, len(targets)))))
        r20.append(sum(p < 20 for p in hits) / min(20, len(targets)))
    assert res["users"] == len(people)
    assert res["NDCG@100"] == pytest.approx(np.mean(nd))
    assert res["Recall@20"] == pytest.approx(np.mean(r20))


def test_p4_errors_say_what_is_wrong():
    full = _random_full(0)
    with pytest.raises(EvaluationError, match="between 0 and 1"):
        NU.hold_out_users(full, 1.0)
    with pytest.raises(EvaluationError, match="at least one on each side"):
        NU.hold_out_users(full, 0.001)
    split = NU.hold_out_users(full, 0.2)
    with pytest.raises(EvaluationError, match="at least one pick"):
        NU.evaluate_p4(FoldTable(np.zeros((60, 60))), split, ns=(0,))

    class Broken(FoldTable):
        def score_folded(self, state):
            return np.full(3, np.nan, dtype=np.float32)

    with pytest.raises(EvaluationError, match="shape"):
        NU.evaluate_p4(Broken(np.zeros((60, 60))), split, ns=(1,))


# ---------------------------------------------------------------------- iALS reference fold-in
def test_ials_fold_in_matches_implicits_recalculate_user():
    """Our closed-form iALS fold-in and implicit's recalculate_user give the same P4 figures."""
    from movierec.models.base import create

    full = _random_full(5)
    split = NU.hold_out_users(full, 0.25, 0)
    ours = create("ials", factors=8, iterations=5).fit(split.train)
    ref = create("ials-implicit", factors=8, iterations=5).fit(split.train)
    np.testing.assert_array_equal(ours.item_factors_, ref.item_factors_)  # same training
    picks = split.heldout.item_idx[:4]
    np.testing.assert_allclose(ours.fold_in(picks), ref.fold_in(picks), rtol=1e-4, atol=1e-5)
    # and implicit's recommend(..., recalculate_user=True) gives our recommend_folded list
    ids, _ = ref.recommend_with_library(picks, k=10)
    np.testing.assert_array_equal(ids, ours.recommend_folded(ours.fold_in(picks), 10, picks)[0])
    a = NU.evaluate_p4(ours, split, ns=(1, 5))
    b = NU.evaluate_p4(ref, split, ns=(1, 5))
    for x, y in zip(a, b, strict=True):
        for key in ("HR@10", "NDCG@10", "Recall@10", "Coverage@10"):
            assert x[key] == pytest.approx(y[key])
