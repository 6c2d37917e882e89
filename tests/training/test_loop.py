"""Batches, losses and the plain training loop on small synthetic data with planted structure."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from movierec.data.labels import NegativeSampler  # noqa: E402
from movierec.training.batches import EpochBuilder  # noqa: E402
from movierec.training.loop import FitSettings, Task, train_plain  # noqa: E402
from movierec.training.losses import diversity_penalty, jaccard  # noqa: E402
from movierec.training.networks import GMF  # noqa: E402
from movierec.training.validation import ValidationSet  # noqa: E402

N_USERS, N_ITEMS, GROUPS = 60, 40, 4


def _interactions(seed: int = 0):
    """Each user interacts with 8 items of their own group (items i with i % GROUPS == group)."""
    rng = np.random.default_rng(seed)
    group = np.arange(N_USERS) % GROUPS
    users, items = [], []
    for u in range(N_USERS):  # test data construction only
        own = np.flatnonzero(np.arange(N_ITEMS) % GROUPS == group[u])
        pick = rng.choice(own, 9, replace=False)
        users.append(np.full(9, u))
        items.append(pick)
    u, i = np.concatenate(users), np.concatenate(items)
    last = np.arange(8, len(u), 9)  # one held out per user for validation
    keep = np.ones(len(u), bool)
    keep[last] = False
    return u[keep], i[keep], u[last], i[last]


def _task(seed: int = 0, epochs: int = 15, patience=None, validate=True, **kw):
    u, i, vu, vi = _interactions()
    sampler = NegativeSampler(u, i, N_USERS, N_ITEMS)
    builder = EpochBuilder(u, i, np.ones(len(u), np.float32), sampler, 4, 250, seed)
    validation = None
    if validate:
        full = NegativeSampler(np.r_[u, vu], np.r_[i, vi], N_USERS, N_ITEMS)
        neg = full.sample(vu, 20, np.random.default_rng(9))
        cand = torch.from_numpy(np.column_stack([vi, neg]).astype(np.int64))
        validation = ValidationSet(torch.from_numpy(vu.astype(np.int64)), cand)
    torch.manual_seed(seed)
    net = GMF(N_USERS, N_ITEMS, 8, init_std=0.1)
    settings = FitSettings(epochs=epochs, lr=0.03, patience=patience, seed=seed, num_threads=1,
                           **kw)
    genres = np.eye(GROUPS, dtype=np.float32)[np.arange(N_ITEMS) % GROUPS]
    return Task(net, builder, settings, validation, genres)


def test_epochs_are_whole_groups_of_one_positive_and_k_negatives():
    u, i, _, _ = _interactions()
    sampler = NegativeSampler(u, i, N_USERS, N_ITEMS)
    builder = EpochBuilder(u, i, np.ones(len(u), np.float32), sampler, 4, 1003, seed=3)
    assert builder.batch_size == 1000  # rounded down to whole groups of 5
    e0 = builder.epoch(0)
    assert sum(len(b[0]) for b in e0) == len(u) * 5 == builder.samples_per_epoch
    users = e0.user_idx.numpy().reshape(-1, 5)
    items = e0.item_idx.numpy().reshape(-1, 5)
    target = e0.target.numpy().reshape(-1, 5)
    assert (users == users[:, :1]).all()
    assert (target[:, 0] == 1).all() and (target[:, 1:] == 0).all()
    assert sampler.is_rated(users[:, 0], items[:, 0]).all()
    assert not sampler.is_rated(users[:, 1:].ravel(), items[:, 1:].ravel()).any()
    again, other = builder.epoch(0), builder.epoch(1)
    assert torch.equal(again.item_idx, e0.item_idx)
    assert not torch.equal(other.item_idx, e0.item_idx)  # fresh negatives and order per epoch


def test_ddp_shards_split_the_batches_evenly():
    u, i, _, _ = _interactions()
    builder = EpochBuilder(u, i, np.ones(len(u), np.float32),
                           NegativeSampler(u, i, N_USERS, N_ITEMS), 4, 100, seed=0)
    epoch = builder.epoch(0)
    a, b = epoch.shard(0, 2), epoch.shard(1, 2)
    assert len(a) == len(b) == len(epoch) // 2
    batches = list(epoch)
    for k, (ba, bb) in enumerate(zip(a, b, strict=True)):  # rank r takes batches r, r + 2, ...
        assert torch.equal(ba[1], batches[2 * k][1]) and torch.equal(bb[1], batches[2 * k + 1][1])


def test_training_learns_the_groups_and_keeps_the_best_epoch(tmp_path):
    task = _task(epochs=12, log_dir=str(tmp_path))
    before = task.validate()["valid HR@10"]
    history, stats = train_plain(task)
    scores = history.series()["valid HR@10"]
    losses = history.series()["train loss"]
    assert losses[-1] < losses[0] and stats.steps > 0
    assert max(scores) >= before + 0.3
    assert history.best_score == max(scores) and history.best_epoch == int(np.argmax(scores)) + 1
    assert task.validate()["valid HR@10"] == pytest.approx(history.best_score)  # best kept
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train loss") and len(lines) == len(history.epochs) + 1


def _tensorboard_scalars(folder) -> dict[str, list[float]]:
    """Every scalar of the TensorBoard event files under ``folder`` (TFRecord framing)."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[float]] = {}
    for file in folder.rglob("events.out.tfevents.*"):
        data, pos = file.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def test_tensorboard_logger_writes_every_epochs_figures(tmp_path):
    task = _task(epochs=3, patience=None, log_dir=str(tmp_path), logger="tensorboard")
    history, _ = train_plain(task)
    scalars = _tensorboard_scalars(tmp_path)
    # TensorBoard tag names cannot hold "@" or spaces: "valid HR@10" is written valid_HR_10
    assert scalars["valid_HR_10"] == pytest.approx(history.series()["valid HR@10"])
    assert len(scalars["train_loss"]) == 3 and (tmp_path / "metrics.csv").exists()


def test_early_stopping_waits_patience_epochs():
    task = _task(epochs=200, patience=2)
    history, _ = train_plain(task)
    assert history.stopped_early
    assert len(history.epochs) == history.best_epoch + 2


def test_same_seed_same_weights():
    a, b, c = _task(seed=4, epochs=3), _task(seed=4, epochs=3), _task(seed=5, epochs=3)
    for t in (a, b, c):
        train_plain(t)
    for x, y in zip(a.net.parameters(), b.net.parameters(), strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a.net.user.weight, c.net.user.weight)


def test_jaccard_and_the_diversity_penalty():
    g = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.float32)
    sim = jaccard(g)
    want = torch.tensor([[1, 0.5, 0, 0], [0.5, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    torch.testing.assert_close(sim, want)
    alike = torch.tensor([[5.0, 5.0, -5.0, -5.0]])  # top items share a genre
    unlike = torch.tensor([[5.0, -5.0, 5.0, -5.0]])  # top items share nothing
    assert diversity_penalty(alike, sim) > diversity_penalty(unlike, sim) + 0.2
    # flat scores are no way out: they rank nothing and still cost more than an unlike top
    flat = torch.zeros(1, 4)
    assert diversity_penalty(flat, sim) > diversity_penalty(unlike, sim) + 0.05
    # it measures pairs of different items: a peaked user pays nothing for an item's self-match
    assert diversity_penalty(torch.tensor([[20.0, 0, 0, 0]]), sim) < 0.01


def test_diversity_regulariser_spreads_each_users_top_items_over_genres():
    def top_share(task):  # share of a user's top-4 items that come from one genre
        with torch.no_grad():
            s = task.net.score_grid(task.net.user_vectors(torch.arange(N_USERS)),
                                    torch.arange(N_ITEMS))
        top = s.topk(4, dim=1).indices % GROUPS
        return float((top == top[:, :1]).float().mean())

    plain, diverse = _task(epochs=10), _task(epochs=10, diversity_alpha=10.0,
                                            diversity_items=40, diversity_users=60)
    train_plain(plain)
    train_plain(diverse)
    assert top_share(diverse) < top_share(plain) - 0.2
