"""Every shipped config in configs/ parses and names real models with hyper-parameters they take,
so a typo in a recipe fails here rather than minutes into a user's training run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from movierec.config import CompareConfig, TrainConfig, load_config
from movierec.models.base import param_names
from movierec.models.registry import get_class

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _accepted(name: str) -> set[str]:
    return set(param_names(get_class(name)))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_its_params_exist(path):
    raw = yaml.safe_load(path.read_text())
    if "models" in raw:
        specs = load_config(path, CompareConfig).models
    else:
        specs = [load_config(path, TrainConfig).model]
    for spec in specs:
        unknown = (set(spec.params) | set(spec.grid or {})) - _accepted(spec.name)
        assert not unknown, f"{path.name}: {spec.name} does not take {sorted(unknown)}"


def test_the_issue_configs_are_shipped():
    names = {p.name for p in CONFIGS}
    assert {"neumf-ml100k.yaml", "neumf-ml-latest-small.yaml", "neumf-tables-ml100k.yaml",
            "neumf-tables-ml-latest-small.yaml"} <= names


@pytest.mark.parametrize("dataset", ["ml100k", "ml-latest-small"])
def test_the_tables_pretrained_neumf_row_is_the_shipped_recipe(dataset):
    """The paper-style table's headline row and the checked config must not drift apart."""
    folder = CONFIGS[0].parent
    tables = load_config(folder / f"neumf-tables-{dataset}.yaml", CompareConfig)
    row = next(m for m in tables.models if m.display_name == "NeuMF (pre-trained)")
    recipe = load_config(folder / f"neumf-{dataset}.yaml", TrainConfig).model
    assert row.name == recipe.name and dict(row.params) == dict(recipe.params)
