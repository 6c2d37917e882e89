"""One story for every model trained in epochs: the per-epoch record and early stopping.

:class:`TrainingHistory` is what a training run (one stage: NeuMF's GMF pre-training, a rating
model's selection run, the hybrid's fine-tuning...) records, one row per epoch; models return
theirs from :meth:`~movierec.models.base.Recommender.training_history`, and comparison reports
draw every learning curve from it. :class:`EarlyStopping` is the one early-stopping rule: it
watches one validation number, keeps the best epoch's state and says when to stop.

No torch here: the rating models use it with numpy states, NCF with ``state_dict`` copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["EarlyStopping", "TrainingHistory", "selected_epochs"]


@dataclass
class TrainingHistory:
    """Per-epoch numbers of one training run.

    Attributes:
        name: what was trained (``"neumf"``, ``"gmf pre-training"``, ``"svd-sgd refit"``).
        monitor: the row key early stopping watched (``"valid HR@10"``), or None.
        mode: ``"max"`` when a higher ``monitor`` is better, ``"min"`` otherwise.
        epochs: one dict per epoch: ``epoch`` (1-based), then numbers such as ``train loss``,
            ``train RMSE``, ``valid HR@10``, ``seconds``.
        best_epoch: the 1-based epoch whose state was kept (None: the last one).
        stopped_early: whether early stopping ended the run before its epoch budget.
    """

    name: str
    monitor: str | None = None
    mode: Literal["max", "min"] = "max"
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def add(self, **numbers: float) -> dict[str, float]:
        """Record the next epoch's numbers (``epoch`` is filled in); returns the row."""
        row = {"epoch": len(self.epochs) + 1, **{k: float(v) for k, v in numbers.items()}}
        self.epochs.append(row)
        return row

    @property
    def best_score(self) -> float | None:
        if self.best_epoch is None or self.monitor is None:
            return None
        return self.epochs[self.best_epoch - 1].get(self.monitor)

    def __len__(self) -> int:
        return len(self.epochs)

    def series(self) -> dict[str, list[float]]:
        """``{label: one value per epoch}`` for every number except ``epoch`` and timings (NaN
        where an epoch lacks it): what a learning-curve plot draws."""
        labels: list[str] = []
        for row in self.epochs:
            labels += [k for k in row if k != "epoch" and "seconds" not in k and k not in labels]
        return {k: [float(r.get(k, math.nan)) for r in self.epochs] for k in labels}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingHistory:
        return cls(**data)


def selected_epochs(histories: list[TrainingHistory]) -> int:
    """How many epochs the first training stage kept: its best epoch, else its length (0 for a
    model not trained in epochs). A rating model refits for this many epochs."""
    if not histories:
        return 0
    return int(histories[0].best_epoch or len(histories[0]))


class EarlyStopping:
    """The best validation score so far, its epoch and state; says when to stop.

    ``update`` is called once per epoch with the monitored score; an epoch is better when it
    beats the best by more than ``min_delta``. ``patience`` epochs in a row without a better one
    stop training (None: never stop; the best state is still kept).
    """

    def __init__(self, patience: int | None, mode: Literal["max", "min"] = "max",
                 min_delta: float = 0.0):
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: Any = None
        self.bad = 0

    def update(self, epoch: int, score: float | None,
               snapshot: Callable[[], Any] | None = None) -> bool:
        """Record ``epoch``'s ``score`` (None: no validation this epoch); ``snapshot()`` is
        called to copy the state of a new best epoch. Returns True when training should stop."""
        if score is None:
            return False
        if self.best is None or self._better(score, self.best):
            self.best, self.best_epoch, self.bad = score, epoch, 0
            self.best_state = snapshot() if snapshot is not None else None
            return False
        self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    def restore_best(self, net: Any, history: TrainingHistory) -> None:
        """Load the best epoch's weights into ``net`` (a torch module; unchanged when no state
        was kept) and record that epoch as ``history.best_epoch``."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)
        history.best_epoch = self.best_epoch

    def _better(self, score: float, best: float) -> bool:
        if self.mode == "max":
            return score > best + self.min_delta
        return score < best - self.min_delta
