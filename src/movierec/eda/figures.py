"""The report's pictures: one function per figure, each returning a matplotlib ``Figure``.

Figures are built with :class:`matplotlib.figure.Figure` directly (the Agg renderer, no pyplot
and no global state), so drawing works without a display and in threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm, Normalize, PowerNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from movierec.eda.stats import VIF_SEVERE, VIF_WARN, GenreStats, GroupStats, TimeSeries, box_stats

BLUE, ORANGE, GREY, RED = "#3b6ea8", "#e07b39", "#8c8c8c", "#c0392b"
_thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")


def _figure(width: float, height: float, ncols: int = 1, **kw) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kw)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes)


# ---------------------------------------------------------------------- ratings
def rating_distribution(stars: np.ndarray, counts: np.ndarray) -> Figure:
    """Bars: number of ratings per star value, each labelled with its share."""
    fig, (ax,) = _figure(7, 4)
    width = 0.8 * (np.min(np.diff(stars)) if len(stars) > 1 else 1.0)
    bars = ax.bar(stars, counts, width=width, color=BLUE)
    share = counts / counts.sum()
    ax.bar_label(bars, labels=[f"{s:.0%}" if s >= 0.005 else f"{s:.1%}" for s in share],
                 padding=2, fontsize=8)
    mean = float((stars * counts).sum() / counts.sum())
    ax.axvline(mean, color=ORANGE, ls="--", lw=1.2, label=f"mean {mean:.2f}")
    ax.set_xticks(stars, [f"{s:g}" for s in stars])
    ax.set_xlabel("stars")
    ax.set_ylabel("ratings")
    ax.yaxis.set_major_formatter(_thousands)
    ax.margins(y=0.12)
    ax.legend(frameon=False)
    ax.set_title("How many ratings give each star value")
    return fig


def long_tail(counts: np.ndarray, edges: np.ndarray, who: str) -> Figure:
    """Two log-log panels for ratings per ``who`` ("user" or "movie"): a histogram over
    logarithmic bins and the rank curve (the long tail)."""
    counts = counts[counts > 0]
    fig, (left, right) = _figure(11, 4.2, ncols=2)
    # a bin's height is the average number of {who}s per exact count in it, so that wider
    # bins (logarithmic spacing) do not look taller than they are
    per_bin, _ = np.histogram(counts, bins=edges)
    left.bar(edges[:-1], per_bin / np.diff(edges), width=np.diff(edges), align="edge",
             color=BLUE, edgecolor="white", linewidth=0.5)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlim(max(0.7, counts.min() / 1.5), counts.max() * 1.5)
    med = float(np.median(counts))
    left.axvline(med, color=ORANGE, ls="--", lw=1.2, label=f"median {med:g}")
    left.legend(frameon=False)
    left.set_xlabel(f"ratings per {who} (logarithmic bins)")
    left.set_ylabel(f"{who}s with that many ratings\n(average over the bin)")
    left.set_title(f"Distribution of ratings per {who}")

    ranked = np.sort(counts)[::-1]
    rank = np.arange(1, len(ranked) + 1)
    right.plot(rank, ranked, color=BLUE, lw=1.5)
    right.set_xscale("log")
    right.set_yscale("log")
    k = max(1, int(np.ceil(0.2 * len(ranked))))
    share = ranked[:k].sum() / ranked.sum()
    right.axvline(k, color=ORANGE, ls="--", lw=1.2,
                  label=f"top 20% of {who}s: {share:.0%} of ratings")
    right.legend(frameon=False, loc="lower left")
    right.set_xlabel(f"{who} rank (1 = most ratings)")
    right.set_ylabel("ratings")
    right.set_title(f"Long tail: {who}s ranked by number of ratings")
    for ax in (left, right):
        _log_ticks(ax.xaxis)
        _log_ticks(ax.yaxis)
    return fig


def _log_ticks(axis) -> None:
    """Plain numbers on a logarithmic axis (no 6 x 10^2 style labels): at 1, 2, 5 x 10^k when
    the axis spans few decades, else at the powers of ten. Call after plotting."""
    lo, hi = sorted(axis.get_view_interval())
    decades = np.log10(max(hi, 1e-9) / max(lo, 1e-9))
    subs = (1.0, 2.0, 5.0) if decades <= 2.6 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def rating_matrix(density: np.ndarray, n_users: int, n_movies: int) -> Figure:
    """The user x movie matrix shrunk to blocks, coloured by the share of cells rated."""
    fig, (ax,) = _figure(7.5, 5.5)
    shown = np.ma.masked_less_equal(density, 0)
    lo = max(float(shown.min()) if shown.count() else 1e-4, 1e-5)
    cmap = _cmap("viridis").with_extremes(bad="white")
    im = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap=cmap,
                   norm=LogNorm(vmin=lo, vmax=max(float(density.max()), lo * 10)),
                   extent=(0, n_movies, n_users, 0))
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.{_decimals(v)}%}"))
    cb.ax.yaxis.set_minor_formatter(NullFormatter())
    cb.set_label("share of user x movie cells that hold a rating")
    ax.set_xlabel("movies, most rated first")
    ax.set_ylabel("users, most active first")
    ax.xaxis.set_major_formatter(_thousands)
    ax.yaxis.set_major_formatter(_thousands)
    ax.set_title("Where the ratings are: the user x movie matrix (white = no rating)")
    return fig


# ---------------------------------------------------------------------- genres
def genre_counts(g: GenreStats, overall_mean: float) -> Figure:
    """Ratings per genre (bars) and the mean rating per genre (dots), most rated genre first."""
    order = np.argsort(g.n_ratings, kind="stable")  # barh draws bottom-up: largest on top
    names = [g.names[i] for i in order]
    y = np.arange(len(order))
    fig, (left, right) = _figure(11, 0.3 * len(order) + 1.6, ncols=2, sharey=True)
    bars = left.barh(y, g.n_ratings[order], color=BLUE)
    left.bar_label(bars, labels=[f"{n:,} ({m:,} movies)" for n, m in
                                 zip(g.n_ratings[order], g.n_movies[order], strict=True)],
                   padding=3, fontsize=7.5)
    left.set_yticks(y, names)
    left.set_xlabel("ratings of the genre's movies")
    left.xaxis.set_major_formatter(_thousands)
    left.margins(x=0.3)
    left.set_title("Ratings per genre (a movie counts in each of its genres)")
    mean = g.mean_rating[order]
    right.plot(mean, y, "o", color=ORANGE)
    right.axvline(overall_mean, color=GREY, ls="--", lw=1)
    for yi, m in zip(y, mean, strict=True):
        if np.isfinite(m):
            right.annotate(f"{m:.2f}", (m, yi), xytext=(5, 0), textcoords="offset points",
                           va="center", fontsize=7.5)
    right.set_xlabel(f"mean rating (stars); dashed line: all ratings, {overall_mean:.2f}")
    _mean_limits(right, mean, overall_mean, pad=0.12)
    right.hlines(y, right.get_xlim()[0], mean, color="#d9d9d9", lw=1, zorder=0)
    right.set_title("Mean rating per genre")
    right.tick_params(labelleft=True)
    return fig


def genre_boxplots(g: GenreStats) -> Figure:
    """One box plot of the star values per genre, ordered by mean rating (highest on top)."""
    ok = np.flatnonzero(g.n_ratings > 0)
    ok = ok[np.argsort(g.mean_rating[ok], kind="stable")]
    stats = [box_stats(g.stars, g.star_counts[i], f"{g.names[i]} ({g.n_ratings[i]:,})")
             for i in ok]
    fig, (ax,) = _figure(8, 0.32 * len(ok) + 1.6)
    ax.bxp(stats, orientation="horizontal", showmeans=True, patch_artist=True,
           boxprops={"facecolor": "#cfe0f3", "edgecolor": BLUE},
           medianprops={"color": RED, "lw": 2},
           meanprops={"marker": "D", "markerfacecolor": ORANGE, "markeredgecolor": "none",
                      "markersize": 5},
           flierprops={"marker": "o", "markersize": 3, "markerfacecolor": GREY,
                       "markeredgecolor": "none"})
    ax.set_xticks(g.stars if len(g.stars) <= 12 else g.stars[::2])
    ax.set_xlabel("stars\nred line: median · diamond: mean\n"
                  "box: middle half of the ratings · dots: values beyond the whiskers", fontsize=9)
    ax.set_title("Ratings per genre (number of ratings in brackets), by mean rating")
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    return fig


def genre_heatmap(matrix: np.ndarray, names: list[str], kind: str) -> Figure:
    """Annotated genre x genre heatmap; ``kind`` is "cooccurrence" (movie counts, the diagonal
    in grey holds each genre's movies) or "correlation" (Pearson, diverging colours)."""
    n = len(names)
    side = max(5.0, 0.42 * n + 2.2)
    fig, (ax,) = _figure(side + 1.2, side)
    off = ~np.eye(n, dtype=bool)
    shown = np.ma.masked_array(matrix.astype(np.float64), mask=~off | ~np.isfinite(matrix))
    norm: Normalize
    if kind == "cooccurrence":
        vmax = max(1.0, float(shown.max()) if shown.count() else 1.0)
        norm, cmap, label = PowerNorm(0.5, vmin=0, vmax=vmax), _cmap("Blues"), "movies in both"
        text = [f"{int(v):,}" for v in matrix.ravel()]
        title = "Genre co-occurrence: movies carrying both genres (diagonal: movies per genre)"
    else:
        lim = max(0.05, float(np.abs(shown).max()) if shown.count() else 1.0)
        norm, cmap = TwoSlopeNorm(0, -lim, lim), _cmap("RdBu_r")
        label = "correlation of the genre indicators over movies"
        text = ["" if not np.isfinite(v) else f"{v:+.2f}".replace("0.", ".")
                for v in matrix.ravel()]
        title = "Genre correlation (Pearson / phi over movies; +: often together)"
    im = ax.imshow(shown, cmap=cmap.with_extremes(bad="#e6e6e6"), norm=norm)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label(label)
    rgba = im.cmap(im.norm(shown.filled(0)))
    light = (rgba[..., :3] @ np.array([0.299, 0.587, 0.114])) > 0.55
    size = 7 if n <= 20 else 6
    for (r, c), t in zip(np.ndindex(n, n), text, strict=True):
        diag = r == c
        ax.text(c, r, t, ha="center", va="center", fontsize=size - (kind == "correlation"),
                color="black" if diag or light[r, c] else "white",
                fontweight="bold" if diag else "normal")
    ax.set_xticks(np.arange(n), names, rotation=50, ha="right", rotation_mode="anchor")
    ax.set_yticks(np.arange(n), names)
    ax.spines[:].set_visible(False)
    ax.tick_params(length=0)
    ax.set_title(title)
    return fig


def genre_vif(g: GenreStats) -> Figure:
    """Horizontal bars of each genre indicator's variance inflation factor with the 5 / 10 lines."""
    vif = g.vif
    finite = np.where(np.isfinite(vif), vif, 0.0)
    order = np.argsort(np.where(np.isinf(vif), np.inf, finite), kind="stable")
    top = max(VIF_SEVERE * 1.15, float(finite.max()) * 1.15)
    shown = np.where(np.isinf(vif), top, finite)[order]
    y = np.arange(len(order))
    colours = [RED if v > VIF_SEVERE else ORANGE if v > VIF_WARN else BLUE for v in shown]
    fig, (ax,) = _figure(8, 0.3 * len(order) + 1.6)
    bars = ax.barh(y, shown, color=colours)
    labels = ["inf (exactly collinear)" if np.isinf(v) else "constant" if np.isnan(v)
              else f"{v:.2f}" for v in vif[order]]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=7.5)
    # threshold names sit at the bottom, beside the smallest bars, where they cover nothing
    for x, colour, what in ((VIF_WARN, ORANGE, "worth a look"), (VIF_SEVERE, RED, "severe")):
        ax.axvline(x, color=colour, ls="--", lw=1)
        ax.text(x, 0.01, f" {x:g}: {what}", color=colour, fontsize=8, ha="left", va="bottom",
                transform=ax.get_xaxis_transform())
    ax.set_yticks(y, [g.names[i] for i in order])
    ax.set_xlim(0, top * 1.12)
    ax.set_xlabel("variance inflation factor  1 / (1 - R²)  (1 = independent of the others)")
    ax.set_title("Multicollinearity of the genre indicators")
    return fig


# ---------------------------------------------------------------------- time and users
def ratings_over_time(ts: TimeSeries, min_count: int = 20) -> Figure:
    """Ratings per month (or week) and their mean; means of periods with fewer than
    ``min_count`` ratings are left out as noise."""
    fig = Figure(figsize=(11, 5.5), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    days = 30.0 if ts.unit == "month" else 7.0
    x = ts.start.astype("datetime64[D]")
    top.bar(x, ts.count, width=days * 0.9, align="edge", color=BLUE)
    top.set_ylabel(f"ratings per {ts.unit}")
    top.yaxis.set_major_formatter(_thousands)
    top.set_title(f"Ratings over time, per {ts.unit}")
    ok = ts.count >= min_count
    centre = x + np.timedelta64(int(days // 2), "D")
    bottom.plot(centre[ok], ts.mean_rating[ok], "o", ms=3, color=ORANGE, alpha=0.6,
                label=f"per {ts.unit} (with at least {min_count} ratings)")
    bottom.plot(centre, ts.rolling_mean, "-", lw=2, color=RED,
                label=f"over the surrounding {ts.window} {ts.unit}s")
    bottom.set_ylabel("mean rating")
    bottom.legend(frameon=False, fontsize=8, ncols=2, loc="best")
    bottom.set_xlabel(ts.unit)
    for ax in (top, bottom):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#eeeeee")
        ax.set_axisbelow(True)
    return fig


_GENDER = {"M": "M (men)", "F": "F (women)"}


def demographic(d: GroupStats, overall_mean: float) -> Figure:
    """Users per group (bars) and the mean rating the group gives (dots) for one attribute."""
    labels = [_GENDER.get(v, v) if d.attribute == "gender" else v for v in d.labels]
    y = np.arange(len(labels))[::-1]  # first group on top
    fig, (left, right) = _figure(11, 0.3 * len(labels) + 1.8, ncols=2, sharey=True)
    bars = left.barh(y, d.n_users, color=BLUE)
    share = d.n_users / d.n_users.sum()
    left.bar_label(bars, labels=[f"{n:,} ({s:.0%})" for n, s in zip(d.n_users, share,
                                                                    strict=True)],
                   padding=3, fontsize=7.5)
    left.set_yticks(y, labels)
    left.set_xlabel("users")
    left.margins(x=0.2)
    unknown = f"; {d.n_unknown:,} users without a value left out" if d.n_unknown else ""
    left.set_title(f"Users by {d.attribute}{unknown}")
    right.plot(d.mean_rating, y, "o", color=ORANGE)
    for yi, m, n in zip(y, d.mean_rating, d.n_ratings, strict=True):
        right.annotate(f"{m:.2f} ({n:,} ratings)", (m, yi), xytext=(5, 0),
                       textcoords="offset points", va="center", fontsize=7.5)
    right.axvline(overall_mean, color=GREY, ls="--", lw=1)
    _mean_limits(right, d.mean_rating, overall_mean, pad=0.35)
    right.hlines(y, right.get_xlim()[0], d.mean_rating, color="#d9d9d9", lw=1, zorder=0)
    right.set_xlabel(f"mean rating given (stars); dashed line: all ratings, {overall_mean:.2f}")
    right.set_title(f"Mean rating by {d.attribute}")
    right.tick_params(labelleft=True)
    return fig


def _mean_limits(ax, means: np.ndarray, overall: float, pad: float, span: float = 0.6) -> None:
    """x limits for a mean-rating dot panel: at least ``span`` stars wide around the overall
    mean, so that differences of a hundredth of a star do not look large, plus room on the right
    for the labels."""
    m = means[np.isfinite(means)]
    lo = min(float(m.min()) if m.size else overall, overall - span / 2)
    hi = max(float(m.max()) if m.size else overall, overall + span / 2)
    ax.set_xlim(lo - 0.05, hi + pad * (hi - lo + 0.1))


def _decimals(v: float) -> int:
    return 0 if v >= 0.01 else 1 if v >= 0.001 else 2


def _cmap(name: str):
    from matplotlib import colormaps

    return colormaps[name]
