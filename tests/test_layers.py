"""The packages import downwards only (docs/ARCHITECTURE.md §Layers and packages).

    tradingd  (composition root: wiring, orchestrator, CLI, daily scan job, focus)   ← scripts
    intelligence (the win-probability model: features, labels, training, evaluation)
    agents    config
    core      (types, messages, bus, clock, store, broker ports and adapters)

Every import statement of every module is read with `ast`: top-level ones, those inside functions, and those under
`if TYPE_CHECKING:` (a type-only edge is still an edge a reader has to follow), plus `importlib.import_module`
calls with a literal name. Test and benchmark code sits outside the layers and may import anything; production code
may not import it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Who may import whom. A package missing from a set may not be imported by it, directly or under TYPE_CHECKING.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "analytics": frozenset({"core", "analytics"}),
    "agents": frozenset({"core", "analytics", "agents"}),
    "intelligence": frozenset({"core", "analytics", "agents", "intelligence"}),
    "config": frozenset({"core", "config"}),
    "tradingd": frozenset({"core", "analytics", "agents", "intelligence", "config", "tradingd"}),
    "scripts": frozenset({"tradingd"}),
}
OURS = frozenset(ALLOWED) | {"tests", "benchmarks"}
# alpaca-py's one home: the adapters convert its payloads into our types at the boundary.
ALPACA_HOME = ("core", "broker")


@dataclass(frozen=True, slots=True)
class Edge:
    path: Path  # relative to the project root
    line: int
    module: str  # the absolute module imported
    statement: str  # the source text of the import, as written

    @property
    def package(self) -> str:
        return self.path.parts[0]

    @property
    def target(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.statement}"


def _import_module_names(tree: ast.AST) -> set[str]:
    """The names a file calls `importlib.import_module` by: itself, `__import__`, and any `import ... as` alias."""
    names = {"import_module", "__import__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            names.update(alias.asname for alias in node.names if alias.name == "import_module" and alias.asname)
    return names


def _imported_by_call(node: ast.Call, names: set[str]) -> str | None:
    """The module a dynamic import call names with a literal, positionally or as `name=`."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if called not in names:
        return None
    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports_of(source: str, path: Path) -> Iterator[Edge]:
    """Every module `source` (the file at `path`, relative to the root) imports, wherever the import statement is."""
    lines = source.splitlines()

    def edge(node: ast.stmt | ast.expr, module: str) -> Edge:
        first, last = node.lineno, node.end_lineno or node.lineno
        text = " ".join(" ".join(lines[first - 1 : last]).split())
        return Edge(path, first, module, text)

    tree = ast.parse(source, filename=str(path))
    dynamic = _import_module_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield edge(node, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:  # a relative import stays inside its package
            yield edge(node, node.module or "")
        elif isinstance(node, ast.Call) and (module := _imported_by_call(node, dynamic)) is not None:
            yield edge(node, module)


def all_edges() -> list[Edge]:
    edges: list[Edge] = []
    for package in ALLOWED:
        for file in sorted((ROOT / package).rglob("*.py")):
            path = file.relative_to(ROOT)
            edges.extend(imports_of(file.read_text(encoding="utf-8"), path))
    return edges


def layer_violations(edges: list[Edge]) -> list[str]:
    return [
        f"{edge}  ({edge.module}: {edge.package} may import only {', '.join(sorted(ALLOWED[edge.package]))})"
        for edge in edges
        if edge.target in OURS and edge.target not in ALLOWED[edge.package]
    ]


def alpaca_violations(edges: list[Edge]) -> list[str]:
    return [
        f"{edge}  (alpaca-py is imported only under {'/'.join(ALPACA_HOME)}/)"
        for edge in edges
        if edge.target == "alpaca" and edge.path.parts[: len(ALPACA_HOME)] != ALPACA_HOME
    ]


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return all_edges()


def test_every_package_imports_only_the_layers_below_it(edges: list[Edge]) -> None:
    assert {edge.package for edge in edges} == set(ALLOWED)  # every package was read
    violations = layer_violations(edges)
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_alpaca_py_is_imported_only_by_the_broker_adapters(edges: list[Edge]) -> None:
    assert any(edge.target == "alpaca" for edge in edges)  # the check looks at something real
    violations = alpaca_violations(edges)
    assert not violations, "alpaca-py outside its adapters:\n" + "\n".join(violations)


def test_imports_in_functions_under_type_checking_or_by_name_all_count() -> None:
    source = """\
from typing import TYPE_CHECKING
import importlib
from core.types import Tier
if TYPE_CHECKING:
    from config.settings import Settings

def build():
    import agents.risk, tradingd.app
    return importlib.import_module("alpaca.trading.client")
"""
    found = list(imports_of(source, Path("core/broker/x.py")))
    assert layer_violations(found) == [
        "core/broker/x.py:5: from config.settings import Settings  (config.settings: core may import only core)",
        "core/broker/x.py:8: import agents.risk, tradingd.app  (agents.risk: core may import only core)",
        "core/broker/x.py:8: import agents.risk, tradingd.app  (tradingd.app: core may import only core)",
    ]
    assert alpaca_violations(found) == []
    assert alpaca_violations(list(imports_of(source, Path("agents/x.py")))) == [
        'agents/x.py:9: return importlib.import_module("alpaca.trading.client")  (alpaca-py is imported only under'
        " core/broker/)"
    ]


def test_dynamic_imports_by_any_spelling_count() -> None:
    source = """\
from importlib import import_module as load
def build():
    __import__("agents.risk")
    load("config.settings")
    return importlib.import_module(name="tradingd.app")
"""
    found = [edge.module for edge in imports_of(source, Path("core/x.py"))]
    assert found == ["importlib", "agents.risk", "config.settings", "tradingd.app"]
