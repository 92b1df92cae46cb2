"""Print the design measures of the embedlens package that is imported (issue 27's "Measure").

    .venv/bin/python scripts/design_counts.py                          # this checkout
    PYTHONPATH=OTHER/src .venv/bin/python scripts/design_counts.py     # another checkout, same rules

Import cycles (package and module level) and function-local imports of embedlens's own modules are found
by the same code as ``tests/test_layers.py``; then the parameters holding a handle, space, view or panel that
are typed ``Any``, and the longest functions.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_layers import ROOT, _cycle, local_imports, module_imports, not_yet, package_imports  # noqa: E402

# a parameter that holds a handle, space, view or panel, by its name: view, lens, space_a, left_view ...
HANDLE_NAME = re.compile(r"^(view|lens|space|handle|panel)(_\w+)?$|_(view|lens|space|handle|panel)$")
LONG = 80  # lines


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of nodes that reach each other (Tarjan), only those of two or more: each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def _files() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def any_handle_parameters() -> list[str]:
    """``file:line function(parameter)`` for each handle/space/view/panel parameter annotated ``Any``."""
    out = []
    for path in _files():
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                a = fn.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs:
                    if arg.annotation is not None and ast.unparse(arg.annotation) == "Any" and HANDLE_NAME.search(arg.arg):
                        out.append(f"{path.relative_to(ROOT)}:{arg.lineno} {fn.name}({arg.arg})")
    return out


def function_lengths() -> list[tuple[int, str]]:
    """(lines, ``file:line Class.function``) of every function and method, longest first."""
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST, file: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append((child.end_lineno - start + 1, f"{file}:{child.lineno} {prefix}{child.name}"))
                visit(child, file, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, file, f"{prefix}{child.name}.")
            else:
                visit(child, file, prefix)

    for path in _files():
        visit(ast.parse(path.read_text()), str(path.relative_to(ROOT)), "")
    return sorted(out, key=lambda t: (-t[0], t[1]))


def main() -> None:
    print(f"package: {ROOT}")
    for level, edges in (("package", package_imports()), ("module", module_imports())):
        groups = strongly_connected({k: set(v) for k, v in edges.items()})
        found = _cycle({k: set(v) for k, v in edges.items()})
        print(f"import cycles ({level} level): {len(groups)} group(s) of {level}s that import each other"
              + (f"; e.g. {' -> '.join(found)}" if found else ""))
        for g in groups:
            print(f"    {', '.join(g)}")

    local = [(path, line, why) for path in _files() for line, why in local_imports(path)]
    bare = [(p, line) for p, line, why in local if why is None]
    print(f"function-local imports of embedlens modules: {len(local)} ({len(local) - len(bare)} with a "
          f"'# lazy:' reason, {len(bare)} without)")
    if bare:
        later = sum(1 for p, _ in bare if not_yet(p))
        print(f"    without a reason: {len(bare) - later} in files the layering test checks, {later} in its NOT_YET files")
        by_package = Counter(p.relative_to(ROOT).parts[0] for p, _ in bare)
        print("    by package: " + ", ".join(f"{k.removesuffix('.py')} {v}" for k, v in by_package.most_common()))

    params = any_handle_parameters()
    print(f"parameters holding a handle, space, view or panel typed Any: {len(params)}")
    by_file = Counter(p.split(":")[0] for p in params)
    if by_file:
        print("    by file: " + ", ".join(f"{k} {v}" for k, v in by_file.most_common()))

    lengths = function_lengths()
    print(f"functions: {len(lengths)}; over {LONG} lines: {sum(1 for n, _ in lengths if n > LONG)}; the 10 longest:")
    for n, where in lengths[:10]:
        print(f"    {n:4d}  {where}")


if __name__ == "__main__":
    main()
