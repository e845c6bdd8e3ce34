"""The shape of the code: the disease process never depends on the clinic or the
interfaces, and no module imports, however lazily, a module that imports it back.

Read from the source with ``ast`` (every ``import``, at module level or inside a function,
and the modules named for :func:`metastasis.lazy.lazy_module` and the packages'
``__getattr__`` tables; those under
``if TYPE_CHECKING:`` are annotations only and do not count), so the test sees the imports
a lazy import would hide from ``sys.modules``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "metastasis"

DISEASE = ("knowledge", "model", "engine", "reference", "results", "units", "errors", "about",
           "atomic", "jsondata")
"""The hidden disease process and its results: the bottom of the stack."""

ABOVE_DISEASE = ("clinical", "cli", "web", "guide", "calibration", "api", "cohort", "runs",
                 "backends")
"""What observes, runs or shows the disease; the disease must not reach up to any of it."""

INTERFACES = ("cli", "web")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


LAZY_LOADERS = ("lazy_module", "import_module")
LAZY_TABLES = ("_LAZY", "_HOMES")
"""Calls that import the module named by their string argument, and the packages' tables of
names imported on first use (``__getattr__``)."""


def _names_lazy_imports(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        return name in LAZY_LOADERS
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id in LAZY_TABLES for t in node.targets)
    return False


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif _names_lazy_imports(node):
            # modules named in strings that are imported on first use (metastasis.lazy, or
            # a package's PEP 562 __getattr__ table) count as imports
            found.update(c.value for c in ast.walk(node)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in modules and name != own}


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_the_graph_is_read() -> None:
    """The reader finds imports it must find (so the checks below are not vacuous)."""
    graph = _graph()
    assert "metastasis.engine.process" in graph["metastasis.engine.patient"]
    assert "metastasis.api" in graph["metastasis.cli.common"]  # named for metastasis.lazy
    assert "metastasis.api" in graph["metastasis"]  # a PEP 562 lazy name
    assert "metastasis.model.growth" in graph["metastasis.engine.process"]
    assert "metastasis.backends" in graph["metastasis.cohort"]


@pytest.mark.parametrize("layer", DISEASE)
def test_the_disease_never_imports_the_layers_above(layer: str) -> None:
    graph = _graph()
    wrong = sorted(f"{m} -> {i}" for m, imports in graph.items() if _top(m) == layer
                   for i in imports if _top(i) in ABOVE_DISEASE)
    assert not wrong, wrong


def test_the_clinic_never_imports_the_interfaces() -> None:
    graph = _graph()
    wrong = sorted(f"{m} -> {i}" for m, imports in graph.items() if _top(m) == "clinical"
                   for i in imports if _top(i) in INTERFACES)
    assert not wrong, wrong


def test_no_import_cycles() -> None:
    """No strongly connected component of more than one module (Tarjan's algorithm).

    Edges from a module to a package that contains it are left out: Python imports every
    enclosing package before the module, so ``from metastasis.guide import content`` inside
    ``metastasis.guide.pages`` reads a sibling through a package that is already loading, not
    a cycle (the package's ``__init__`` may re-export the module that asks)."""
    graph = {m: {i for i in imports if not m.startswith(i + ".")}
             for m, imports in _graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    assert not cycles, cycles


def test_a_lazy_module_is_an_attribute_of_its_package() -> None:
    """After the command line names a module lazily, ``import a.b`` then ``a.b`` still finds
    it, as after any import (a test patching ``metastasis.api.run_patient`` by name failed
    when the CLI had been imported first)."""
    import subprocess
    import sys

    probe = ("import metastasis.cli.app, metastasis.api, sys\n"
             "assert metastasis.api is sys.modules['metastasis.api']\n"
             "assert callable(metastasis.api.run_patient)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
