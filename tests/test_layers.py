"""The packages form layers: no package imports, at module level or inside a function, one that imports it back;
within a package, no module does either."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import embedlens

ROOT = Path(embedlens.__file__).parent
ALLOWED: set[tuple[str, str]] = set()


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "embedlens"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


@functools.cache  # parsed once for every test here (they only read it)
def module_imports() -> dict[str, frozenset[str]]:
    """Module -> the modules it imports, at module level or inside a function (``from .x import name`` counts
    as ``x.name`` when that is a module, else ``x``); a module's own parent packages are left out (Python
    runs them first anyway)."""
    modules = _modules()
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_init = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_init else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("embedlens."):
                targets = [node.value.partition(":")[0]]  # modules imported by name (importlib)
            for t in targets:
                if t.startswith("embedlens.") and t != module and not module.startswith(t + "."):
                    edges.setdefault(module, set()).add(t)
    return {module: frozenset(targets) for module, targets in edges.items()}


def package_imports() -> dict[str, set[str]]:
    """Package -> the packages it imports (``embedlens.X`` or top-level module ``embedlens/X.py`` = ``X``)."""
    edges: dict[str, set[str]] = {}
    for module, targets in module_imports().items():
        for t in targets:
            if _package(t) != _package(module):
                edges.setdefault(_package(module), set()).add(_package(t))
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if (node, nxt) in ALLOWED:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles_between_packages():
    edges = package_imports()
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_no_import_cycles_between_modules():
    edges = module_imports()
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle():
    edges = package_imports()
    assert "spaces" in edges.get("handles", set())  # the edge the test relies on below exists
    edges.setdefault("spaces", set()).add("handles")  # the old spaces.registry <-> lens knot
    assert _cycle(edges) is not None


def test_lower_layers_do_not_reach_up():
    edges = package_imports()
    for low, high in [("spaces", "lens"), ("spaces", "handles"), ("classic", "handles"), ("serve", "cli"),
                      ("engines", "corpus"), ("engines", "contextual"), ("render", "atlas"), ("models", "spaces")]:
        assert high not in edges.get(low, set()), f"{low} imports {high}"
