"""Every registered model through the whole Recommender protocol (RecBole-style: a model is tested
the day it is registered). Data: the planted-group dataset of ``conftest.py``."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.errors import ArtifactError, ModelError
from movierec.models import artifacts
from movierec.models.base import Recommender, available, top_k

from .conftest import CONTRACTS, contract

MODELS = available()
LEARNING = [n for n in MODELS if contract(n).beats_random]
PERSONAL = [n for n in MODELS if contract(n).personal_fold_in]
STRUCTURE = [n for n in MODELS if contract(n).finds_structure]


def test_every_contract_names_a_registered_model():
    assert set(CONTRACTS) <= set(MODELS), set(CONTRACTS) - set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_item_vectors_and_rating_predictions_keep_their_promise(name, fitted, planted):
    model = fitted(name)
    vectors = model.item_vectors()
    if vectors is not None:  # what similar-movie search and the serving reasons compare
        assert vectors.ndim == 2 and vectors.shape[0] == planted.train.n_items
        assert np.isfinite(vectors).all()
    users = np.array([0, 1, 2])
    items = np.array([3, 4, 5])
    if model.predicts_ratings:
        pred = model.predict(users, items)
        lo, hi = planted.train.rating.min(), planted.train.rating.max()
        assert pred.shape == (3,) and ((pred >= lo) & (pred <= hi)).all()
    else:
        with pytest.raises(ModelError, match="does not predict ratings"):
            model.predict(users, items)


def test_the_baselines_are_registered():
    assert {"random", "popularity", "itemknn", "ease", "ials", "bpr"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_fit_sets_learned_state(name, fitted, planted):
    model = fitted(name)
    assert isinstance(model, Recommender)
    assert model.n_users_ == planted.train.n_users and model.n_items_ == planted.train.n_items
    np.testing.assert_array_equal(model.user_ids_, planted.train.user_ids)
    np.testing.assert_array_equal(model.item_ids_, planted.train.item_ids)
    assert model.seen_.nnz == planted.train.n_ratings
    assert model.dataset_fingerprint_ == planted.train.fingerprint
    for attr, shape in model.expected_shapes().items():
        assert attr in model.learned and attr.endswith("_")
        got = getattr(model, attr).shape
        assert len(got) == len(shape)
        assert all(w is None or w == g for w, g in zip(shape, got, strict=True)), (attr, got)
    fresh = model.clone()
    assert not fresh.is_fitted and fresh.get_params() == model.get_params()


@pytest.mark.parametrize("name", MODELS)
def test_score_matches_score_all(name, fitted, planted):
    model = fitted(name)
    rng = np.random.default_rng(1)
    users = np.array([0, 5, 5, 17, planted.train.n_users - 1], dtype=np.int32)
    full = model.score_all(users)
    assert full.shape == (len(users), planted.train.n_items) and full.dtype == np.float32
    assert np.isfinite(full).all()
    items = rng.integers(0, planted.train.n_items, (len(users), 7))
    pairs = model.score(users[:, None], items)  # broadcasting: one row of items per user
    assert pairs.shape == items.shape and pairs.dtype == np.float32
    np.testing.assert_allclose(pairs, np.take_along_axis(full, items, axis=1), rtol=1e-5, atol=1e-6)
    flat = model.score(np.repeat(users, 7), items.ravel())
    np.testing.assert_allclose(flat, pairs.ravel(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_recommend_excludes_seen_and_sorts(name, fitted, planted):
    model = fitted(name)
    for u in (0, 3, 101):
        items, scores = model.recommend(u, k=15)
        assert items.dtype == np.int32 and scores.dtype == np.float32 and len(items) == 15
        seen = planted.train.csr[u].indices
        assert not np.isin(items, seen).any()
        assert (planted.train.item_counts[items] > 0).all()  # never-trained items are not offered
        key = list(zip(-scores, items, strict=True))
        assert key == sorted(key)  # score descending, ties by ascending item_idx
        allowed = planted.train.item_counts > 0
        allowed[seen] = False
        ref_items, ref_scores = top_k(model.score_all(np.array([u]))[0], 15, allowed)
        np.testing.assert_array_equal(items, ref_items)
        with_seen, _ = model.recommend(u, k=len(seen) + 40, exclude_seen=False)
        assert np.isin(seen, with_seen).any()


@pytest.mark.parametrize("name", MODELS)
def test_fold_in_new_person(name, fitted, planted):
    model = fitted(name)
    picks = planted.train.csr[4].indices
    state = model.fold_in(picks)
    scores = model.score_folded(state)
    assert scores.shape == (planted.train.n_items,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    if contract(name).ordered_fold_in:  # a sequence: the order given is kept
        assert not np.array_equal(model.fold_in(picks[::-1]), state)
    else:
        np.testing.assert_array_equal(model.fold_in(picks[::-1]), state)  # order does not matter
    items, top = model.recommend_folded(state, k=10, exclude=picks)
    assert len(items) == 10 and not np.isin(items, picks).any()
    assert list(top) == sorted(top, reverse=True)


@pytest.mark.parametrize("name", PERSONAL)
def test_fold_in_finds_the_group(name, fitted, planted):
    """A new person who picked five items of one group is shown mostly that group's items."""
    model = fitted(name)
    for group in range(3):
        members = np.flatnonzero(planted.item_group == group)
        picks = members[:5]
        items, _ = model.recommend_folded(model.fold_in(picks), k=5, exclude=picks)
        share = float(np.mean(planted.item_group[items] == group))
        assert share >= 0.6, (group, items, planted.item_group[items])


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, fitted, planted, tmp_path):
    model = fitted(name)
    path = model.save(tmp_path / "artifact")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]  # no temporary left over
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [*artifacts.FILES, "SHA256SUMS", ".movierec-output"])  # + checksums and the marker
    loaded = Recommender.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    users = np.arange(0, planted.train.n_users, 7)
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    np.testing.assert_array_equal(loaded.user_ids_, model.user_ids_)
    np.testing.assert_array_equal(loaded.item_ids_, model.item_ids_)
    for a, b in zip(loaded.recommend(9, k=10), model.recommend(9, k=10), strict=True):
        np.testing.assert_array_equal(a, b)
    picks = planted.train.csr[2].indices  # fold-in may optimise: equal to float rounding
    np.testing.assert_allclose(
        loaded.score_folded(loaded.fold_in(picks)),
        model.score_folded(model.fold_in(picks)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert type(model).load(path).dataset_fingerprint_ == planted.train.fingerprint


def _truncate(file):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _garble(file):
    file.write_text('{"model": "x", "params": ')


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("model.npz", _truncate),
        ("config.json", _garble),
        ("ids.parquet", _truncate),
        ("model.npz", lambda f: f.unlink()),
        ("config.json", lambda f: f.unlink()),
        ("ids.parquet", lambda f: f.unlink()),
    ],
)
def test_damaged_artifact_names_the_file(name, file, damage, fitted, tmp_path):
    path = fitted(name).save(tmp_path / "m")
    damage(path / file)
    with pytest.raises(ArtifactError, match=file.replace(".", r"\.")):
        Recommender.load(path)


@pytest.mark.parametrize("name", LEARNING)
def test_learning_models_beat_random(name, fitted, planted, hit_rate_of):
    floor = hit_rate_of(fitted("random"), planted)
    assert hit_rate_of(fitted(name), planted) >= floor + 0.1


@pytest.mark.parametrize("name", STRUCTURE)
def test_structure_models_beat_popularity(name, fitted, planted, hit_rate_of):
    pop = hit_rate_of(fitted("popularity"), planted)
    assert hit_rate_of(fitted(name), planted) >= pop + 0.25
