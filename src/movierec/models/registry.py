"""Model name -> Recommender class.

Models register themselves with :func:`register` when their module is imported. The modules that
ship with movierec are every module of the ``movierec.models`` package (found on disk, so a new
model file needs no list to be edited); they are imported lazily, the first time a name is looked
up and not yet known, so ``import movierec`` stays quick and torch is imported only when a torch
model trains or scores.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar

from movierec.errors import ModelError, UnknownModelError

if TYPE_CHECKING:
    from movierec.models.base import Recommender

T = TypeVar("T", bound=type)

SUPPORT_MODULES = frozenset({"artifacts", "base", "ncf_fold_in", "ncf_params", "params", "registry",
                             "text_embeddings"})
"""Modules of ``movierec.models`` that define no model (never imported for a look-up)."""


def _builtin_modules() -> tuple[str, ...]:
    """Every model module of the ``movierec.models`` package, in name order."""
    import pkgutil

    import movierec.models as package

    return tuple(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                 if not m.ispkg and m.name not in SUPPORT_MODULES)


BUILTIN_MODULES: tuple[str, ...] = _builtin_modules()
"""Modules whose models are registered on first look-up."""

_REGISTRY: dict[str, type[Recommender]] = {}
_imported: set[str] = set()
_unavailable: dict[str, str] = {}  # module -> why it could not be imported (optional dependency)


def register(cls: T) -> T:
    """Class decorator: make ``cls`` creatable by its ``name`` class attribute.

    Re-registering the same class (a module reloaded) is allowed; a second class under a name
    already taken is an error.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ModelError(f"{cls.__qualname__} has no `name` class attribute to register under")
    key = name.lower()
    old = _REGISTRY.get(key)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise ModelError(
            f"model name {name!r} is already registered by {old.__module__}.{old.__qualname__}"
        )
    _REGISTRY[key] = cls
    return cls


def import_module(module: str) -> bool:
    """Import a module that registers models.

    Returns False when the module does not exist or needs an optional package that is not
    installed (torch for the neural models); the reason is kept for error messages. Any other
    import failure (a bug) propagates.
    """
    if module in _imported:
        return True
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if module == missing or module.startswith(missing + "."):
            return False  # the module is not there (not written yet, or not shipped)
        if missing.split(".")[0] != "movierec":
            _unavailable[module] = f"{module} needs the package {missing!r}, not installed"
            return False
        raise
    _imported.add(module)
    return True


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        import_module(module)


def get_class(name: str) -> type[Recommender]:
    """The class registered under ``name`` (case-insensitive).

    Raises :class:`UnknownModelError` listing the registered names.
    """
    key = name.lower()
    for module in BUILTIN_MODULES:  # stop at the module that registers it
        if key in _REGISTRY:
            break
        import_module(module)
    if key not in _REGISTRY:
        known = ", ".join(available()) or "(none)"
        why = "".join(f"; {reason}" for reason in _unavailable.values())
        raise UnknownModelError(f"unknown model {name!r}; registered models: {known}{why}")
    return _REGISTRY[key]


def create(name: str, **params: Any) -> Recommender:
    """A new, unfitted model: ``get_class(name)`` with ``params`` checked against its typed
    settings (unknown names and bad values are a one-line :class:`ModelError`)."""
    from movierec.models.params import validate_params

    cls = get_class(name)
    return cls(**validate_params(cls, params))


def available() -> list[str]:
    """Sorted names of every registered model (built-in modules included)."""
    _import_builtins()
    return sorted(_REGISTRY)
