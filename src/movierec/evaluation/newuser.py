"""P4, new users (docs/evaluation.md): people the model never trained on, folded in from picks.

The split (:func:`hold_out_users`): ``rng = numpy.random.default_rng(seed)``;
``rng.choice(users, round(fraction * n_users), replace=False)`` over the users with a rating, in
ascending id order, are held out of training entirely; the model is fitted on every rating of the
other users (:attr:`NewUserSplit.train`, which keeps the full id maps, so an index means the same
movie everywhere). The same generator then draws one ``rng.random()`` per held-out rating, in
(user, timestamp, item id) order: the keys of the Mult-VAE form's 80/20 draw.

The first-n form (:func:`evaluate_p4`): each held-out user's ratings sorted by (timestamp,
item id); the first ``n`` are the picks, the rest the targets; users with fewer than ``n + 1``
ratings are left out of that ``n``. The model gets the picks through ``model.fold_in(picks)`` (no
ratings: every pick is an interaction, as in the app) and scores every item with
``model.score_folded(state)``; no retraining. Candidates: every catalogue item (rated anywhere
in the dataset) except the picks; as in P2, an item with no train rating scores lowest (tied,
then ascending id). The top-10 list is
the 10 best candidates, ties by ascending original id.

Picks the model has no data for (items only held-out users rated) are still passed to
``fold_in``: they are real catalogue items, a person can pick them, and how a model copes with
them (ignores them, or is misled by an untrained embedding) is part of what P4 measures. Their
share is reported as ``UnknownPicks``.

The Mult-VAE form (:func:`evaluate_p4_vae`, Liang et al. 2018): per held-out user, the
``floor(0.2 * n_u)`` ratings with the smallest keys are the targets, the others are folded in;
users with no target (fewer than 5 ratings) are left out. NDCG@100, Recall@20, Recall@50.

Fold-in is one person at a time (the protocol's contract); scores are gathered into blocks of
people, and candidate masking, top-k and every metric run on whole blocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import EvaluationError
from movierec.evaluation import list_metrics as L
from movierec.evaluation import metrics
from movierec.evaluation.popularity_split import split_hit_rates, tail_items
from movierec.evaluation.protocols import CELLS_PER_BLOCK, _checked

__all__ = [
    "DEFAULT_NS",
    "NewUserSplit",
    "People",
    "evaluate_p4",
    "evaluate_p4_vae",
    "first_n_people",
    "hold_out_users",
    "recommend_people",
    "split_by_users",
    "vae_people",
]

DEFAULT_NS = (1, 3, 5, 10, 20)
VAE_TARGET_FRACTION = 0.2
VAE_CUTOFFS = (20, 50, 100)


@dataclass(frozen=True, eq=False)
class NewUserSplit:
    """The users held out of training and what the model may train on.

    Attributes:
        train: every rating of the users kept for training (the full id maps).
        heldout: every rating of the held-out users, in (user, timestamp, item id) order.
        users: ``int32`` held-out ``user_idx``, ascending.
        keys: ``float64 (heldout.n_ratings,)`` uniform draws of the Mult-VAE form.
        catalogue: ``bool (n_items,)`` items rated anywhere (train or held out).
        fraction, seed: how the users were drawn.
    """

    train: Dataset
    heldout: Dataset
    users: np.ndarray
    keys: np.ndarray
    catalogue: np.ndarray
    fraction: float
    seed: int

    @property
    def item_user_counts(self) -> np.ndarray:
        """``int64 (n_items,)``: train users with each item (MovieLens: one rating per pair)."""
        return np.bincount(self.train.item_idx, minlength=self.train.n_items).astype(np.int64)

    @property
    def n_train_users(self) -> int:
        return int((self.train.user_counts > 0).sum())


def hold_out_users(full: Dataset, fraction: float = 0.2, seed: int = 0) -> NewUserSplit:
    """Hold a seeded ``fraction`` of ``full``'s users out of training (see the module docstring)."""
    if not 0.0 < fraction < 1.0:
        raise EvaluationError(f"P4 fraction must be between 0 and 1 (exclusive), got {fraction}")
    users = np.flatnonzero(full.user_counts > 0)  # user_idx ascending = original id ascending
    n_held = round(fraction * len(users))
    if not 1 <= n_held < len(users):
        raise EvaluationError(f"{full.name}: holding out {fraction:g} of {len(users)} users "
                              f"leaves {n_held} held out; P4 needs at least one on each side")
    rng = np.random.default_rng(seed)
    held = rng.choice(users, n_held, replace=False)
    split = split_by_users(full, held, fraction=fraction, seed=seed)
    return replace(split, keys=rng.random(split.heldout.n_ratings))


def split_by_users(
    full: Dataset, held_user_idx: np.ndarray, *, fraction: float = float("nan"), seed: int = -1
) -> NewUserSplit:
    """The P4 split that holds out exactly ``held_user_idx`` (keys all 0: draw them yourself for
    the Mult-VAE form); :func:`hold_out_users` is this with a seeded draw."""
    held = np.unique(np.asarray(held_user_idx)).astype(np.int32)
    is_held = np.zeros(full.n_users, dtype=bool)
    is_held[held] = True
    rows = is_held[full.user_idx]
    heldout = _canonical(full.subset(rows, f"{full.name}/p4-heldout"))
    return NewUserSplit(
        train=full.subset(~rows, f"{full.name}/p4-train"),
        heldout=heldout,
        users=held,
        keys=np.zeros(heldout.n_ratings),
        catalogue=full.rated_items,
        fraction=float(fraction),
        seed=int(seed),
    )


def _canonical(ds: Dataset) -> Dataset:
    """``ds`` in (user, timestamp, item) order (a Dataset's promise; re-sorted if broken)."""
    order = np.lexsort((ds.item_idx, ds.timestamp, ds.user_idx))
    if np.array_equal(order, np.arange(ds.n_ratings)):
        return ds
    return ds.subset(order)


@dataclass(frozen=True, eq=False)
class People:
    """New people, each with picks (folded in) and targets (to find), as CSR-style runs.

    ``users[j]``'s picks are ``pick_items[pick_ptr[j]:pick_ptr[j + 1]]``, targets likewise.
    """

    users: np.ndarray
    pick_ptr: np.ndarray
    pick_items: np.ndarray
    target_ptr: np.ndarray
    target_items: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def _people(heldout: Dataset, keep_user: np.ndarray, is_pick: np.ndarray) -> People:
    """People from the held-out ratings of the users in ``keep_user`` (bool per user_idx)."""
    rows = keep_user[heldout.user_idx]
    u, items, pick = heldout.user_idx[rows], heldout.item_idx[rows], is_pick[rows]
    users = np.unique(u).astype(np.int32)
    slot = np.searchsorted(users, u)

    def runs(mask):
        ptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(slot[mask], minlength=len(users)), out=ptr[1:])
        return ptr, items[mask].astype(np.int32)

    (pp, pi), (tp, ti) = runs(pick), runs(~pick)
    return People(users, pp, pi, tp, ti)


def _position_in_user(ds: Dataset) -> np.ndarray:
    """Each rating's 0-based position in its user's (canonically ordered) run."""
    start = np.searchsorted(ds.user_idx, ds.user_idx, side="left")
    return np.arange(ds.n_ratings) - start


def first_n_people(split: NewUserSplit, n: int) -> People:
    """The first-n form: picks = each held-out user's first ``n`` ratings in time order, targets =
    the rest; users with fewer than ``n + 1`` ratings are left out."""
    if n < 1:
        raise EvaluationError(f"P4 needs at least one pick, got n={n}")
    ho = split.heldout
    return _people(ho, ho.user_counts >= n + 1, _position_in_user(ho) < n)


def vae_people(split: NewUserSplit, target_fraction: float = VAE_TARGET_FRACTION) -> People:
    """The Mult-VAE form: per user, ``floor(target_fraction * n_u)`` ratings with the smallest
    keys are targets, the rest are picks; users with no target are left out."""
    ho = split.heldout
    n_targets = np.floor(target_fraction * ho.user_counts).astype(np.int64)
    order = np.lexsort((split.keys, ho.user_idx))  # by user, then key
    rank_in_user = np.empty(ho.n_ratings, dtype=np.int64)
    rank_in_user[order] = np.arange(ho.n_ratings) - np.searchsorted(
        ho.user_idx[order], ho.user_idx[order], side="left")
    is_target = rank_in_user < n_targets[ho.user_idx]
    return _people(ho, n_targets >= 1, ~is_target)


def recommend_people(
    model: Any,
    people: People,
    catalogue: np.ndarray,
    trained: np.ndarray,
    k: int,
    *,
    batch_size: int | None = None,
) -> tuple[np.ndarray, float]:
    """Fold each person in and rank every candidate: ``(topk int64 (len(people), k), seconds)``.

    ``catalogue``: bool mask of the candidate items (minus each person's picks); ``trained``:
    bool mask of items with a train rating (the others score lowest). ``seconds`` is the total
    time spent in ``fold_in`` + ``score_folded``.
    """
    n_items = len(catalogue)
    if batch_size is None:
        batch_size = max(1, min(1024, CELLS_PER_BLOCK // max(1, n_items)))
    topk = np.empty((len(people), k), dtype=np.int64)
    spent = 0.0
    for b0 in range(0, len(people), batch_size):
        b1 = min(b0 + batch_size, len(people))
        scores = np.empty((b1 - b0, n_items), dtype=np.float64)
        for j in range(b0, b1):
            picks = people.pick_items[people.pick_ptr[j] : people.pick_ptr[j + 1]]
            t0 = time.perf_counter()
            s = model.score_folded(model.fold_in(picks))
            spent += time.perf_counter() - t0
            scores[j - b0] = _checked(model, s, (n_items,), "score_folded")
        lowest = np.finfo(scores.dtype).min
        np.maximum(scores, lowest, out=scores)  # a model's -inf is just "lowest"
        scores[:, ~trained] = lowest
        scores[:, ~catalogue] = -np.inf
        counts = np.diff(people.pick_ptr[b0 : b1 + 1])
        lo, hi = people.pick_ptr[b0], people.pick_ptr[b1]
        scores[np.repeat(np.arange(b1 - b0), counts), people.pick_items[lo:hi]] = -np.inf
        topk[b0:b1] = metrics.top_k(scores, k)
    return topk, spent


def _relevant(people: People, n_items: int):
    list_of = np.repeat(np.arange(len(people)), np.diff(people.target_ptr))
    return L.relevance_matrix(list_of, people.target_items, len(people), n_items)


def evaluate_p4(
    model: Any,
    split: NewUserSplit,
    ns: Iterable[int] = DEFAULT_NS,
    k: int = 10,
    *,
    batch_size: int | None = None,
) -> list[dict[str, float]]:
    """The first-n form of P4: one row per ``n`` (ascending) with ``n``, ``users``, ``HR@k``,
    ``NDCG@k``, ``Recall@k`` (hits / min(k, targets)), ``Coverage@k``, ``Novelty@k``,
    ``PopularityPercentile@k``, ``TailHR@k`` / ``HeadHR@k`` / ``TailTargets`` (targets among the
    20% least-rated catalogue movies vs the rest, :mod:`movierec.evaluation.popularity_split`),
    ``Diversity@k``, ``GenreNDCG@k`` (:func:`genre_ndcg_of_people`), ``UnknownPicks`` (share
    of picks without a train rating),
    ``TargetsPerUser`` and ``FoldInMs`` (mean fold-in + scoring time per person).

    ``model`` must be fitted on ``split.train``. An ``n`` that leaves no user gives a row with
    ``users`` 0 and NaN metrics.
    """
    pop = split.item_user_counts
    trained = pop > 0
    n_items = split.train.n_items
    rows = []
    for n in sorted({int(x) for x in ns}):
        people = first_n_people(split, n)
        row: dict[str, float] = {"n": n, "users": len(people)}
        if not len(people):
            rows.append({**row, **dict.fromkeys(_p4_keys(k), float("nan"))})
            continue
        topk, seconds = recommend_people(model, people, split.catalogue, trained, k,
                                         batch_size=batch_size)
        h = L.list_hits(topk, _relevant(people, n_items))
        row.update({
            f"HR@{k}": L.hit_rate(h, k),
            f"NDCG@{k}": L.ndcg(h, k),
            f"Recall@{k}": L.recall_capped(h, k),
            f"Coverage@{k}": metrics.coverage(topk, int(split.catalogue.sum())),
            f"Novelty@{k}": metrics.novelty(topk, pop, split.n_train_users),
            f"PopularityPercentile@{k}": L.popularity_percentile(topk, pop, split.catalogue),
            "UnknownPicks": float(np.mean(~trained[people.pick_items])),
            "TargetsPerUser": float(np.mean(np.diff(people.target_ptr))),
            "FoldInMs": 1000.0 * seconds / len(people),
        })
        target_list = np.repeat(np.arange(len(people)), np.diff(people.target_ptr))
        row.update(split_hit_rates(topk, target_list, people.target_items,
                                   tail_items(pop, split.catalogue), k))
        row[f"Diversity@{k}"] = metrics.diversity(topk, split.train.genre_matrix)
        row[f"GenreNDCG@{k}"] = genre_ndcg_of_people(topk, people, split.catalogue,
                                                     split.train.genre_matrix)
        rows.append(row)
    return rows


def genre_ndcg_of_people(topk: np.ndarray, people: People, catalogue: np.ndarray,
                         genre_matrix: Any, *, block: int = 1 << 16) -> float:
    """P4's genre-NDCG@k (k = ``topk``'s width): P2's genre-NDCG taken against each target of
    each person (gain = Jaccard of genres with the target; the ideal list from the person's
    candidates, the catalogue less their picks); the mean over targets whose ideal DCG is not 0.

    Targets are scored in blocks of ``block``, so ML-20M's millions of targets never hold a
    (targets x genre sets) table at once.
    """
    sets = metrics.genre_sets(genre_matrix)
    set_of, n_sets = sets[1], len(sets[0])
    in_catalogue = np.asarray(catalogue, dtype=bool)
    catalogue_sets = np.bincount(set_of[in_catalogue], minlength=n_sets)
    pick_list = np.repeat(np.arange(len(people)), np.diff(people.pick_ptr))
    own = in_catalogue[people.pick_items]  # a pick outside the catalogue was no candidate
    picked = np.bincount(set_of[people.pick_items[own]] + n_sets * pick_list[own],
                         minlength=len(people) * n_sets).reshape(len(people), n_sets)
    target_list = np.repeat(np.arange(len(people)), np.diff(people.target_ptr))
    ratios = []
    step = max(1, block // max(1, n_sets))
    for t0 in range(0, len(target_list), step):
        lists = target_list[t0 : t0 + step]
        dcg, idcg = metrics.genre_dcg_from_counts(
            topk[lists], people.target_items[t0 : t0 + step],
            catalogue_sets[None, :] - picked[lists], sets)
        keep = idcg > 0
        ratios.append(dcg[keep] / idcg[keep])
    ratios_all = np.concatenate(ratios) if ratios else np.empty(0)
    return float(ratios_all.mean()) if len(ratios_all) else float("nan")


def _p4_keys(k: int) -> list[str]:
    return [f"HR@{k}", f"NDCG@{k}", f"Recall@{k}", f"Coverage@{k}", f"Novelty@{k}",
            f"PopularityPercentile@{k}", "UnknownPicks", "TargetsPerUser", "FoldInMs",
            f"TailHR@{k}", f"HeadHR@{k}", "TailTargets", f"Diversity@{k}", f"GenreNDCG@{k}"]


def evaluate_p4_vae(
    model: Any,
    split: NewUserSplit,
    *,
    target_fraction: float = VAE_TARGET_FRACTION,
    batch_size: int | None = None,
) -> dict[str, float]:
    """The Mult-VAE form of P4: ``users``, ``NDCG@100``, ``Recall@20``, ``Recall@50`` (recall
    normalised by min(k, targets)) and ``FoldInMs``; ``model`` fitted on ``split.train``."""
    people = vae_people(split, target_fraction)
    if not len(people):
        raise EvaluationError("no held-out user has enough ratings for an 80/20 draw (>= 5)")
    trained = split.item_user_counts > 0
    topk, seconds = recommend_people(model, people, split.catalogue, trained, max(VAE_CUTOFFS),
                                     batch_size=batch_size)
    h = L.list_hits(topk, _relevant(people, split.train.n_items))
    return {"users": len(people), "NDCG@100": L.ndcg(h, 100), "Recall@20": L.recall_capped(h, 20),
            "Recall@50": L.recall_capped(h, 50), "FoldInMs": 1000.0 * seconds / len(people)}
