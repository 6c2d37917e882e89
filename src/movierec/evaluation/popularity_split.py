"""Hit rate split by how often the target movie was rated: the rarely rated tail vs the rest.

The tail (:func:`tail_items`) is the ``fraction`` (20% by default) of catalogue movies with the
fewest history ratings, ordered by (count, item_idx) so that exactly ``round(fraction * size)``
movies are in it however many tie. A target is hit when it is in its list's top ``k``;
``TailHR@k`` is the share of tail targets hit and ``HeadHR@k`` that of the other targets (one
value per target, so a P4 person with several targets counts each). They say whether a model
finds the rarely rated movies people go on to watch, or only the popular ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TAIL_FRACTION", "split_hit_rates", "tail_items"]

TAIL_FRACTION = 0.2


def tail_items(item_user_counts: np.ndarray, catalogue: np.ndarray,
               fraction: float = TAIL_FRACTION) -> np.ndarray:
    """``bool (n_items,)``: the ``fraction`` of ``catalogue`` items with the fewest ratings."""
    counts = np.asarray(item_user_counts)
    members = np.flatnonzero(np.asarray(catalogue, dtype=bool))
    order = members[np.lexsort((members, counts[members]))]
    tail = np.zeros(len(counts), dtype=bool)
    tail[order[: int(round(fraction * len(members)))]] = True
    return tail


def split_hit_rates(topk: np.ndarray, target_list: np.ndarray, target_items: np.ndarray,
                    tail: np.ndarray, k: int) -> dict[str, float]:
    """``TailHR@k``, ``HeadHR@k`` and ``TailTargets`` (share of targets in the tail).

    ``topk``: ``int (n_lists, >= k)`` item_idx, best first (-1: empty); target ``t`` belongs to
    list ``target_list[t]``. A group without targets gives NaN.
    """
    top = np.asarray(topk)[:, :k]
    lists = np.asarray(target_list)
    items = np.asarray(target_items)
    hit = (top[lists] == items[:, None]).any(axis=1)
    in_tail = tail[items]

    def rate(mask: np.ndarray) -> float:
        return float(hit[mask].mean()) if mask.any() else float("nan")

    return {f"TailHR@{k}": rate(in_tail), f"HeadHR@{k}": rate(~in_tail),
            "TailTargets": float(in_tail.mean()) if len(items) else float("nan")}
