"""The run path's imports go one way: no module of ``liteframe_bench`` imports, directly or through others, a module
that imports it back. Every ``import`` statement counts, the ones inside functions too (a lazy import is still an
arrow a reader has to follow). Built-in backbones and executors are loaded by name, as plugins are."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import liteframe_bench

PACKAGE = Path(liteframe_bench.__file__).parent


def modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module in the package folder (packages by their ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` from every import statement of its source."""
    mods = modules()

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {owner(a.name) for a in node.names if a.name.startswith("liteframe_bench")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up) + (f".{base}" if base else "")
                if base.split(".")[0] == "liteframe_bench":
                    edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else owner(base) for a in node.names}
        edges -= {None, name}
        graph[name] = edges  # type: ignore[assignment]
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_run_path():
    """The walker finds the arrows it is meant to judge (else an empty graph would pass)."""
    g = import_graph()
    assert "liteframe_bench.stages" in g["liteframe_bench.pipeline"]
    assert "liteframe_bench.stages" in g["liteframe_bench.profiler"]
    assert "liteframe_bench.pipeline" in g["liteframe_bench.profiler"]  # a lazy import inside run_profile
    assert "liteframe_bench.sweep" in g["liteframe_bench.ray_executor"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_inside_the_package():
    found = cycles(import_graph())
    assert not found, "import cycles (each a set of modules that import each other): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_stage_names_come_from_one_module():
    """Nothing but ``stages`` spells the stage tuple out."""
    spelled = [
        str(p.relative_to(PACKAGE.parent))
        for p in modules().values()
        if p.name != "stages.py" and '("vision", "reduce", "project"' in p.read_text()
    ]
    assert not spelled


@pytest.mark.parametrize("name", sorted(m for m in modules() if not m.endswith(".__main__")))  # scripts run
def test_every_module_imports(name):
    """Each module imports on its own account (in this process: its imports are already there or come now)."""
    importlib.import_module(name)


def private_reach_ins() -> list[str]:
    """``module._name`` uses (and ``from module import _name``) of another package module's private names."""
    found = []
    mods = modules()
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        aliases = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("liteframe_bench"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in mods:
                        aliases[a.asname or a.name] = full
                    elif a.name.startswith("_") and node.module != name:
                        found.append(f"{name}: from {node.module} import {a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and aliases[node.value.id] != name
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_no_module_reaches_into_another_modules_private_names():
    assert private_reach_ins() == []


def test_only_the_backends_name_a_family():
    """Commands, the pipeline and the cost model reach a family through the backbone seam (``load_backbone``,
    ``model_config``, the family's class methods), never by importing its module. The zoo trains InternVL3's mini
    model on purpose and may name it."""
    named = {
        m: sorted(e for e in edges if e.startswith("liteframe_bench.backends"))
        for m, edges in import_graph().items()
        if not m.startswith(("liteframe_bench.backends", "liteframe_bench.zoo"))
    }
    assert {m: e for m, e in named.items() if e} == {}
