"""Training batches as slices of pre-built index tensors (never a ``Dataset.__getitem__`` per row).

An epoch is a ``(n_observed, 1 + k)`` layout: each observed rating (row order shuffled anew every
epoch) followed by its ``k`` freshly sampled unobserved items. Flattened row-major, every
contiguous slice of ``(1 + k) * rows`` samples holds whole groups, so a batch is one slice of three
tensors: ``user_idx``, ``item_idx`` (int64) and ``target`` (float32).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movierec.data.labels import NegativeSampler

if TYPE_CHECKING:  # torch is imported by the commands that train, not by the CLI's start
    import torch


@dataclass
class EpochBatches:
    """One epoch's samples; iterate for ``(user_idx, item_idx, target, weight)`` torch batches
    (``weight`` is None when every sample counts the same)."""

    user_idx: torch.Tensor  # int64 (n_samples,)
    item_idx: torch.Tensor  # int64 (n_samples,)
    target: torch.Tensor  # float32 (n_samples,)
    batch_size: int
    weight: torch.Tensor | None = None  # float32 (n_samples,) or None

    def __len__(self) -> int:
        n = int(self.user_idx.shape[0])
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(
        self,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        n = int(self.user_idx.shape[0])
        for start in range(0, n, self.batch_size):
            sl = slice(start, min(n, start + self.batch_size))
            w = None if self.weight is None else self.weight[sl]
            yield self.user_idx[sl], self.item_idx[sl], self.target[sl], w

    def shard(self, rank: int, world_size: int) -> EpochBatches:
        """The batches of process ``rank`` of ``world_size`` (DDP): every ``world_size``-th batch,
        cut to the same count on every process so that collective steps stay in lock-step."""
        if world_size == 1:
            return self
        n_batches = len(self) // world_size
        bs = self.batch_size
        idx = [slice((b * world_size + rank) * bs, (b * world_size + rank + 1) * bs)
               for b in range(n_batches)]
        import torch

        def take(t):
            return torch.cat([t[s] for s in idx]) if idx else t[:0]

        weight = None if self.weight is None else take(self.weight)
        return EpochBatches(take(self.user_idx), take(self.item_idx), take(self.target), bs,
                            weight)


class EpochBuilder:
    """Builds each epoch's samples from the observed ratings and a negative sampler.

    Args:
        user_idx, item_idx: ``int32[n]`` observed interactions.
        target: ``float32[n]`` their training targets (see :mod:`movierec.data.labels`).
        sampler: excludes each user's rated items from the sampled negatives.
        n_negatives: sampled items per observed rating (``k``).
        batch_size: samples per batch, rounded down to whole groups of ``1 + k``.
        seed: the epoch ``e`` draws come from ``default_rng([seed, e])``: the same seed gives
            the same epochs, whatever happened before.
        weight: optional ``float32[n]`` loss weight of each observed interaction, shared by its
            sampled negatives (normalised to mean 1).
    """

    def __init__(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        target: np.ndarray,
        sampler: NegativeSampler,
        n_negatives: int = 4,
        batch_size: int = 8192,
        seed: int = 0,
        weight: np.ndarray | None = None,
    ):
        self.user_idx = np.asarray(user_idx, dtype=np.int64)
        self.item_idx = np.asarray(item_idx, dtype=np.int64)
        self.target = np.asarray(target, dtype=np.float32)
        self.sampler = sampler
        self.k = int(n_negatives)
        group = 1 + self.k
        self.batch_size = max(group, (int(batch_size) // group) * group)
        self.seed = int(seed)
        self.weight = None
        if weight is not None:
            w = np.asarray(weight, dtype=np.float64)
            self.weight = (w / w.mean()).astype(np.float32)

    @property
    def samples_per_epoch(self) -> int:
        return len(self.user_idx) * (1 + self.k)

    def epoch(self, epoch: int) -> EpochBatches:
        """The shuffled samples of epoch ``epoch`` as torch tensors, batched."""
        import torch

        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.user_idx))
        users = self.user_idx[order]
        group = 1 + self.k
        items = np.empty((len(order), group), dtype=np.int64)
        items[:, 0] = self.item_idx[order]
        if self.k:
            items[:, 1:] = self.sampler.sample(users, self.k, rng)
        target = np.zeros((len(order), group), dtype=np.float32)
        target[:, 0] = self.target[order]
        weight = None
        if self.weight is not None:
            weight = torch.from_numpy(np.repeat(self.weight[order], group))
        return EpochBatches(
            torch.from_numpy(np.repeat(users, group)),
            torch.from_numpy(items.reshape(-1)),
            torch.from_numpy(target.reshape(-1)),
            self.batch_size,
            weight,
        )
