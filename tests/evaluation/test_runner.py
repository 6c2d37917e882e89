"""What ``movierec evaluate`` does with an artifact: refuse another item space, warn about other
training data."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.errors import MovierecError
from movierec.evaluation.runner import _check_artifact_matches
from movierec.models.base import create


def _dataset(seed: int, n_users: int = 30, n_items: int = 12) -> Dataset:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), 4)
    items = np.concatenate([rng.choice(n_items, 4, replace=False) for _ in range(n_users)])
    ratings = pl.DataFrame({"user_id": users + 1, "item_id": items + 1,
                            "rating": np.full(len(users), 4.0, np.float32),
                            "timestamp": np.arange(len(users), dtype=np.int64)})
    items = pl.DataFrame({"item_id": np.arange(1, n_items + 1)})
    return Dataset.from_frames(f"toy-{seed}", ratings, items)


def test_artifact_trained_on_other_data_warns(tmp_path):
    full = _dataset(0)
    other = _dataset(1)
    assert full.n_items == other.n_items and full.fingerprint != other.fingerprint
    model = create("popularity").fit(other)
    with pytest.warns(UserWarning, match="trained on other data"):
        _check_artifact_matches(model, full, tmp_path)


def test_artifact_trained_on_same_data_is_quiet(tmp_path):
    full = _dataset(0)
    model = create("popularity").fit(full)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_artifact_matches(model, full, tmp_path)


def test_artifact_with_another_item_space_is_refused(tmp_path):
    model = create("popularity").fit(_dataset(0, n_items=12))
    with pytest.raises(MovierecError, match="items but the dataset has"):
        _check_artifact_matches(model, _dataset(0, n_items=40), tmp_path)
