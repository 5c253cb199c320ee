"""The package's import graph, read from the source: no import cycles, and the library does not import its tools.

Why static: a cycle that only a lazy import closes still ties two packages together (the train/eval
cycle was one), and a test that imports modules would miss the branches it does not execute.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules(*packages: str) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for p in (REPO / pkg).rglob("*.py"):
            parts = p.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = p
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _graph(mods: dict[str, Path], group: int | None = None) -> dict[str, set[str]]:
    def key(m: str) -> str:
        return ".".join(m.split(".")[:group]) if group else m

    g: dict[str, set[str]] = {}
    for name, path in mods.items():
        for dep in _imports(path):
            if dep in mods and key(dep) != key(name):
                g.setdefault(key(name), set()).add(key(dep))
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    return found


def test_no_module_import_cycles() -> None:
    mods = _modules("gaitpose", "service", "data_tools")
    assert _cycles(_graph(mods)) == []


def test_no_cycles_between_gaitpose_subpackages() -> None:
    mods = _modules("gaitpose")
    assert _cycles(_graph(mods, group=2)) == []


def test_library_does_not_import_benchmarks_or_the_service() -> None:
    bad = sorted(name for name, path in _modules("gaitpose").items()
                 if any(d.split(".")[0] in ("benchmarks", "service") for d in _imports(path)))
    assert bad == []
