"""Hyper-parameters: typed, range-checked, named once per model.

A model's hyper-parameters are a Pydantic model (:class:`Params`): types are enforced
(``lr: "fast"``, ``lr: true`` and ``layers: abc`` are errors), ranges and choices are part of the
type (``Field(ge=1)``, ``Literal[...]``) and unknown names are refused. A model family declares
its own subclass (``Recommender.Params``, e.g. the NCF models' :class:`~movierec.models.ncf_params
.NCFParams`); a model with a scikit-learn style ``__init__`` gets one derived from its signature,
so its annotations (``Annotated[float, Field(gt=0)]`` for a range) are checked the same way.

:func:`validate_params` is what :func:`~movierec.models.registry.create`, ``set_params`` and
config loading call, so a bad value is a one-line :class:`~movierec.errors.ModelError` naming the
key, the value and what is allowed, before any data loads.
"""

from __future__ import annotations

import inspect
import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from movierec.errors import ModelError
from movierec.options import RUN_OPTION_NAMES

__all__ = ["Params", "param_names", "params_model", "validate_params", "without_run_options"]


class Params(BaseModel):
    """Base of every model's hyper-parameters: unknown names are refused, and a boolean is never
    taken for a number (Pydantic's lax mode would read ``lr: true`` as 1.0)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, bool) and not _admits_bool(
                    field.annotation):
                raise ValueError(f"{name}: {value!r} is a boolean; expected "
                                 f"{_type_name(field.annotation)}")
        return data


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _admits_bool(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(_admits_bool(a) for a in typing.get_args(annotation))
    return False


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


@cache
def params_model(cls: type[object]) -> type[Params]:
    """The :class:`Params` model of a model class: its declared ``Params``, else one derived from
    the keyword arguments of its ``__init__`` (annotations resolved, defaults kept)."""
    declared = getattr(cls, "Params", None)
    own_init = getattr(cls.__init__, "__qualname__", "") != "Recommender.__init__"
    if isinstance(declared, type) and issubclass(declared, Params) and not own_init:
        return declared
    hints = typing.get_type_hints(cls.__init__, include_extras=True)
    fields: dict[str, Any] = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    return create_model(f"{cls.__name__}Params", __base__=Params, **fields)


def param_names(cls: type) -> list[str]:
    """The hyper-parameter names of a model class, in declaration order."""
    return list(params_model(cls).model_fields)


def validate_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Every hyper-parameter of ``cls`` (defaults filled in) after checking ``params``.

    Raises :class:`ModelError`, one line naming each bad key, its value and what is allowed.
    """
    model = params_model(cls)
    try:
        checked = model(**params)
    except ValidationError as e:
        raise ModelError(_describe(cls, model, e)) from None
    return {name: getattr(checked, name) for name in model.model_fields}


def _describe(cls: type, model: type[Params], error: ValidationError) -> str:
    label = getattr(cls, "name", cls.__name__)
    problems = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            if key in RUN_OPTION_NAMES:
                problems.append(f"{key!r} is a run option, not a hyper-parameter: put it under "
                                "`run:` in the config (or pass FitOptions to fit)")
            else:
                known = ", ".join(model.model_fields) or "(none)"
                problems.append(f"unknown hyper-parameter {key!r} (known: {known})")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a model-level check names its keys itself
            problems.append(msg)
            continue
        value = _short(err.get("input"))
        problems.append(f"{loc}: {value} is not allowed ({msg})")
    return f"model {label!r}: " + "; ".join(problems)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def without_run_options(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` less the run options that artifacts written before movierec 0.2 stored among
    the hyper-parameters (``num_threads``, ``progress``, ``log_dir``...): they never changed what
    was learned, so an old artifact loads without them."""
    return {k: v for k, v in params.items() if k not in RUN_OPTION_NAMES}
