"""The shape of the package: no import cycles between modules, and no model that registers itself
where the registry cannot find it."""

from __future__ import annotations

import ast
from pathlib import Path

from movierec.models.registry import BUILTIN_MODULES, SUPPORT_MODULES, available

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "movierec"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
PACKAGES = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, here: str) -> set[str]:
    """movierec modules a module imports anywhere (functions included: a lazy import still ties
    two modules together), except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + (here in PACKAGES)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import module` names the module itself
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in MODULES and m != here}


def _graph() -> dict[str, set[str]]:
    """Module -> the modules it imports; package ``__init__`` modules are facades (lazy
    re-exports) and are left out."""
    graph = {}
    for name, path in MODULES.items():
        if name in PACKAGES:
            continue
        graph[name] = {m for m in _imports(ast.parse(path.read_text()), name)
                       if m not in PACKAGES}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles_between_modules():
    cycles = _cycles(_graph())
    assert not cycles, "modules that import each other (directly or around a loop): " + \
        "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_registered_model_is_found_by_the_registry():
    """A class decorated with @register anywhere under movierec/models must be creatable by name:
    its module is one the registry imports, and its name is listed."""
    registered = {}
    for path in sorted((PACKAGE / "models").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(d, ast.Name) and d.id == "register" for d in node.decorator_list):
                name = next(
                    (s.value.value for s in node.body if isinstance(s, ast.Assign | ast.AnnAssign)
                     and isinstance(getattr(s, "value", None), ast.Constant)
                     and any(getattr(t, "id", None) == "name"
                             for t in getattr(s, "targets", [getattr(s, "target", None)]))), None)
                registered[name] = _module_name(path)
    assert registered and None not in registered, registered
    for name, module in registered.items():
        assert module in BUILTIN_MODULES, f"{module} registers {name!r} but is never imported"
        assert module.rsplit(".", 1)[1] not in SUPPORT_MODULES
    assert set(registered) <= set(available())
