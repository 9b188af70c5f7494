"""Dependencies run one way: no import cycle in harness/, and the layers of docs/design.md.

Every module's imports are read from its source with ``ast``: imports inside functions
and under ``if TYPE_CHECKING:`` count as much as those at the top, because a cycle hidden
in a function is still two modules that cannot be understood (or moved) one without the
other, and it breaks at run time as soon as someone hoists the import. An
``importlib.import_module("harness.x")`` with a literal name counts too; names built at
run time (the provider registry, the lazy ``__getattr__`` maps) cannot be read and do not.

``from harness.pkg import name`` is an edge to ``harness.pkg.name`` when that is a module,
else to ``harness.pkg`` (its ``__init__``). The implicit import of a parent package is not
an edge: Python has always begun the parent before the child.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "harness"

# The layers of docs/design.md, top to bottom: cli -> api/runner -> report -> scoring ->
# judges/metrics -> calls -> cache, providers; store and tracking are leaves. A module's
# layer is its longest matching prefix; a module in none (errors, config, model_io, aio,
# prompts, retry, ...) is shared: anyone may import it, and it imports only other shared
# modules.
LAYERS: dict[str, str] = {
    "harness": "api",  # the package facade: `harness.evaluate` and friends, lazily
    "harness.__main__": "cli",
    "harness.cli": "cli",
    "harness.api": "api",
    "harness.evaluate_arguments": "api",  # evaluate's arguments checked in Python's words
    "harness.evaluate_messages": "api",  # evaluate's errors in its argument names
    "harness.evaluate_mlflow": "api",  # mlflow.evaluate's own arguments: evaluators, URIs
    "harness.evaluate_retriever": "api",  # model_type="retriever": MLflow's metrics, id lists
    "harness.evaluate_data": "api",  # evaluate's data imported, its by=/stratify= columns checked
    "harness.data": "api",
    "harness.data_files": "api",  # reading CSV/JSONL/JSON/Parquet eval-set files
    "harness.data_export": "api",  # writing a stored version back to a file
    "harness.compare": "api",  # compare and check: runs from the store, stats, MLflow tags
    "harness.spark_tables": "api",  # Spark tables in and out: a run's session, the store
    "harness.frames": "api",
    "harness.runner": "runner",
    "harness.report": "report",  # the HTML report of a run; every run writes one
    "harness.scoring": "scoring",
    "harness.judges": "judges",
    "harness.metrics": "metrics",
    "harness.calls": "calls",
    "harness.intercept": "calls",  # how the user's own HTTP calls enter the call path
    "harness.recorder": "api",  # harness.replay: a cassette around any block of code
    "harness.testing.pytest_plugin": "api",  # the pytest face of harness.replay
    "harness.cache": "cache",
    "harness.providers": "providers",
    "harness.store": "store",
    "harness.tracking": "tracking",
}
SHARED = "shared"
_BELOW_CALLS = {"cache", "providers", SHARED}
_LEAVES = {"store", "tracking"}
# layer -> the layers its modules may import (each may always import its own).
MAY_IMPORT: dict[str, set[str]] = {
    "cli": {"api", "runner", "report", "scoring", "judges", "metrics", "calls", *_BELOW_CALLS}
    | _LEAVES,
    "api": {"runner", "report", "scoring", "judges", "metrics", "calls", *_BELOW_CALLS, *_LEAVES},
    "runner": {"report", "scoring", "judges", "metrics", "calls", *_BELOW_CALLS, *_LEAVES},
    "report": {"judges", "metrics", SHARED, *_LEAVES},  # reads runs; calls nothing
    # metrics and judges from names, specs and objects: builds both, below the runner
    "scoring": {"judges", "metrics", "calls", *_BELOW_CALLS, *_LEAVES},
    "judges": {"metrics", "calls", *_BELOW_CALLS, *_LEAVES},
    "metrics": {"calls", *_BELOW_CALLS, *_LEAVES},
    "calls": _BELOW_CALLS,
    "cache": {SHARED},
    "providers": {SHARED},
    "store": {SHARED},
    "tracking": {SHARED},
    SHARED: {SHARED},
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a harness module)
    file: str  # the importing file, relative to the package's parent folder
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def find_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, package: str, modules: Mapping[str, Path]) -> Iterable[str]:
    """The modules of ``modules`` that one import statement (or import_module call) names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in modules:  # `import a.b.c` where c is an attribute
                name = name.rpartition(".")[0]
            if name:
                yield name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        for alias in node.names:
            if f"{module}.{alias.name}" in modules:
                yield f"{module}.{alias.name}"
            elif module in modules:
                yield module
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
        == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and node.args[0].value in modules
    ):
        yield node.args[0].value


def import_graph(root: Path) -> dict[str, dict[str, Import]]:
    """module -> {imported module -> the first import of it}, within the package at ``root``."""
    modules = find_modules(root)
    graph: dict[str, dict[str, Import]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, Import] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported(node, package, modules):
                if target != name:
                    file = path.relative_to(root.parent).as_posix()
                    found = Import(name, target, file, getattr(node, "lineno", 0))
                    if target not in edges or found.line < edges[target].line:
                        edges[target] = found
        graph[name] = edges
    return graph


def find_cycles(graph: Mapping[str, Mapping[str, Import]]) -> list[list[Import]]:
    """Cycles (each as its imports, in order) covering every knot of mutually importing
    modules: the shortest one through each module of a knot, without repeats."""
    cycles: list[list[Import]] = []
    seen: set[frozenset[tuple[str, str]]] = set()
    for knot in _knots(graph):
        for member in sorted(knot):
            cycle = _shortest_cycle(graph, knot, member)
            edges = frozenset((edge.source, edge.target) for edge in cycle)
            if edges not in seen:
                seen.add(edges)
                cycles.append(cycle)
    return cycles


def _knots(graph: Mapping[str, Mapping[str, Import]]) -> list[set[str]]:
    """Tarjan's strongly connected components of more than one module, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    knots: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                knot = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    knot.add(member)
                    if member == node:
                        break
                if len(knot) > 1:
                    knots.append(knot)
    return knots


def _shortest_cycle(
    graph: Mapping[str, Mapping[str, Import]], knot: set[str], first: str
) -> list[Import]:
    """The shortest way from ``first`` back to itself, through the knot (breadth first)."""
    came_from: dict[str, Import] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for target, edge in sorted(graph[node].items()):
                if target not in knot or target in came_from:
                    continue
                came_from[target] = edge
                if target == first:
                    path = [edge]
                    while path[0].source != first:
                        path.insert(0, came_from[path[0].source])
                    return path
                following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {first} in {sorted(knot)}")  # a Tarjan bug


def describe_cycle(cycle: list[Import]) -> str:
    chain = " -> ".join([cycle[0].source, *(edge.target for edge in cycle)])
    lines = "\n".join(f"    {edge.where()}: imports {edge.target}" for edge in cycle)
    return f"{chain}\n{lines}"


def layer_of(module: str) -> str:
    # "harness" (the facade) is one module; every other entry is a module or a package.
    matches = [p for p in LAYERS if module == p or (p != "harness" and module.startswith(p + "."))]
    return LAYERS[max(matches, key=len)] if matches else SHARED


def layer_violations(graph: Mapping[str, Mapping[str, Import]]) -> list[str]:
    found = []
    for source, edges in sorted(graph.items()):
        mine = layer_of(source)
        for target, edge in sorted(edges.items()):
            theirs = layer_of(target)
            if theirs != mine and theirs not in MAY_IMPORT[mine]:
                allowed = ", ".join(sorted(MAY_IMPORT[mine] - {SHARED})) or "no other layer"
                found.append(
                    f"{edge.where()}: {source} ({mine}) imports {target} ({theirs}); "
                    f"{mine} may import {allowed} and the shared modules"
                )
    return found


# --- the package ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, Import]]:
    return import_graph(ROOT)


def test_the_graph_sees_imports_at_every_depth(graph: dict[str, dict[str, Import]]) -> None:
    # A walker that found nothing would pass every rule below; these edges are known, at
    # the top of a module, inside a function, under TYPE_CHECKING and through a re-export.
    assert "harness.calls" in graph["harness.runner.engine"]  # at the top
    assert "harness.judges" in graph["harness.runner.engine"]  # only under TYPE_CHECKING
    assert "harness.cache.store" in graph["harness.runner.run"]  # only inside run_eval
    assert "harness.calls.caller" in graph["harness.calls"]  # the package's re-export
    assert sum(len(edges) for edges in graph.values()) > 300


def test_no_module_imports_itself_back(graph: dict[str, dict[str, Import]]) -> None:
    cycles = find_cycles(graph)
    assert not cycles, (
        "import cycles in harness/ (move what both sides need into a module of its own, "
        "see docs/design.md 'Dependencies'):\n" + "\n".join(map(describe_cycle, cycles))
    )


def test_dependencies_follow_the_layers(graph: dict[str, dict[str, Import]]) -> None:
    violations = layer_violations(graph)
    assert not violations, "imports against the layers of docs/design.md:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("harness.calls", "harness.runner"),
        ("harness.judges", "harness.runner"),
        ("harness.cache", "harness.providers"),
        ("harness.providers", "harness.cache"),
        *[
            (leaf, above)
            for leaf in ("harness.store", "harness.tracking")
            for above in (
                "harness.runner",
                "harness.api",
                "harness.cli",
                "harness.judges",
                "harness.metrics",
                "harness.calls",
            )
        ],
    ],
)
def test_the_rules_the_design_states_are_in_the_table(importer: str, forbidden: str) -> None:
    # The table above is what the layer test enforces; these are the rules the design
    # states in words, so an edit of the table cannot quietly drop one.
    assert layer_of(forbidden) not in MAY_IMPORT[layer_of(importer)]


def test_nothing_imports_the_package_facade(graph: dict[str, dict[str, Import]]) -> None:
    # harness/__init__ imports the API (lazily); a module importing it back is a cycle the
    # moment someone types the facade's names. The version lives in harness._version.
    importers = [e.where() for edges in graph.values() for t, e in edges.items() if t == "harness"]
    assert not importers


def test_the_shared_modules_are_the_ones_we_mean(graph: dict[str, dict[str, Import]]) -> None:
    # A new top-level module is shared by default, which lets anyone import it; decide.
    shared = sorted(m for m in graph if layer_of(m) == SHARED and m.count(".") == 1)
    assert shared == [
        "harness._version",
        "harness.aio",
        "harness.baselines",
        "harness.config",
        "harness.counters",  # a run's call counters as stored: the call path and the store
        "harness.errors",
        "harness.fastjson",
        "harness.faults",
        "harness.files",
        "harness.imports",
        "harness.interrupt",
        "harness.memory",
        "harness.model_io",
        "harness.numbers",
        "harness.ports",
        "harness.prompts",
        "harness.retry",
        "harness.sampling",
        "harness.secrets",  # the environment's credentials: every layer scrubs with it
        "harness.slices",
        "harness.stats",
        "harness.testing",
        "harness.thread_work",  # a python: model's call, whose end closes the call path's reads
        "harness.wording",
    ]


# --- the checks themselves fail when they should ----------------------------------------


def _package(root: Path, files: dict[str, str], name: str = "pkg") -> Path:
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / name


def test_a_cycle_through_a_function_and_type_checking_is_named(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "def f():\n    from pkg.b import g\n    return g\n",
            "b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg import c\n"
                "def g(): ...\n"
            ),
            "c.py": "import importlib\nimportlib.import_module('pkg.a')\n",
            "d.py": "from . import a\n",  # into the knot, not part of it
        },
    )
    cycles = find_cycles(import_graph(package))
    assert len(cycles) == 1
    message = describe_cycle(cycles[0])
    assert message.splitlines()[0] == "pkg.a -> pkg.b -> pkg.c -> pkg.a"
    assert "pkg/a.py:2: imports pkg.b" in message
    assert "pkg/b.py:3: imports pkg.c" in message
    assert "pkg/c.py:2: imports pkg.a" in message


def test_a_package_init_importing_its_module_back_is_a_cycle(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {"__init__.py": "from pkg.sub import x\n", "sub.py": "from pkg import y\nx = y = 1\n"},
    )
    cycles = find_cycles(import_graph(package))
    assert [describe_cycle(c).splitlines()[0] for c in cycles] == ["pkg -> pkg.sub -> pkg"]


def test_an_acyclic_package_has_no_cycle(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "from pkg.a import f\n",
            "a.py": "from pkg.b import g\nf = g\n",
            "b.py": "g = 1\n",
        },
    )
    assert find_cycles(import_graph(package)) == []


def test_a_call_path_reaching_into_the_runner_is_named(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "calls.py": "def budget():\n    from harness.runner.limits import Budget\n",
            "runner/__init__.py": "",
            "runner/limits.py": "from harness.calls import budget\n",
            "cache.py": "from harness.providers import Provider\n",
            "providers.py": "class Provider: ...\n",
        },
        name="harness",
    )
    violations = layer_violations(import_graph(package))
    assert len(violations) == 2
    assert violations[0].startswith(
        "harness/cache.py:1: harness.cache (cache) imports harness.providers (providers);"
    )
    assert violations[1].startswith(
        "harness/calls.py:2: harness.calls (calls) imports harness.runner.limits (runner);"
    )
