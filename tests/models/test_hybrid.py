"""The genre-aware hybrid: NeuMF fine-tuned on the genre-aware training set (planted data of
``conftest.py``: one genre per item group, users mostly in their own group)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from movierec.errors import ArtifactError, ModelError
from movierec.models.base import Recommender, create
from movierec.models.hybrid import (
    HybridRecommender,
    finetune_network,
    genre_rows,
    interaction_rows,
)
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
    hybrid = HybridRecommender(base=str(path), form="finetune", epochs=3, lr=3e-3)
    hybrid.fit(planted.train, options=ONE)
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
    before = create("hybrid", base_params=params, form="finetune", epochs=0, seed=3)
    before.fit(planted.train, options=ONE)
    # the seed is the hybrid's
    fresh = create("neumf", **{**params, "seed": 3}).fit(planted.train, options=ONE)
    np.testing.assert_array_equal(before.weights_, fresh.weights_)  # epochs=0: the base as it is
    np.testing.assert_array_equal(before.score_all(np.arange(5)), fresh.score_all(np.arange(5)))
    after = create("hybrid", base_params=params, form="finetune", epochs=1, seed=3)
    after.fit(planted.train, options=ONE)
    assert after.weights_.shape == fresh.weights_.shape
    assert not np.array_equal(after.weights_, fresh.weights_)
    config = after.base_config_.item()
    assert '"seed": 3' in config and '"model": "neumf"' in config


def test_base_cache_stores_the_base_and_reuses_it_only_for_the_same_settings(
        planted, tmp_path, monkeypatch):
    from movierec.models import hybrid as H
    from movierec.models.ncf import NeuMFRecommender

    params = {**BASE, "seed": 11}
    first = create("hybrid", base_params=params, form="finetune", epochs=0, seed=4,
                   base_cache=str(tmp_path)).fit(planted.train, options=ONE)
    stored = list(tmp_path.iterdir())
    assert [p.name for p in stored] == [
        f"{planted.train.name.replace('/', '-')}-{planted.train.fingerprint[:8]}-s4"]
    H._BASES.clear()  # a new process: only the disk remains
    fits = []
    real_fit = NeuMFRecommender._fit
    monkeypatch.setattr(NeuMFRecommender, "_fit",
                        lambda self, *a: (fits.append(self), real_fit(self, *a))[1])
    again = create("hybrid", base_params={**params, "fold_in_shrinkage": 9.0}, form="finetune",
                   epochs=0, seed=4, base_cache=str(tmp_path)).fit(planted.train, options=ONE)
    assert fits == []  # read back, not refitted: the same weights
    np.testing.assert_array_equal(again.weights_, first.weights_)
    assert '"fold_in_shrinkage": 9.0' in again.base_config_.item()  # scoring settings applied
    H._BASES.clear()
    other = create("hybrid", base_params={**params, "lr": 0.02}, form="finetune", epochs=0,
                   seed=4, base_cache=str(tmp_path)).fit(planted.train, options=ONE)
    assert len(fits) == 1  # other weights settings: fitted afresh
    assert not np.array_equal(other.weights_, first.weights_)
    assert list(tmp_path.iterdir()) == stored  # and the stored base is left alone


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
    hybrid = HybridRecommender(base=str(path), form="finetune", epochs=0)
    hybrid.fit(planted.train, options=ONE)
    hybrid.base_config_ = np.array(json.dumps({"model": "popularity", "params": {}}))
    with pytest.raises(ModelError, match="not a neural"):
        hybrid.score_all(np.arange(3))


def test_unknown_content_and_empty_rows_are_errors(planted):
    with pytest.raises(ModelError, match="content"):
        genre_rows(planted.train, "poster")
    import torch

    with pytest.raises(ModelError, match="at least one training row"):
        finetune_network(torch.nn.Linear(1, 1), np.zeros(0), np.zeros(0), np.zeros(0))


# ---------------------------------------------------------------------- the blend form
WEAK = {**BASE, "epochs": 1, "pretrain": False}


def _same_genre_share(model, planted, pick: int) -> float:
    items, _ = model.recommend_folded(model.fold_in(np.array([pick])), k=10,
                                      exclude=np.array([pick]))
    return float(np.mean(planted.item_group[items] == planted.item_group[pick]))


def test_blend_moves_a_single_pick_list_to_its_genre(planted):
    # a barely trained base answers a one-pick person with what everyone likes; the genre term
    # (planted: one genre per item group) pulls the list into the pick's group
    base = create("hybrid", base_params=WEAK, content_weight=0.0).fit(planted.train, options=ONE)
    blend = create("hybrid", base_params=WEAK, content_weight=20.0).fit(planted.train, options=ONE)
    picks = [0, 1, 2, 3, 4, 5]  # one item of each group
    before = np.mean([_same_genre_share(base, planted, p) for p in picks])
    after = np.mean([_same_genre_share(blend, planted, p) for p in picks])
    assert after == 1.0 and before < 0.9, (before, after)


def test_blend_term_fades_with_the_number_of_picks(planted):
    blend = create("hybrid", base_params=WEAK, content_weight=2.0, content_decay=3.0)
    blend.fit(planted.train, options=ONE)
    base = create("hybrid", base_params=WEAK, content_weight=0.0).fit(planted.train, options=ONE)
    genres = planted.train.genre_matrix.toarray().astype(np.float32)
    unit = genres / np.linalg.norm(genres, axis=1, keepdims=True).clip(1e-12)
    for picks in (np.array([0]), np.array([0, 6, 12, 18, 24, 30])):
        term = (blend.score_folded(blend.fold_in(picks))
                - base.score_folded(base.fold_in(picks)))
        profile = genres[picks].mean(axis=0)
        want = 2.0 * 3.0 / (3.0 + len(picks)) * unit @ (profile / np.linalg.norm(profile))
        np.testing.assert_allclose(term, want, atol=1e-5)
    # a trained user's term fades with their train interactions the same way
    u = np.arange(4)
    n = np.diff(planted.train.csr.indptr)[u]
    gap = blend.score_all(u) - base.score_all(u)
    assert np.all(gap.max(axis=1) <= 2.0 * 3.0 / (3.0 + n) + 1e-5)
    np.testing.assert_allclose(blend.score(u, np.full(4, 7)), blend.score_all(u)[:, 7],
                               rtol=1e-5, atol=1e-5)


def test_blend_round_trips_and_serves_the_same_lists(planted, tmp_path):
    blend = create("hybrid", base_params=WEAK, content_weight=1.5, content_decay=3.0)
    blend.fit(planted.train, options=ONE)
    loaded = Recommender.load(blend.save(tmp_path / "hybrid"))
    np.testing.assert_allclose(loaded.score_all(np.arange(6)), blend.score_all(np.arange(6)))
    state = loaded.fold_in(np.array([3, 9]))
    np.testing.assert_array_equal(state, blend.fold_in(np.array([3, 9])))
    np.testing.assert_allclose(loaded.score_folded(state), blend.score_folded(state))
    with pytest.raises(ModelError, match="state fold_in returns"):
        loaded.score_folded(np.zeros(3, np.float32))


def test_joint_trains_on_genre_and_interaction_rows(planted, base_artifact):
    base, path = base_artifact
    joint = HybridRecommender(base=str(path), form="joint", epochs=1, lr=1e-3)
    joint.fit(planted.train, options=ONE)
    rows, _ = genre_rows(planted.train)
    assert joint.rows_[1] == int((rows["interaction"] == 1).sum()) > 0
    assert not np.array_equal(joint.weights_, base.weights_)
    u, i, y = interaction_rows(planted.train, 3, seed=0)
    seen = planted.train.csr
    assert (y == 1).sum() == seen.nnz
    assert np.all(np.asarray(seen[u[y == 0], i[y == 0]]).ravel() == 0)  # never a user's own


def test_base_recipe_names_the_base_model(planted, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("dataset: ml-100k\nmodel:\n  name: gmf\n  params: {factors: 4, epochs: 1, "
                      "batch_size: 512}\n")
    hybrid = create("hybrid", base_recipe=str(recipe), base_params={"lr": 0.02}, seed=5)
    hybrid.fit(planted.train, options=ONE)
    config = json.loads(hybrid.base_config_.item())
    assert config["model"] == "gmf"
    assert config["params"]["factors"] == 4 and config["params"]["lr"] == 0.02
    assert config["params"]["seed"] == 5
    with pytest.raises(ModelError, match="base_recipe"):
        create("hybrid", base_recipe=str(tmp_path / "missing.yaml")).fit(planted.train)


def test_unknown_form_is_refused_before_training(planted):
    with pytest.raises(ModelError, match="form must be one of"):
        create("hybrid", form="stack", base_params=BASE).fit(planted.train)


def test_base_params_set_the_scoring_settings_of_a_loaded_base(planted, base_artifact):
    _, path = base_artifact
    hybrid = HybridRecommender(base=str(path), base_params={"fold_in_shrinkage": 7.0},
                               content_weight=0.0).fit(planted.train, options=ONE)
    assert json.loads(hybrid.base_config_.item())["params"]["fold_in_shrinkage"] == 7.0
    want = Recommender.load(path).set_params(fold_in_shrinkage=7.0)
    np.testing.assert_allclose(hybrid.score_folded(hybrid.fold_in(np.array([2, 8]))),
                               want.score_folded(want.fold_in(np.array([2, 8]))), rtol=1e-6)
