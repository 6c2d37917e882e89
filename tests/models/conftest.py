"""Fixtures for the model tests: a small dataset with planted group structure.

Users and items fall into ``N_GROUPS`` groups; a user's interactions come mostly from their own
group's items (popularity-skewed inside the group) and sometimes from anywhere. The user x item
matrix is therefore close to low rank: a model that learns the structure ranks a user's held-out
item far better than popularity does, and far better than random.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.options import FitOptions

N_USERS, N_ITEMS, N_GROUPS = 240, 120, 6
PER_USER = 16
OWN_GROUP = 0.9
N_COLD = 3  # items in the catalogue that nobody rated


@dataclass(frozen=True)
class Planted:
    full: Dataset
    train: Dataset  # full minus each user's last interaction
    test_users: np.ndarray  # int32 user_idx, one per user
    test_items: np.ndarray  # int32 item_idx held out for that user
    user_group: np.ndarray  # group of each user_idx
    item_group: np.ndarray  # group of each item_idx (-1: cold item, never rated)


def make_planted(seed: int = 7) -> Planted:
    rng = np.random.default_rng(seed)
    item_group = np.arange(N_ITEMS) % N_GROUPS
    item_weight = 1.0 / (1 + np.arange(N_ITEMS) // N_GROUPS)  # zipf-like inside each group
    user_group = rng.integers(0, N_GROUPS, N_USERS)
    users, items = [], []
    for u in range(N_USERS):  # test-data construction, not a hot path
        own = item_group == user_group[u]
        p = np.where(own, OWN_GROUP / own.sum(), (1 - OWN_GROUP) / (~own).sum()) * item_weight
        picks = rng.choice(N_ITEMS, PER_USER, replace=False, p=p / p.sum())
        users.append(np.full(PER_USER, u))
        items.append(picks)
    users_a, items_a = np.concatenate(users), np.concatenate(items)
    ratings = pl.DataFrame(
        {
            "user_id": users_a * 10 + 1,  # original ids differ from indices on purpose
            "item_id": items_a * 3 + 100,
            "rating": rng.integers(1, 6, len(users_a)).astype(np.float32),
            "timestamp": rng.permutation(len(users_a)).astype(np.int64) + 1_000_000,
        }
    )
    all_ids = np.arange(N_ITEMS + N_COLD) * 3 + 100
    meta = pl.DataFrame(
        {
            "item_id": all_ids,
            "title": [f"Movie {i}" for i in range(len(all_ids))],
            "genres": [[f"G{i % N_GROUPS}"] for i in range(len(all_ids))],
        }
    )
    full = Dataset.from_frames("planted", ratings, meta)
    last = np.r_[np.flatnonzero(np.diff(full.user_idx)), full.n_ratings - 1]
    keep = np.ones(full.n_ratings, dtype=bool)
    keep[last] = False
    train = full.subset(keep, name="planted/train")
    groups = np.full(full.n_items, -1)
    groups[:N_ITEMS] = item_group  # item_ids ascending = construction order
    return Planted(full, train, full.user_idx[last], full.item_idx[last], user_group, groups)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


def hit_rate(model, planted: Planted, k: int = 10) -> float:
    """HR@k of the held-out item, full ranking over trained items minus the user's train items."""
    scores = model.score_all(planted.test_users).astype(np.float64)
    seen = planted.train.csr[planted.test_users].nonzero()
    scores[seen] = -np.inf
    scores[:, planted.train.item_counts == 0] = -np.inf
    target = scores[np.arange(len(planted.test_users)), planted.test_items]
    rank = (scores > target[:, None]).sum(axis=1)
    return float((rank < k).mean())


@pytest.fixture(scope="session")
def hit_rate_of():
    """``hit_rate_of(model, planted, k=10)``: see :func:`hit_rate`."""
    return hit_rate


@dataclass(frozen=True)
class Contract:
    """What the every-model suite (test_all_models.py) asks of one model beyond the protocol
    itself (cf. LensKit's ScorerTests). A model not listed in :data:`CONTRACTS` gets the default:
    its default hyper-parameters and no quality claim.

    Attributes:
        smoke: hyper-parameters for a quick fit on the planted data.
        beats_random: held-out hit rate at least random's + 0.1.
        finds_structure: ... at least popularity's + 0.25 (learns the planted groups).
        personal_fold_in: a new person's picks from one group bring back that group.
        ordered_fold_in: the picks' order is part of the state (sequential models): fold_in of
            reversed picks differs; others must give the same state for any order.
    """

    smoke: dict = field(default_factory=dict)
    beats_random: bool = False
    finds_structure: bool = False
    personal_fold_in: bool = False
    ordered_fold_in: bool = False


_SEQUENTIAL_SMOKE = {"max_len": 20, "hidden": 16, "layers": 1, "epochs": 20, "batch_size": 32,
                     "patience": 5}
_RANKER = Contract(beats_random=True, finds_structure=True, personal_fold_in=True)
CONTRACTS: dict[str, Contract] = {
    # implicit-feedback rankers: quality bars on the planted groups. Rating models rank by
    # predicted stars, which the planted data does not carry: their tests judge RMSE instead.
    "popularity": Contract(beats_random=True),
    "itemknn": _RANKER,
    "ease": _RANKER,
    "sparse-ease": replace(_RANKER, smoke={"k": 20}),
    "ials": replace(_RANKER, smoke={"factors": 16, "iterations": 8}),
    "ials-implicit": replace(_RANKER, smoke={"factors": 16, "iterations": 8}),
    "bpr": Contract(smoke={"factors": 16, "iterations": 60, "learning_rate": 0.05},
                    beats_random=True, personal_fold_in=True),
    "gmf": Contract(smoke={"epochs": 30, "batch_size": 1024, "lr": 0.01}),
    "mlp": Contract(smoke={"epochs": 30, "batch_size": 1024, "lr": 0.01}),
    "neumf": Contract(smoke={"epochs": 30, "batch_size": 1024, "lr": 0.01}),
    "hybrid": Contract(smoke={"base_params": {"epochs": 5, "batch_size": 1024, "lr": 0.01},
                              "epochs": 2, "lr": 1e-3}),
    "text": Contract(smoke={"embedder": "hashing", "cache": False}),
    "biases": Contract(smoke={"epochs": 5}),
    "svd-sgd": Contract(smoke={"factors": 8, "epochs": 10}),
    "mf-als": Contract(smoke={"factors": 8, "epochs": 5}),
    "neural-mf": Contract(smoke={"factors": 8, "epochs": 5}),
    "neural-side": Contract(smoke={"factors": 8, "epochs": 5, "hidden": [16],
                                   "use_genres": False}),
    "autorec": Contract(smoke={"hidden": 16, "epochs": 10, "lr": 0.01}),
    "eals": replace(_RANKER, smoke={"factors": 16, "iterations": 10, "missing_weight": 64.0,
                                    "regularization": 1.0}),
    "lightgcn": replace(_RANKER, smoke={"factors": 16, "layers": 2, "epochs": 40,
                                        "batch_size": 512, "lr": 0.01, "patience": None,
                                        "holdout": False}),

    # sequential models (issue 17): tiny nets, few epochs; their own tests are
    # test_sequential.py (planted item chains)
    "markov": Contract(beats_random=True, ordered_fold_in=True),
    "sasrec": Contract(beats_random=True, finds_structure=True, ordered_fold_in=True,
                       smoke=_SEQUENTIAL_SMOKE),
    "gru4rec": Contract(beats_random=True, ordered_fold_in=True, smoke=_SEQUENTIAL_SMOKE),
    "bert4rec": Contract(beats_random=True, ordered_fold_in=True, smoke=_SEQUENTIAL_SMOKE),
    "explicit-blend": Contract(smoke={"members": [
        {"name": "biases", "params": {"epochs": 3}},
        {"name": "svd-sgd", "params": {"factors": 4, "epochs": 5}}]}),
    "mult-vae": replace(_RANKER, smoke={"hidden": 64, "latent": 16, "epochs": 40,
                                        "batch_size": 32, "holdout": 0.0}),
    "recvae": replace(_RANKER, smoke={"hidden": 64, "latent": 16, "epochs": 15,
                                      "batch_size": 32, "holdout": 0.0, "lr": 2e-3}),
}


def contract(name: str) -> Contract:
    return CONTRACTS.get(name, Contract())


SMOKE_OPTIONS = FitOptions(num_threads=1)
"""How the smoke fits run: one thread, so two test workers never fight over the cores."""


@pytest.fixture(scope="session")
def fitted(planted):
    """``fitted(name)``: the registered model fitted on ``planted.train`` with its
    :data:`CONTRACTS` smoke hyper-parameters (one fit per name per session; tests must not
    modify it)."""
    from movierec.models.base import create

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = create(name, **contract(name).smoke).fit(planted.train,
                                                                   options=SMOKE_OPTIONS)
        return cache[name]

    return get
