"""P5, the multi-item holdout (docs/evaluation.md): several held-out items per user, full ranking.

Split (:func:`holdout_split`): per user, ``floor(ratio * n_u + 0.5)`` of their ``n_u`` ratings are
held out (at least one while the user keeps one in train), chosen at random with a seed
(``method="random"``, :func:`movierec.data.splits.random_holdout`) or the latest ones by
(timestamp, item id) (``"temporal"``). Microsoft Recommenders' ML-100K benchmark is the random
form with ``ratio=0.25``, ``seed=42``, ``k=10``.

Ranking (:func:`evaluate_holdout`): P2's machinery (``protocols.rank_full``). Candidates are
every catalogue item not in the user's train; items without a train rating score lowest; the
top-k list breaks ties by ascending original id; every held-out item is relevant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import EvaluationError
from movierec.evaluation import list_metrics as L
from movierec.evaluation import metrics
from movierec.evaluation.popularity_split import split_hit_rates, tail_items
from movierec.evaluation.protocols import CELLS_PER_BLOCK, _cutoffs, _parts, rank_full

__all__ = ["HOLDOUT_METHODS", "evaluate_holdout", "holdout_split", "temporal_holdout"]

HOLDOUT_METHODS = ("random", "temporal")


def temporal_holdout(ds: Dataset, ratio: float = 0.25):
    """Per user, the latest ``floor(ratio * n_u + 0.5)`` ratings by (timestamp, item id) are test
    (at most ``n_u - 1``: every user keeps one train rating)."""
    from movierec.data.splits import Split

    _check_ratio(ratio)
    order = np.lexsort((ds.item_idx, ds.timestamp, ds.user_idx))
    if not np.array_equal(order, np.arange(ds.n_ratings)):
        ds = ds.subset(order)
    counts = ds.user_counts
    n_test = np.minimum(np.floor(ratio * counts + 0.5), counts - 1).astype(np.int64)
    pos = np.arange(ds.n_ratings) - np.searchsorted(ds.user_idx, ds.user_idx, side="left")
    test = pos >= (counts - n_test)[ds.user_idx]
    name = f"{ds.name}/holdout-temporal"
    return Split(name, ds.subset(~test, f"{name}/train"), ds.subset(test, f"{name}/test"))


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise EvaluationError(f"holdout ratio must be between 0 and 1 (exclusive), got {ratio}")


def holdout_split(ds: Dataset, ratio: float = 0.25, method: str = "random", seed: int = 42):
    """The P5 split of ``ds`` (see the module docstring); ``seed`` is unused by ``temporal``."""
    _check_ratio(ratio)
    if method == "random":
        from movierec.data.splits import random_holdout

        return random_holdout(ds, test_fraction=ratio, seed=seed, per_user=True)
    if method == "temporal":
        return temporal_holdout(ds, ratio)
    raise EvaluationError(f"holdout method must be one of {HOLDOUT_METHODS}, got {method!r}")


def validation_split(split: Any, ratio: float, method: str, seed: int):
    """A P5 split of ``split.train`` alone (the same rule), for selecting on validation: its test
    part is the validation set; the real test part is never looked at."""
    inner = holdout_split(split.train, ratio, method, seed)
    return replace(inner, name=f"{split.name}/valid")


def evaluate_holdout(
    model: Any,
    split: Any,
    k: int = 10,
    ks: Iterable[int] = (),
    *,
    part: str = "test",
    batch_size: int | None = None,
) -> dict[str, float]:
    """P5 metrics of a model fitted on ``split.train``.

    For each cut-off ``c`` in ``{k} | ks``: ``Precision@c`` (hits / c), ``Recall@c`` (hits /
    held-out items), ``NDCG@c`` (binary gains, IDCG from min(c, held out) hits), ``MAP@c``
    ((sum of precision@i at hit positions) / min(c, held out)) and ``HR@c``, means over users with
    a held-out item; ``MAP-MSR@k`` divides by every held-out item instead (Microsoft Recommenders'
    ``map``, the MAP of their published table). Over the top-``k`` lists: ``Coverage@k``,
    ``Diversity@k``, ``Novelty@k`` and ``GenreNDCG@k`` (P2's, taken against each held-out item;
    mean over held-out items whose ideal DCG is not 0), ``TailHR@k`` / ``HeadHR@k`` /
    ``TailTargets`` (held-out items among the 20% least-rated movies vs the rest, as P2's,
    :mod:`movierec.evaluation.popularity_split`). Also ``users`` and ``HeldOutPerUser``.
    """
    cutoffs = _cutoffs(k, ks)
    _, target, _ = _parts(split, part)
    n_lists = len(np.unique(target.user_idx))
    if not n_lists:
        raise EvaluationError(f"split {getattr(split, 'name', '?')!r} has no {part} ratings")
    if batch_size is None:  # rank_full holds (targets in block) x items: size blocks by targets
        per_user = math.ceil(target.n_ratings / n_lists)
        batch_size = max(1, CELLS_PER_BLOCK // (target.n_items * per_user))
    fr = rank_full(model, split, cutoffs[-1], part=part, k_genre=k, batch_size=batch_size)
    h = L.list_hits(fr.topk, fr.relevant(target.n_items))
    out: dict[str, float] = {"users": float(n_lists),
                             "HeldOutPerUser": target.n_ratings / n_lists}
    for c in cutoffs:
        out[f"Precision@{c}"] = L.precision(h, c)
        out[f"Recall@{c}"] = L.recall(h, c)
        out[f"NDCG@{c}"] = L.ndcg(h, c)
        out[f"MAP@{c}"] = L.average_precision(h, c)
        out[f"HR@{c}"] = L.hit_rate(h, c)
    out[f"MAP-MSR@{k}"] = L.average_precision(h, k, by="relevant")
    top = fr.topk[:, :k]
    out[f"Coverage@{k}"] = metrics.coverage(top, fr.catalogue_size)
    out[f"Diversity@{k}"] = metrics.diversity(top, split.train.genre_matrix)
    out[f"Novelty@{k}"] = metrics.novelty(top, fr.item_user_counts, fr.n_history_users)
    keep = fr.genre_idcg > 0
    out[f"GenreNDCG@{k}"] = (
        float(np.mean(fr.genre_dcg[keep] / fr.genre_idcg[keep])) if keep.any() else float("nan")
    )
    known = fr.item_user_counts > 0  # the tail as P2's: least-rated of the movies in train,
    known[fr.target_items] = True  # and the held-out ones (one nobody trained on is the rarest)
    out.update(split_hit_rates(top, fr.target_list, fr.target_items,
                               tail_items(fr.item_user_counts, known), k))
    return out
