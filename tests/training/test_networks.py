"""The NCF networks: shapes, the table-projection fast path, grid scoring, NeuMF pre-training."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from movierec.training.networks import GMF, MLP, NeuMF, halving_tower, init_neumf_from  # noqa: E402


def test_halving_towers():
    assert halving_tower(8, 4) == [64, 32, 16, 8]
    assert halving_tower(16, 3) == [64, 32, 16]
    assert halving_tower(8, 6) == [256, 128, 64, 32, 16, 8]


@pytest.mark.parametrize("make", [
    lambda: GMF(30, 20, 8),
    lambda: MLP(30, 20, 8, [16, 8, 4]),
    lambda: NeuMF(30, 20, 8, 6, [12, 6], dropout=0.0),
])
def test_forward_equals_grid_scores(make):
    torch.manual_seed(0)
    net = make().eval()
    users = torch.tensor([0, 3, 29])
    items = torch.arange(20)
    grid = net.score_grid(net.user_vectors(users), items)
    pairs = net(users.repeat_interleave(20), items.repeat(3)).view(3, 20)
    assert grid.shape == (3, 20)
    torch.testing.assert_close(grid, pairs, rtol=1e-5, atol=1e-6)


def test_large_batches_project_the_tables_with_the_same_result_and_gradient():
    torch.manual_seed(1)
    net = MLP(10, 8, 4, [6, 3])
    u = torch.randint(0, 10, (200,))  # > 2 * (10 + 8) rows: the table-projection path
    i = torch.randint(0, 8, (200,))
    fast = net(u, i).sum()
    fast.backward()
    g_fast = net.user.weight.grad.clone()
    net.zero_grad()
    slow = sum(net(u[k : k + 10], i[k : k + 10]).sum() for k in range(0, 200, 10))  # small path
    slow.backward()
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_fast, net.user.weight.grad, rtol=1e-5, atol=1e-6)


def test_neumf_from_pretrained_mixes_the_two_outputs():
    torch.manual_seed(2)
    gmf, mlp = GMF(12, 9, 4), MLP(12, 9, 5, [8, 4])
    neumf = init_neumf_from(NeuMF(12, 9, 4, 5, [8, 4]), gmf, mlp, alpha=0.3)
    u, i = torch.randint(0, 12, (50,)), torch.randint(0, 9, (50,))
    with torch.no_grad():
        want = 0.3 * gmf(u, i) + 0.7 * mlp(u, i)
        torch.testing.assert_close(neumf(u, i), want, rtol=1e-5, atol=1e-6)


def test_pretrained_shapes_must_match():
    with pytest.raises(RuntimeError):
        init_neumf_from(NeuMF(12, 9, 4, 5, [8, 4]), GMF(12, 9, 8), MLP(12, 9, 5, [8, 4]))


@pytest.mark.parametrize("make", [
    lambda: GMF(30, 20, 8),
    lambda: MLP(30, 20, 8, [16, 8, 4]),
    lambda: NeuMF(30, 20, 8, 6, [12, 6], dropout=0.0),
])
def test_grouped_forward_equals_pairs_with_the_same_gradient(make):
    torch.manual_seed(3)
    net = make()
    u = torch.randint(0, 30, (70,))  # long enough for the table-projection path
    items = torch.randint(0, 20, (70, 5))
    grouped = net.forward_groups(u, items)
    pairs = net(u.repeat_interleave(5), items.reshape(-1)).view(70, 5)
    torch.testing.assert_close(grouped, pairs, rtol=1e-5, atol=1e-6)
    grouped.square().sum().backward()
    g1 = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    pairs = net(u.repeat_interleave(5), items.reshape(-1)).view(70, 5)
    pairs.square().sum().backward()
    for a, p in zip(g1, net.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)


def test_fast_dropout_keeps_the_expected_share_and_scale():
    from movierec.training.networks import fast_dropout

    torch.manual_seed(0)
    x = torch.ones(200, 300)
    y = fast_dropout(x, 0.2)
    kept = (y != 0).float().mean()
    assert abs(float(kept) - 0.8) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(256.0 / (256 - 51)))
    assert abs(float(y.mean()) - 1.0) < 0.02  # unbiased
    assert torch.equal(fast_dropout(x, 0.0), x)


def test_scoring_keeps_the_item_half_of_the_first_layer_and_drops_it_when_weights_change():
    """Scoring every item projects the item table through the first MLP layer once (it does not
    depend on the user); the cached projection must equal the fresh one and follow updates."""
    torch.manual_seed(0)
    net = NeuMF(30, 20, 4, 4, [8, 4]).eval()
    users, items = net.user_vectors(torch.arange(3)), torch.arange(20)
    with torch.enable_grad():
        fresh = net.score_grid(users, items).detach()
    with torch.no_grad():
        cached = net.score_grid(users, items)
        torch.testing.assert_close(cached, fresh)
        torch.testing.assert_close(net.score_grid(users, items), fresh)  # from the cache
        net.mlp.item.weight.add_(1.0)  # an in-place update (an optimiser step) changes them
        moved = net.score_grid(users, items)
    with torch.enable_grad():
        torch.testing.assert_close(moved, net.score_grid(users, items).detach())
    assert not torch.allclose(moved, fresh)


@pytest.mark.parametrize("fused", [True, False])
def test_grid_scores_in_blocks_equal_the_pairs_for_every_shape_of_call(fused, monkeypatch):
    """Full ranking's first layer is one product over cached ``[e_i; onehot(u)]`` rows, with
    the ReLU fused where torch can: across several user and item blocks, a partial last block,
    a candidate subset and one user, it must give the pair view's numbers, with or without the
    fused kernel."""
    import movierec.training.networks as networks

    if not fused:
        monkeypatch.setattr(networks, "_LINEAR_RELU", {torch.float32: networks._plain_linear_relu})
    torch.manual_seed(0)
    n_users, n_items = 40, 2 * networks.GRID_ITEMS + 77
    net = NeuMF(n_users, n_items, 8, 6, [12, 6], item_bias=True).eval()
    with torch.no_grad():
        for users, items in [(torch.arange(n_users), torch.arange(n_items)),  # cached rows
                             (torch.tensor([5]), torch.arange(n_items)),
                             (torch.tensor([1, 7, 33]), torch.tensor([900, 3, 1100, 17]))]:
            grid = net.score_grid(net.user_vectors(users), items)
            pairs = net(users.repeat_interleave(len(items)), items.repeat(len(users)))
            torch.testing.assert_close(grid, pairs.view(len(users), len(items)),
                                       rtol=1e-5, atol=1e-5)


def test_bfloat16_grid_scores_stay_float32_and_close(monkeypatch):
    from movierec.training.networks import set_score_dtype

    torch.manual_seed(0)
    net = MLP(20, 700, 8, [16, 8]).eval()
    users, items = torch.arange(20), torch.arange(700)
    with torch.no_grad():
        exact = net.score_grid(net.user_vectors(users), items)
        set_score_dtype(net, torch.bfloat16)
        low = net.score_grid(net.user_vectors(users), items)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, exact, rtol=2e-2, atol=2e-2)
