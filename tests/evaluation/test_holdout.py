"""P5 (multi-item holdout): the splits, and every metric against a naive per-user reference."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.data.splits import random_holdout
from movierec.errors import EvaluationError
from movierec.evaluation import holdout as H


class TableScorer:
    name = "table"

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float32)

    def score_all(self, user_idx):
        return self.table[user_idx]


def _full(seed: int, n_users: int = 30, n_items: int = 50) -> Dataset:
    rng = np.random.default_rng(seed)
    pairs = rng.random((n_users, n_items - 3)) < 0.3  # the last 3 items are never rated
    pairs[:, :2] = True
    pairs[0, :] = False
    pairs[0, :2] = True  # user 0 has 2 ratings: one held out, one kept
    u, i = np.nonzero(pairs)
    ratings = pl.DataFrame({"user_id": u + 1, "item_id": i + 1, "rating": np.full(len(u), 3.0),
                            "timestamp": rng.integers(0, 8, len(u))})
    names = np.array(["A", "B", "C", "D"])
    genres = [list(names[rng.random(4) < 0.4]) for _ in range(n_items)]
    items = pl.DataFrame({"item_id": np.arange(1, n_items + 1), "genres": genres},
                         schema_overrides={"genres": pl.List(pl.String)})
    return Dataset.from_frames("rnd", ratings, items)


def test_splits_hold_out_a_quarter_per_user():
    full = _full(0)
    rnd = H.holdout_split(full, 0.25, "random", seed=42)
    ref = random_holdout(full, test_fraction=0.25, seed=42)  # the project's split, reused
    np.testing.assert_array_equal(rnd.test.item_idx, ref.test.item_idx)
    tmp = H.holdout_split(full, 0.25, "temporal")
    for split in (rnd, tmp):
        n = full.user_counts
        held = np.bincount(split.test.user_idx, minlength=full.n_users)
        np.testing.assert_array_equal(held, np.minimum(np.floor(0.25 * n + 0.5), n - 1))
        assert (held >= 1).all()  # everyone has >= 2 ratings here: at least one held out
    # temporal: every held-out rating is at or after the user's latest train rating (ties by id)
    for u in range(full.n_users):
        tr = tmp.train.user_idx == u
        te = tmp.test.user_idx == u
        last_train = max(zip(tmp.train.timestamp[tr], tmp.train.item_idx[tr], strict=True))
        first_test = min(zip(tmp.test.timestamp[te], tmp.test.item_idx[te], strict=True))
        assert last_train < first_test
    with pytest.raises(EvaluationError, match="method"):
        H.holdout_split(full, 0.25, "latest")
    with pytest.raises(EvaluationError, match="between 0 and 1"):
        H.holdout_split(full, 1.5)


def _naive(table, split, k):
    """P5 by the book, one user at a time, in plain Python."""
    g = [set(x) for x in split.train.items.get_column("genres").to_list()]

    def jac(a, b):
        return len(g[a] & g[b]) / len(g[a] | g[b]) if g[a] | g[b] else 0.0

    catalogue = sorted(set(split.train.item_idx.tolist()) | set(split.test.item_idx.tolist()))
    train_pop = {i: len(set(split.train.user_idx[split.train.item_idx == i].tolist()))
                 for i in catalogue}
    n_train_users = len(set(split.train.user_idx.tolist()))
    disc = [1 / math.log2(p + 2) for p in range(k)]
    out = {key: [] for key in ("P", "R", "N", "M", "MS", "HR", "D", "G")}
    recs = []
    for u in sorted(set(split.test.user_idx.tolist())):
        mine = set(split.train.item_idx[split.train.user_idx == u].tolist())
        targets = set(split.test.item_idx[split.test.user_idx == u].tolist())
        cand = [i for i in catalogue if i not in mine]
        top = sorted(cand, key=lambda i: (train_pop[i] == 0,
                                          -table[u, i] if train_pop[i] else 0, i))[:k]
        recs += top
        hits = [p for p, i in enumerate(top) if i in targets]
        cap = min(k, len(targets))
        out["P"].append(len(hits) / k)
        out["R"].append(len(hits) / len(targets))
        out["N"].append(sum(disc[p] for p in hits) / sum(disc[:cap]))
        ap = sum((n + 1) / (p + 1) for n, p in enumerate(hits))
        out["M"].append(ap / cap)
        out["MS"].append(ap / len(targets))
        out["HR"].append(bool(hits))
        pairs = [(a, b) for x, a in enumerate(top) for b in top[x + 1:]]
        out["D"].append(np.mean([1 - jac(a, b) for a, b in pairs]))
        for t in sorted(targets):
            idcg = sum(x * d for x, d in zip(sorted((jac(i, t) for i in cand), reverse=True),
                                             disc, strict=False))
            if idcg > 0:
                out["G"].append(sum(jac(i, t) * d for i, d in zip(top, disc, strict=False)) / idcg)
    nov = np.mean([-math.log2(max(train_pop[i], 1) / n_train_users) for i in recs])
    return {f"Precision@{k}": np.mean(out["P"]), f"Recall@{k}": np.mean(out["R"]),
            f"NDCG@{k}": np.mean(out["N"]), f"MAP@{k}": np.mean(out["M"]),
            f"MAP-MSR@{k}": np.mean(out["MS"]), f"HR@{k}": np.mean(out["HR"]),
            f"Diversity@{k}": np.mean(out["D"]), f"GenreNDCG@{k}": np.mean(out["G"]),
            f"Coverage@{k}": len(set(recs)) / len(catalogue), f"Novelty@{k}": nov}


@pytest.mark.parametrize(("seed", "method"), [(0, "random"), (1, "random"), (2, "temporal")])
def test_p5_matches_naive_reference(seed, method):
    full = _full(seed)
    split = H.holdout_split(full, 0.3, method, seed=seed)
    table = np.random.default_rng(seed + 5).integers(0, 4, (full.n_users, full.n_items))
    for k in (3, 10):
        want = _naive(table, split, k)
        for batch_size in (1, 4, None):
            got = H.evaluate_holdout(TableScorer(table), split, k, batch_size=batch_size)
            for key, value in want.items():
                assert got[key] == pytest.approx(value), (k, key)
    got = H.evaluate_holdout(TableScorer(table), split, 3, ks=(10,))  # extra cut-offs
    assert got["NDCG@10"] == pytest.approx(_naive(table, split, 10)["NDCG@10"])
    assert got["users"] == full.n_users
    assert got["HeldOutPerUser"] == pytest.approx(split.test.n_ratings / full.n_users)


def test_validation_split_never_touches_test():
    full = _full(3)
    split = H.holdout_split(full, 0.25, "random", seed=1)
    valid = H.validation_split(split, 0.25, "random", seed=0)
    assert valid.train.n_ratings + valid.test.n_ratings == split.train.n_ratings
    test_pairs = set(zip(split.test.user_idx.tolist(), split.test.item_idx.tolist(),
                         strict=True))
    valid_pairs = set(zip(valid.test.user_idx.tolist(), valid.test.item_idx.tolist(),
                          strict=True))
    assert not test_pairs & valid_pairs


@pytest.mark.parametrize("seed", [0, 1])
def test_p5_splits_hits_by_popularity_as_the_book_says(seed):
    """TailHR/HeadHR: each held-out item counts once; the tail is the least-rated fifth of the
    movies rated in train or held out (ties by index), as P2's."""
    full = _full(seed)
    split = H.holdout_split(full, 0.3, "random", seed=seed)
    table = np.random.default_rng(seed + 5).integers(0, 4, (full.n_users, full.n_items))
    k = 5
    pop = np.zeros(full.n_items, dtype=int)
    for _u, i in set(zip(split.train.user_idx.tolist(), split.train.item_idx.tolist(),
                        strict=True)):
        pop[i] += 1
    known = sorted(set(split.train.item_idx.tolist()) | set(split.test.item_idx.tolist()))
    tail = set(sorted(known, key=lambda i: (pop[i], i))[: round(0.2 * len(known))])
    hit = {True: [], False: []}
    for u in sorted(set(split.test.user_idx.tolist())):
        mine = set(split.train.item_idx[split.train.user_idx == u].tolist())
        cand = [i for i in known if i not in mine]
        top = sorted(cand, key=lambda i: (pop[i] == 0, -table[u, i] if pop[i] else 0, i))[:k]
        for t in split.test.item_idx[split.test.user_idx == u].tolist():
            hit[t in tail].append(t in top)
    got = H.evaluate_holdout(TableScorer(table), split, k)
    assert got["TailHR@5"] == pytest.approx(np.mean(hit[True]))
    assert got["HeadHR@5"] == pytest.approx(np.mean(hit[False]))
    assert got["TailTargets"] == pytest.approx(len(hit[True]) / (len(hit[True]) + len(hit[False])))
