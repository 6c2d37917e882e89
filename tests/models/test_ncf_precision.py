"""NeuMF with ``precision: bf16-mixed`` (bfloat16 matrix products, float32 weights): training and
full-ranking scores must run in bfloat16 where the setting says so, and learn and rank like
float32 on the planted-group data (see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from movierec.models.base import create  # noqa: E402
from movierec.options import FitOptions  # noqa: E402
from movierec.training import networks  # noqa: E402

FAST = {"epochs": 20, "batch_size": 2048, "lr": 0.02, "dropout": 0.1}
ONE = FitOptions(num_threads=1)


def _fit_watching_the_tower(planted, **params):
    """A fitted NeuMF and the dtypes its MLP tower's training layers ran in."""
    seen: set = set()
    real = networks._Tower._top

    def spy(self, x, w):
        if self.training:
            seen.add(x.dtype)
        return real(self, x, w)

    networks._Tower._top = spy
    try:
        model = create("neumf", **FAST, **params).fit(planted.train, options=ONE)
    finally:
        networks._Tower._top = real
    return model, seen


@pytest.fixture(scope="module")
def fp32(planted):
    return _fit_watching_the_tower(planted)


@pytest.fixture(scope="module")
def bf16(planted):
    return _fit_watching_the_tower(planted, precision="bf16-mixed")


def test_bf16_mixed_trains_in_bfloat16_and_learns_like_float32(fp32, bf16, planted, fitted,
                                                              hit_rate_of):
    (exact, exact_dtypes), (low, low_dtypes) = fp32, bf16
    assert exact_dtypes == {torch.float32}
    assert low_dtypes == {torch.bfloat16}  # the setting reached the training forward
    assert low.weights_.dtype == np.float32  # weights stay float32
    popularity = hit_rate_of(fitted("popularity"), planted)
    assert hit_rate_of(low, planted) >= popularity + 0.15
    assert abs(hit_rate_of(low, planted) - hit_rate_of(exact, planted)) <= 0.1


def test_bf16_full_ranking_runs_its_layers_in_bfloat16_and_ranks_like_float32(bf16, planted):
    model = bf16[0]
    users = planted.test_users
    low = model.score_all(users)
    networks.set_score_dtype(model.network(), None)  # the same weights scored in float32
    try:
        exact = model.score_all(users)
    finally:
        networks.set_score_dtype(model.network(), torch.bfloat16)
    assert low.dtype == np.float32 and low.shape == exact.shape
    diff = float(np.abs(low - exact).max())
    assert 0 < diff < 0.05 * float(exact.std())  # bfloat16 was used, and stayed close
    top_low = np.argsort(-low, axis=1)[:, :10]
    top_exact = np.argsort(-exact, axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) for a, b in zip(top_low, top_exact, strict=True)])
    assert overlap >= 9.5  # of the ten


def test_float32_models_score_in_float32(fp32, planted):
    model = fp32[0]
    before = model.score_all(planted.test_users[:5])
    networks.set_score_dtype(model.network(), None)
    np.testing.assert_array_equal(model.score_all(planted.test_users[:5]), before)
