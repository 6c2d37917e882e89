"""The genre-aware training set: what a user likes, labelled 1, against movies of genres they
avoid, labelled 0.

From :class:`~movierec.content.tables.GenreTables` of a train Dataset:

* a **positive row** is one of the user's positive movies (rating ``>= threshold``; see
  :func:`~movierec.content.tables.positive_matrix`) that has at least one of the user's actual
  positive genres; its ``genre`` is that genre (the one most similar to the user when several);
* a **negative row** is a movie the model knows (rated by someone in train) that has one of the
  user's actual negative genres and none of their positive genres; since the user never rated any
  movie of a negative genre, it is never one of their own movies. Its ``genre`` is the negative
  genre it was drawn for: a negative genre of the user uniformly, then a movie of it uniformly.

Each user's rows hold exactly ``ratio`` negative rows per positive row (1:3 by default): where
too few eligible movies exist for all of a user's positives, a random subset of the positives is
kept; users without negative genres get no rows (``ratio=0``: every positive row, no negatives).
Rows are unique per ``(user, movie)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.content.tables import POSITIVE_THRESHOLD, GenreTables, positive_matrix
from movierec.data.dataset import Dataset
from movierec.errors import MovierecError
from movierec.files import write_atomically

__all__ = ["export_training_set", "genre_training_set"]

MAX_ROUNDS = 8
"""Rejection-sampling rounds for negatives; a user still short after them keeps fewer."""

_CHUNK = 1 << 20


def _positive_rows(train: Dataset, tables: GenreTables, threshold: float):
    pos = positive_matrix(train, threshold).tocoo()
    u, i = pos.row.astype(np.int32), pos.col.astype(np.int32)
    genres = train.genre_matrix.tocsr()
    keep = np.zeros(len(u), dtype=bool)
    best = np.zeros(len(u), dtype=np.int32)
    positive = tables.positive
    for s in range(0, len(u), _CHUNK):  # bounded memory for tens of millions of ratings
        uu, ii = u[s : s + _CHUNK], i[s : s + _CHUNK]
        cand = (genres[ii].toarray() > 0) & positive[uu]
        sim = np.where(cand, tables.user_genre[uu], -np.inf)
        keep[s : s + _CHUNK] = cand.any(axis=1)
        best[s : s + _CHUNK] = sim.argmax(axis=1)
    return u[keep], i[keep], best[keep]


def _negative_rows(train: Dataset, tables: GenreTables, need: np.ndarray, seed: int):
    """Up to ``need[u]`` negative (user, item, genre) triples per user, unique per pair."""
    rng = np.random.default_rng(seed)
    genres = train.genre_matrix.tocsc()
    known = train.rated_items
    # movies of each genre that train knows, grouped by genre
    g_items = [genres.indices[genres.indptr[g] : genres.indptr[g + 1]] for g in
               range(genres.shape[1])]  # one slice per genre (about 20)
    g_items = [it[known[it]] for it in g_items]
    sizes = np.array([len(it) for it in g_items], dtype=np.int64)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    flat = np.concatenate(g_items) if g_items else np.zeros(0, np.int64)
    negative = tables.negative & (sizes > 0)[None, :]
    need = np.where(negative.any(axis=1), need, 0)
    item_genres = genres.tocsr()
    positive = tables.positive
    neg_lists = sp.csr_matrix(negative)  # each user's negative genres, as index lists
    n_neg = np.diff(neg_lists.indptr)
    got_u, got_i, got_g = [], [], []
    have = np.zeros(len(need), dtype=np.int64)
    taken = np.zeros(0, dtype=np.int64)  # keys user * n_items + item already drawn
    n_items = train.n_items
    for _ in range(MAX_ROUNDS):
        short = np.maximum(need - have, 0)
        users = np.repeat(np.arange(len(need)), short * 2)  # oversample: some are rejected
        if len(users) == 0:
            break
        k = (rng.random(len(users)) * n_neg[users]).astype(np.int64)
        g = neg_lists.indices[neg_lists.indptr[users] + k]
        items = flat[starts[g] + (rng.random(len(users)) * sizes[g]).astype(np.int64)]
        clash = (item_genres[items].toarray() > 0) & positive[users]
        ok = ~clash.any(axis=1)
        users, items, g = users[ok], items[ok], g[ok]
        key = users.astype(np.int64) * n_items + items
        _, first = np.unique(key, return_index=True)
        fresh = first[~np.isin(key[first], taken)]
        users, items, g, key = users[fresh], items[fresh], g[fresh], key[fresh]
        # at most the missing count per user, in a random order within each user
        order = np.lexsort((rng.random(len(users)), users))
        users, items, g, key = users[order], items[order], g[order], key[order]
        run_start = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
        rank = np.arange(len(users)) - np.repeat(run_start, np.diff(np.r_[run_start, len(users)]))
        sel = rank < short[users]
        got_u.append(users[sel])
        got_i.append(items[sel])
        got_g.append(g[sel])
        taken = np.union1d(taken, key[sel])
        have += np.bincount(users[sel], minlength=len(need))
    if not got_u:
        return (np.zeros(0, np.int32),) * 3
    return (np.concatenate(got_u).astype(np.int32), np.concatenate(got_i).astype(np.int32),
            np.concatenate(got_g).astype(np.int32))


def _first_per_user(users: np.ndarray, quota: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions of a random subset of rows with at most ``quota[u]`` rows of each user ``u``."""
    order = np.lexsort((rng.random(len(users)), users))
    su = users[order]
    run_start = np.r_[0, np.flatnonzero(np.diff(su)) + 1]
    rank = np.arange(len(su)) - np.repeat(run_start, np.diff(np.r_[run_start, len(su)]))
    return np.sort(order[rank < quota[su]])


def genre_training_set(
    train: Dataset,
    tables: GenreTables,
    ratio: int = 3,
    threshold: float = POSITIVE_THRESHOLD,
    seed: int = 0,
) -> pl.DataFrame:
    """The rows of the module docstring as a table sorted by ``user_idx``, then positives first,
    then ``item_idx``.

    Columns: ``user_id``, ``item_id`` (original ids), ``user_idx``, ``item_idx`` (int32),
    ``interaction`` (int8: 1 positive, 0 negative), ``genre``, ``title``.
    """
    if ratio < 0:
        raise MovierecError(f"genre training set: ratio must be >= 0, got {ratio}")
    if tables.user_genre.shape[0] != train.n_users:
        raise MovierecError(
            f"genre tables cover {tables.user_genre.shape[0]} users but {train.name!r} has "
            f"{train.n_users}; build them from the same train Dataset"
        )
    pu, pi, pg = _positive_rows(train, tables, threshold)
    n_pos = np.bincount(pu, minlength=train.n_users)
    nu, ni, ng = _negative_rows(train, tables, n_pos * int(ratio), seed)
    if ratio > 0:  # each user's rows keep the exact ratio: fewer positives where negatives ran out
        keep_pos = np.minimum(n_pos, np.bincount(nu, minlength=train.n_users) // int(ratio))
        rng = np.random.default_rng([seed, 1])
        pick_p = _first_per_user(pu, keep_pos, rng)
        pick_n = _first_per_user(nu, keep_pos * int(ratio), rng)
        pu, pi, pg = pu[pick_p], pi[pick_p], pg[pick_p]
        nu, ni, ng = nu[pick_n], ni[pick_n], ng[pick_n]
    u = np.concatenate([pu, nu])
    i = np.concatenate([pi, ni])
    g = np.concatenate([pg, ng])
    y = np.concatenate([np.ones(len(pu), np.int8), np.zeros(len(nu), np.int8)])
    order = np.lexsort((i, -y, u))
    u, i, g, y = u[order], i[order], g[order], y[order]
    names = np.asarray(tables.genre_names, dtype=object)
    titles = train.items.get_column("title").to_numpy()
    return pl.DataFrame({
        "user_id": train.user_ids[u], "item_id": train.item_ids[i],
        "user_idx": u.astype(np.int32), "item_idx": i.astype(np.int32),
        "interaction": y,
        "genre": pl.Series(names[g].astype(str) if len(g) else [], dtype=pl.String),
        "title": pl.Series(titles[i] if len(i) else [], dtype=pl.String),
    })


def export_training_set(rows: pl.DataFrame, path: str | Path) -> Path:
    """Write the rows as ``.csv``, ``.tsv`` or ``.parquet`` (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        write_atomically(path, lambda tmp: rows.write_parquet(tmp))
    elif suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        write_atomically(path, lambda tmp: rows.write_csv(tmp, separator=sep))
    else:
        raise MovierecError(f"{path}: unknown training-set format; use .csv, .tsv or .parquet")
    return path
