"""The packages import downwards only (docs/ARCHITECTURE.md §Layers and packages).

    tradingd  (composition root: wiring, orchestrator, CLI, daily scan job, focus)   ← scripts
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
    "agents": frozenset({"core", "agents"}),
    "config": frozenset({"core", "config"}),
    "tradingd": frozenset({"core", "agents", "config", "tradingd"}),
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


def _is_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "import_module" and bool(node.args) and isinstance(node.args[0], ast.Constant)


def imports_of(source: str, path: Path) -> Iterator[Edge]:
    """Every module `source` (the file at `path`, relative to the root) imports, wherever the import statement is."""
    lines = source.splitlines()

    def edge(node: ast.stmt | ast.expr, module: str) -> Edge:
        first, last = node.lineno, node.end_lineno or node.lineno
        text = " ".join(" ".join(lines[first - 1 : last]).split())
        return Edge(path, first, module, text)

    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield edge(node, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:  # a relative import stays inside its package
            yield edge(node, node.module or "")
        elif isinstance(node, ast.Call) and _is_import_module(node):
            name = node.args[0]
            assert isinstance(name, ast.Constant)
            if isinstance(name.value, str):
                yield edge(node, name.value)


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
