"""Run configurations: Pydantic models for the YAML files in ``configs/``.

Every field is documented; unknown keys are errors (a typo never silently falls back to a default).
A config may build on another: ``extends: base.yaml`` (a path relative to the file) deep-merges
this file over the base (mappings merge key by key, anything else replaces), and ``--set
key.path=value`` on the command line merges over both. The model's hyper-parameters are checked
against the model's typed settings when the file is read, before any data loads; how the run
goes (threads, device, progress, logs) is the ``run:`` section (:class:`~movierec.options
.FitOptions`), never a hyper-parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from movierec.errors import MovierecError
from movierec.options import FitOptions

Protocol = Literal["p1", "p2", "p3", "p4", "holdout", "p5"]  # p5 = holdout


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """One model of a comparison: a registered name, fixed hyper-parameters and a search grid."""

    name: str = Field(description="Registered model name (see `movierec models`).")
    label: str | None = Field(None, description="Name shown in tables; default: `name`.")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="Hyper-parameters of every run (an explicit "
                                   "`grid` overrides the keys it searches).")
    grid: dict[str, list[Any]] | None = Field(
        None,
        description="Hyper-parameter grid searched on the validation item; its values override "
        "`params`. `null` uses the model's documented `param_grid` minus the keys `params` "
        "fixes; `{}` searches nothing.",
    )

    @property
    def display_name(self) -> str:
        return self.label or self.name


class ValidationSpec(_Strict):
    """How the validation set for model selection is carved out of train (never from test)."""

    method: Literal["last", "random"] = Field(
        "last", description="`last`: each user's second-to-last interaction; `random`: a random "
        "slice of train.")
    fraction: float = Field(0.1, gt=0, lt=1, description="Share of train for `random`.")
    n_negatives: int = Field(99, ge=1, description="Sampled negatives per validation item.")
    metric: str = Field("NDCG@10", description="Validation metric that picks the grid point.")
    seed: int = Field(0, description="Seed of the validation carving and negatives.")
    max_users: int | None = Field(
        10_000, ge=1, description="P1/P2 grid selection scores at most this many validation "
        "users, a sample drawn with `seed` (the report says how many); null: every user.")


class P4Spec(_Strict):
    """P4 (new users, docs/evaluation.md): who is held out and how many picks they give."""

    fraction: float = Field(0.2, gt=0, lt=1, description="Share of users held out of training.")
    n: list[int] = Field(default_factory=lambda: [1, 3, 5, 10, 20],
                         description="Pick counts: each held-out user's first n ratings.")
    seed: int = Field(0, description="Seed of the user hold-out (and of the 80/20 draw).")
    vae: bool = Field(True, description="Also the Mult-VAE form (fold in 80%, predict 20%).")


class HoldoutSpec(_Strict):
    """P5 (multi-item holdout, docs/evaluation.md): per-user held-out share, order, cut-off."""

    ratio: float = Field(0.25, gt=0, lt=1, description="Share of each user's ratings held out.")
    method: Literal["random", "temporal"] = Field("random", description="`random` (seeded) or "
                                                  "`temporal` (each user's latest ratings).")
    k: int = Field(10, ge=1, description="List length of the metrics.")
    seed: int = Field(42, description="Seed of the random holdout.")


class CompareConfig(_Strict):
    """A comparison: models x datasets x protocols, repeated over seeds."""

    name: str = Field("comparison", description="Name of the run; used for the output folder.")
    datasets: list[str] = Field(description="Release names or folders.")
    data_dir: str | None = Field(None, description="Folder holding the releases; default "
                                 "$MOVIEREC_DATA or ~/.cache/movierec. --data-dir overrides.")
    split: Literal["fixed", "generate"] = Field(
        "fixed", description="`fixed`: the P1 files in <data_dir>/eval/<dataset> when present "
        "(else generated); `generate`: always build leave-one-out and negatives here.")
    negatives_seed: int = Field(20261125, description="Seed of generated test negatives.")
    protocols: list[Protocol] = Field(default_factory=lambda: list[Protocol](["p1", "p2"]))
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2],
                             description="Seeds for models with randomness (one run otherwise).")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    p4: P4Spec = Field(default_factory=P4Spec, description="Settings of protocol p4.")
    holdout: HoldoutSpec = Field(default_factory=HoldoutSpec,
                                 description="Settings of protocol holdout (p5).")
    models: list[ModelSpec]
    output_dir: str | None = Field(None, description="Where results go; default results/<name>.")
    run: FitOptions = Field(default_factory=FitOptions,
                            description="How every fit runs (threads, device, progress, logs).")

    @field_validator("models")
    @classmethod
    def _labels_unique(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        labels = [m.display_name for m in models]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"model labels must be unique; repeated: {dupes} (set `label`)")
        return models


class TrainConfig(_Strict):
    """One model trained on one dataset and written as an artifact (`movierec train`)."""

    dataset: str
    data_dir: str | None = None
    model: ModelSpec
    seed: int = 0
    split: Literal["fixed", "generate", "none"] = Field(
        "fixed", description="Train on the leave-one-out train part (`fixed`/`generate`) or on "
        "every rating (`none`).")
    artifact: str | None = Field(None, description="Artifact folder; default artifacts/<model>.")
    run: FitOptions = Field(default_factory=FitOptions,
                            description="How the fit runs (threads, device, progress, logs).")


def load_config(path: str | Path, kind: type[BaseModel], overrides: list[str] | None = None
                ) -> Any:
    """Parse a YAML file (with its ``extends:`` chain and ``overrides``, ``key.path=value``
    strings) into ``kind``, then check every model's hyper-parameters (and grid values) against
    its typed settings. Errors name the file and the offending field, in one line."""
    path = Path(path)
    raw = _read_layered(path, [])
    for text in overrides or []:
        _apply_override(raw, text, path)
    try:
        cfg = kind.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        )
        raise MovierecError(f"{path}: {problems}") from None
    for spec in _model_specs(cfg):
        check_model_spec(spec, where=str(path))
    return cfg


def check_model_spec(spec: ModelSpec, where: str = "") -> None:
    """Raise :class:`MovierecError` unless ``spec`` names a registered model whose typed settings
    accept its ``params`` and every value of its ``grid``."""
    from movierec.models.params import validate_params
    from movierec.models.registry import get_class

    prefix = f"{where}: " if where else ""
    try:
        cls = get_class(spec.name)
        validate_params(cls, spec.params)
        for key, values in (spec.grid or {}).items():
            for value in values:
                validate_params(cls, {**spec.params, key: value})
    except MovierecError as e:
        raise MovierecError(f"{prefix}{e}") from None


def _model_specs(cfg: BaseModel) -> list[ModelSpec]:
    if isinstance(cfg, TrainConfig):
        return [cfg.model]
    if isinstance(cfg, CompareConfig):
        return list(cfg.models)
    return []


def _read_layered(path: Path, chain: list[Path]) -> dict[str, Any]:
    """The mapping of ``path`` merged over the files it ``extends`` (recursively)."""
    resolved = path.resolve()
    if resolved in chain:
        loop = " -> ".join(str(p) for p in [*chain, resolved])
        raise MovierecError(f"{path}: `extends` loops back on itself ({loop})")
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        where = f" (extended by {chain[-1]})" if chain else ""
        raise MovierecError(f"{path}: config file not found{where}") from None
    except yaml.YAMLError as e:
        raise MovierecError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise MovierecError(f"{path}: expected a mapping at the top level")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise MovierecError(f"{path}: `extends` must be one file name, got {base!r}")
    parent = _read_layered(path.parent / base, [*chain, resolved])
    return deep_merge(parent, raw)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: mappings merge key by key, any other value replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply_override(raw: dict[str, Any], text: str, path: Path) -> None:
    """Apply one ``key.path=value`` (value read as YAML; list items by index) to ``raw``."""
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise MovierecError(f"--set {text!r}: expected KEY=VALUE, e.g. model.params.lr=0.01")
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError as e:
        raise MovierecError(f"--set {text!r}: the value is not valid YAML ({e})") from None
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise MovierecError(f"--set {text!r}: {'.'.join(parts[:depth]) or 'the config'} "
                                    f"is a list of {len(node)}; {part!r} is not an index")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise MovierecError(f"--set {text!r}: {'.'.join(parts[:depth])} in {path} is not "
                                "a mapping")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})
