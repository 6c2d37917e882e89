"""Validation HR@10 / NDCG@10 during training: each validation item ranked against sampled items
the user never rated (the P1 recipe of EVALUATION.md on the validation item, never the test one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movierec.data.dataset import Dataset
from movierec.data.labels import NegativeSampler
from movierec.data.splits import carve_validation

if TYPE_CHECKING:  # torch is imported when a network is trained, not by the CLI's start
    import torch


@dataclass
class ValidationSet:
    """``candidates[r, 0]`` is user ``users[r]``'s validation item, ``candidates[r, 1:]`` its
    negatives (int64 torch tensors)."""

    users: torch.Tensor  # int64 (V,)
    candidates: torch.Tensor  # int64 (V, 1 + n)

    @classmethod
    def build(
        cls,
        train: Dataset,
        valid: Dataset,
        n_negatives: int = 99,
        seed: int = 0,
        negatives: np.ndarray | None = None,
    ) -> ValidationSet:
        """Rows of ``valid`` with negatives: ``negatives`` when given (``(valid.n_ratings, n)``
        item_idx, e.g. a Split's ``valid_negatives``), else ``n_negatives`` drawn uniformly with
        replacement from the items the user rated neither in ``train`` nor in ``valid``."""
        import torch

        if negatives is None:
            sampler = NegativeSampler.from_dataset(train, valid)
            negatives = sampler.sample(valid.user_idx, n_negatives, np.random.default_rng(seed))
        cand = np.column_stack([valid.item_idx, np.asarray(negatives)]).astype(np.int64)
        return cls(torch.from_numpy(valid.user_idx.astype(np.int64)), torch.from_numpy(cand))

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def evaluate(self, net, k: int = 10, block: int = 1 << 18) -> dict[str, float]:
        """``{"HR@10", "NDCG@10"}`` of ``net`` (called in eval mode, no gradients). Ties count
        against the model, as in P1."""
        import torch

        was_training = net.training
        net.eval()
        n_cand = self.candidates.shape[1]
        device = next(net.parameters()).device
        ranks = []
        with torch.no_grad():
            rows = max(1, block // n_cand)
            for s in range(0, len(self), rows):
                u = self.users[s : s + rows].to(device)
                c = self.candidates[s : s + rows].to(device)
                scores = net.forward_groups(u, c).float()
                ranks.append((scores[:, 1:] >= scores[:, :1]).sum(dim=1).cpu())
        net.train(was_training)
        rank = torch.cat(ranks).double() if ranks else torch.zeros(0, dtype=torch.float64)
        hit = rank < k
        ndcg = torch.where(hit, 1.0 / torch.log2(rank + 2.0), torch.zeros_like(rank))
        n = max(1, len(rank))
        return {f"HR@{k}": float(hit.sum()) / n, f"NDCG@{k}": float(ndcg.sum()) / n}


def holdout_last(train: Dataset, min_history: int = 2) -> tuple[Dataset, Dataset]:
    """``(rest, validation)``: each user's last interaction (by time, then item id) becomes
    validation when the user has at least ``min_history`` ratings
    (:func:`movierec.data.splits.carve_validation`, ``"last"``)."""
    return carve_validation(train, "last", min_history=min_history)
