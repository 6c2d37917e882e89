"""What lets NCF train and score at ML-20M scale: lazy Adam on sparse embedding gradients, epochs
built chunk by chunk, cache-sized full-ranking blocks, progress inside a long epoch. Small
synthetic data with planted structure; the speed itself is benchmarks/bench_scale.py's."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from movierec.data.labels import NegativeSampler  # noqa: E402
from movierec.training import batches  # noqa: E402
from movierec.training.batches import EpochBuilder  # noqa: E402
from movierec.training.loop import FitSettings, Progress, Task, train_plain  # noqa: E402
from movierec.training.networks import MLP, NeuMF, mark_sparse  # noqa: E402
from movierec.training.optim import LazyAdam  # noqa: E402

N_USERS, N_ITEMS, GROUPS = 400, 40, 4


def _planted(seed: int = 0):
    """Each user rates 8 items of their own group (item % GROUPS == user % GROUPS)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(N_USERS), 8)
    own = (rng.integers(0, N_ITEMS // GROUPS, len(users)) * GROUPS + users % GROUPS)
    pairs = np.unique(users * N_ITEMS + own)
    return pairs // N_ITEMS, pairs % N_ITEMS


def test_lazy_adam_matches_sparse_adam_on_rows_and_adam_on_dense_parameters():
    torch.manual_seed(0)
    start = torch.randn(50, 4)
    table = torch.nn.Parameter(start.clone())
    dense = torch.nn.Parameter(torch.randn(3))
    ref_table, ref_dense = (torch.nn.Parameter(t.detach().clone()) for t in (table, dense))
    lazy = LazyAdam([table, dense], lr=0.1)
    sparse_ref, dense_ref = (torch.optim.SparseAdam([ref_table], lr=0.1),
                             torch.optim.Adam([ref_dense], lr=0.1))
    for rows in ([1, 2, 2, 7], [7, 30], [1, 49]):
        idx = torch.tensor(rows)
        for t, d, opts in ((table, dense, [lazy]), (ref_table, ref_dense,
                                                    [sparse_ref, dense_ref])):
            for o in opts:
                o.zero_grad()
            loss = (torch.nn.functional.embedding(idx, t, sparse=True).sum(dim=1) ** 2).sum()
            (loss + (d**2).sum()).backward()
            assert t.grad.is_sparse
            for o in opts:
                o.step()
        torch.testing.assert_close(table, ref_table)
        torch.testing.assert_close(dense, ref_dense)
    untouched = [r for r in range(50) if r not in (1, 2, 7, 30, 49)]
    torch.testing.assert_close(table.detach()[untouched], start[untouched])


def test_only_tables_far_larger_than_a_batch_get_sparse_gradients():
    net = NeuMF(10_000, 300, 8, 8, [16, 8])
    marked = mark_sparse(net, max_rows_touched=1000)
    assert sorted(marked) == ["gmf.user", "mlp.user"]  # 10,000 > 4 x 1,000; 300 items are not
    assert not mark_sparse(NeuMF(943, 1682, 8, 8, [16, 8]), max_rows_touched=32768)


def _fit(sparse_updates: bool, epochs: int = 12):
    u, i = _planted()
    sampler = NegativeSampler(u, i, N_USERS, N_ITEMS)
    builder = EpochBuilder(u, i, np.ones(len(u), np.float32), sampler, 4, 100, seed=0)
    torch.manual_seed(0)
    net = MLP(N_USERS, N_ITEMS, 8, [16, 8], init_std=0.1)
    task = Task(net, builder, FitSettings(epochs=epochs, lr=0.03, patience=None, num_threads=1,
                                          sparse_updates=sparse_updates))
    marked = task.mark_sparse_tables()
    train_plain(task)
    return net.eval(), marked


def _group_hit_rate(net) -> float:
    """Share of users whose top-5 items are all of their own group."""
    with torch.no_grad():
        scores = net.score_grid(net.user_vectors(torch.arange(N_USERS)), torch.arange(N_ITEMS))
    top = scores.topk(5, dim=1).indices.numpy()
    return float(np.mean(top % GROUPS == (np.arange(N_USERS) % GROUPS)[:, None]))


def test_lazy_updates_learn_the_planted_groups_as_dense_adam_does():
    lazy, marked = _fit(True)
    dense, none = _fit(False)
    assert "user" in marked and none == []
    assert _group_hit_rate(dense) > 0.9
    assert _group_hit_rate(lazy) > 0.9


def test_an_epoch_built_in_chunks_is_whole_groups_and_repeats(monkeypatch):
    u, i = _planted()
    sampler = NegativeSampler(u, i, N_USERS, N_ITEMS)
    builder = EpochBuilder(u, i, np.ones(len(u), np.float32), sampler, 4, 100, seed=3)
    one_chunk = builder.epoch(0).item_idx
    monkeypatch.setattr(batches, "CHUNK_ROWS", 50)  # many chunks of whole batches (20 rows)
    epoch = builder.epoch(0)
    sizes = [len(b[0]) for b in epoch]
    assert sum(sizes) == builder.samples_per_epoch and all(s == 100 for s in sizes[:-1])
    users = epoch.user_idx.numpy().reshape(-1, 5)
    items = epoch.item_idx.numpy().reshape(-1, 5)
    assert (users == users[:, :1]).all()
    assert sampler.is_rated(users[:, 0], items[:, 0]).all()
    assert not sampler.is_rated(users[:, 1:].ravel(), items[:, 1:].ravel()).any()
    assert torch.equal(builder.epoch(0).item_idx, epoch.item_idx)  # same seed, same epoch
    # the positives' order is the epoch's permutation whatever the chunking
    assert torch.equal(one_chunk.view(-1, 5)[:, 0], epoch.item_idx.view(-1, 5)[:, 0])
    a, b = epoch.shard(0, 2), epoch.shard(1, 2)
    assert len(a) == len(b) == len(epoch) // 2
    whole = list(epoch)
    assert all(torch.equal(x[1], whole[2 * k + 1][1]) for k, x in enumerate(b))


@pytest.mark.parametrize("make", [lambda: MLP(30, 1500, 8, [16, 8]),
                                  lambda: NeuMF(30, 1500, 8, 8, [16, 8, 4])])
def test_blocked_full_ranking_scores_equal_the_whole_grid(make):
    torch.manual_seed(0)
    net = make().eval()
    users = net.user_vectors(torch.arange(30)).detach()
    items = torch.arange(1500)
    whole = net.score_grid(users, items).detach()  # with gradients: the (U, M, width) path
    with torch.no_grad():
        blocked = net.score_grid(users, items)
    torch.testing.assert_close(blocked, whole)


def test_a_long_epoch_says_how_far_it_is_before_it_ends(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    bar = Progress("neumf epoch 1/1", 3000, "batch", every=5.0, first_after=0.0, at_end=False)
    bar.update(lambda: {"loss": 0.5})
    bar.update(lambda: {"loss": 0.4})  # within 5 s of the first line: silent
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "batch 1/3000" in lines[0] and "s left" in lines[0] and "loss=0.5" in lines[0]

