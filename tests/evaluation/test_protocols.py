"""P1 / P2 / P3 on hand-computed cases, against a naive per-user reference, and the P1 oracle
on the fixed evaluation files (most-popular model)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import movierec.progress as progress_module
from movierec.data.dataset import Dataset
from movierec.errors import EvaluationError
from movierec.evaluation import protocols as P

LOG3 = math.log2(3)

try:  # engineer D's Split; the protocols only need its attributes
    from movierec.data.splits import Split
except ImportError:  # pragma: no cover - before splits.py lands

    @dataclass(frozen=True, eq=False)
    class Split:  # type: ignore[no-redef]
        name: str
        train: Dataset
        test: Dataset
        valid: Dataset | None = None
        negatives: np.ndarray | None = None
        valid_negatives: np.ndarray | None = None


class TableScorer:
    """A model whose scores are a fixed ``(n_users, n_items)`` table."""

    name = "table"
    predicts_ratings = False

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float32)

    def score(self, user_idx, item_idx):
        return self.table[user_idx, item_idx]

    def score_all(self, user_idx):
        return self.table[user_idx]


class Popularity:
    """Most popular: score = number of train users of the item (the P1 oracle model)."""

    def __init__(self, train: Dataset):
        self.counts = train.item_counts.astype(np.float32)

    def score(self, user_idx, item_idx):
        return self.counts[item_idx]

    def score_all(self, user_idx):
        return np.tile(self.counts, (len(user_idx), 1))


def _parts(full: Dataset, rows_by_part: dict[str, np.ndarray]) -> dict[str, Dataset]:
    return {p: full.subset(np.isin(np.arange(full.n_ratings), r), f"t/{p}")
            for p, r in rows_by_part.items()}


# ---------------------------------------------------------------------- the tiny hand case
# items idx 0..6 = ids 100..106; genres: 0 {A,B}, 1 {A}, 2 {}, 3 {B}, 4 {B,C}, 5 {A,C},
# 6 {A,C} (never rated: outside the catalogue). users idx 0..2 = ids 10, 20, 30.
# train: user 0 {1, 3}, user 1 {0, 4}, user 2 {0}; test: user 0 -> 0, user 1 -> 2, user 2 -> 5.
# items 2 and 5 appear only in test: the model never saw them, so they score lowest.
ITEMS = pl.DataFrame({
    "item_id": list(range(100, 107)),
    "genres": [["A", "B"], ["A"], [], ["B"], ["B", "C"], ["A", "C"], ["A", "C"]],
})
TRAIN = [(10, 101, 1), (10, 103, 2), (20, 100, 1), (20, 104, 2), (30, 100, 1)]
TEST = [(10, 100, 9), (20, 102, 9), (30, 105, 9)]
SCORES = [
    [0.5, 9, 0.5, 9, 0.2, 8, 7],  # user 0: candidates {0,2,4,5}; 2, 5 unseen -> lowest
    [9, 1, 3, 1, 9, 1, 1],  # user 1: candidates {1,2,3,5}
    [5, 2, 2, 2, 2, 9, 9],  # user 2: candidates {1,2,3,4,5}
]


def _tiny() -> tuple[Dataset, Split]:
    rows = [(u, i, 4.0, t) for u, i, t in TRAIN + TEST]
    ratings = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"], orient="row")
    full = Dataset.from_frames("tiny", ratings, ITEMS)
    is_test = full.timestamp == 9
    split = Split("tiny", full.subset(~is_test, "tiny/train"), full.subset(is_test, "tiny/test"))
    return full, split


def test_p1_hand_case_ties_count_against_the_model():
    full, split = _tiny()
    negatives = np.array([[1, 2, 3], [0, 1, 3], [0, 1, 6]], dtype=np.int32)
    table = np.zeros((3, 7))
    # columns: the test item (0, 2, 5), then the row's negatives
    table[0, [0, 1, 2, 3]] = [0.5, 0.9, 0.5, 0.1]  # 0.9 and the tied 0.5 beat it: rank 2
    table[1, [2, 0, 1, 3]] = [0.7, 0.1, 0.2, 0.3]  # rank 0
    table[2, [5, 0, 1, 6]] = [0.0, 1, 1, 1]  # rank 3
    res = P.evaluate_p1(TableScorer(table), replace(split, negatives=negatives), k=3, ks=(1,))
    np.testing.assert_array_equal(
        P.ranks_p1(TableScorer(table), replace(split, negatives=negatives)), [2, 0, 3]
    )
    assert res["HR@1"] == pytest.approx(1 / 3)
    assert res["HR@3"] == pytest.approx(2 / 3)
    # NDCG@3 = (1/log2(2+2) + 1/log2(0+2) + 0) / 3
    assert res["NDCG@3"] == pytest.approx((0.5 + 1) / 3)
    # MRR = (1/3 + 1/1 + 1/4) / 3
    assert res["MRR"] == pytest.approx((1 / 3 + 1 + 1 / 4) / 3)
    # small score calls give the same ranks
    res_small = P.evaluate_p1(
        TableScorer(table), replace(split, negatives=negatives), k=3, ks=(1,), pairs_per_call=4
    )
    assert res_small == res


def test_p2_hand_case():
    _, split = _tiny()
    fr = P.rank_full(TableScorer(SCORES), split, k=2)
    # user 0: test 0 (0.5) vs {2: low, 4: 0.2, 5: low} -> rank 0; top [0, 4]
    # user 1: test 2 is unseen (low) vs {1: 1, 3: 1, 5: low} -> rank 3 (ties count against);
    #         top: 1 and 3 tie at 1 -> ascending id [1, 3]
    # user 2: test 5 unseen (low) vs {1: 2, 2: low, 3: 2, 4: 2} -> rank 4; top [1, 3]
    #         (4 ties with them but loses on id; 0 scores 5 but is a train item)
    np.testing.assert_array_equal(fr.ranks, [0, 3, 4])
    np.testing.assert_array_equal(fr.topk, [[0, 4], [1, 3], [1, 3]])
    assert fr.catalogue_size == 6  # item 6 was never rated
    res = P.evaluate_p2(TableScorer(SCORES), split, k=2)
    assert res["HR@2"] == pytest.approx(1 / 3)
    assert res["NDCG@2"] == pytest.approx(1 / 3)
    assert res["MRR"] == pytest.approx((1 + 1 / 4 + 1 / 5) / 3)
    # precision: user 0 finds 1 of 2 slots, others 0 -> (1/2) / 3; recall (1 + 0 + 0) / 3
    assert res["Precision@2"] == pytest.approx(1 / 6)
    assert res["Recall@2"] == pytest.approx(1 / 3)
    # distinct {0, 4, 1, 3} of 6 catalogue items
    assert res["Coverage@2"] == pytest.approx(4 / 6)
    # pairs: (0,4) {A,B}~{B,C}: J 1/3 -> 2/3; (1,3) {A}~{B}: J 0 -> 1 (twice)
    assert res["Diversity@2"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    # pop over 3 train users: item 0 -> 2 users, items 1, 3, 4 -> 1 user; 6 slots
    assert res["Novelty@2"] == pytest.approx((-math.log2(2 / 3) - 5 * math.log2(1 / 3)) / 6)
    # genre-NDCG: user 0 (test {A,B}) top [0 (gain 1), 4 (gain 1/3)] is ideal -> 1
    # user 1 (test {} ) -> IDCG 0 -> left out
    # user 2 (test {A,C}): top [1 (1/2), 3 (0)]: DCG 1/2; candidates' best gains 1 (item 5),
    #   1/2 (item 1) -> IDCG 1 + (1/2)/log2(3) (item 6, gain 1, is not in the catalogue)
    assert res["GenreNDCG@2"] == pytest.approx((1 + 0.5 / (1 + 0.5 / LOG3)) / 2)


def test_p2_validation_part_and_history():
    full, split = _tiny()
    # carve user 1's train item 0 out as validation (item 0 stays seen through user 2)
    is_valid = (full.user_idx == 1) & (full.item_idx == 0)
    in_train = (full.timestamp != 9) & ~is_valid
    with_valid = Split("tiny", full.subset(in_train), split.test, valid=full.subset(is_valid),
                       valid_negatives=np.array([[1, 3]], dtype=np.int32))
    model = TableScorer(SCORES)
    # on test, the valid item is history: nothing changes against the split without valid
    assert P.evaluate_p2(model, with_valid, k=2) == P.evaluate_p2(model, split, k=2)
    # on valid, history is train alone: user 1's item 0 (score 9) is the best candidate
    fr = P.rank_full(model, with_valid, k=2, part="valid")
    np.testing.assert_array_equal(fr.list_users, [1])
    np.testing.assert_array_equal(fr.ranks, [0])
    np.testing.assert_array_equal(fr.topk, [[0, 1]])  # then 1 and 3 tie at 1: id 1 first
    assert P.evaluate_p1(model, with_valid, k=1, part="valid")["HR@1"] == 1.0
    with pytest.raises(EvaluationError, match="no validation part"):
        P.evaluate_p2(model, split, part="valid")


def test_protocol_errors_say_what_is_wrong():
    _, split = _tiny()
    with pytest.raises(EvaluationError, match="no sampled negatives"):
        P.evaluate_p1(TableScorer(SCORES), split)
    bad = np.array(SCORES, dtype=np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(EvaluationError, match="NaN"):
        P.evaluate_p2(TableScorer(bad), split)
    with pytest.raises(EvaluationError, match="shape"):
        P.evaluate_p2(TableScorer(np.zeros((3, 5))), split)
    with pytest.raises(EvaluationError, match="part must be"):
        P.evaluate_p2(TableScorer(SCORES), split, part="train")


# ---------------------------------------------------------------------- naive reference
def _random_split(seed: int, n_items: int) -> Split:
    rng = np.random.default_rng(seed)
    n_users = 25
    pairs = rng.random((n_users, n_items - 5)) < 0.3  # the last 5 items are never rated
    pairs[:, 0] = pairs[:, 1] = True  # every user has >= 2 ratings
    u, i = np.nonzero(pairs)
    ratings = pl.DataFrame({"user_id": u + 1, "item_id": i + 1, "rating": np.full(len(u), 3.0),
                            "timestamp": rng.integers(0, 50, len(u))})
    names = np.array(["A", "B", "C", "D"])
    genres = [list(names[rng.random(4) < 0.35]) for _ in range(n_items)]
    items = pl.DataFrame({"item_id": np.arange(1, n_items + 1), "genres": genres},
                         schema_overrides={"genres": pl.List(pl.String)})
    full = Dataset.from_frames("rnd", ratings, items)
    last = np.r_[full.user_idx[1:] != full.user_idx[:-1], True]
    second = np.r_[last[1:], False] & ~last
    return Split("rnd", full.subset(~last & ~second), full.subset(last), valid=full.subset(second))


def _naive_p2(table: np.ndarray, split: Split, k: int, part: str = "test"):
    """P2 by the book, one user at a time, in plain Python."""
    history = [split.train] + ([split.valid] if part == "test" else [])
    target = split.test if part == "test" else split.valid
    catalogue = {int(i) for d in (split.train, split.valid, split.test) for i in d.item_idx}
    seen = {int(i) for d in history for i in d.item_idx}
    g = split.train.items.get_column("genres").to_list()
    ranks, tops, gndcg = [], [], []
    for u, t in zip(target.user_idx.tolist(), target.item_idx.tolist(), strict=True):
        mine = {int(i) for d in history for i in d.item_idx[d.user_idx == u]}
        cand = sorted(catalogue - mine)
        sc = {i: (float(table[u, i]) if i in seen else -math.inf) for i in cand}
        ranks.append(sum(sc[i] >= sc[t] for i in cand if i != t))
        top = sorted(cand, key=lambda i: (-sc[i], i))[:k]
        tops.append(top)

        def jac(a, b):
            a, b = set(g[a]), set(g[b])
            return len(a & b) / len(a | b) if a | b else 0.0

        disc = [1 / math.log2(p + 2) for p in range(k)]
        dcg = sum(jac(i, t) * d for i, d in zip(top, disc, strict=False))
        best = sorted((jac(i, t) for i in cand), reverse=True)[:k]
        idcg = sum(x * d for x, d in zip(best, disc, strict=False))
        if idcg > 0:
            gndcg.append(dcg / idcg)
    pop = {i: len({int(u) for d in history for u in d.user_idx[d.item_idx == i]}) for i in seen}
    n_hist = len({int(u) for d in history for u in d.user_idx})
    nov = np.mean([-math.log2(max(pop.get(i, 0), 1) / n_hist) for top in tops for i in top])
    return np.array(ranks), np.array(tops), float(np.mean(gndcg)), len(catalogue), nov


@pytest.mark.parametrize(("seed", "n_items"), [(0, 40), (1, 40), (2, 400)])
@pytest.mark.parametrize("part", ["test", "valid"])
def test_p2_matches_naive_reference_with_many_ties(seed, n_items, part):
    split = _random_split(seed, n_items)  # 400 items: top-k takes its chunked pre-filter path
    rng = np.random.default_rng(seed + 100)
    table = rng.integers(0, 4, (split.train.n_users, split.train.n_items))  # ties everywhere
    ranks, tops, gndcg, n_catalogue, nov = _naive_p2(table, split, 10, part)
    target_items = (split.test if part == "test" else split.valid).item_idx.tolist()
    model = TableScorer(table)
    for batch_size in (1, 7, None):  # blocks of users, ranked on 1 or 3 threads: no change
        for workers in (1, 3):
            fr = P.rank_full(model, split, 10, part=part, batch_size=batch_size, workers=workers)
            np.testing.assert_array_equal(fr.ranks, ranks)
            np.testing.assert_array_equal(fr.topk, tops)
    res = P.evaluate_p2(model, split, 10, part=part)
    assert res["HR@10"] == pytest.approx(np.mean(ranks < 10))
    assert res["NDCG@10"] == pytest.approx(np.mean(np.where(ranks < 10, 1 / np.log2(ranks + 2), 0)))
    assert res["GenreNDCG@10"] == pytest.approx(gndcg)
    assert res["Coverage@10"] == pytest.approx(len(np.unique(tops)) / n_catalogue)
    assert res["Novelty@10"] == pytest.approx(nov)
    # precision reads the top-10 lists (ties by id), HR the ranks (ties against): they differ
    found = [t in top for t, top in zip(target_items, tops, strict=True)]
    assert res["Precision@10"] == pytest.approx(np.mean(found) / 10)  # one target per user
    assert res["Recall@10"] == pytest.approx(np.mean(found))
    # the popularity breakdown splits the same top-10 hits into tail and head targets
    share = res["TailTargets"]
    assert 0 < share < 1
    assert share * res["TailHR@10"] + (1 - share) * res["HeadHR@10"] == pytest.approx(
        np.mean(found))


# ---------------------------------------------------------------------- P3
def test_p3_uses_predict_when_the_model_has_it():
    full, split = _tiny()

    class Predictor(TableScorer):
        predicts_ratings = True

        def predict(self, user_idx, item_idx):
            return np.full(len(user_idx), 3.0)

    # test ratings are all 4.0: predict gives 3 -> RMSE = MAE = 1
    res = P.evaluate_p3(Predictor(SCORES), split.train, split.test)
    assert res["RMSE"] == pytest.approx(1.0) and res["MAE"] == pytest.approx(1.0)
    # score-only model: SCORES at (0,0)=0.5, (1,2)=3, (2,5)=9 -> errors 3.5, 1, 5
    res = P.evaluate_p3(TableScorer(SCORES), split.train, split.test)
    assert res["MAE"] == pytest.approx((3.5 + 1 + 5) / 3)
    assert res["RMSE"] == pytest.approx(math.sqrt((3.5**2 + 1 + 25) / 3))
    assert res["cold_ratings"] == 2  # items 2 and 5 have no train rating
    other = Dataset.from_frames("other", full.ratings_frame().head(2))
    with pytest.raises(EvaluationError, match="id maps"):
        P.evaluate_p3(TableScorer(SCORES), other, split.test)


# ---------------------------------------------------------------------- P1 oracle
def _fixed_split(folder: Path) -> Split:
    """The fixed LOO files as a Split; the full Dataset is built from their ratings alone."""
    cols = {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32,
            "timestamp": pl.Int64}

    def read(name):
        return pl.read_csv(folder / name, separator="\t", has_header=False,
                           new_columns=list(cols), schema_overrides=cols)

    train, test = read("loo_train.tsv"), read("loo_test.tsv")
    full = Dataset.from_frames(folder.name, pl.concat([train, test]))
    try:
        from movierec.data.splits import load_fixed_loo
    except ImportError:  # pragma: no cover - before splits.py lands
        pass
    else:
        return load_fixed_loo(full, folder)

    def part(df, name):
        return full.with_ratings(full.user_index(df["user_id"]), full.item_index(df["item_id"]),
                                 df["rating"].to_numpy(), df["timestamp"].to_numpy(), name)

    neg = np.loadtxt(folder / "loo_negatives.tsv", dtype=np.int64, delimiter="\t")
    neg = neg[np.argsort(neg[:, 0], kind="stable")]
    test_ds = part(test, "test")
    assert np.array_equal(full.user_index(neg[:, 0]), test_ds.user_idx)
    return Split("fixed", part(train, "train"), test_ds, negatives=full.item_index(neg[:, 1:]))


@pytest.mark.real_data
@pytest.mark.parametrize(
    ("dataset", "hr", "ndcg"),
    [("ml-100k", 0.3160, 0.1659), ("ml-latest-small", 0.5951, 0.3456)],
)
def test_p1_most_popular_oracle(eval_dir, dataset, hr, ndcg):
    split = _fixed_split(eval_dir / dataset)
    res = P.evaluate_p1(Popularity(split.train), split)
    assert round(res["HR@10"], 4) == hr
    assert round(res["NDCG@10"], 4) == ndcg


class BlockRecorder(TableScorer):
    """A table model that records how many users each ``score_all`` call asked for."""

    def __init__(self, table):
        super().__init__(table)
        self.calls: list[int] = []

    def score_all(self, user_idx):
        self.calls.append(len(user_idx))
        return super().score_all(user_idx)


def test_p2_scores_users_in_bounded_blocks(monkeypatch):
    """P2 never asks a model for users x items at once: each ``score_all`` call holds at most
    ``CELLS_PER_BLOCK`` scores (one user when a single row is larger), every target user is
    scored exactly once, and the metrics equal those of one big block. This is the path a
    sequential model's full-sort evaluation takes (ML-20M: 138K users x 27K items would be
    15 GB of float32 at once)."""
    split = _random_split(3, 60)
    table = np.random.default_rng(3).random((split.train.n_users, split.train.n_items))
    whole = P.evaluate_p2(TableScorer(table), split, 10, batch_size=10_000)
    n_items = split.train.n_items
    for cells, per_call in ((4 * n_items + 5, 4), (n_items - 1, 1)):
        monkeypatch.setattr(P, "CELLS_PER_BLOCK", cells)
        model = BlockRecorder(table)
        assert P.evaluate_p2(model, split, 10) == pytest.approx(whole, nan_ok=True)
        assert max(model.calls) == per_call
        assert sum(model.calls) == len(np.unique(split.test.user_idx))


def test_p2_threads_agree_with_one_thread_for_several_targets_per_user():
    """Blocks ranked on several threads write disjoint slices: with several targets per user
    (the holdout's shape, where a block's rows are not one target each) every rank, list and
    genre DCG equals the one-thread result."""
    full = _random_split(5, 60).train  # rows sorted by user
    rng = np.random.default_rng(5)
    is_test = (rng.random(full.n_ratings) < 0.3) & (full.item_idx >= 2)  # items 0, 1 stay
    several = Split("rnd", full.subset(~is_test), full.subset(is_test))
    split = several
    table = np.random.default_rng(5).random((split.train.n_users, split.train.n_items))
    one = P.rank_full(TableScorer(table), several, 10, batch_size=4, workers=1)
    many = P.rank_full(TableScorer(table), several, 10, batch_size=4, workers=3)
    for name in ("ranks", "topk", "genre_dcg", "genre_idcg", "target_list"):
        np.testing.assert_array_equal(getattr(many, name), getattr(one, name))
    assert len(one.ranks) > len(one.list_users)  # the case this test is about


def test_p2_a_target_in_the_history_is_refused_from_any_thread():
    """A block ranked on a worker thread that finds a target among the user's history items
    raises the one-line error in the caller, not a lost exception in a thread."""
    split = _random_split(6, 60)
    leaked = replace(split, test=split.train.subset(
        np.flatnonzero(np.r_[True, np.diff(split.train.user_idx) != 0]), "rnd/leaked"))
    table = np.random.default_rng(6).random((split.train.n_users, split.train.n_items))
    with pytest.raises(EvaluationError, match="is also in that user's history"):
        P.rank_full(TableScorer(table), leaked, 10, batch_size=3, workers=2)


def test_p2_says_how_far_it_is_off_a_terminal(monkeypatch, capsys):
    """A long P2 (ML-20M: minutes) prints plain progress lines on stderr when no terminal is
    attached: users ranked so far, of how many, the rate and the time left."""
    split = _random_split(3, 60)
    table = np.random.default_rng(3).random((split.train.n_users, split.train.n_items))
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    monkeypatch.setattr(P, "CELLS_PER_BLOCK", 4 * split.train.n_items)
    P.evaluate_p2(TableScorer(table), split, 10)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("P2 test: users ")]
    n = len(np.unique(split.test.user_idx))
    assert len(lines) >= 2 and lines[0].startswith(f"P2 test: users 4/{n} ")
    assert "users/s" in lines[0] and "s left" in lines[0]


class BlasRecorder(TableScorer):
    """Records the BLAS pools' thread limits while the model scores."""

    def __init__(self, table):
        super().__init__(table)
        self.limits: list[int] = []

    def score_all(self, user_idx):
        from threadpoolctl import threadpool_info

        self.limits += [p["num_threads"] for p in threadpool_info()
                        if p["user_api"] == "blas"]
        return super().score_all(user_idx)


def test_p2_scores_with_one_blas_core_fewer_while_the_pool_ranks(monkeypatch):
    """With the ranking pool busy on every core, BLAS in the model's scoring spun against it
    (ML-20M iALS: 67.8 s and 122 CPU s instead of 53.9 s and 91): scoring now gets one core
    fewer while the pool runs, and the limit is lifted after."""
    from threadpoolctl import threadpool_info

    if not any(p["user_api"] == "blas" for p in threadpool_info()):
        pytest.skip("no BLAS library loaded by numpy here")
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(P, "usable_cores", lambda: 2)
    split = _random_split(3, 60)
    model = BlasRecorder(np.random.default_rng(3).random((split.train.n_users,
                                                          split.train.n_items)))
    with threadpool_limits(2, user_api="blas"):  # as without OPENBLAS_NUM_THREADS on 2 cores
        before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        if min(before) < 2:
            pytest.skip("this BLAS cannot run on 2 threads")
        P.rank_full(model, split, 10, batch_size=8, workers=2)
        assert model.limits and set(model.limits) == {1}
        assert [p["num_threads"] for p in threadpool_info()
                if p["user_api"] == "blas"] == before


def test_p1_says_how_far_it_is_off_a_terminal(monkeypatch, capsys):
    """P1 of NeuMF at ML-20M runs half a minute: off a terminal it printed nothing; now plain
    lines on stderr as P2's."""
    full, split = _tiny()
    negatives = np.array([[1, 2, 3], [0, 1, 3], [0, 1, 6]], dtype=np.int32)
    table = np.random.default_rng(3).random((3, 7))
    monkeypatch.setattr(progress_module, "LINE_EVERY", 0.0)
    P.evaluate_p1(TableScorer(table), replace(split, negatives=negatives), 3, pairs_per_call=4)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("P1 test: users ")]
    assert len(lines) >= 2 and lines[0].startswith("P1 test: users 1/3 "), lines
