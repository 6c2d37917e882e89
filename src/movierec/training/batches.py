"""Training batches as slices of pre-built index tensors (never a ``Dataset.__getitem__`` per row).

An epoch is a ``(n_observed, 1 + k)`` layout: each observed rating (row order shuffled anew every
epoch) followed by its ``k`` freshly sampled unobserved items. Flattened row-major, every
contiguous slice of ``(1 + k) * rows`` samples holds whole groups, so a batch is one slice of three
tensors: ``user_idx``, ``item_idx`` (int64) and ``target`` (float32).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from movierec.data.labels import NegativeSampler

if TYPE_CHECKING:  # torch is imported by the commands that train, not by the CLI's start
    import torch


CHUNK_ROWS = 1 << 20
"""Observed ratings whose samples (negatives drawn, tensors made) are built at once: an epoch of
ML-20M (100M samples, ~2.4 GB as whole-epoch tensors) is built ~5M samples at a time while it
trains, so memory stays flat and the first batch starts at once. ml-100k and ML-1M fit in one
chunk (the same draws as building the whole epoch)."""


class EpochBatches:
    """One epoch's samples; iterate for ``(user_idx, item_idx, target, weight)`` torch batches
    (``weight`` is None when every sample counts the same). Built chunk by chunk while iterated
    (:data:`CHUNK_ROWS`); iterating again gives the same batches."""

    def __init__(self, builder: EpochBuilder, epoch: int, rank: int = 0, world_size: int = 1):
        self.builder, self.epoch = builder, epoch
        self.rank, self.world_size = rank, world_size
        self.batch_size = builder.batch_size

    def _all_batches(self) -> int:
        n = self.builder.samples_per_epoch
        return (n + self.batch_size - 1) // self.batch_size

    def __len__(self) -> int:
        total = self._all_batches()
        return total if self.world_size == 1 else total // self.world_size

    def __iter__(
        self,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        kept = len(self) * self.world_size
        b = 0
        for u, i, y, w in self.builder.chunks(self.epoch):
            n = int(u.shape[0])
            for start in range(0, n, self.batch_size):
                mine = b % self.world_size == self.rank and b < kept
                b += 1
                if not mine:
                    continue
                sl = slice(start, min(n, start + self.batch_size))
                yield u[sl], i[sl], y[sl], None if w is None else w[sl]

    def shard(self, rank: int, world_size: int) -> EpochBatches:
        """The batches of process ``rank`` of ``world_size`` (DDP): every ``world_size``-th batch,
        cut to the same count on every process so that collective steps stay in lock-step."""
        return EpochBatches(self.builder, self.epoch, rank, world_size)

    def _whole(self, k: int) -> torch.Tensor | None:
        import torch

        parts = [batch[k] for batch in self]
        if parts and parts[0] is None:
            return None
        return torch.cat([p for p in parts if p is not None]) if parts else torch.zeros(0)

    @property
    def user_idx(self) -> torch.Tensor:
        """int64 ``(n_samples,)`` of the whole epoch (built in full: for tests and small data)."""
        return self._whole(0)  # type: ignore[return-value]

    @property
    def item_idx(self) -> torch.Tensor:
        return self._whole(1)  # type: ignore[return-value]

    @property
    def target(self) -> torch.Tensor:
        return self._whole(2)  # type: ignore[return-value]

    @property
    def weight(self) -> torch.Tensor | None:
        return self._whole(3)


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
        """The shuffled samples of epoch ``epoch``, batched (built while iterated)."""
        return EpochBatches(self, epoch)

    def chunks(
        self, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Epoch ``epoch``'s samples as ``(user_idx, item_idx, target, weight)`` tensors of at
        most :data:`CHUNK_ROWS` groups each, a whole number of batches (but the last)."""
        import torch

        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.user_idx))
        group = 1 + self.k
        per_batch = self.batch_size // group
        step = max(per_batch, (CHUNK_ROWS // per_batch) * per_batch)
        for a in range(0, len(order), step):
            rows = order[a : a + step]
            users = self.user_idx[rows]
            items = np.empty((len(rows), group), dtype=np.int64)
            items[:, 0] = self.item_idx[rows]
            if self.k:
                items[:, 1:] = self.sampler.sample(users, self.k, rng)
            target = np.zeros((len(rows), group), dtype=np.float32)
            target[:, 0] = self.target[rows]
            weight = None
            if self.weight is not None:
                weight = torch.from_numpy(np.repeat(self.weight[rows], group))
            yield (torch.from_numpy(np.repeat(users, group)), torch.from_numpy(items.reshape(-1)),
                   torch.from_numpy(target.reshape(-1)), weight)
