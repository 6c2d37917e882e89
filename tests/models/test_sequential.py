"""Sequential models (sasrec, gru4rec, bert4rec, markov) and the sequences they read.

Data with planted order: items form chains (``c * CHAIN + 0 -> 1 -> 2 ...``); each user walks a
stretch of one chain with increasing timestamps and the held-out item is the next link. Every
chain is equally popular and starts are uniform, so popularity and co-occurrence alone cannot
tell the next link from the rest of the chain: only the order can.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.data.sequences import (
    History,
    cropped,
    history_of,
    padded_windows,
    pick_window,
    shifted_pairs,
    training_rows,
)
from movierec.errors import ModelError
from movierec.models.base import create
from movierec.options import FitOptions

N_CHAINS, CHAIN, N_USERS = 6, 20, 300
TINY = {"max_len": 12, "hidden": 32, "layers": 1, "epochs": 40, "batch_size": 32,
        "patience": 8, "lr": 0.005}
SEQUENTIAL = {
    "markov": {},
    "sasrec": TINY,
    "gru4rec": {**TINY, "dropout": 0.1},
    "bert4rec": {**TINY, "epochs": 60, "mask_prob": 0.3},
}
OPTIONS = FitOptions(num_threads=1)


def make_chains(seed: int = 3) -> tuple[Dataset, Dataset, np.ndarray, np.ndarray]:
    """``(full, train, users, next_items)``: train is full minus each user's last link."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(6, 12, N_USERS)
    chain = rng.integers(0, N_CHAINS, N_USERS)
    start = rng.integers(0, CHAIN - lengths + 1)
    user = np.repeat(np.arange(N_USERS), lengths)
    step = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    item = chain[user] * CHAIN + start[user] + step
    ratings = pl.DataFrame({
        "user_id": user + 1, "item_id": item + 1, "rating": np.full(len(user), 4.0),
        # time runs backwards through user ids, so order by time is not order by anything else
        "timestamp": 10_000_000 - user * 1000 + step * 7})
    items = pl.DataFrame({"item_id": np.arange(N_CHAINS * CHAIN) + 1})
    full = Dataset.from_frames("chains", ratings, items)  # item_idx = item_id - 1
    last = np.r_[np.flatnonzero(np.diff(full.user_idx)), full.n_ratings - 1]
    keep = np.ones(full.n_ratings, dtype=bool)
    keep[last] = False
    return full, full.subset(keep, "chains/train"), full.user_idx[last], full.item_idx[last]


@pytest.fixture(scope="module")
def chains():
    return make_chains()


@pytest.fixture(scope="module")
def fitted_seq(chains):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = create(name, **SEQUENTIAL[name]).fit(chains[1], options=OPTIONS)
        return cache[name]

    return get


def next_item_hit_rate(model, chains, k: int = 3) -> float:
    _, train, users, targets = chains
    scores = model.score_all(users).astype(np.float64)
    rows, cols = train.csr[users].nonzero()
    scores[rows, cols] = -np.inf
    rank = (scores > scores[np.arange(len(users)), targets][:, None]).sum(axis=1)
    return float((rank < k).mean())


# ---------------------------------------------------------------------- sequences
def test_history_orders_each_user_by_time_then_item():
    ratings = pl.DataFrame({"user_id": [5, 5, 5, 9, 9], "item_id": [30, 10, 20, 10, 30],
                            "rating": [1.0] * 5, "timestamp": [3, 3, 1, 8, 2]})
    ds = Dataset.from_frames("t", ratings)
    h = history_of(ds)
    # user 5: item 20 (t=1), then 10 and 30 tied at t=3 -> ascending item id; user 9: 30, 10
    assert h.items.tolist() == [1, 0, 2, 2, 0] and h.indptr.tolist() == [0, 3, 5]


def test_windows_keep_the_most_recent_items_left_padded():
    h = History(np.array([4, 5, 6, 7, 8, 1]), np.array([0, 5, 5, 6]))
    w = h.windows(np.array([0, 1, 2]), 3)
    assert w.tolist() == [[7, 8, 9], [0, 0, 0], [0, 0, 2]]  # item_idx + 1, 0 is padding
    assert padded_windows(h.items, h.indptr, np.array([0]), 7).tolist() == [[0, 0, 5, 6, 7, 8, 9]]
    assert cropped(w[[2]]).tolist() == [[2]] and cropped(w[[2]], keep_pad=1).tolist() == [[0, 2]]
    inputs, targets = shifted_pairs(h, np.array([0, 2]), 3)
    assert inputs.tolist() == [[6, 7, 8], [0, 0, 0]]
    assert targets.tolist() == [[7, 8, 9], [0, 0, 0]]  # no target after padding / a lone item


def test_pick_window_keeps_the_order_given_and_the_last_place_of_a_repeat():
    assert pick_window(np.array([3, 1, 3, 2]), 5).tolist() == [[0, 0, 2, 4, 3]]
    assert pick_window(np.array([3, 1, 2]), 2).tolist() == [[2, 3]]


# ---------------------------------------------------------------------- models
@pytest.mark.parametrize("name", list(SEQUENTIAL))
def test_sequential_models_predict_the_next_link(name, fitted_seq, chains):
    pop = create("popularity").fit(chains[1])
    floor = next_item_hit_rate(pop, chains)
    assert floor < 0.2
    assert next_item_hit_rate(fitted_seq(name), chains) >= floor + 0.6


@pytest.mark.parametrize("name", list(SEQUENTIAL))
def test_fold_in_follows_the_order_of_the_picks(name, fitted_seq):
    model = fitted_seq(name)
    x, y = 2 * CHAIN + 4, 4 * CHAIN + 9  # stretches of two chains, the same picks either way
    first_x = np.array([x, x + 1, x + 2, y, y + 1, y + 2])
    first_y = np.array([y, y + 1, y + 2, x, x + 1, x + 2])
    np.testing.assert_array_equal(model.fold_in(first_x), first_x)
    tops = []
    for picks, after in ((first_x, y + 3), (first_y, x + 3)):
        top, _ = model.recommend_folded(model.fold_in(picks), k=1, exclude=picks)
        tops.append(top[0])
        if name != "bert4rec":  # the tiny BERT4Rec never saw two chains in one history
            assert top[0] == after  # the link after the latest stretch
    assert tops[0] != tops[1]


@pytest.mark.parametrize("loss", ["bce", "sampled", "gbce"])
def test_sasrec_learns_with_every_sampled_loss(loss, chains):
    # gBCE weighs the target down (beta ~ 0.3 here) and starts slowly: no early stopping
    params = {**TINY, "loss": loss, "n_negatives": 32, "patience": None}
    model = create("sasrec", **params).fit(chains[1], options=OPTIONS)
    assert next_item_hit_rate(model, chains) >= 0.6


def test_training_validates_on_the_last_train_item_and_keeps_the_best_epoch(fitted_seq):
    (record,) = fitted_seq("sasrec").training_history()
    assert record.monitor == "valid NDCG@10" and record.best_epoch is not None
    assert record.best_score == max(r["valid NDCG@10"] for r in record.epochs)
    assert all(r["seconds"] > 0 for r in record.epochs)


def test_scores_do_not_depend_on_which_users_share_a_block(fitted_seq, chains):
    model = fitted_seq("bert4rec")  # appends its mask token: the cropping must keep a column
    users = np.arange(0, chains[1].n_users, 13)
    together = model.score_all(users)
    alone = np.vstack([model.score_all(users[[r]]) for r in range(len(users))])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_bad_settings_are_clear_errors(fitted_seq):
    with pytest.raises(ModelError, match="heads"):
        create("sasrec", hidden=30, heads=4)
    with pytest.raises(ModelError, match="loss"):
        create("gru4rec", loss="softmax")
    model = fitted_seq("markov")
    with pytest.raises(ModelError, match="at least one item"):
        model.fold_in(np.array([], dtype=np.int64))
    with pytest.raises(ModelError, match="ordered item sequence"):
        fitted_seq("sasrec").score_folded(np.ones(4, dtype=np.float32))


# ---------------------------------------------------------------------- training options
def test_every_window_trains_on_every_next_item_pair_of_a_long_history_once():
    h = History(np.arange(10), np.array([0, 7, 7, 8, 10]))  # lengths 7, 0, 1, 2
    pairs = []
    for every in (False, True):
        rows = training_rows(h, width=3, step=2, min_items=2, every_window=every)
        w = rows.windows(np.arange(len(rows)), 3)
        real = (w[:, :-1] != 0) & (w[:, 1:] != 0)
        pairs.append(sorted(zip(w[:, :-1][real].tolist(), w[:, 1:][real].tolist(),
                                strict=True)))
    latest, every = pairs
    assert latest == [(5, 6), (6, 7), (9, 10)]  # only each user's latest 3 items
    assert every == [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (9, 10)]
    masked = training_rows(h, width=3, step=3, min_items=1, every_window=True)
    assert sorted(masked.windows(np.arange(len(masked)), 3)[masked.windows(
        np.arange(len(masked)), 3) > 0].tolist()) == list(range(1, 11))  # every item once


def early_chains_then_noise(seed: int = 5) -> Dataset:
    """Each user walks 8 links of a chain, then 8 items drawn at random from a separate pool:
    the chain's links are never among a user's last 8 + 1 items."""
    rng = np.random.default_rng(seed)
    n_users, walk, noise_items = 240, 8, 60
    chain = rng.integers(0, N_CHAINS, n_users)
    start = rng.integers(0, CHAIN - walk + 1, n_users)
    links = chain[:, None] * CHAIN + start[:, None] + np.arange(walk)[None, :]
    noise = N_CHAINS * CHAIN + rng.integers(0, noise_items, (n_users, walk))
    item = np.hstack([links, noise]).ravel()
    user = np.repeat(np.arange(n_users), 2 * walk)
    ratings = pl.DataFrame({"user_id": user + 1, "item_id": item + 1,
                            "rating": np.full(len(user), 4.0),
                            "timestamp": np.tile(np.arange(2 * walk), n_users)})
    ratings = ratings.unique(["user_id", "item_id"], keep="first", maintain_order=True)
    items = pl.DataFrame({"item_id": np.arange(N_CHAINS * CHAIN + noise_items) + 1})
    return Dataset.from_frames("early-chains", ratings, items)


def chain_hit_rate(model) -> float:
    """Share of chain links whose successor is the top pick after that link alone."""
    hits = [model.recommend_folded(model.fold_in(np.array([c * CHAIN + k])), k=1,
                                   exclude=np.array([c * CHAIN + k]))[0][0] == c * CHAIN + k + 1
            for c in range(N_CHAINS) for k in range(2, CHAIN - 3, 3)]
    return float(np.mean(hits))


def test_every_window_learns_steps_that_only_happen_early_in_long_histories():
    ds = early_chains_then_noise()
    params = {**TINY, "max_len": 8, "patience": None, "holdout": False, "epochs": 30}
    latest = create("sasrec", **params).fit(ds, options=OPTIONS)
    every = create("sasrec", **params, every_window=True).fit(ds, options=OPTIONS)
    assert chain_hit_rate(latest) < 0.3  # the chains are never in the latest 9 items
    assert chain_hit_rate(every) >= 0.7


def chains_with_finales(seed: int = 3) -> tuple[Dataset, np.ndarray]:
    """The chains of :func:`make_chains`'s train part, each user's stretch followed by their
    chain's own *finale* item as their last train item: ``(train, finale item per chain)``."""
    _, train, _, _ = make_chains(seed)
    finale = N_CHAINS * CHAIN + np.arange(N_CHAINS)
    users = np.arange(train.n_users)
    chain_of = np.asarray(train.csr[users].argmax(axis=1)).ravel() // CHAIN
    ratings = pl.DataFrame({
        "user_id": np.r_[train.user_idx, users] + 1,
        "item_id": np.r_[train.item_idx, finale[chain_of]] + 1,
        "rating": np.full(train.n_ratings + len(users), 4.0),
        "timestamp": np.r_[train.timestamp, np.full(len(users), 20_000_000)]})
    items = pl.DataFrame({"item_id": np.arange(N_CHAINS * CHAIN + N_CHAINS) + 1})
    return Dataset.from_frames("finales", ratings, items), finale


def test_refit_trains_again_on_the_held_out_last_steps_for_the_chosen_epochs():
    train, finale = chains_with_finales()
    params = {**TINY, "epochs": 25}
    kept = create("sasrec", **params).fit(train, options=OPTIONS)
    refit = create("sasrec", **params, refit=True).fit(train, options=OPTIONS)
    select, again = refit.training_history()
    assert len(again) == select.best_epoch and again.monitor is None
    stretch = np.arange(2 * CHAIN + 5, 2 * CHAIN + 12)  # chain 2: its finale is a likely next
    for model, seen in ((kept, False), (refit, True)):
        top, _ = model.recommend_folded(model.fold_in(stretch), k=3, exclude=stretch)
        assert (finale[2] in top) == seen  # without refit no finale was ever a target
