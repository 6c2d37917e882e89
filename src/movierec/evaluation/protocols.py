"""The evaluation protocols of docs/evaluation.md: P1 (sampled), P2 (full ranking), P3 (ratings).

Everything here talks to a model only through ``score(user_idx, item_idx)`` (pairs),
``score_all(user_idx)`` (full rows) and, for P3, ``predict(user_idx, item_idx)`` when the model has
it; higher scores are better. Users are processed in blocks, never one at a time.

Which part of a split is evaluated (``part``):

- ``"test"``: targets are ``split.test`` (P1 negatives ``split.negatives``); the user's history is
  ``split.train`` plus ``split.valid`` when the split has one (a validation slice carved from train
  is still the user's past, so its items are not candidates and count as seen / popular).
- ``"valid"``: targets are ``split.valid`` (P1 negatives ``split.valid_negatives``); the history
  is ``split.train`` alone. This is the same code path, for early stopping and model selection
  without looking at the test item.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from movierec.errors import EvaluationError
from movierec.evaluation import metrics
from movierec.evaluation.popularity_split import split_hit_rates, tail_items
from movierec.machine import usable_cores
from movierec.progress import Progress

if TYPE_CHECKING:
    from movierec.data.dataset import Dataset

__all__ = [
    "FullRanking",
    "evaluate_p1",
    "evaluate_p2",
    "evaluate_p3",
    "rank_full",
    "ranks_p1",
]

PAIRS_PER_CALL = 1_000_000
"""P1 / P3: at most this many (user, item) pairs per ``score`` call."""

CELLS_PER_BLOCK = 4_000_000
"""P2: users per ``score_all`` block are chosen so a block holds about this many scores."""


# ---------------------------------------------------------------------- split parts
def _parts(split: Any, part: str) -> tuple[list[Dataset], Dataset, np.ndarray | None]:
    """(history datasets, target dataset, negatives for the target) of one part of a split."""
    valid = getattr(split, "valid", None)
    if part == "test":
        history = [split.train] + ([valid] if valid is not None else [])
        return history, split.test, getattr(split, "negatives", None)
    if part == "valid":
        if valid is None:
            raise EvaluationError(
                f"split {getattr(split, 'name', '?')!r} has no validation part; carve one with "
                "movierec.data.splits.with_validation(split) before evaluating part='valid'"
            )
        return [split.train], valid, getattr(split, "valid_negatives", None)
    raise EvaluationError(f"part must be 'test' or 'valid', got {part!r}")


def _cutoffs(k: int, ks: Iterable[int]) -> list[int]:
    out = sorted({int(k), *(int(x) for x in ks)})
    if out[0] < 1:
        raise EvaluationError(f"cut-offs must be >= 1, got {out[0]}")
    return out


def _model_name(model: Any) -> str:
    return getattr(model, "name", None) or type(model).__name__


def _checked(model: Any, values: Any, shape: tuple[int, ...], call: str) -> np.ndarray:
    """Scores as a float array of the expected shape, free of NaN, else a clear error."""
    arr = np.asarray(values)
    if arr.shape != shape:
        raise EvaluationError(
            f"{_model_name(model)}.{call} returned shape {arr.shape}, expected {shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise EvaluationError(
            f"{_model_name(model)}.{call} returned {int(np.isnan(arr).sum())} NaN scores; "
            "check the model's training (diverged?) before evaluating it"
        )
    return arr


# ---------------------------------------------------------------------- P1
def ranks_p1(
    model: Any, split: Any, *, part: str = "test", pairs_per_call: int = PAIRS_PER_CALL
) -> np.ndarray:
    """``int64 (n_targets,)``: per target rating, the number of its sampled negatives the model
    scores greater than or equal to the target (P1 rank; ties count against the model).

    Row ``r`` of the part's negatives belongs to target rating ``r`` (``split.test`` or
    ``split.valid``, in their canonical order).
    """
    _, target, negatives = _parts(split, part)
    if negatives is None:
        raise EvaluationError(
            f"split {getattr(split, 'name', '?')!r} has no sampled negatives for part {part!r}; "
            "P1 needs them (movierec.data.splits.sample_negatives / load_fixed_loo)"
        )
    negatives = np.asarray(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != target.n_ratings:
        raise EvaluationError(
            f"negatives have shape {negatives.shape}; expected one row per {part} rating "
            f"({target.n_ratings} rows)"
        )
    n_neg = negatives.shape[1]
    width = n_neg + 1
    ranks = np.empty(target.n_ratings, dtype=np.int64)
    step = max(1, pairs_per_call // width)
    # ML-20M: 138K users x 100 candidates, half a minute of NeuMF: say how far it is
    progress = Progress(f"P1 {part}", target.n_ratings, "users", at_end=False, leave=False)
    for r0 in range(0, target.n_ratings, step):
        r1 = min(r0 + step, target.n_ratings)
        items = np.column_stack([target.item_idx[r0:r1], negatives[r0:r1]]).astype(np.int32)
        users = np.repeat(target.user_idx[r0:r1], width).astype(np.int32)
        s = _checked(model, model.score(users, items.ravel()), (users.size,), "score")
        s = s.reshape(r1 - r0, width)
        ranks[r0:r1] = (s[:, 1:] >= s[:, :1]).sum(axis=1)
        progress.update(n=r1 - r0)
    progress.close()
    return ranks


def evaluate_p1(
    model: Any,
    split: Any,
    k: int = 10,
    ks: Iterable[int] = (),
    *,
    part: str = "test",
    pairs_per_call: int = PAIRS_PER_CALL,
) -> dict[str, float]:
    """P1 (leave-one-out, sampled negatives): ``HR@c`` and ``NDCG@c`` for each cut-off ``c`` in
    ``{k} | ks``, and ``MRR`` over the target and its negatives; means over target ratings."""
    ranks = ranks_p1(model, split, part=part, pairs_per_call=pairs_per_call)
    out: dict[str, float] = {}
    for c in _cutoffs(k, ks):
        out[f"HR@{c}"] = metrics.hit_rate(ranks, c)
        out[f"NDCG@{c}"] = metrics.ndcg(ranks, c)
    out["MRR"] = metrics.mrr(ranks)
    return out


# ---------------------------------------------------------------------- P2
@dataclass(frozen=True, eq=False)
class FullRanking:
    """Raw output of a P2 pass, from which every P2 metric is computed.

    Attributes:
        list_users: ``int32 (n_lists,)`` users with at least one target, ascending.
        topk: ``int64 (n_lists, k)`` each user's best candidates (``-1`` = empty slot).
        target_list: ``int64 (n_targets,)`` row of ``list_users`` each target rating belongs to.
        target_items: ``int32 (n_targets,)`` the target items.
        ranks: ``int64 (n_targets,)`` candidates other than the target scored >= the target.
        genre_dcg, genre_idcg: ``float64 (n_targets,)`` genre-NDCG parts at the first ``k_genre``
            positions of the user's list.
        catalogue_size: items rated anywhere in the dataset.
        item_user_counts: ``int64 (n_items,)`` history users per item (popularity).
        n_history_users: users with at least one history rating.
    """

    list_users: np.ndarray
    topk: np.ndarray
    target_list: np.ndarray
    target_items: np.ndarray
    ranks: np.ndarray
    genre_dcg: np.ndarray
    genre_idcg: np.ndarray
    catalogue_size: int
    item_user_counts: np.ndarray
    n_history_users: int

    def relevant(self, n_items: int) -> sp.csr_matrix:
        """Boolean ``(n_lists, n_items)``: the target items of each list's user."""
        ones = np.ones(len(self.target_items), dtype=bool)
        return sp.csr_matrix(
            (ones, (self.target_list, self.target_items)), shape=(len(self.list_users), n_items)
        )


def rank_full(
    model: Any,
    split: Any,
    k: int = 10,
    *,
    part: str = "test",
    k_genre: int | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
) -> FullRanking:
    """One P2 pass: score every catalogue item for every target user, in blocks of users.

    Catalogue: items rated in any part of the split. Candidates of a user: the catalogue minus
    the user's history items. Items without a history rating score lowest (below every score the
    model can give, tied with each other). Each user's list holds ``k`` items; genre-NDCG is
    taken over its first ``k_genre`` (default ``k``). ``batch_size`` users per ``score_all`` call
    (default: about ``CELLS_PER_BLOCK`` scores per block). ``workers`` threads rank the scored
    blocks while the model scores the next one (default: the cores this process may use); the
    result does not depend on it.
    """
    k_genre = k if k_genre is None else k_genre
    if not 1 <= k_genre <= k:
        raise EvaluationError(f"need 1 <= k_genre <= k, got k_genre={k_genre}, k={k}")
    history, target, _ = _parts(split, part)
    n_users, n_items = target.n_users, target.n_items
    valid = getattr(split, "valid", None)
    all_parts = [split.train, split.test] + ([valid] if valid is not None else [])
    catalogue = np.logical_or.reduce([d.rated_items for d in all_parts])
    outside = np.flatnonzero(~catalogue)
    h_users = np.concatenate([d.user_idx for d in history])
    h_items = np.concatenate([d.item_idx for d in history])
    hist = sp.csr_matrix(
        (np.ones(h_users.size, dtype=bool), (h_users, h_items)), shape=(n_users, n_items)
    )
    pop = np.diff(hist.tocsc().indptr).astype(np.int64)  # distinct history users per item
    unseen = pop == 0
    genres = split.train.genre_matrix
    sets = metrics.genre_sets(genres)
    set_of, n_sets = sets[1], len(sets[0])
    catalogue_sets = np.bincount(set_of[catalogue], minlength=n_sets)

    list_users = np.unique(target.user_idx).astype(np.int32)
    t_users = target.user_idx  # canonical order: sorted by user
    t_list = np.searchsorted(list_users, t_users).astype(np.int64)
    if batch_size is None:
        batch_size = max(1, min(4096, CELLS_PER_BLOCK // max(1, n_items)))
    topk = np.empty((len(list_users), k), dtype=np.int64)
    ranks = np.empty(target.n_ratings, dtype=np.int64)
    g_dcg = np.empty(target.n_ratings)
    g_idcg = np.empty(target.n_ratings)

    def rank_block(b0: int, s: np.ndarray) -> None:
        """Everything after ``score_all`` for the users ``list_users[b0 : b0 + len(s)]``: their
        top-k lists, their targets' ranks and genre DCGs, written into disjoint slices (so blocks
        can run on several threads: numpy releases the GIL in each step)."""
        bu = list_users[b0 : b0 + len(s)]
        s = np.array(s, dtype=np.promote_types(s.dtype, np.float32))  # own copy, edited below
        lowest = np.finfo(s.dtype).min
        np.maximum(s, lowest, out=s)  # a model's -inf is just "lowest"
        s[:, unseen] = lowest
        # not candidates (outside the catalogue, or in the user's history) score -inf: column
        # and scattered writes, no (users x items) mask built (P2 over ML-20M's 138K users)
        s[:, outside] = -np.inf
        rows = hist[bu]
        s[np.repeat(np.arange(len(bu)), np.diff(rows.indptr)), rows.indices] = -np.inf
        topk[b0 : b0 + len(bu)] = metrics.top_k(s, k)

        r0, r1 = np.searchsorted(t_users, [bu[0], bu[-1] + 1])
        local = t_list[r0:r1] - b0
        items = target.item_idx[r0:r1]
        ts = s[local, items]
        if not (ts > -np.inf).all():
            bad = int(np.flatnonzero(ts == -np.inf)[0])
            raise EvaluationError(
                f"{part} item {int(target.item_ids[items[bad]])} of user "
                f"{int(target.user_ids[bu[local[bad]]])} is also in that user's history; "
                "a target must not be among the items the model trained on"
            )
        # one target per user in order (leave-one-out): the block's rows as they are, no copy
        one_each = len(local) == len(bu) and bool((local == np.arange(len(bu))).all())
        s_local = s if one_each else s[local]
        ranks[r0:r1] = np.count_nonzero(s_local >= ts[:, None], axis=1) - 1
        # candidates per genre set: the catalogue's, less the user's history items
        seen = set_of[rows.indices] + n_sets * np.repeat(np.arange(len(bu)), np.diff(rows.indptr))
        counts = catalogue_sets - np.bincount(seen, minlength=len(bu) * n_sets).reshape(
            len(bu), n_sets)
        g_dcg[r0:r1], g_idcg[r0:r1] = metrics.genre_dcg_from_counts(
            topk[b0 + local, :k_genre], items, counts[local], sets
        )

    progress = Progress(f"P2 {part}", len(list_users), "users",
                        at_end=False, leave=False)
    workers = usable_cores() if workers is None else workers
    if workers < 1:
        raise EvaluationError(f"P2 needs workers >= 1, got {workers}")
    # The model scores block after block on this thread, with its own threads as always; the
    # ranking of each scored block goes to a pool of `workers` threads. At most workers + 1
    # scored blocks wait at once, so memory stays a few blocks whatever the number of users.
    # BLAS (numpy's products: the factor models' scores) gets one core less while the pool
    # ranks: its threads spin-wait against the ranking threads otherwise (ML-20M iALS on 2
    # cores: 67.8 s / 122 CPU s with BLAS on both, 53.9 s / 91 CPU s on one).
    from threadpoolctl import threadpool_limits

    blas = threadpool_limits(max(1, usable_cores() - 1), user_api="blas") if workers > 1 \
        else contextlib.nullcontext()
    with blas, ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[None]] = deque()
        for b0 in range(0, len(list_users), batch_size):
            bu = list_users[b0 : b0 + batch_size]
            s = _checked(model, model.score_all(bu), (len(bu), n_items), "score_all")
            while len(pending) > workers:
                pending.popleft().result()  # raises a block's error here, in order
            pending.append(pool.submit(rank_block, b0, s))
            progress.update(n=len(bu))
        for future in pending:
            future.result()
    progress.close()
    return FullRanking(
        list_users=list_users,
        topk=topk,
        target_list=t_list,
        target_items=target.item_idx.astype(np.int32),
        ranks=ranks,
        genre_dcg=g_dcg,
        genre_idcg=g_idcg,
        catalogue_size=int(catalogue.sum()),
        item_user_counts=pop,
        n_history_users=int((np.diff(hist.indptr) > 0).sum()),
    )


def evaluate_p2(
    model: Any,
    split: Any,
    k: int = 10,
    ks: Iterable[int] = (),
    *,
    part: str = "test",
    batch_size: int | None = None,
) -> dict[str, float]:
    """P2 (leave-one-out, full ranking) metrics.

    For each cut-off ``c`` in ``{k} | ks``: ``HR@c``, ``NDCG@c`` (means over target ratings),
    ``Precision@c``, ``Recall@c`` (means over users; relevant = the user's targets). Then ``MRR``
    and, over the top-``k`` lists: ``Coverage@k``, ``Diversity@k``, ``Novelty@k``,
    ``GenreNDCG@k`` (targets whose ideal DCG is 0 left out), ``TailHR@k`` / ``HeadHR@k`` /
    ``TailTargets`` (targets among the 20% least-rated movies vs the rest,
    :mod:`movierec.evaluation.popularity_split`). See :func:`rank_full` for the
    candidate rules and the module docstring for ``part``.
    """
    cutoffs = _cutoffs(k, ks)
    fr = rank_full(model, split, cutoffs[-1], part=part, k_genre=k, batch_size=batch_size)
    relevant = fr.relevant(split.train.n_items)
    out: dict[str, float] = {}
    for c in cutoffs:
        out[f"HR@{c}"] = metrics.hit_rate(fr.ranks, c)
        out[f"NDCG@{c}"] = metrics.ndcg(fr.ranks, c)
        out[f"Precision@{c}"] = metrics.precision_at_k(fr.topk, relevant, c)
        out[f"Recall@{c}"] = metrics.recall_at_k(fr.topk, relevant, c)
    out["MRR"] = metrics.mrr(fr.ranks)
    top = fr.topk[:, :k]
    out[f"Coverage@{k}"] = metrics.coverage(top, fr.catalogue_size)
    out[f"Diversity@{k}"] = metrics.diversity(top, split.train.genre_matrix)
    out[f"Novelty@{k}"] = metrics.novelty(top, fr.item_user_counts, fr.n_history_users)
    keep = fr.genre_idcg > 0
    out[f"GenreNDCG@{k}"] = (
        float(np.mean(fr.genre_dcg[keep] / fr.genre_idcg[keep])) if keep.any() else float("nan")
    )
    known = fr.item_user_counts > 0  # the tail: least-rated of the movies rated in history,
    known[fr.target_items] = True  # and the targets (one nobody else rated is the rarest)
    out.update(split_hit_rates(top, fr.target_list, fr.target_items,
                               tail_items(fr.item_user_counts, known), k))
    return out


# ---------------------------------------------------------------------- P3
def evaluate_p3(
    model: Any, train: Dataset, test: Dataset, *, pairs_per_call: int = PAIRS_PER_CALL
) -> dict[str, float]:
    """P3 (explicit ratings): ``RMSE`` and ``MAE`` of the model's predictions on ``test``.

    Uses ``model.predict(user_idx, item_idx)`` when the model has it, else ``model.score``.
    ``train`` and ``test`` must share id maps (parts of one Dataset); ``n_ratings`` and
    ``cold_ratings`` (test ratings whose user or item has no train rating) are reported too.
    """
    if not (
        np.array_equal(train.user_ids, test.user_ids)
        and np.array_equal(train.item_ids, test.item_ids)
    ):
        raise EvaluationError(
            f"{train.name!r} and {test.name!r} do not share id maps; build both from one "
            "Dataset (Dataset.subset / a split) so user_idx and item_idx mean the same"
        )
    call = "predict" if model.predicts_ratings else "score"
    fn = model.predict if model.predicts_ratings else model.score
    preds = np.empty(test.n_ratings, dtype=np.float64)
    for r0 in range(0, test.n_ratings, pairs_per_call):
        r1 = min(r0 + pairs_per_call, test.n_ratings)
        preds[r0:r1] = _checked(
            model, fn(test.user_idx[r0:r1], test.item_idx[r0:r1]), (r1 - r0,), call
        )
    cold = (train.user_counts[test.user_idx] == 0) | (train.item_counts[test.item_idx] == 0)
    return {
        "RMSE": metrics.rmse(test.rating, preds),
        "MAE": metrics.mae(test.rating, preds),
        "n_ratings": float(test.n_ratings),
        "cold_ratings": float(cold.sum()),
    }
