"""The genre-aware hybrid: NeuMF fine-tuned on the genre-aware training set (planted data of
``conftest.py``: one genre per item group, users mostly in their own group)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from movierec.errors import ArtifactError, ModelError
from movierec.models.base import Recommender, create
from movierec.models.hybrid import HybridRecommender, finetune_network, genre_rows
from movierec.options import FitOptions

BASE = {"factors": 8, "mlp_factors": 8, "layers": [16, 8], "epochs": 4, "batch_size": 512,
        "lr": 0.01, "seed": 0}
ONE = FitOptions(num_threads=1)


@pytest.fixture(scope="module")
def base_artifact(planted, tmp_path_factory):
    model = create("neumf", **BASE).fit(planted.train, options=ONE)
    return model, model.save(tmp_path_factory.mktemp("hybrid") / "neumf")


def _genre_gap(model, tables, genres: np.ndarray) -> float:
    """Mean over users of (mean score of items in their positive genres) minus (mean score of
    items in their negative genres)."""
    scores = model.score_all(np.arange(tables.user_genre.shape[0]))
    member = genres > 0  # (n_items, n_genres)
    pos = (tables.positive.astype(np.float32) @ member.T) > 0
    neg = (tables.negative.astype(np.float32) @ member.T) > 0
    both = pos.any(axis=1) & neg.any(axis=1)
    gap = (np.where(pos, scores, 0).sum(1) / np.maximum(pos.sum(1), 1)
           - np.where(neg, scores, 0).sum(1) / np.maximum(neg.sum(1), 1))
    return float(gap[both].mean())


def test_fine_tuning_widens_the_genre_gap(planted, base_artifact):
    base, path = base_artifact
    hybrid = HybridRecommender(base=str(path), epochs=3, lr=3e-3).fit(planted.train, options=ONE)
    rows, tables = genre_rows(planted.train)
    assert hybrid.rows_ == {1: int((rows["interaction"] == 1).sum()),
                            0: int((rows["interaction"] == 0).sum())}
    assert hybrid.rows_[0] == 3 * hybrid.rows_[1] > 0
    genres = planted.train.genre_matrix.toarray()
    before, after = _genre_gap(base, tables, genres), _genre_gap(hybrid, tables, genres)
    assert after > before * 1.05, (before, after)
    assert not np.array_equal(hybrid.weights_, base.weights_)
    assert hybrid.weights_.shape == base.weights_.shape
    # the base artifact is untouched, and the tuned model round-trips like any other
    np.testing.assert_array_equal(Recommender.load(path).weights_, base.weights_)


def test_hybrid_trains_its_own_base_with_its_seed(planted):
    params = {**BASE, "seed": 11}
    before = create("hybrid", base_params=params, epochs=0, seed=3)
    before.fit(planted.train, options=ONE)
    # the seed is the hybrid's
    fresh = create("neumf", **{**params, "seed": 3}).fit(planted.train, options=ONE)
    np.testing.assert_array_equal(before.weights_, fresh.weights_)  # epochs=0: the base as it is
    np.testing.assert_array_equal(before.score_all(np.arange(5)), fresh.score_all(np.arange(5)))
    after = create("hybrid", base_params=params, epochs=1, seed=3)
    after.fit(planted.train, options=ONE)
    assert after.weights_.shape == fresh.weights_.shape
    assert not np.array_equal(after.weights_, fresh.weights_)
    config = after.base_config_.item()
    assert '"seed": 3' in config and '"model": "neumf"' in config


def test_base_from_other_data_is_refused(planted, base_artifact):
    _, path = base_artifact
    other = planted.full.subset(np.arange(planted.full.n_ratings - 5), name="other")
    with pytest.raises(ModelError, match="trained on other data"):
        HybridRecommender(base=str(path)).fit(other)


def test_base_must_be_a_neural_model(planted, tmp_path):
    pop = create("popularity").fit(planted.train, options=ONE).save(tmp_path / "pop")
    with pytest.raises(ModelError, match="not a neural"):
        HybridRecommender(base=str(pop)).fit(planted.train, options=ONE)
    with pytest.raises(ArtifactError):
        HybridRecommender(base=str(tmp_path / "missing")).fit(planted.train, options=ONE)


def test_a_base_description_naming_another_model_is_refused(planted, base_artifact):
    # the tuned model is rebuilt from base_config_; a non-neural class would take the weights
    # and answer with its own scores (popularity) or fail on a missing attribute
    _, path = base_artifact
    hybrid = HybridRecommender(base=str(path), epochs=0).fit(planted.train, options=ONE)
    hybrid.base_config_ = np.array(json.dumps({"model": "popularity", "params": {}}))
    with pytest.raises(ModelError, match="not a neural"):
        hybrid.score_all(np.arange(3))


def test_unknown_content_and_empty_rows_are_errors(planted):
    with pytest.raises(ModelError, match="content"):
        genre_rows(planted.train, "poster")
    import torch

    with pytest.raises(ModelError, match="at least one training row"):
        finetune_network(torch.nn.Linear(1, 1), np.zeros(0), np.zeros(0), np.zeros(0))
