"""Plain-words readings of the report's figures, written from the same numbers the figures show."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from movierec.eda.stats import VIF_SEVERE, VIF_WARN, GenreStats, GroupStats, TimeSeries, top_share


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def _join(parts: list[str]) -> str:
    if not parts:
        return "none"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def rating_distribution(stars: np.ndarray, counts: np.ndarray) -> str:
    share = counts / counts.sum()
    top = int(np.argmax(counts))
    mean = float((stars * counts).sum() / counts.sum())
    median = float(stars[np.searchsorted(np.cumsum(share), 0.5 - 1e-12)])
    high = float(share[stars >= 3].sum())
    text = (f"The most common rating is {stars[top]:g} stars ({_pct(share[top])} of all "
            f"ratings); the mean is {mean:.2f} and the median {median:g}. {_pct(high)} of ratings "
            "are 3 stars or more: people mostly rate what they chose to watch and liked.")
    half = (stars * 2) % 2 == 1
    if half.any():
        text += (f" Half-star values ({', '.join(f'{s:g}' for s in stars[half])}) make up "
                 f"{_pct(float(share[half].sum()))} of ratings, less than their whole-star "
                 "neighbours.")
    return text


def long_tail(counts: np.ndarray, who: str, n_total: int | None = None) -> str:
    active = counts[counts > 0]
    med = float(np.median(active))
    text = (f"{who.capitalize()}s have between {active.min():,} and {active.max():,} ratings; half "
            f"have at most {med:g}. The 20% of {who}s with most ratings hold "
            f"{_pct(top_share(active, 0.2))} of all ratings, the top 1% alone "
            f"{_pct(top_share(active, 0.01))}.")
    if who == "movie":
        once = float((active == 1).mean())
        few = float((active < 5).mean())
        if n_total is not None and n_total > len(active):
            text += (f" {n_total - len(active):,} of the {n_total:,} movies in the catalogue have "
                     "no rating at all.")
        text += (f" {_pct(once)} of rated movies have a single rating and {_pct(few)} fewer "
                 "than 5: most of the catalogue is the long tail a recommender rarely sees enough "
                 "of, and a popularity baseline is hard to beat on the head.")
    else:
        text += (" On log-log axes the histogram keeps falling to the right over more than a "
                 "decade: a few very active users rate many movies and weigh a lot in any "
                 "average over ratings (an average over users weighs them equally).")
    return text


def rating_matrix(density: np.ndarray, sparsity: float) -> str:
    return (f"{sparsity:.2%} of the user x rated-movie matrix is empty. Ratings crowd in the "
            f"top-left corner (active users x popular movies), where up to {_pct(density.max())} "
            "of a block's cells hold a rating; the right side, the less-rated movies, is almost "
            "white. Models learn most about the corner and least about the tail.")


def genre_counts(g: GenreStats, overall_mean: float, rating_sd: float) -> str:
    rated = np.flatnonzero(g.n_ratings > 0)
    by_count = rated[np.argsort(-g.n_ratings[rated], kind="stable")]
    by_mean = rated[np.argsort(-g.mean_rating[rated], kind="stable")]
    most = _join([f"{g.names[i]} ({g.n_ratings[i]:,})" for i in by_count[:3]])
    hi, lo = by_mean[0], by_mean[-1]
    spread = g.mean_rating[hi] - g.mean_rating[lo]
    return (f"Most rated: {most}. Highest mean rating: {g.names[hi]} "
            f"({g.mean_rating[hi]:.2f}); lowest: {g.names[lo]} ({g.mean_rating[lo]:.2f}); all "
            f"ratings average {overall_mean:.2f}. The genre means span {spread:.2f} stars, small "
            f"next to the spread of single ratings (standard deviation {rating_sd:.2f}): the "
            "genre tells a little about a rating, the movie and the user much more."
            + (f" {g.names[hi]} is a small genre with a high mean: niche genres are rated by "
               "their fans." if g.n_ratings[hi] < np.median(g.n_ratings[rated]) else ""))


def genre_boxplots(g: GenreStats) -> str:
    rated = np.flatnonzero(g.n_ratings > 0)
    cum = np.cumsum(g.star_counts[rated], axis=1) / g.n_ratings[rated, None]
    med = g.stars[(cum < 0.5 - 1e-12).sum(axis=1)]
    values, n = np.unique(med, return_counts=True)
    common = values[np.argmax(n)]
    return (f"{n.max()} of {len(rated)} genres have a median of {common:g} stars and their "
            "boxes (the middle half of the ratings) mostly overlap: within every genre, ratings "
            "cover nearly the whole scale. Genres differ in the mean (diamonds) by fractions of "
            "a star, which a model can use as a small bias, not as a separator.")


def _pairs(matrix: np.ndarray, names: list[str], k: int, largest: bool, fmt: str) -> list[str]:
    n = len(names)
    r, c = np.triu_indices(n, 1)
    v = matrix[r, c].astype(np.float64)
    ok = np.isfinite(v) & ((v > 0) if largest else (v < 0))
    r, c, v = r[ok], c[ok], v[ok]
    order = np.argsort(-v if largest else v, kind="stable")[:k]
    return [f"{names[r[i]]} + {names[c[i]]} ({format(v[i], fmt)})" for i in order]


def genre_cooccurrence(g: GenreStats) -> str:
    n = len(g.names)
    per_movie = g.n_movies.sum() / max(1, g.n_movies_total)
    text = (f"Movies carry {per_movie:.1f} genres on average; {g.n_no_genre:,} of the "
            f"{g.n_movies_total:,} movies have none.")
    if n >= 2:
        text += (" The most frequent pairs are "
                 f"{_join(_pairs(g.cooccurrence, g.names, 3, True, ',.0f'))} movies. Big genres "
                 "meet often simply because they are big: the correlation heatmap below "
                 "corrects for size.")
    return text


def genre_correlation(g: GenreStats) -> str:
    if not np.isfinite(g.correlation[~np.eye(len(g.names), dtype=bool)]).any():
        return ("No two genres both vary over the movies (a genre on every movie or on none): "
                "there is no correlation to read.")
    pos = _pairs(g.correlation, g.names, 3, True, "+.2f")
    neg = _pairs(g.correlation, g.names, 2, False, "+.2f")
    return (f"Strongest positive pairs: {_join(pos)}; strongest negative: {_join(neg)}. A "
            "positive value means two genres share more movies than their sizes alone would "
            "give, a negative one fewer (a movie is seldom labelled both). Most pairs are close "
            "to zero: the genres largely vary independently of each other.")


def genre_vif(g: GenreStats) -> str:
    vif = g.vif
    finite = np.isfinite(vif)
    where = (f"Computed over the {g.n_movies_total:,} movies, each genre flag regressed on all "
             "others.")
    if not finite.any() and not np.isinf(vif).any():
        return f"{where} Every genre indicator is constant: there is no collinearity to measure."
    big = np.flatnonzero(np.where(np.isnan(vif), 0, vif) > VIF_WARN)
    severe = [g.names[i] for i in big if vif[i] > VIF_SEVERE]
    warn = [g.names[i] for i in big if vif[i] <= VIF_SEVERE]
    if not len(big):  # then no VIF is infinite and at least one is finite
        top = int(np.nanargmax(np.where(np.isinf(vif), np.nan, vif)))
        return (f"{where} Every genre has a variance inflation factor below {VIF_WARN:g} "
                f"(largest: {g.names[top]}, {vif[top]:.2f}; 1 means unrelated to the other "
                "genres). The genre flags are not collinear: a linear model or a factorisation "
                "with genre features gets stable, interpretable weights for each genre without "
                "dropping any.")
    text = where
    if severe:
        text += (f" Severe (VIF above {VIF_SEVERE:g}): {_join(severe)}: these flags are largely "
                 "predictable from the other genres.")
    if warn:
        text += f" Worth a look (VIF {VIF_WARN:g} to {VIF_SEVERE:g}): {_join(warn)}."
    return (text + " In a linear model their weights would be unstable; merge or drop one of the "
            "related genres, or regularise (ridge).")


def ratings_over_time(ts: TimeSeries, first: int, last: int) -> str:
    def day(t: int) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%d %b %Y")

    busiest = int(np.argmax(ts.count))
    share = ts.count[busiest] / ts.count.sum()
    empty = int((ts.count == 0).sum())
    text = (f"Ratings run from {day(first)} to {day(last)} ({len(ts.count):,} {ts.unit}s). The "
            f"busiest {ts.unit} began {ts.start[busiest]} with {ts.count[busiest]:,} ratings "
            f"({_pct(share)} of all).")
    if empty:
        text += f" {empty:,} {ts.unit}s have no rating."
    ok = ts.count >= 20
    if ok.sum() >= 2:
        m = ts.mean_rating[ok]
        r = ts.rolling_mean[np.isfinite(ts.rolling_mean)]
        text += (f" The mean rating per {ts.unit} scatters between {m.min():.2f} and "
                 f"{m.max():.2f}, its average over {ts.window} {ts.unit}s (red line) between "
                 f"{r.min():.2f} and {r.max():.2f}. Peaks in the counts usually come from a few "
                 "users rating many movies at once (MovieLens asks newcomers to rate a batch), "
                 "one reason why a time-based split differs from a random one.")
    return text


def demographic(d: GroupStats) -> str:
    share = d.n_users / d.n_users.sum()
    big = int(np.argmax(d.n_users))
    ok = d.n_ratings >= 1000
    idx = np.flatnonzero(ok) if ok.sum() >= 2 else np.arange(len(d.labels))
    hi = idx[np.argmax(d.mean_rating[idx])]
    lo = idx[np.argmin(d.mean_rating[idx])]
    text = (f"The largest group is {d.labels[big]} ({d.n_users[big]:,} users, {_pct(share[big])})"
            f"; {len(d.labels)} groups in all.")
    counted = ", counting groups with at least 1,000 ratings" if ok.sum() >= 2 else ""
    if len(idx) < 2:
        pass
    elif d.mean_rating[hi] - d.mean_rating[lo] < 0.05:
        text += (f" The mean rating given hardly differs between groups ({d.mean_rating[lo]:.2f} "
                 f"to {d.mean_rating[hi]:.2f}{counted}): {d.attribute} says almost nothing "
                 "about how generous a rater is.")
    else:
        text += (f" Mean rating given ranges from {d.mean_rating[lo]:.2f} ({d.labels[lo]}) to "
                 f"{d.mean_rating[hi]:.2f} ({d.labels[hi]}){counted}; smaller groups' means are "
                 "noisier.")
    if d.n_unknown:
        text += f" {d.n_unknown:,} users have no {d.attribute} and are left out."
    return text
