"""Imports point one way: no cycle between graphspec's modules or subpackages, and
graph/ never imports train/ (ARCHITECTURE.md). Read from the source with ast, so
imports inside functions count too: a lazy import is still a dependency."""
import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "graphspec"


def _module_name(path: Path) -> str:
    parts = ("graphspec",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known: dict) -> set:
    """graphspec modules imported anywhere in the file (module or function level)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from . import ops`` imports a module; ``from .x import name`` imports x.
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("graphspec") and target != name:
                found.add(target)
    return found


def _table_imports() -> set:
    """Modules imported by name from a table (importlib), which no import statement
    shows: the layer registry's modules and the CLI's command modules. They count too."""
    from graphspec.cli import COMMANDS
    from graphspec.layers.registry import LAYER_MODULES
    return ({("graphspec.layers.registry", f"graphspec.layers.{module}")
             for module in LAYER_MODULES.values()}
            | {("graphspec.cli", f"graphspec.cli.{module}") for module, _, _ in COMMANDS.values()})


@functools.lru_cache(maxsize=None)
def _module_edges(root: Path) -> tuple:
    """(module, imported module) pairs of the package at ``root``, parsed once."""
    known = _modules()
    edges = {(name, target) for name, path in known.items()
             for target in _imports(name, path, known)}
    return tuple(sorted(edges | _table_imports()))


def _graph(level) -> dict:
    edges = {}
    for name, target in _module_edges(ROOT):
        a, b = level(name), level(target)
        if a and b and a != b:
            edges.setdefault(a, set()).add(b)
    return edges


def _cycle(edges: dict):
    """One cycle as a list of nodes, or None (iterative DFS with colours)."""
    colour = {}
    for start in sorted(edges):
        if colour.get(start):
            continue
        stack, path = [(start, iter(sorted(edges.get(start, ()))))], [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if colour.get(child) == 1:
                    return path[path.index(child):] + [child]
                if not colour.get(child):
                    colour[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(edges.get(child, ())))))
                    break
            else:
                colour[node] = 2
                stack.pop()
                path.pop()
    return None


def _subpackage(name: str):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None   # the root package itself: not a layer


def test_no_cycle_between_modules():
    cycle = _cycle(_graph(lambda name: name))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_cycle_between_subpackages():
    cycle = _cycle(_graph(_subpackage))
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle)


@pytest.mark.parametrize("lower,upper", [("graph", "train"), ("graph", "runtime"),
                                         ("graph", "cli"), ("expr", "graph"),
                                         ("autodiff", "graph"), ("io", "graph")])
def test_lower_layers_never_import_upper_ones(lower, upper):
    edges = _graph(_subpackage)
    assert upper not in edges.get(lower, set()), f"{lower}/ imports {upper}/"


def test_the_walker_sees_function_level_imports():
    known = _modules()
    # the CLI imports the API, some of it lazily: both kinds are found
    found = _imports("graphspec.cli", ROOT / "cli" / "__init__.py", known) | \
        set().union(*(_imports(n, p, known) for n, p in known.items()
                      if n.startswith("graphspec.cli.")))
    assert "graphspec.api" in found
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_the_walker_sees_modules_imported_from_tables():
    edges = set(_module_edges(ROOT))
    assert ("graphspec.layers.registry", "graphspec.layers.dense") in edges
    assert ("graphspec.cli", "graphspec.cli.spec_commands") in edges
    known = _modules()
    assert all(target in known for _, target in _table_imports())
