"""The Recommender protocol itself: estimator contract, registry, generic scoring, top-k and the
artifact folder (atomic writes, refusing to clobber, clear errors)."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

import movierec.models.base as base
from movierec.data.dataset import Dataset
from movierec.errors import (
    ArtifactError,
    ModelError,
    MovierecError,
    NotFittedError,
    UnknownModelError,
)
from movierec.models import artifacts, registry
from movierec.models.base import Recommender, available, create, get_class, param_names, top_k


class TableModel(Recommender):
    """A model whose scores are a fixed table ``user * 1000 + item`` (exact in float32)."""

    name: ClassVar[str] = "test-table"

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def _fit(self, train: Dataset, valid: Dataset | None, options) -> None:
        self.calls_ = 0

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        self.calls_ += 1
        u = self._check_users(user_idx)
        return (u[:, None] * 1000.0 + np.arange(self.n_items_)[None, :] + self.offset).astype(
            np.float32
        )

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float32)


# ---------------------------------------------------------------------- estimator contract
@pytest.mark.parametrize("name", available())
def test_params_are_the_init_arguments(name):
    cls = get_class(name)
    model = create(name)
    params = model.get_params()
    assert list(params) == param_names(cls)
    assert repr(model).startswith(type(model).__name__ + "(")
    copy = model.clone()
    assert copy is not model and copy.get_params() == params and not copy.is_fitted
    for key, values in cls.param_grid.items():  # the documented grid only names real parameters
        assert key in params and isinstance(values, list) and values
    assert all(a.endswith("_") for a in model.learned)  # an instance may derive its list


def test_set_params_changes_and_rejects_unknown():
    model = create("itemknn")
    assert model.set_params(k=7, shrink=1.5) is model
    assert model.get_params() == {"k": 7, "shrink": 1.5}
    assert model.clone().k == 7
    with pytest.raises(ModelError, match="unknown hyper-parameter 'neighbours'.*k, shrink"):
        model.set_params(neighbours=3)


def test_unfitted_model_says_fit_first(planted):
    model = create("popularity")
    for call in (
        lambda: model.score_all(np.array([0])),
        lambda: model.recommend(0),
        lambda: model.fold_in(np.array([1])),
        lambda: model.save("/nonexistent/x"),
    ):
        with pytest.raises(NotFittedError, match="call fit"):
            call()


def test_fit_rejects_an_empty_dataset(planted):
    empty = planted.train.subset(np.zeros(planted.train.n_ratings, dtype=bool))
    with pytest.raises(ModelError, match="no ratings"):
        create("popularity").fit(empty)


# ---------------------------------------------------------------------- registry
def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        create("neumff")
    message = str(err.value)
    assert "neumff" in message and "popularity" in message and "ease" in message
    assert isinstance(err.value, KeyError) and isinstance(err.value, MovierecError)


def test_create_with_a_bad_parameter_names_the_allowed_ones():
    with pytest.raises(ModelError, match="unknown hyper-parameter 'lambda_' \\(known: l2\\)"):
        create("ease", lambda_=3.0)


def test_names_are_case_insensitive():
    assert type(create("EASE")).__name__ == "EASE"


def test_a_name_cannot_be_taken_twice():
    class Impostor(TableModel):
        name: ClassVar[str] = "popularity"

    with pytest.raises(ModelError, match="already registered"):
        registry.register(Impostor)
    with pytest.raises(ModelError, match="no `name`"):
        registry.register(type("Nameless", (), {}))


def test_a_module_needing_a_missing_package_is_skipped_and_explained(tmp_path, monkeypatch):
    (tmp_path / "fake_neural_models.py").write_text("import package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        registry,
        "BUILTIN_MODULES",
        (*registry.BUILTIN_MODULES, "fake_neural_models", "no_such_module"),
    )
    monkeypatch.setattr(registry, "_unavailable", {})
    assert "ease" in available()  # the others still load
    reason = "fake_neural_models needs the package 'package_that_is_not_installed'"
    with pytest.raises(UnknownModelError, match=reason):
        create("fake-neural")


# ---------------------------------------------------------------------- top_k
def test_top_k_breaks_ties_by_index_and_puts_nan_last():
    scores = np.array([1.0, 3.0, np.nan, 3.0, 2.0, 3.0, 0.5], dtype=np.float32)
    items, values = top_k(scores, 4)
    np.testing.assert_array_equal(items, [1, 3, 5, 4])
    np.testing.assert_array_equal(values, [3.0, 3.0, 3.0, 2.0])
    assert items.dtype == np.int32 and values.dtype == np.float32
    items, _ = top_k(scores, 2)  # the cut falls inside a tie: lowest indices win
    np.testing.assert_array_equal(items, [1, 3])
    items, _ = top_k(scores, 100)
    assert items[-1] == 2 and len(items) == 7
    allowed = np.array([True, False, True, True, False, False, True])
    np.testing.assert_array_equal(top_k(scores, 10, allowed)[0], [3, 0, 6, 2])
    assert len(top_k(scores, 0)[0]) == 0


# ---------------------------------------------------------------------- generic scoring
def test_generic_score_uses_blocks_of_score_all(planted, monkeypatch):
    model = TableModel(offset=0.5).fit(planted.train)
    monkeypatch.setattr(base, "SCORE_BLOCK", 3 * model.n_items_)  # 3 users per block
    rng = np.random.default_rng(0)
    users = rng.integers(0, model.n_users_, (40, 5))
    items = rng.integers(0, model.n_items_, (40, 5))
    got = model.score(users, items)
    assert got.shape == (40, 5) and got.dtype == np.float32
    np.testing.assert_array_equal(got, users * 1000.0 + items + 0.5)
    assert model.calls_ == -(-len(np.unique(users)) // 3)  # one score_all call per block
    np.testing.assert_array_equal(model.score(7, np.arange(4)), 7000.5 + np.arange(4))


def test_indices_are_checked(planted):
    model = TableModel().fit(planted.train)
    with pytest.raises(ModelError, match=f"user_idx {model.n_users_} is out of range"):
        model.score_all(np.array([0, model.n_users_]))
    with pytest.raises(ModelError, match="item_idx -1 is out of range"):
        model.score(np.array([0]), np.array([-1]))
    with pytest.raises(ModelError, match="must be integers"):
        model.score_all(np.array([0.5]))
    with pytest.raises(ModelError, match="2 items but 1 ratings"):
        model.fold_in(np.array([1, 2]), np.array([4.0]))


def test_recommend_follows_scores_and_skips_seen(planted):
    model = TableModel().fit(planted.train)
    items, scores = model.recommend(3, k=5)
    seen = set(planted.train.csr[3].indices)
    trained = np.flatnonzero(planted.train.item_counts > 0)
    expected = [i for i in trained[::-1] if i not in seen][:5]  # score grows with item_idx
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_array_equal(scores, 3000.0 + np.array(expected))


# ---------------------------------------------------------------------- artifacts
def test_artifact_layout_and_config(fitted, planted, tmp_path):
    path = fitted("ease").save(tmp_path / "ease")
    config = json.loads((path / "config.json").read_text())
    assert config["model"] == "ease" and config["params"] == {"l2": 200.0}
    assert config["n_users"] == planted.train.n_users
    assert config["dataset"] == {"name": "planted/train", "fingerprint": planted.train.fingerprint}
    import polars as pl

    ids = pl.read_parquet(path / "ids.parquet")
    users = ids.filter(pl.col("kind") == "user").get_column("id").to_numpy()
    np.testing.assert_array_equal(users, planted.train.user_ids)


def test_save_replaces_an_artifact_whole(fitted, tmp_path):
    path = fitted("popularity").save(tmp_path / "m")
    fitted("itemknn").save(path)
    assert type(Recommender.load(path)).__name__ == "ItemKNN"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_failed_save_leaves_the_old_artifact(fitted, tmp_path, monkeypatch):
    path = fitted("popularity").save(tmp_path / "m")

    def crash(model, folder):
        (folder / "model.npz").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_write", crash)
    with pytest.raises(OSError, match="disk full"):
        fitted("ease").save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind
    assert type(Recommender.load(path)).__name__ == "Popularity"
    with pytest.raises(OSError):
        fitted("ease").save(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_save_refuses_to_clobber_other_files(fitted, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(MovierecError, match="holds files movierec did not write"):
        fitted("popularity").save(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    fitted("popularity").save(tmp_path / "empty")  # an empty folder is fine
    assert artifacts.is_artifact(tmp_path / "empty")


def test_load_checks_the_class(fitted, tmp_path):
    path = fitted("popularity").save(tmp_path / "m")
    with pytest.raises(ModelError, match="holds a Popularity, not a EASE"):
        get_class("ease").load(path)
    with pytest.raises(ArtifactError, match="no model artifact here"):
        Recommender.load(tmp_path / "nothing")


def _reseal(path):
    """Record the artifact's edited files in its SHA256SUMS, as a hand edit that knows the
    format would: the checks below are the ones behind the checksums."""
    from movierec.checksums import write_manifest

    write_manifest(path, artifacts.FILES)


def _edit_config(path, **changes):
    file = path / "config.json"
    config = json.loads(file.read_text())
    config.update(changes)
    file.write_text(json.dumps(config))
    _reseal(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "no-such-model"}, "cannot rebuild model 'no-such-model'"),
        ({"params": {"k": 5}}, "cannot rebuild model 'ease'"),
        ({"format_version": 99}, "newer than this movierec reads"),
        ({"n_items": 5}, "ids.parquet: expected 5 item ids"),
        ({"n_users": "many"}, "malformed"),
    ],
)
def test_inconsistent_config_is_reported(fitted, tmp_path, changes, message):
    path = fitted("ease").save(tmp_path / "m")
    _edit_config(path, **changes)
    with pytest.raises(ArtifactError, match=message):
        Recommender.load(path)


def test_wrong_array_shapes_are_reported(fitted, tmp_path):
    model = fitted("ials")
    path = model.save(tmp_path / "m")
    _edit_config(path, params={**model.get_params(), "factors": 8})  # arrays have 16 columns
    with pytest.raises(ArtifactError, match=r"model\.npz: array 'user_factors_' has shape"):
        Recommender.load(path)
    path = fitted("ease").save(tmp_path / "e")
    with np.load(path / "model.npz") as z:
        arrays = dict(z)
    arrays["item_weights_"] = arrays["item_weights_"][:-1]
    np.savez(path / "model.npz", **arrays)
    _reseal(path)
    with pytest.raises(ArtifactError, match=r"model\.npz: EASE: item_weights_ has shape"):
        Recommender.load(path)
    del arrays["item_weights_"]
    np.savez(path / "model.npz", **arrays)
    _reseal(path)
    with pytest.raises(ArtifactError, match="'item_weights_' of EASE is missing"):
        Recommender.load(path)


def test_corrupt_sparse_arrays_are_reported(fitted, tmp_path):
    path = fitted("itemknn").save(tmp_path / "m")
    with np.load(path / "model.npz") as z:
        arrays = dict(z)
    arrays["similarity_.indices"] = arrays["similarity_.indices"] + 10_000
    np.savez(path / "model.npz", **arrays)
    _reseal(path)
    with pytest.raises(ArtifactError, match="'similarity_' is inconsistent"):
        Recommender.load(path)
