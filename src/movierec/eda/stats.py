"""The numbers behind the exploratory report: pure numpy / scipy functions of a :class:`Dataset`.

Nothing here draws; :mod:`movierec.eda.figures` turns these results into pictures and
:mod:`movierec.eda.readings` into sentences. Every function is vectorised over ratings, users and
movies (loops run only over genres or demographic groups, a few dozen at most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError

VIF_WARN = 5.0
"""Variance inflation factor above which a genre indicator is called collinear."""
VIF_SEVERE = 10.0
"""Variance inflation factor above which the collinearity is called severe."""


def check_reportable(ds: Dataset) -> None:
    """Raise :class:`MovierecError` when ``ds`` cannot give a meaningful report.

    Checks that there is at least one rating, that the rating arrays agree in length, that the
    indices are inside the id maps and the item table, and that every rating is a finite number.
    """
    where = f"dataset {ds.name!r}"
    if ds.n_ratings == 0:
        raise MovierecError(
            f"{where} has no ratings: nothing to report. Check that the release folder holds a "
            "non-empty ratings file (u.data, ratings.dat or ratings.csv)."
        )
    lengths = {len(ds.user_idx), len(ds.item_idx), len(ds.rating), len(ds.timestamp)}
    if len(lengths) != 1:
        raise MovierecError(
            f"{where} is malformed: user_idx, item_idx, rating and timestamp have different "
            f"lengths ({len(ds.user_idx)}, {len(ds.item_idx)}, {len(ds.rating)}, "
            f"{len(ds.timestamp)}); rebuild it with Dataset.from_frames or load_dataset."
        )
    if ds.items.height != ds.n_items or "genres" not in ds.items.columns:
        raise MovierecError(
            f"{where} is malformed: its item table has {ds.items.height} rows (needs one per "
            f"item, {ds.n_items}, with a 'genres' column)."
        )
    for arr, n, what in ((ds.user_idx, ds.n_users, "user_idx"), (ds.item_idx, ds.n_items,
                                                                 "item_idx")):
        bad = (arr < 0) | (arr >= n)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise MovierecError(
                f"{where} is malformed: rating {pos} has {what} {int(arr[pos])}, outside "
                f"0..{n - 1}."
            )
    finite = np.isfinite(ds.rating)
    if not finite.all():
        pos = int(np.flatnonzero(~finite)[0])
        raise MovierecError(
            f"{where} is malformed: {int((~finite).sum())} ratings are not numbers (first: "
            f"rating {pos}, user id {int(ds.user_ids[ds.user_idx[pos]])}, movie id "
            f"{int(ds.item_ids[ds.item_idx[pos]])})."
        )


# ---------------------------------------------------------------------- ratings
def rating_histogram(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Distinct star values (ascending ``float64``) and how many ratings have each (``int64``)."""
    stars, counts = np.unique(ds.rating.astype(np.float64), return_counts=True)
    return stars, counts.astype(np.int64)


def top_share(counts: np.ndarray, fraction: float) -> float:
    """Share of the total held by the ``fraction`` largest entries of ``counts`` (0..1)."""
    counts = np.sort(np.asarray(counts))[::-1]
    total = counts.sum()
    if total == 0 or len(counts) == 0:
        return 0.0
    k = max(1, int(np.ceil(fraction * len(counts))))
    return float(counts[:k].sum() / total)


def log_bins(counts: np.ndarray, per_decade: int = 8) -> np.ndarray:
    """Logarithmically spaced bin edges covering ``counts`` (all >= 1), for log-log histograms."""
    hi = max(2.0, float(np.max(counts)) + 1.0)
    n = max(2, int(np.ceil(np.log10(hi) * per_decade)) + 1)
    edges = np.unique(np.floor(np.logspace(0, np.log10(hi), n)))
    return np.append(edges[:-1], hi) if edges[-1] < hi else edges


def matrix_density(ds: Dataset, bins: int = 150) -> np.ndarray:
    """Share of rated cells per block of the user x movie matrix, ``float64[rows, cols]``.

    Rows are users sorted by activity (most active first), columns the rated movies sorted by
    popularity (most rated first); each block covers about ``n / bins`` users or movies.
    """
    rated = ds.rated_items
    u_rank = np.empty(ds.n_users, np.int64)
    u_rank[np.argsort(-ds.user_counts, kind="stable")] = np.arange(ds.n_users)
    i_rank = np.full(ds.n_items, -1, np.int64)
    order = np.argsort(-ds.item_counts, kind="stable")[: int(rated.sum())]
    i_rank[order] = np.arange(len(order))
    nu, ni = ds.n_users, len(order)
    ru, ri = min(bins, nu), min(bins, ni)
    u_block = u_rank[ds.user_idx] * ru // nu
    i_block = i_rank[ds.item_idx] * ri // ni
    filled = np.bincount(u_block * ri + i_block, minlength=ru * ri).reshape(ru, ri)
    u_size = np.bincount(np.arange(nu) * ru // nu, minlength=ru)
    i_size = np.bincount(np.arange(ni) * ri // ni, minlength=ri)
    return filled / np.outer(u_size, i_size)


# ---------------------------------------------------------------------- genres
@dataclass(frozen=True)
class GenreStats:
    """Genre-level numbers; arrays are indexed like ``names`` (the dataset's ``genre_names``).

    ``n_ratings`` / ``mean_rating`` / ``star_counts`` count a rating once in every genre of its
    movie. The indicator statistics (``cooccurrence``, ``correlation``, ``vif``) are over the
    ``n_movies_total`` movies of the item table, one binary indicator per genre.
    """

    names: list[str]
    n_movies: np.ndarray  # int64[G]: movies carrying the genre
    n_movies_total: int  # movies in the item table (rows of the indicator matrix)
    n_no_genre: int  # movies without any genre
    n_ratings: np.ndarray  # int64[G]
    mean_rating: np.ndarray  # float64[G], NaN for a genre without ratings
    stars: np.ndarray  # float64[S], the distinct star values
    star_counts: np.ndarray  # int64[G, S], ratings of each star value per genre
    cooccurrence: np.ndarray  # int64[G, G]: movies carrying both genres (diagonal: n_movies)
    correlation: np.ndarray  # float64[G, G]: Pearson (phi) correlation; NaN for constant ones
    vif: np.ndarray  # float64[G]: variance inflation factor; inf collinear, NaN constant


def genre_stats(ds: Dataset) -> GenreStats:
    """Counts, mean ratings, star histograms, co-occurrence, correlation and VIF per genre."""
    g = ds.genre_matrix.tocsc().astype(np.float64)  # n_items x G
    stars, star_of = np.unique(ds.rating.astype(np.float64), return_inverse=True)
    n_s = len(stars)
    # ratings of each star value per movie, then summed over each genre's movies
    item_star = np.bincount(ds.item_idx.astype(np.int64) * n_s + star_of,
                            minlength=ds.n_items * n_s).reshape(ds.n_items, n_s)
    star_counts = np.rint(g.T @ item_star).astype(np.int64).reshape(-1, n_s)
    n_ratings = star_counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (star_counts @ stars) / n_ratings
    x = g.toarray()
    co = np.rint(x.T @ x).astype(np.int64)
    return GenreStats(
        names=list(ds.genre_names),
        n_movies=np.diag(co).copy(),
        n_movies_total=ds.n_items,
        n_no_genre=int((x.sum(axis=1) == 0).sum()),
        n_ratings=n_ratings,
        mean_rating=mean,
        stars=stars,
        star_counts=star_counts,
        cooccurrence=co,
        correlation=indicator_correlation(x),
        vif=variance_inflation(x),
    )


def indicator_correlation(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns of ``x`` (``float64[G, G]``).

    A constant column (a genre on no movie or on every movie) has no correlation: its row and
    column are NaN, including the diagonal.
    """
    xc = x - x.mean(axis=0)
    sd = np.sqrt((xc * xc).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc.T @ xc) / np.outer(sd, sd)


def variance_inflation(x: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Variance inflation factor of each column of ``x``: ``1 / (1 - R_j^2)``.

    ``R_j^2`` comes from the least-squares regression (with intercept) of column ``j`` on all
    other columns. A column explained exactly by the others gets ``inf``; a constant column
    (nothing to explain) gets NaN.
    """
    n, k = x.shape
    xc = x - x.mean(axis=0)
    sst = (xc * xc).sum(axis=0)
    out = np.full(k, np.nan)
    for j in range(k):  # one small regression per genre (k is a few dozen at most)
        if sst[j] <= tol * max(1, n):
            continue
        others = np.delete(xc, j, axis=1)
        if others.shape[1] == 0:
            out[j] = 1.0
            continue
        beta, *_ = np.linalg.lstsq(others, xc[:, j], rcond=None)
        resid = xc[:, j] - others @ beta
        r2 = 1.0 - float(resid @ resid) / sst[j]
        out[j] = np.inf if 1.0 - r2 <= tol else 1.0 / (1.0 - r2)
    return out


def box_stats(stars: np.ndarray, counts: np.ndarray, label: str) -> dict:
    """Box-plot statistics (matplotlib ``bxp`` format) from a histogram of star values.

    Quartiles use the inverted empirical CDF (the smallest star value at which the cumulative
    share reaches q); whiskers reach the most extreme star value within 1.5 IQR of the box;
    ``fliers`` are the distinct star values beyond them (one point per value, not per rating).
    """
    present = counts > 0
    s, c = stars[present], counts[present]
    cum = np.cumsum(c) / c.sum()
    q1, med, q3 = (float(s[np.searchsorted(cum, q - 1e-12)]) for q in (0.25, 0.5, 0.75))
    iqr = q3 - q1
    inside = (s >= q1 - 1.5 * iqr) & (s <= q3 + 1.5 * iqr)
    return {
        "label": label, "q1": q1, "med": med, "q3": q3,
        "whislo": float(s[inside].min()), "whishi": float(s[inside].max()),
        "mean": float((s * c).sum() / c.sum()), "fliers": s[~inside],
    }


# ---------------------------------------------------------------------- time
@dataclass(frozen=True)
class TimeSeries:
    """Ratings per calendar period; ``start`` holds each period's first day (``datetime64[D]``)."""

    unit: str  # "month" or "week"
    start: np.ndarray  # datetime64[D][P]
    count: np.ndarray  # int64[P]
    mean_rating: np.ndarray  # float64[P], NaN where a period has no rating
    window: int  # periods in the rolling window
    rolling_mean: np.ndarray  # float64[P], mean rating over the centred window; NaN if empty


def ratings_over_time(ds: Dataset, min_periods: int = 24) -> TimeSeries:
    """Ratings per month, or per week when the data spans fewer than ``min_periods`` months.

    Every period between the first and the last rating is present (empty ones count 0). The
    rolling mean pools the ratings of a centred window of 12 months (or 5 weeks), so busy periods
    weigh more than quiet ones.
    """
    days = ds.timestamp // 86_400
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    if int(months.max() - months.min()) + 1 >= min_periods:
        unit, period = "month", months
    else:
        # weeks start on Monday: 1970-01-01 (day 0) was a Thursday, so Monday is day -3
        unit, period = "week", (days + 3) // 7
    first = int(period.min())
    offset = period - first
    n = int(offset.max()) + 1
    count = np.bincount(offset, minlength=n)
    total = np.bincount(offset, weights=ds.rating.astype(np.float64), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    idx = np.arange(first, first + n)
    if unit == "month":
        start = idx.astype("datetime64[M]").astype("datetime64[D]")
    else:
        start = (idx * 7 - 3).astype("datetime64[D]")
    window = 12 if unit == "month" else 5
    csum_n = np.concatenate([[0], np.cumsum(count)])
    csum_t = np.concatenate([[0.0], np.cumsum(total)])
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) + (window - window // 2), 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rolling = (csum_t[hi] - csum_t[lo]) / (csum_n[hi] - csum_n[lo])
    return TimeSeries(unit=unit, start=start, count=count.astype(np.int64), mean_rating=mean,
                      window=window, rolling_mean=rolling)


# ---------------------------------------------------------------------- users
@dataclass(frozen=True)
class GroupStats:
    """Users and their ratings per value of one demographic attribute (in display order)."""

    attribute: str
    labels: list[str]
    n_users: np.ndarray  # int64[K]
    n_ratings: np.ndarray  # int64[K]
    mean_rating: np.ndarray  # float64[K]
    n_unknown: int  # users whose value is missing (left out of the groups)


AGE_BANDS = np.array([0, 18, 25, 35, 45, 50, 56, 200])
AGE_LABELS = ["under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]


def demographics(ds: Dataset) -> list[GroupStats]:
    """Per-group statistics for ``age`` (in the ML-1M bands), ``gender`` and ``occupation``.

    Only attributes the user table has, with at least one known value, are returned; an empty
    list when the release has no user table. Groups of ``gender`` and ``occupation`` are sorted
    by number of users, largest first.
    """
    if ds.users is None:
        return []
    out = []
    for attr in ("age", "gender", "occupation"):
        if attr not in ds.users.columns:
            continue
        col = ds.users.get_column(attr)
        known = col.is_not_null().to_numpy()
        if attr == "age" and col.dtype.is_numeric():
            ages = col.fill_null(-1).to_numpy().astype(np.int64)
            # ML-1M stores the band's lower bound (1, 18, 25, ...): the same bands hold both
            group = np.searchsorted(AGE_BANDS, ages, side="right") - 1
            labels = AGE_LABELS
        else:
            values = col.cast(pl.String).fill_null("").to_numpy()
            labels_all, group = np.unique(values, return_inverse=True)
            labels = [str(v) for v in labels_all]
        if not known.any():
            continue
        group = np.where(known, group, -1)
        stats = _group_stats(ds, attr, labels, group, int((~known).sum()))
        out.append(stats)
    return out


def _group_stats(ds: Dataset, attr: str, labels: list[str], group: np.ndarray,
                 n_unknown: int) -> GroupStats:
    k = len(labels)
    ok = group >= 0
    n_users = np.bincount(group[ok], minlength=k)
    g_rating = group[ds.user_idx]
    r_ok = g_rating >= 0
    n_ratings = np.bincount(g_rating[r_ok], minlength=k)
    total = np.bincount(g_rating[r_ok], weights=ds.rating[r_ok].astype(np.float64), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n_ratings
    keep = np.flatnonzero(n_users > 0)
    if attr != "age":
        keep = keep[np.argsort(-n_users[keep], kind="stable")]
    return GroupStats(attr, [labels[i] for i in keep], n_users[keep].astype(np.int64),
                      n_ratings[keep].astype(np.int64), mean[keep], n_unknown)
