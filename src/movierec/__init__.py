"""movierec: MovieLens from download to a running recommendation service.

Everything a first script needs is importable from here::

    from movierec import create, evaluate_p1, generate_loo, load_dataset

    full = load_dataset("ml-100k")                 # Dataset
    split = generate_loo(full)                     # P1/P2 leave-one-out split, 99 negatives
    model = create("ease").fit(split.train)        # any name of available()
    print(evaluate_p1(model, split))

- data: :func:`load_dataset`, :class:`Dataset`, :class:`Split`, :func:`generate_loo`,
  :func:`load_fixed_loo`, :func:`leave_one_out`, :func:`with_validation`, :data:`RELEASES`,
  :func:`get_release`;
- models: :func:`create`, :func:`available`, :class:`Recommender` (the protocol every model
  follows; ``Recommender.load(folder)`` reads a saved artifact);
- evaluation: :func:`evaluate_p1`, :func:`evaluate_p2`, :func:`evaluate_p3` (EVALUATION.md).

Each name is imported the first time it is used, so ``import movierec`` (and the command line)
stays quick; heavy libraries (torch, Lightning, sentence-transformers) load only with the models
that need them.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a 15 ms import)

_HOMES = {
    "Dataset": "movierec.data.dataset",
    "load_dataset": "movierec.data.loading",
    "RELEASES": "movierec.data.registry",
    "Release": "movierec.data.registry",
    "get_release": "movierec.data.registry",
    "Split": "movierec.data.splits",
    "generate_loo": "movierec.data.splits",
    "leave_one_out": "movierec.data.splits",
    "load_fixed_loo": "movierec.data.splits",
    "with_validation": "movierec.data.splits",
    "Recommender": "movierec.models.base",
    "available": "movierec.models.registry",
    "create": "movierec.models.registry",
    "evaluate_p1": "movierec.evaluation.protocols",
    "evaluate_p2": "movierec.evaluation.protocols",
    "evaluate_p3": "movierec.evaluation.protocols",
}
"""Public name -> the module that defines it."""

__all__ = [
    "RELEASES", "Dataset", "Recommender", "Release", "Split", "__version__", "available",
    "create", "evaluate_p1", "evaluate_p2", "evaluate_p3", "generate_loo", "get_release",
    "leave_one_out", "load_dataset", "load_fixed_loo", "with_validation",
]  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("movierec")
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'movierec' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from typing import Any

    from movierec.data.dataset import Dataset
    from movierec.data.loading import load_dataset
    from movierec.data.registry import RELEASES, Release, get_release
    from movierec.data.splits import (
        Split,
        generate_loo,
        leave_one_out,
        load_fixed_loo,
        with_validation,
    )
    from movierec.evaluation.protocols import evaluate_p1, evaluate_p2, evaluate_p3
    from movierec.models.base import Recommender
    from movierec.models.registry import available, create

    __version__: str
