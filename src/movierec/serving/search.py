"""Title search that finds movies the way people type them.

Titles and queries are cut into words after case folding, accent stripping (``Amélie`` ->
``amelie``) and dropping apostrophes (``Schindler's`` -> ``schindlers``); a movie's words are
those of its display title (``The Matrix``), of its MovieLens title (``Matrix, The``, with any
``a.k.a.`` part) and its year (matched by all four digits only). Every word of the query must
match a word of the title, in any order: exactly, as the start of a word (``termin`` ->
``Terminator``; the last word always, the others from three letters), or within one typing
error (two for words of eight letters or more; an error is an insertion, deletion, substitution
or swap of neighbours, measured by rapidfuzz's optimal string alignment distance over the whole
vocabulary in C). Articles and little words
(``the``, ``of``, ...) are optional when the query has other words, so ``matrix the``,
``the matrix`` and ``lord rings`` all find their movie.

Ranking: the share of query words matched exactly (a prefix or a typo counts less), a bonus when
the query covers the whole title (``alien`` puts *Alien* before *Alien: Resurrection*), then
the number of ratings.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left

import numpy as np
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import OSA

from movierec.data.titles import split_title_year

OPTIONAL_WORDS = frozenset({"the", "a", "an", "of", "and", "in", "on", "to", "le", "la", "les",
                            "l", "el", "los", "las", "der", "die", "das", "il", "de", "du"})
EXACT, PREFIX, ONE_TYPO, TWO_TYPOS = 1.0, 0.8, 0.6, 0.45
WHOLE_TITLE_BONUS = 0.15
MIN_PREFIX = 3
YEAR = "#"
"""Marks a year in the vocabulary: matched by the exact four digits only, never as a prefix."""
_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['’`´]")


def words(text: str) -> list[str]:
    """The search words of ``text``: case-folded, accents removed, apostrophes dropped."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    plain = plain.replace("æ", "ae").replace("œ", "oe").replace("ø", "o").replace("ł", "l")
    return _WORD.findall(_APOSTROPHES.sub("", plain))


class TitleSearch:
    """Word index over a list of movies (their item_idx order)."""

    def __init__(self, display_titles: list[str], original_titles: list[str | None],
                 years: list[int | None]) -> None:
        per_movie: list[list[str]] = []
        self.title_words = np.zeros(len(display_titles), dtype=np.int32)
        for i, (shown, original, year) in enumerate(
                zip(display_titles, original_titles, years, strict=True)):
            own = words(shown)
            self.title_words[i] = len(own)
            extra = words(split_title_year(original or "")[0])
            if year is not None:
                extra.append(f"{YEAR}{year}")
            per_movie.append(list(dict.fromkeys(own + extra)))
        self.vocabulary: list[str] = sorted({w for ws in per_movie for w in ws})
        index = {w: j for j, w in enumerate(self.vocabulary)}
        rows = np.repeat(np.arange(len(per_movie)), [len(ws) for ws in per_movie])
        cols = np.fromiter((index[w] for ws in per_movie for w in ws), dtype=np.int64,
                           count=len(rows))
        self._index = index
        self._incidence = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(per_movie), max(1, len(self.vocabulary))))

    def scores(self, query: str) -> np.ndarray | None:
        """``float32 (n_movies,)``: how well each movie matches ``query``, 0 for no match;
        None when the query has no words (then nothing filters)."""
        terms = list(dict.fromkeys(words(query)))
        if not terms:
            return None
        required = [t for t in terms if t not in OPTIONAL_WORDS] or terms
        n = self._incidence.shape[0]
        total = np.zeros(n, dtype=np.float32)
        matched = np.zeros(n, dtype=np.int32)
        ok = np.ones(n, dtype=bool)
        for t in terms:
            quality = self._word_quality(t, last=t == terms[-1])
            best = self._best_per_movie(quality)
            if t in required:
                ok &= best > 0
            total += best
            matched += best > 0
        score = total / len(terms)
        score += WHOLE_TITLE_BONUS * (matched >= self.title_words)
        return np.where(ok, score, 0.0).astype(np.float32)

    def _word_quality(self, term: str, last: bool) -> np.ndarray:
        """``float32 (n_vocabulary,)``: how well each known word matches one query word."""
        quality = np.zeros(len(self.vocabulary), dtype=np.float32)
        if last or len(term) >= MIN_PREFIX:
            lo = bisect_left(self.vocabulary, term)
            hi = bisect_left(self.vocabulary, term + "\U0010ffff", lo)
            quality[lo:hi] = PREFIX
        if len(term) >= 4 and not term.isdigit():
            max_typos = 1 if len(term) < 8 else 2
            for _, distance, j in process.extract(term, self.vocabulary, scorer=OSA.distance,
                                                  score_cutoff=max_typos, limit=None):
                quality[j] = max(quality[j], ONE_TYPO if distance <= 1 else TWO_TYPOS)
        for known in (term, YEAR + term):
            exact = self._index.get(known)
            if exact is not None:
                quality[exact] = EXACT
        return quality

    def _best_per_movie(self, quality: np.ndarray) -> np.ndarray:
        """The best quality among each movie's words."""
        m = self._incidence
        values = quality[m.indices]
        out = np.zeros(m.shape[0], dtype=np.float32)
        nonempty = np.diff(m.indptr) > 0
        if values.size:
            out[nonempty] = np.maximum.reduceat(values, m.indptr[:-1][nonempty])
        return out
