"""Mult-VAE and RecVAE: what the every-model suite does not already pin (planted data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.errors import ModelError
from movierec.models.base import create

from .conftest import SMOKE_OPTIONS, contract

torch = pytest.importorskip("torch")

from movierec.models.autoencoders import valid_ndcg  # noqa: E402
from movierec.training.autoencoder_nets import RecVAENet, kl_beta  # noqa: E402

VAES = ["mult-vae", "recvae"]


@pytest.mark.parametrize("name", VAES)
def test_beats_popularity_by_a_wide_margin(name, fitted, planted, hit_rate_of):
    vae = hit_rate_of(fitted(name), planted)
    popular = hit_rate_of(fitted("popularity"), planted)
    assert vae >= popular + 0.3, (vae, popular)


@pytest.mark.parametrize("name", VAES)
def test_fold_in_of_a_train_row_scores_like_the_known_user(name, fitted, planted):
    """Fold-in is the model's own inference: a user's train row folded in as a new person
    gets the same scores, hence the same top 10, as that user."""
    model = fitted(name)
    for u in (0, 11, 200):
        own = model.score_all(np.array([u]))[0]
        folded = model.score_folded(model.fold_in(planted.train.csr[u].indices))
        np.testing.assert_allclose(folded, own, rtol=1e-5, atol=1e-5)
        seen = planted.train.csr[u].indices
        np.testing.assert_array_equal(model.recommend_folded(model.fold_in(seen), 10, seen)[0],
                                      model.recommend(u, 10)[0])


def test_kl_annealing_grows_linearly_to_the_cap():
    assert kl_beta(0, 0.2, 1000) == 0.0
    assert kl_beta(100, 0.2, 1000) == pytest.approx(0.1)
    assert kl_beta(200, 0.2, 1000) == pytest.approx(0.2)
    assert kl_beta(10_000, 0.2, 1000) == pytest.approx(0.2)  # capped
    assert kl_beta(0, 0.5, 0) == 0.5  # no annealing


def test_mult_vae_training_follows_the_schedule(planted):
    """Per-epoch beta in the history: 8 updates per epoch (240 users / 32), cap reached at
    update 0.4 * 80 = 32, i.e. during epoch 5, and kept."""
    params = {**contract("mult-vae").smoke, "epochs": 8, "beta_max": 0.4, "anneal_steps": 80}
    model = create("mult-vae", **params).fit(planted.train, options=SMOKE_OPTIONS)
    betas = [row["beta"] for row in model.training_history()[0].epochs]  # beta of the last update
    np.testing.assert_allclose(betas[:4], [7 / 80, 15 / 80, 23 / 80, 31 / 80])
    assert betas[4:] == [0.4] * 4


def test_recvae_prior_uses_the_frozen_old_encoder():
    torch.manual_seed(0)
    net = RecVAENet(n_items=30, hidden=16, latent=4, dropout=0.5)
    x = (torch.rand(8, 30) < 0.3).float()
    z = torch.randn(8, 4)
    # not trained and not saved: outside parameters() and state_dict()
    assert not any(k.startswith("_old") or "old" in k for k in net.state_dict())
    assert all(p.data_ptr() not in {q.data_ptr() for q in net.parameters()}
               for p in net.old_encoder.parameters())
    assert not any(p.requires_grad for p in net.old_encoder.parameters())
    before = net.log_prior(x, z)
    opt = torch.optim.SGD(net.encoder.parameters(), lr=0.5)
    loss, _ = net.loss(x, dropout=0.0, gamma=0.005)
    loss.backward()
    opt.step()  # the encoder moves, the old encoder does not: the prior stays
    torch.testing.assert_close(net.log_prior(x, z), before)
    net.update_prior()  # now the prior's middle component is the new encoder's posterior
    after = net.log_prior(x, z)
    assert not torch.allclose(after, before)
    for old, new in zip(net.old_encoder.parameters(), net.encoder.parameters(), strict=True):
        torch.testing.assert_close(old, new)
    # the prior is the stated mixture: its old-posterior part is the old encoder's density
    mu, logvar = net.old_encoder.eval()(x, 0.0)
    parts = torch.stack([
        -0.5 * (np.log(2 * np.pi) + z**2),
        -0.5 * (logvar + np.log(2 * np.pi) + (z - mu) ** 2 / logvar.exp()),
        -0.5 * (10.0 + np.log(2 * np.pi) + z**2 / np.exp(10.0))], dim=-1)
    weights = torch.log(torch.tensor([3 / 20, 3 / 4, 1 / 10]))
    torch.testing.assert_close(after, torch.logsumexp(parts + weights, dim=-1))


class _Fixed(torch.nn.Module):
    """A stand-in network returning fixed scores (one row per user)."""

    def __init__(self, scores: np.ndarray):
        super().__init__()
        self.scores = torch.from_numpy(scores.astype(np.float32))

    def forward(self, x):
        return self.scores[: x.shape[0]]


def test_valid_ndcg_ranks_without_the_train_items():
    rows = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    valid = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    # user 0: the train item 0 scores highest but is excluded; item 1 is first -> NDCG 1
    # user 1: items 2 and 3 ranked 2nd and 3rd of 4 -> (1/log2(3) + 1/2) / (1 + 1/log2(3))
    scores = np.array([[9.0, 5.0, 1.0, 0.0], [0.0, 5.0, 4.0, 3.0]])
    expected = (1.0 + (1 / np.log2(3) + 0.5) / (1 + 1 / np.log2(3))) / 2
    # only users with a validation item count; decode_rows passes the rows of those users
    assert valid_ndcg(_Fixed(scores), rows, valid) == pytest.approx(expected)


def test_fit_with_valid_stops_early_on_it_and_holdout_refits(planted):
    smoke = contract("mult-vae").smoke
    last = np.r_[np.flatnonzero(np.diff(planted.train.user_idx)), planted.train.n_ratings - 1]
    keep = np.ones(planted.train.n_ratings, dtype=bool)
    keep[last] = False
    fit_part, valid = planted.train.subset(keep), planted.train.subset(~keep)
    model = create("mult-vae", **{**smoke, "epochs": 60, "patience": 3}).fit(
        fit_part, valid, SMOKE_OPTIONS)
    (history,) = model.training_history()
    assert history.monitor == "valid NDCG@10" and history.best_epoch is not None
    assert history.stopped_early and len(history) == history.best_epoch + 3
    refit = create("mult-vae", **{**smoke, "epochs": 60, "patience": 3, "holdout": 0.2}).fit(
        planted.train, options=SMOKE_OPTIONS)
    chosen, final = refit.training_history()
    assert chosen.name == "mult-vae epoch selection" and final.monitor is None
    assert len(final) == chosen.best_epoch  # every row trained for the chosen epoch count


def test_bad_hyper_parameters_are_refused_before_any_work():
    with pytest.raises(ModelError, match="dropout"):
        create("mult-vae", dropout=1.0)
    with pytest.raises(ModelError, match="holdout"):
        create("recvae", holdout=1.0)


def test_holdout_last_takes_each_users_latest_item(planted):
    from movierec.models.autoencoders import _holdout

    rest, held = _holdout(planted.train, 0.2, "last", 0)
    assert held.n_ratings == planted.train.n_users  # every planted user has 15 train items
    assert rest.n_ratings + held.n_ratings == planted.train.n_ratings
    latest = {u: t for u, t in zip(rest.user_idx, rest.timestamp, strict=True)}
    assert all(t >= latest[u] for u, t in zip(held.user_idx, held.timestamp, strict=True))
    rest, held = _holdout(planted.train, 0.2, "random", 0)
    assert held.n_ratings == planted.train.n_users * 3  # floor(0.2 * 15 + 0.5)
