"""Training a sequential network (SASRec, GRU4Rec, BERT4Rec) over users' ordered histories.

One training row per user (never one per prefix): a next-item network gets a loss at every
position of the user's last ``max_len + 1`` items (the SASRec paper's way); BERT4Rec gets one
at every masked position. With ``every_window`` a history longer than that also gives the rows
of its earlier stretches (:func:`~movierec.data.sequences.training_rows`), so no interaction is
left out of training. Epochs visit the users in a seeded random order. After every epoch the
network is validated by full ranking: each validation user's held-out item against every item
they have not had in train (the P2 recipe on the validation item, never the test one); early
stopping (:class:`~movierec.training.history.EarlyStopping`) watches validation NDCG@10 and
keeps the best epoch's weights. Progress lines, the CSV epoch log and the per-epoch seconds
come from :mod:`movierec.training.loop`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from movierec.data.sequences import PAD, History, cropped, training_rows
from movierec.training.history import EarlyStopping, TrainingHistory
from movierec.training.loop import EpochLog, Progress, resolve_device, snapshot_of
from movierec.training.sequence_nets import next_item_loss

__all__ = ["MONITOR", "SequenceSettings", "ValidationItems", "by_length", "score_windows",
           "train_sequence_net"]

MONITOR = "valid NDCG@10"
"""What early stopping maximises: full-ranking NDCG@10 of the validation item."""
SCORE_BLOCK = 256
"""Users scored at once (a float32 block of ``SCORE_BLOCK x n_items``), grouped by length."""


@dataclass(frozen=True)
class SequenceSettings:
    """How one sequential network trains (the model's hyper-parameters and run options)."""

    max_len: int
    loss: str = "ce"
    n_negatives: int = 256
    gbce_t: float = 0.75
    masked: bool = False  # BERT4Rec's masked-item training
    mask_prob: float = 0.2
    every_window: bool = False  # train on every max_len stretch of a long history
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 10
    seed: int = 0
    num_threads: int | None = None
    device: str = "auto"
    progress: bool = False
    log_dir: str | None = None


@dataclass(frozen=True)
class ValidationItems:
    """One held-out item per validation user, ranked against every item except the user's
    ``seen`` (train) items and the ``unknown`` items nobody trained on."""

    users: np.ndarray  # int64 (V,)
    items: np.ndarray  # int64 (V,) item_idx
    seen: sp.csr_matrix  # n_users x n_items, the fit data
    unknown: np.ndarray  # bool (n_items,)

    def evaluate(self, net, history: History, max_len: int, device) -> dict[str, float]:
        rank = np.empty(len(self.users), dtype=np.int64)
        for rows in by_length(history, self.users, max_len):
            users = self.users[rows]
            scores = score_windows(net, history.windows(users, max_len), device)
            seen_rows, seen_cols = self.seen[users].nonzero()
            scores[seen_rows, seen_cols] = -np.inf
            scores[:, self.unknown] = -np.inf
            target = scores[np.arange(len(users)), self.items[rows]]
            rank[rows] = (scores > target[:, None]).sum(axis=1)
        hit = rank < 10
        ndcg = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
        n = max(1, len(rank))
        return {"valid HR@10": float(hit.sum()) / n, "valid NDCG@10": float(ndcg.sum()) / n}


def by_length(history: History, users: np.ndarray, max_len: int,
              block: int = SCORE_BLOCK) -> list[np.ndarray]:
    """Positions in ``users`` in blocks of at most ``block``, users of similar history length
    together (their windows then crop to a similar width: short histories cost little)."""
    order = np.argsort(np.minimum(history.lengths[users], max_len), kind="stable")
    return [order[lo : lo + block] for lo in range(0, len(order), block)]


def score_windows(net, windows: np.ndarray, device=None) -> np.ndarray:
    """``float32 (len(windows), n_items)``: every item's score after each window (eval mode,
    no gradients; the caller blocks the users)."""
    was_training = net.training
    net.eval()
    windows = cropped(windows, keep_pad=1)  # BERT4Rec's user_state drops the first column
    with torch.no_grad():
        seq = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.int64))
        if device is not None:
            seq = seq.to(device)
        out = net.logits(net.user_state(seq)).float().cpu().numpy()
    net.train(was_training)
    return out


def _masked_batch(windows: np.ndarray, mask_token: int, prob: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BERT4Rec's inputs and targets: each real item masked with probability ``prob`` (at least
    the last one in a row with none); targets hold the masked items, :data:`PAD` elsewhere."""
    real = windows != PAD
    masked = real & (rng.random(windows.shape) < prob)
    none = ~masked.any(axis=1)
    masked[none, -1] = real[none, -1]
    inputs = np.where(masked, mask_token, windows)
    targets = np.where(masked, windows, PAD)
    return inputs, targets


def _length_batches(rows: np.ndarray, lengths: np.ndarray, batch_size: int,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of users: shuffled, then grouped by (capped) history length so a
    batch's windows crop to a similar width (attention costs the square of it), the batches
    visited in random order."""
    shuffled = rows[rng.permutation(len(rows))]
    by_length = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    batches = [by_length[lo : lo + batch_size] for lo in range(0, len(by_length), batch_size)]
    return [batches[b] for b in rng.permutation(len(batches))]


def train_sequence_net(net, history: History, settings: SequenceSettings,
                       validation: ValidationItems | None, name: str
                       ) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train ``net`` on ``history`` (the fit part of train) and return it (best validation
    weights, on the CPU, eval mode) with its per-epoch record."""
    old_threads = torch.get_num_threads()
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    try:
        return _train(net, history, settings, validation, name)
    finally:
        torch.set_num_threads(old_threads)


def _train(net, history: History, s: SequenceSettings, validation: ValidationItems | None,
           name: str) -> tuple[torch.nn.Module, TrainingHistory]:
    torch.manual_seed(s.seed)
    device = torch.device(resolve_device(s.device))
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    rng = np.random.default_rng(s.seed)
    gen = torch.Generator().manual_seed(s.seed + 1)
    width = s.max_len if s.masked else s.max_len + 1  # a row's items (inputs, + next item)
    train_rows = training_rows(history, width, step=s.max_len, min_items=1 if s.masked else 2,
                               every_window=s.every_window)
    rows, lengths = np.arange(len(train_rows)), train_rows.lengths
    record = TrainingHistory(name, monitor=MONITOR if validation is not None else None)
    stopper = EarlyStopping(s.patience)
    log = EpochLog(s.log_dir)
    bar = Progress(name, s.epochs, "epoch") if s.progress else None
    for epoch in range(1, s.epochs + 1):
        t0, cpu0 = time.perf_counter(), time.process_time()
        net.train()
        total, n_batches = 0.0, 0
        for batch in _length_batches(rows, lengths, s.batch_size, rng):
            w = cropped(train_rows.windows(batch, width))
            if s.masked:
                inputs, targets = _masked_batch(w, net.mask_token, s.mask_prob, rng)
            else:
                inputs, targets = w[:, :-1], np.where(w[:, :-1] == PAD, PAD, w[:, 1:])
            inp = torch.from_numpy(np.ascontiguousarray(inputs)).to(device)
            tgt = torch.from_numpy(np.ascontiguousarray(targets)).to(device)
            h = net.encode(inp)
            where = tgt != PAD
            loss = next_item_loss(net, h[where], tgt[where], s.loss, s.n_negatives, s.gbce_t,
                                  gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n_batches += 1
        seconds = time.perf_counter() - t0
        # CPU seconds of this process: with one thread, what the epoch costs on an idle core
        numbers = {"train loss": total / max(1, n_batches), "seconds": seconds,
                   "cpu seconds": time.process_time() - cpu0}
        if validation is not None:
            numbers.update(validation.evaluate(net, history, s.max_len, device))
            numbers["valid seconds"] = time.perf_counter() - t0 - seconds
        row = record.add(**numbers)
        log.write(row)
        if bar is not None:  # the line shows the epoch's time (the record keeps it as seconds)
            bar.update({**row, "epoch s": round(seconds, 2),
                        "epoch cpu s": round(numbers["cpu seconds"], 2)})
        if stopper.update(epoch, row.get(MONITOR), snapshot_of(net)):
            record.stopped_early = True
            break
    if bar is not None:
        bar.close()
    log.close()
    stopper.restore_best(net, record)
    return net.cpu().eval(), record
