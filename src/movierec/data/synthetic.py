"""Synthetic MovieLens-shaped data with planted structure, of any size, in the real file formats.

:func:`generate` draws users and movies with low-rank taste factors and rates them the way
MovieLens users do: heavy-tailed activity (every user >= ``min_ratings`` ratings), power-law
movie popularity, and a choice of *which* movies a user rates and *how* they rate them that both
follow the user/movie affinity ``user_factors @ item_factors.T``. So a collaborative model can
recover what was planted (and beats popularity), genres carry signal (each genre has a direction
in factor space and a movie's genres are drawn from its factors), and each user's timestamps
strictly increase (leave-one-out by time is meaningful). :func:`write_release` writes the result
as a MovieLens release folder (``csv``, ``dat`` or ``ml-100k`` layout) for the readers.

The data is synthetic: the ids, titles and ratings are made up, so it can be committed and
shared freely. The same arguments and ``seed`` give the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset
from movierec.data.formats import GENRES, ML100K_OCCUPATIONS
from movierec.data.release_writer import write_release

__all__ = ["GENRES", "PRESETS", "Shape", "SyntheticData", "generate", "write_release"]

# Share of movies in each genre (ml-latest-small), so Drama and Comedy dominate as in MovieLens.
_GENRE_RATE = np.array(
    [.19, .12, .06, .07, .39, .12, .05, .45, .08, .01, .10, .03, .06, .16, .10, .19, .04, .02]
)  # fmt: skip

_OCCUPATION_SHARE = np.array(
    [79, 28, 7, 95, 67, 18, 32, 16, 7, 12, 51, 26, 9, 105, 66, 14, 12, 31, 196, 27, 45], float
)
_TAG_WORDS = ["great action", "dark, moody", 'so-called "classic"', "twist ending", "boring"]


ProgressCallback = Callable[[str, float], None]
"""``progress(stage, fraction)``: what is being done and how much of the whole is done (0-1)."""


@dataclass(frozen=True)
class Shape:
    """Size and time span of a synthetic release (``start``/``end``: ISO dates, UTC)."""

    n_users: int
    n_items: int
    n_ratings: int
    half_stars: bool = False
    start: str = "1996-01-01"
    end: str = "2015-12-31"
    popularity_exponent: float = 1.2
    popularity_offset: float = 10.0


PRESETS: dict[str, Shape] = {
    "ml-100k": Shape(943, 1_682, 100_000, False, "1997-09-20", "1998-04-22"),
    "ml-1m": Shape(6_040, 3_706, 1_000_209, False, "2000-04-25", "2003-02-28"),
    "ml-20m": Shape(138_493, 26_744, 20_000_263, True, "1995-01-09", "2015-03-31"),
    "ml-32m": Shape(200_948, 87_585, 32_000_204, True, "1995-01-09", "2023-10-12", 1.6, 60.0),
}
"""Shapes of real releases (users x rated movies x ratings, rating scale, time span). ML-32M's
popularity (exponent 1.6, offset 60) gives its skew: seed 0 has a most-rated movie of 109,688
ratings (the real one: ~103K) and 52% of movies under 10 ratings (real: about half)."""


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated release and the truth it was drawn from.

    Row ``k`` of ``users`` / ``user_factors`` is user id ``k + 1``; row ``j`` of ``items`` /
    ``item_factors`` is movie ``items["item_id"][j]`` (ascending, with gaps like real ids). Every
    user and movie has a row, so these rows are the ``user_idx`` / ``item_idx`` of
    :meth:`to_dataset` (a movie that drew no rating is still in the item index).

    Attributes:
        ratings: ``user_id, item_id`` (Int64), ``rating`` (Float32, whole or half stars),
            ``timestamp`` (Int64 seconds), sorted by user then time; one row per (user, movie).
        items: ``item_id, title, year`` (Int32, null for a few titles without a year),
            ``genres`` (list of :data:`GENRES` names, empty = no genre), ``imdb_id``, ``tmdb_id``.
        users: ``user_id, age, gender, occupation, zip`` as in ML-100K ``u.user``.
        tags: ``user_id, item_id, tag, timestamp``: free-text tags on some rated movies.
        user_factors, item_factors: ``float32`` (n, rank) planted taste factors.
        genre_directions: ``float32`` (len(GENRES), rank) unit vectors; a movie is more likely
            to have genre ``g`` the larger ``item_factors @ genre_directions[g]``.
        popularity: ``float64[n_items]`` the movie-choice base probabilities (sum to 1).
    """

    name: str
    ratings: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    tags: pl.DataFrame
    user_factors: np.ndarray
    item_factors: np.ndarray
    genre_directions: np.ndarray
    popularity: np.ndarray
    seed: int
    preset: str | None = None

    def to_dataset(self) -> Dataset:
        """The :class:`Dataset` the readers should build from any written layout."""
        cols = ["item_id", "title", "year", "genres"]
        return Dataset.from_frames(self.name, self.ratings, self.items.select(cols), self.users)


# ---------------------------------------------------------------------------------- generation
def generate(
    preset: str | None = None,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    n_ratings: int | None = None,
    seed: int = 0,
    rank: int = 12,
    half_stars: bool | None = None,
    min_ratings: int = 20,
    popularity_exponent: float | None = None,
    popularity_offset: float | None = None,
    affinity: float = 3.0,
    rating_noise: float = 0.7,
    name: str | None = None,
    progress: ProgressCallback | None = None,
) -> SyntheticData:
    """Draw a synthetic release shaped like ``preset`` (a key of :data:`PRESETS`) or of the given
    size (sizes given override the preset's).

    ``popularity_exponent`` is the Zipf exponent of movie popularity and ``popularity_offset``
    the rank where its power law sets in (larger: a flatter head), both the preset's unless
    given; ``affinity`` how strongly
    the taste factors (versus popularity and chance) decide which movies a user rates;
    ``rating_noise`` the standard deviation (stars) of rating noise. Ratings are whole stars 1-5
    or, with ``half_stars``, 0.5-5 in halves. Raises ``ValueError`` for an impossible shape.
    ``progress(stage, fraction)`` is called as the work goes (fraction of the whole, 0 to 1).
    """
    report = progress or (lambda stage, fraction: None)
    base = PRESETS.get(preset) if preset else None
    if preset and base is None:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    sizes = {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings}
    if base is None:
        missing = [k for k, v in sizes.items() if v is None]
        if missing:
            raise ValueError(f"give a preset ({', '.join(PRESETS)}) or all of {missing}")
        base = Shape(n_users, n_items, n_ratings)  # type: ignore[arg-type]
    given: dict[str, Any] = {k: v for k, v in sizes.items() if v is not None}
    shape = replace(base, **given)
    if half_stars is not None:
        shape = replace(shape, half_stars=half_stars)
    if popularity_exponent is not None:
        shape = replace(shape, popularity_exponent=popularity_exponent)
    if popularity_offset is not None:
        shape = replace(shape, popularity_offset=popularity_offset)
    alpha, k0 = shape.popularity_exponent, shape.popularity_offset
    nu, ni = shape.n_users, shape.n_items
    if ni > 2**21 - 1 or nu < 1:
        raise ValueError(f"n_items must be below {2**21 - 1:,} and n_users positive")

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    user_f = (rng.standard_normal((nu, rank)) / np.sqrt(rank)).astype(np.float32)
    item_f = rng.standard_normal((ni, rank)).astype(np.float32)
    item_of_rank = rng.permutation(ni)  # popularity rank -> item
    q = np.empty(ni)
    q[item_of_rank] = np.diff(_zipf_cdf(np.arange(ni + 1.0), ni, alpha, k0))
    counts = _ratings_per_user(rng, nu, ni, shape.n_ratings, min_ratings)

    def draw_items(n: int) -> np.ndarray:  # n independent draws from the popularity q
        return item_of_rank[_zipf_rank(rng.random(n), ni, alpha, k0)]

    report("choosing movies", 0.0)
    user_idx, item_idx = _choose(rng, counts, user_f, item_f, q, draw_items, affinity,
                                 on_block=lambda f: report("choosing movies", 0.8 * f))
    report("stars and times", 0.8)
    item_ids = np.sort(rng.choice(np.arange(1, int(ni * 1.3) + 2), ni, replace=False))
    ratings = pl.DataFrame(
        {
            "user_id": user_idx.astype(np.int64) + 1,
            "item_id": item_ids[item_idx],
            "rating": _stars(
                rng, user_idx, item_idx, user_f, item_f, q, rating_noise, shape.half_stars
            ),  # fmt: skip
            "timestamp": _timestamps(rng, counts, shape),
        }
    )
    report("movie, user and tag tables", 0.95)
    genre_dirs = rng.standard_normal((len(GENRES), rank))
    genre_dirs = (genre_dirs / np.linalg.norm(genre_dirs, axis=1, keepdims=True)).astype(np.float32)
    items = _items(rng, item_ids, item_f, genre_dirs, shape)
    data = SyntheticData(
        name=name or f"synthetic-{preset or f'{nu}x{ni}'}",
        ratings=ratings,
        items=items,
        users=_users(rng, user_f),
        tags=_tags(rng, ratings, items),
        user_factors=user_f,
        item_factors=item_f,
        genre_directions=genre_dirs,
        popularity=q,
        seed=seed,
        preset=preset,
    )
    report("generated", 1.0)
    return data


def _zipf_cdf(x: np.ndarray, n: int, alpha: float, k0: float = 10.0) -> np.ndarray:
    """CDF over popularity ranks ``[0, n)`` of the density ``(x + k0) ** -alpha``; its exact
    inverse (:func:`_zipf_rank`) samples ranks with no search over the catalogue."""
    if abs(alpha - 1) < 1e-9:
        return np.log1p(x / k0) / np.log1p(n / k0)
    e = 1 - alpha
    return ((x + k0) ** e - k0**e) / ((n + k0) ** e - k0**e)


def _zipf_rank(u: np.ndarray, n: int, alpha: float, k0: float = 10.0) -> np.ndarray:
    if abs(alpha - 1) < 1e-9:
        x = k0 * np.expm1(u * np.log1p(n / k0))
    else:
        e = 1 - alpha
        x = (k0**e + u * ((n + k0) ** e - k0**e)) ** (1 / e) - k0
    return np.minimum(x.astype(np.int64), n - 1)


def _ratings_per_user(rng, n_users: int, n_items: int, total: int, low: int) -> np.ndarray:
    """Heavy-tailed (log-normal above ``low``) counts summing to ``total``; nobody rates more
    than half the catalogue (ML-100K's most active user rated 44%)."""
    cap = n_items // 2
    if not low * n_users <= total <= cap * n_users:
        raise ValueError(
            f"{total:,} ratings cannot give {n_users:,} users between {low} and {cap} "
            f"(half of {n_items:,} movies) ratings each; change n_ratings, n_users or n_items"
        )
    extra = np.maximum(rng.lognormal(0.0, 1.2, n_users) - 0.2, 0.0)
    want = float(total - low * n_users)
    x = np.zeros(n_users)
    for _ in range(100):  # water-filling: rescale the users below the cap until the sum fits
        full = x >= cap - low
        x[~full] = extra[~full] * (want - x[full].sum()) / max(extra[~full].sum(), 1e-300)
        np.minimum(x, cap - low, out=x)
        if abs(x.sum() - want) < 0.5:
            break
    counts = low + np.floor(x).astype(np.int64)
    room = np.flatnonzero(counts < cap)
    frac = (x - np.floor(x))[room]
    counts[room[np.argsort(-frac, kind="stable")[: total - int(counts.sum())]]] += 1
    return counts


_KEY_BITS, _ITEM_BITS = 23, 21  # a sort code is (user: 20 bits, key: 23, item: 21)
_POP_TILT = 0.6  # extra weight of popularity inside a user's candidate pool


def _code(u: np.ndarray, item: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``uint64`` codes that sort by ``u`` (< 2**20), then ``key`` descending (quantised to 23
    bits over [-40, 40]), then ``item``."""
    top = 2**_KEY_BITS - 1
    kq = np.clip((key + 40.0) * (top / 80.0), 0, top).astype(np.uint64)
    code = u.astype(np.uint64) << np.uint64(_KEY_BITS + _ITEM_BITS)
    code |= (np.uint64(top) - kq) << np.uint64(_ITEM_BITS)
    code |= item.astype(np.uint64)
    return code


def _sorted(a: np.ndarray) -> np.ndarray:
    return pl.Series(a).sort().to_numpy()  # polars sorts on all cores, numpy on one


def _unpack(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = (code >> np.uint64(_KEY_BITS + _ITEM_BITS)).astype(np.int64)
    return u, (code & np.uint64(2**_ITEM_BITS - 1)).astype(np.int64)


def _rank_in_user(u: np.ndarray, n: int) -> np.ndarray:
    """Position of each entry within its user's run (``u`` sorted, users ``0..n-1``)."""
    counts = np.bincount(u, minlength=n)
    return np.arange(len(u)) - np.repeat(np.cumsum(counts) - counts, counts)


def _hash_gumbel(x: np.ndarray, salt: int) -> np.ndarray:
    """Gumbel noise that is a fixed function of ``x`` (splitmix64), so a movie drawn twice into
    a user's pool gets the same key twice and the copies fall next to each other when sorted."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return -np.log(-np.log(((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53))


def _affinity(user_t: np.ndarray, item_t: np.ndarray, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``user_factors[u] . item_factors[i]`` from the transposed factors, one factor at a time:
    element-wise, so equal pairs give bit-equal results (and no (n, rank) copies are made)."""
    out = np.zeros(len(u), dtype=np.float32)
    for k in range(len(user_t)):
        out += user_t[k][u] * item_t[k][i]
    return out


def _choose(rng, counts, user_f, item_f, q, draw_items, affinity, block=4_000_000,
            on_block=None):
    """Which movies each user rates, without replacement: the top ``counts[u]`` by
    ``affinity * user.item + 0.6 log q + Gumbel`` among ``4 * counts[u] + 8`` draws from the
    popularity ``q`` (copies dropped). A user whose pool holds too few distinct movies takes the
    Gumbel-top-k of ``1.6 log q + affinity * user.item`` over the whole catalogue. Users go in
    blocks of about ``block`` draws. Returns ``(user_idx, item_idx)`` int32, grouped by
    ascending user, in random order within a user. ``on_block(fraction)`` follows the blocks."""
    n_users, n_items = len(counts), item_f.shape[0]
    user_t, item_t = np.ascontiguousarray(user_f.T), np.ascontiguousarray(item_f.T)
    draws = 4 * counts + 8
    cum = np.cumsum(draws)
    edges = np.unique(np.r_[0, np.searchsorted(cum, np.arange(block, cum[-1], block)), n_users])
    log_q = np.log(q / q.max())
    salt = int(rng.integers(2**63))
    out_u, out_i = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        nb, k = b - a, counts[a:b]
        u = np.repeat(np.arange(nb), draws[a:b])
        item = draw_items(len(u))
        key = affinity * _affinity(user_t, item_t, u + a, item) + _POP_TILT * log_q[item]
        key += _hash_gumbel(((u + a) << _ITEM_BITS) | item, salt)
        code = _sorted(_code(u, item, key))
        code = code[np.r_[True, code[1:] != code[:-1]]]  # copies of a draw are adjacent
        u, item = _unpack(code)
        short = np.bincount(u, minlength=nb) < k
        keep = (_rank_in_user(u, nb) < k[u]) & ~short[u]
        parts_u, parts_i = [u[keep]], [item[keep]]
        rows, step = np.flatnonzero(short), max(1, block // n_items)
        for c in range(0, len(rows), step):  # the few users too heavy for their pool
            r = rows[c : c + step]
            logit = (1 + _POP_TILT) * log_q + affinity * (user_f[a + r] @ item_f.T)
            logit += rng.gumbel(size=logit.shape)
            ids = np.tile(np.arange(n_items), len(r))
            d_u, d_i = _unpack(_sorted(_code(np.repeat(r, n_items), ids, logit.ravel())))
            top = _rank_in_user(d_u, nb) < k[d_u]
            parts_u.append(d_u[top])
            parts_i.append(d_i[top])
        u, item = np.concatenate(parts_u), np.concatenate(parts_i)
        # shuffle within each user, so the last rating in time is not the best-liked movie
        u, item = _unpack(_sorted(_code(u, item, rng.uniform(-39, 39, len(u)))))
        out_u.append((u + a).astype(np.int32))
        out_i.append(item.astype(np.int32))
        if on_block is not None:
            on_block(b / n_users)
    return np.concatenate(out_u), np.concatenate(out_i)


def _stars(rng, u, i, user_f, item_f, q, noise: float, half: bool) -> np.ndarray:
    """Stars from user and movie biases (popular movies rate a little higher), the affinity
    and noise, centred on MovieLens' mean of 3.55."""
    z = np.log(q)
    b_u = rng.normal(0.0, 0.35, len(user_f))
    b_i = rng.normal(0.0, 0.35, len(item_f)) + 0.25 * (z - z.mean()) / z.std()
    user_t, item_t = np.ascontiguousarray(user_f.T), np.ascontiguousarray(item_f.T)
    raw = np.empty(len(u), dtype=np.float32)
    for c in range(0, len(u), 4_000_000):  # bounded memory
        s = slice(c, c + 4_000_000)
        raw[s] = 0.8 * _affinity(user_t, item_t, u[s], i[s]) + b_u[u[s]] + b_i[i[s]]
    raw += rng.normal(0.0, noise, len(u)).astype(np.float32)
    raw += np.float32(3.55 - raw.mean())
    if half:  # MovieLens users give whole stars about 3 times in 4
        halves = rng.random(len(raw)) < 0.3
        return np.clip(np.where(halves, np.round(raw * 2) / 2, np.round(raw)), 0.5, 5).astype(
            np.float32
        )
    return np.clip(np.round(raw), 1, 5).astype(np.float32)


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _timestamps(rng, counts: np.ndarray, shape: Shape) -> np.ndarray:
    """Strictly increasing seconds per user (ratings grouped by user): each user starts at a
    random moment of the release's span and stays active for a log-normal time (many a single
    session, some for years)."""
    start, end = _epoch(shape.start), _epoch(shape.end) + 86_399
    n = len(counts)
    t0 = start + rng.random(n) * np.maximum(end - start - counts, 0)
    dur = np.minimum(np.maximum(end - counts - t0, 0), rng.lognormal(np.log(3 * 86_400), 2.5, n))
    steps = np.cumsum(rng.exponential(size=int(counts.sum())))  # random gaps between ratings
    first = np.cumsum(counts) - counts
    before = np.r_[0.0, steps][first]  # the gaps of earlier users
    scale = dur / (steps[first + counts - 1] - before + rng.exponential(size=n))
    rel = steps - np.repeat(before, counts)
    # + position in the user's run (arange - first): strictly increasing even within a second
    t = np.floor(np.repeat(t0 - first, counts) + rel * np.repeat(scale, counts))
    return t.astype(np.int64) + np.arange(len(steps))


def _items(rng, item_ids: np.ndarray, item_f, genre_dirs, shape: Shape) -> pl.DataFrame:
    """Movie table: genres drawn from the factors; years skewed to the release's end; titles
    like ``Synthetic Movie 12 (1994)``, some in MovieLens' ``..., The (1994)`` form or with an
    accented alternative title, a few without a year (as in the real files)."""
    n = len(item_ids)
    # factor projection plus logistic noise, cut so each genre keeps its MovieLens share
    u = rng.random((n, len(GENRES)))
    score = 2.0 * (item_f @ genre_dirs.T) + np.log(u / (1 - u))
    cut = np.sort(score, axis=0)[((1 - _GENRE_RATE) * n).astype(int), np.arange(len(GENRES))]
    has = score > cut
    none = ~has.any(axis=1)
    has[none, (score[none] - cut).argmax(axis=1)] = True
    has[rng.random(n) < 0.003] = False  # "no genre": ML-100K unknown, "(no genres listed)"
    row, col = np.nonzero(has)
    genres = (
        pl.DataFrame({"row": row, "genre": np.array(GENRES)[col]})
        .group_by("row", maintain_order=True)
        .agg("genre")
    )
    last_year = int(shape.end[:4])
    year = np.clip(last_year - np.floor(rng.exponential(12.0, n)), 1915, last_year)
    kind = rng.random(n)
    items = pl.DataFrame(
        {
            "item_id": item_ids.astype(np.int64),
            "year": pl.Series(year.astype(np.int32)).scatter(np.flatnonzero(kind < 0.003), None),
            "kind": kind,
            "imdb_id": 100_000 + 7 * item_ids.astype(np.int64),
            "tmdb_id": pl.Series(item_ids * 3 + 11).scatter(np.flatnonzero(kind > 0.99), None),
        }
    ).with_row_index("row", 0)
    name = pl.format("Synthetic Movie {}", "item_id")
    title = (
        pl.when(pl.col("kind") < 0.07).then(pl.concat_str(name, pl.lit(", The")))
        .when(pl.col("kind") < 0.09).then(pl.format("{} (Film synthétique {})", name, "item_id"))
        .otherwise(name)
    )  # fmt: skip
    title = (
        pl.when(pl.col("year").is_null()).then(title).otherwise(pl.format("{} ({})", title, "year"))
    )
    return (
        items.join(genres.with_columns(pl.col("row").cast(pl.UInt32)), on="row", how="left")
        .select(
            "item_id",
            title.alias("title"),
            "year",
            pl.col("genre").fill_null(pl.lit([], pl.List(pl.String))).alias("genres"),
            "imdb_id",
            "tmdb_id",
        )
        .sort("item_id")
    )


def _users(rng, user_f: np.ndarray) -> pl.DataFrame:
    """ML-100K-style demographics; age and gender follow taste directions (side features
    carry a little signal), occupation and zip code do not."""
    n, rank = user_f.shape
    d = rng.standard_normal((rank, 2))
    proj = user_f @ (d / np.linalg.norm(d, axis=0)) * np.sqrt(rank)  # ~N(0, 1) columns
    age = np.clip(np.round(32 + 8 * proj[:, 0] + 6 * rng.standard_normal(n)), 7, 73)
    male = rng.random(n) < 1 / (1 + np.exp(-(0.9 + 1.2 * proj[:, 1])))
    job = rng.choice(len(ML100K_OCCUPATIONS), n, p=_OCCUPATION_SHARE / _OCCUPATION_SHARE.sum())
    return pl.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "age": age.astype(np.int32),
            "gender": np.where(male, "M", "F"),
            "occupation": np.array(ML100K_OCCUPATIONS)[job],
            "zip": pl.Series(rng.integers(0, 100_000, n)).cast(pl.String).str.zfill(5),
        }
    )


def _tags(rng, ratings: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Tags on ~2% of ratings: mostly one of the movie's genres in lower case, otherwise a
    free-text phrase (some with commas and quotes, as users write them)."""
    rows = np.flatnonzero(rng.random(ratings.height) < 0.02)
    first = items.select(pl.col("genres").list.first().str.to_lowercase()).to_series()
    words = np.array(_TAG_WORDS)[rng.integers(0, len(_TAG_WORDS), len(rows))]
    t = ratings[rows]
    genre = first.to_numpy()[np.searchsorted(items["item_id"].to_numpy(), t["item_id"])]
    free = (rng.random(len(rows)) < 0.3) | (genre == None)  # noqa: E711 (object array)
    return t.select(
        "user_id",
        "item_id",
        pl.Series("tag", np.where(free, words, genre).astype(str)),
        pl.col("timestamp") + pl.Series(rng.integers(1, 600, len(rows))),
    )
