"""``movierec/__init__.py``: the public names a newcomer can guess, loaded lazily."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import movierec

HEAVY = ("numpy", "polars", "scipy", "pydantic", "torch", "sklearn")


def test_import_movierec_loads_no_heavy_library():
    code = ("import sys, movierec; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    src = str(Path(movierec.__file__).parents[1])  # this checkout's package, not another
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", movierec.__all__)
def test_every_public_name_resolves_to_its_home(name):
    value = getattr(movierec, name)
    assert value is not None
    if name != "__version__" and not name.isupper():
        assert value.__name__ == name and value.__module__.startswith("movierec.")


def test_the_names_are_the_library_objects():
    from movierec.data.splits import generate_loo
    from movierec.models.base import Recommender
    from movierec.models.registry import create

    assert movierec.generate_loo is generate_loo and movierec.create is create
    assert movierec.Recommender is Recommender
    assert "ease" in movierec.available()


def test_version_comes_from_the_package_metadata():
    assert movierec.__version__ == version("movierec")


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Datset'"):
        movierec.Datset  # noqa: B018
    assert "load_dataset" in dir(movierec)
