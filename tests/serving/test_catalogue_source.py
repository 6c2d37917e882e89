"""Where a served artifact's movie table comes from when its catalogue file is gone: the release
it was trained on, found by name, and never a different release that shares the name."""

from __future__ import annotations

import shutil

import pytest

from movierec.data.loading import load_dataset
from movierec.data.release_writer import write_release
from movierec.data.synthetic import generate
from movierec.errors import MovierecError
from movierec.models.base import create
from movierec.serving.catalogue import CATALOGUE_FILE, load_catalogue


@pytest.fixture(scope="module")
def synthetic_artifact(tmp_path_factory):
    """An artifact trained on a synthetic release in ``<data>/ml-100k`` (named
    "ml-100k (synthetic, seed 3)"); each test removes its catalogue file."""
    data = tmp_path_factory.mktemp("data")
    write_release(generate(n_users=60, n_items=80, n_ratings=2_400, seed=3), data / "ml-100k",
                  "ml-100k")
    full = load_dataset(data / "ml-100k")
    assert full.name == "ml-100k (synthetic, seed 3)"
    art = create("popularity").fit(full).save(data.parent / "artifact")
    return data, art, full


def test_a_synthetic_artifact_rebuilds_its_catalogue_from_its_own_release(synthetic_artifact):
    data, art, full = synthetic_artifact
    (art / CATALOGUE_FILE).unlink(missing_ok=True)
    frame = load_catalogue(art, data)
    assert frame.height == full.n_items
    assert (art / CATALOGUE_FILE).is_file()  # rebuilt once, then read


def test_a_release_of_the_same_name_but_other_movies_is_refused(synthetic_artifact, tmp_path,
                                                                 ml100k_dir):
    """The real ml-100k under the same name must not lend its titles to a synthetic model."""
    _, art, _ = synthetic_artifact
    (art / CATALOGUE_FILE).unlink(missing_ok=True)
    shutil.copytree(ml100k_dir, tmp_path / "ml-100k")
    with pytest.raises(MovierecError, match="release found is 'ml-100k'"):
        load_catalogue(art, tmp_path)
