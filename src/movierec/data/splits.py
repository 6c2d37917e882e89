"""Train / validation / test splits of a :class:`Dataset`.

Every part of a :class:`Split` is the parent Dataset restricted to some of its ratings: the id
maps and tables are shared, so a ``user_idx`` / ``item_idx`` means the same in train, validation
and test. Every random split takes a seed; the same seed gives the same split.

* :func:`leave_one_out`: EVALUATION.md P1/P2 (each user's last interaction is the test item).
* :func:`carve_validation` / :func:`with_validation`: a validation set carved out of train
  (never out of test); every model and command that validates carves it here.
* :func:`prepare_split` / :func:`train_part`: the P1/P2 split of a dataset (the fixed files when
  present) and the train part commands learn from.
* :func:`random_holdout`, :func:`temporal_split`, :func:`k_fold`: other protocols.
* :func:`load_fixed_loo` / :func:`write_loo_files`: the fixed ``loo_*.tsv`` evaluation files.
* :func:`ml100k_canonical`: ML-100K's published ``u1..u5`` / ``ua`` / ``ub`` folds (P3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.sampling import EVAL_SEED, sample_negatives
from movierec.data.split_files import (
    LOO_FILES,
    check_sealed,
    read_negatives_tsv,
    read_ratings_tsv,
    seal,
    write_negatives_tsv,
    write_ratings_tsv,
)
from movierec.errors import DataFormatError, MovierecError

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass(frozen=True, eq=False)
class Split:
    """Parts of one Dataset; all share its id maps and tables (same user_idx/item_idx meaning).

    ``negatives`` is ``int32 (test.n_ratings, n_neg)``: row ``r`` holds the sampled negative
    items of test rating ``r``; ``valid_negatives`` is the same for ``valid``.
    """

    name: str
    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    negatives: np.ndarray | None = None
    valid_negatives: np.ndarray | None = None

    def all_ratings(self) -> Dataset:
        """Train, validation and test ratings together, as one Dataset (canonical order)."""
        parts = [p for p in (self.train, self.valid, self.test) if p is not None]
        user_idx, item_idx, rating, timestamp = (
            np.concatenate([getattr(p, a) for p in parts])
            for a in ("user_idx", "item_idx", "rating", "timestamp"))
        return self.train.with_ratings(user_idx, item_idx, rating, timestamp, name=self.name)

    def __repr__(self) -> str:
        valid = f", valid={self.valid.n_ratings:,}" if self.valid is not None else ""
        neg = f", negatives={self.negatives.shape[1]}" if self.negatives is not None else ""
        return (f"Split({self.name!r}: train={self.train.n_ratings:,}{valid}, "
                f"test={self.test.n_ratings:,}{neg})")


def _canonical(ds: Dataset) -> Dataset:
    """``ds`` itself when its ratings are in (user, timestamp, item) order, else re-sorted."""
    u, t, i = ds.user_idx, ds.timestamp, ds.item_idx
    du, dt, di = np.diff(u), np.diff(t), np.diff(i)
    ok = (du > 0) | ((du == 0) & ((dt > 0) | ((dt == 0) & (di >= 0))))
    return ds if ok.all() else ds.with_ratings(u, i, ds.rating, t)


def _last_of_run(user_idx: np.ndarray) -> np.ndarray:
    """``bool``: the last row of each user's contiguous run."""
    last = np.ones(len(user_idx), dtype=bool)
    last[:-1] = user_idx[:-1] != user_idx[1:]
    return last


def _split(ds: Dataset, test: np.ndarray, name: str) -> Split:
    return Split(name, ds.subset(~test, f"{name}/train"), ds.subset(test, f"{name}/test"))


def _check_fraction(fraction: float, what: str) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{what} must be between 0 and 1 (exclusive), got {fraction}")


def leave_one_out(ds: Dataset) -> Split:
    """EVALUATION.md P1/P2 split: per user, the last interaction by (timestamp, item id) is the
    test item, every other interaction is train.

    Users with a single rating keep it in train and have no test item (a test item with no
    history could not be ranked); MovieLens users all have 20 ratings or more. The test part has
    exactly one rating per remaining user, in user order.
    """
    ds = _canonical(ds)
    test = _last_of_run(ds.user_idx) & (ds.user_counts[ds.user_idx] >= 2)
    return _split(ds, test, f"{ds.name}/loo")


def carve_validation(
    train: Dataset,
    method: Literal["last", "random"] = "last",
    fraction: float = 0.1,
    seed: int = 0,
    *,
    min_history: int = 2,
    keep_every_user: bool = True,
    names: tuple[str, str] | None = None,
) -> tuple[Dataset, Dataset]:
    """``train`` cut in two, ``(rest, validation)``: the one place validation data is carved.

    Both parts keep ``train``'s id maps and canonical order, so an index means the same in both.

    * ``"last"``: each user's last interaction by (timestamp, item id) goes to validation when
      the user has at least ``min_history`` ratings (the others keep all of theirs). Under
      leave-one-out this is the second-to-last interaction overall.
    * ``"random"``: ``max(1, round(fraction * n_ratings))`` ratings drawn uniformly with
      ``seed``; with ``keep_every_user``, a user who would lose every rating keeps the last one.

    ``names`` names the two parts (default ``<train>/fit`` and ``<train>/valid``).
    """
    ds = _canonical(train)
    u = ds.user_idx
    if method == "last":
        valid = _last_of_run(u) & (ds.user_counts[u] >= min_history)
    elif method == "random":
        _check_fraction(fraction, "fraction")
        rng = np.random.default_rng(seed)
        valid = np.zeros(ds.n_ratings, dtype=bool)
        n_valid = max(1, round(fraction * ds.n_ratings)) if ds.n_ratings else 0
        valid[rng.choice(ds.n_ratings, n_valid, replace=False)] = True
        if keep_every_user:
            emptied = np.bincount(u[valid], minlength=ds.n_users) == ds.user_counts
            valid[_last_of_run(u) & emptied[u]] = False
    else:
        raise ValueError(f"method must be 'last' or 'random', got {method!r}")
    rest_name, valid_name = names or (f"{train.name}/fit", f"{train.name}/valid")
    return ds.subset(~valid, rest_name), ds.subset(valid, valid_name)


def with_validation(
    split: Split,
    method: Literal["last", "random"] = "last",
    fraction: float = 0.1,
    seed: int = 0,
    n_negatives: int | None = None,
) -> Split:
    """The same split with a validation set carved out of TRAIN (:func:`carve_validation`, every
    user keeping at least one train rating); test and its negatives are untouched.

    With ``n_negatives``, also draws ``valid_negatives`` (:func:`sample_negatives` with ``seed``),
    excluding every item the user has in train, validation or test.
    """
    if split.valid is not None:
        raise MovierecError(f"{split.name} already has a validation set")
    train, valid = carve_validation(split.train, method, fraction, seed,
                                    names=(split.train.name, f"{split.name}/valid"))
    out = replace(split, train=train, valid=valid)
    if n_negatives:
        negs = sample_negatives(out.all_ratings(), valid, n_negatives, seed)
        out = replace(out, valid_negatives=negs)
    return out


def random_holdout(
    ds: Dataset, test_fraction: float = 0.2, seed: int = 0, per_user: bool = True
) -> Split:
    """Random holdout.

    ``per_user=True``: each user puts ``floor(test_fraction * n_u + 0.5)`` of their ``n_u``
    ratings, chosen uniformly, into test, but always keeps at least one in train.
    ``per_user=False``: ``round(test_fraction * n_ratings)`` ratings drawn uniformly overall
    (some users may then have no train rating).
    """
    _check_fraction(test_fraction, "test_fraction")
    ds = _canonical(ds)
    rng = np.random.default_rng(seed)
    n = ds.n_ratings
    test = np.zeros(n, dtype=bool)
    if per_user:
        counts = ds.user_counts
        n_test = np.minimum(np.floor(test_fraction * counts + 0.5), counts - 1)
        order = np.lexsort((rng.random(n), ds.user_idx))  # shuffled within each user's run
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos = np.arange(n) - start[ds.user_idx[order]]
        test[order] = pos < n_test[ds.user_idx[order]]
    else:
        test[rng.choice(n, round(test_fraction * n), replace=False)] = True
    return _split(ds, test, f"{ds.name}/holdout")


def temporal_split(ds: Dataset, test_fraction: float = 0.2) -> Split:
    """Global time cutoff: test is every rating at or after the timestamp of the
    ``round(test_fraction * n_ratings)``-th latest rating, train everything before it.

    Ratings made in the same second land on the same side, so test can be slightly larger than
    the fraction. Test may hold users and items that train has never seen (cold start).
    """
    _check_fraction(test_fraction, "test_fraction")
    ds = _canonical(ds)
    n_test = round(test_fraction * ds.n_ratings)
    if n_test == 0:
        test = np.zeros(ds.n_ratings, dtype=bool)
    else:
        cutoff = np.partition(ds.timestamp, ds.n_ratings - n_test)[ds.n_ratings - n_test]
        test = ds.timestamp >= cutoff
    return _split(ds, test, f"{ds.name}/temporal")


def k_fold(ds: Dataset, k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` splits whose test parts partition the ratings (sizes differ by at most one),
    assigned uniformly at random with ``seed``; fold ``f``'s train is everything else."""
    if not 2 <= k <= ds.n_ratings:
        raise ValueError(f"k must be between 2 and the number of ratings, got {k}")
    ds = _canonical(ds)
    fold = np.empty(ds.n_ratings, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(ds.n_ratings)] = np.arange(ds.n_ratings) % k
    return [_split(ds, fold == f, f"{ds.name}/fold{f + 1}") for f in range(k)]


def ml100k_canonical(full: Dataset, folder: str | Path, fold: str = "u1") -> Split:
    """ML-100K's published fold ``fold`` (``u1``..``u5``, ``ua``, ``ub``): ``<fold>.base`` as
    train and ``<fold>.test`` as test, read from ``folder`` onto ``full``'s id maps."""
    if fold not in ML100K_FOLDS:
        raise ValueError(f"fold must be one of {', '.join(ML100K_FOLDS)}, got {fold!r}")
    folder = Path(folder)
    name = f"{full.name}/{fold}"
    return Split(
        name,
        read_ratings_tsv(folder / f"{fold}.base", full, f"{name}/train"),
        read_ratings_tsv(folder / f"{fold}.test", full, f"{name}/test"),
    )


def load_fixed_loo(full: Dataset, folder: str | Path) -> Split:
    """The fixed P1 split of ``folder`` (``loo_train.tsv``, ``loo_test.tsv``,
    ``loo_negatives.tsv``; original ids) over ``full``'s id maps.

    ``negatives`` row ``r`` belongs to test rating ``r``. Raises :class:`DataFormatError` naming
    the file (and line) for bad rows, ids ``full`` lacks, a test user twice, negatives that do
    not cover the test users, or a negative the user has rated.
    """
    folder = Path(folder)
    name = f"{full.name}/loo"
    check_sealed(folder, list(LOO_FILES))
    train = read_ratings_tsv(folder / "loo_train.tsv", full, f"{name}/train")
    test_path, neg_path = folder / "loo_test.tsv", folder / "loo_negatives.tsv"
    test = read_ratings_tsv(test_path, full, f"{name}/test")
    dup = np.flatnonzero(np.diff(test.user_idx) == 0)
    if len(dup):
        user_id = int(full.user_ids[test.user_idx[dup[0]]])
        raise DataFormatError(test_path, None, f"user id {user_id} has more than one test rating")
    return with_negatives_file(Split(name, train, test), neg_path)


def with_negatives_file(split: Split, path: str | Path) -> Split:
    """``split`` with its test negatives read from ``path`` (``user, item, item, ...``; original
    ids; one line per test user, any order). Raises :class:`DataFormatError` naming the file
    (and line) when the users do not match the test users or a negative was rated."""
    path = Path(path)
    full = split.train
    neg_users, negs = read_negatives_tsv(path, full)
    order = np.argsort(neg_users, kind="stable")
    if not np.array_equal(neg_users[order], split.test.user_idx):
        raise DataFormatError(
            path, None,
            f"negatives are for {len(np.unique(neg_users))} users (one line each expected), "
            f"the test part has {split.test.n_ratings}: the files are not one set",
        )
    negatives = negs[order]
    out = replace(split, negatives=negatives)
    _check_negatives(out, negatives, path, order)
    return out


def _check_negatives(split: Split, negatives: np.ndarray, path: Path, order: np.ndarray) -> None:
    """Raise naming the line of the first of ``negatives`` (``split``'s) that its user rated
    (train or test)."""
    every = split.all_ratings()
    rated = np.sort(every.user_idx.astype(np.int64) * every.n_items + every.item_idx)
    keys = split.test.user_idx.astype(np.int64)[:, None] * every.n_items + negatives
    pos = np.minimum(np.searchsorted(rated, keys), len(rated) - 1)
    hit = rated[pos] == keys
    if hit.any():
        r, c = np.argwhere(hit)[0]
        raise DataFormatError(
            path, int(order[r]) + 1,
            f"movie id {int(every.item_ids[negatives[r, c]])} is a negative of user id "
            f"{int(every.user_ids[split.test.user_idx[r]])}, who rated it",
        )


def write_loo_files(split: Split, folder: str | Path) -> Path:
    """Write ``loo_train.tsv``, ``loo_test.tsv`` and (when the split has negatives)
    ``loo_negatives.tsv`` into ``folder`` (created), in the format :func:`load_fixed_loo` reads:
    original ids, tab-separated, ratings as ``5`` / ``4.5``. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_ratings_tsv(split.train, folder / "loo_train.tsv")
    write_ratings_tsv(split.test, folder / "loo_test.tsv")
    if split.negatives is not None:
        test = split.test
        if len(np.unique(test.user_idx)) != test.n_ratings:
            raise MovierecError(
                f"{split.name}: a user has several test ratings; loo_negatives.tsv holds one "
                "line per user"
            )
        write_negatives_tsv(test.user_ids[test.user_idx], test.item_ids[split.negatives],
                            folder / "loo_negatives.tsv")
    seal(folder, list(LOO_FILES) if split.negatives is not None else list(LOO_FILES[:2]))
    return folder


def generate_loo(full: Dataset, n_negatives: int = 99, seed: int = EVAL_SEED) -> Split:
    """Leave-one-out with sampled negatives: what the fixed files hold, for any dataset/seed."""
    split = leave_one_out(full)
    return replace(split, negatives=sample_negatives(full, split.test, n_negatives, seed))


TRAIN_PARTS = ("fixed", "generate", "none")
"""What :func:`train_part` can learn from (see there)."""


def prepare_split(
    full: Dataset,
    data_dir: str | Path | None,
    mode: str = "fixed",
    negatives_seed: int = EVAL_SEED,
) -> Split:
    """The P1/P2 leave-one-out split of ``full``, with its 99 test negatives.

    ``mode="fixed"`` uses ``<data_dir>/eval/<name>/loo_*.tsv`` when they exist, so every
    implementation scores exactly the same candidates; otherwise (or with ``"generate"``) the
    split and negatives are built here with ``negatives_seed``.
    """
    if mode == "fixed" and data_dir is not None:
        fixed = Path(data_dir) / "eval" / full.name
        if (fixed / "loo_negatives.tsv").exists():
            return load_fixed_loo(full, fixed)
    return generate_loo(full, n_negatives=99, seed=negatives_seed)


def train_part(full: Dataset, data_dir: str | Path | None, split: str = "fixed") -> Dataset:
    """The ratings a model (or a table of users' tastes) may learn from: the train part of
    :func:`prepare_split` (``"fixed"`` / ``"generate"``; the test items never enter it), or every
    rating (``"none"``)."""
    if split not in TRAIN_PARTS:
        raise MovierecError(f"split must be one of {', '.join(TRAIN_PARTS)}, got {split!r}")
    return full if split == "none" else prepare_split(full, data_dir, split).train
