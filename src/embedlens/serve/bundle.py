"""The explorer's ES modules as one classic script, for the static export (Chromium loads no module from ``file://``).

The served page loads ``static/main.js`` as a module and the browser follows its imports. A folder opened
from disk cannot do that, so :func:`bundle_modules` writes the same modules into one script, evaluated in
the order a browser evaluates them (depth first along the imports, each module after what it imports).
Each module keeps its own scope; what it exports is bound, once it has run, to one variable of the
bundle's scope that every importer reads (so an exported name is exported by one module only).

The modules keep to a small form, checked here (an :class:`EmbedlensError` otherwise): imports are
``import { a, b } from "./name.js";`` on one line, exports are ``export function``, ``export async
function``, ``export const``, ``export let`` or ``export class`` at the start of a line; and an import
is used at a module's top level only when its module has already run (never across an import cycle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import EmbedlensError

_IMPORT = re.compile(r'import \{([^}]*)\} from "\./([A-Za-z0-9_-]+\.js)";')
_EXPORT = re.compile(r"export (?:async function|function|const|let|class) ([A-Za-z_$][\w$]*)")


@dataclass(frozen=True)
class Module:
    """One module's name, the names it imports from each module, the names it exports and its body."""

    name: str
    imports: dict[str, list[str]]
    exports: list[str]
    body: str


def read_module(path: Path) -> Module:
    """A module of the explorer, with its import lines removed and ``export`` taken off its declarations."""
    imports: dict[str, list[str]] = {}
    exports: list[str] = []
    lines = []
    text = path.read_text(encoding="utf-8")
    for line in re.sub(r"import \{([^}]*)\}", lambda m: m.group(0).replace("\n", " "), text).splitlines():
        if line.startswith("import"):
            found = _IMPORT.fullmatch(line.strip())
            if not found:
                raise EmbedlensError(f"{path.name}: an import the bundler does not read: {line[:80]!r}")
            names = [n.strip() for n in found.group(1).split(",") if n.strip()]
            if any(not re.fullmatch(r"[A-Za-z_$][\w$]*", n) for n in names):
                raise EmbedlensError(f"{path.name}: only plain names are imported (no 'as', no '*'): {line[:80]!r}")
            imports.setdefault(found.group(2), []).extend(names)
            continue
        if line.startswith("export"):
            found = _EXPORT.match(line)
            if not found:
                raise EmbedlensError(f"{path.name}: an export the bundler does not read: {line[:80]!r}")
            exports.append(found.group(1))
            line = line[len("export "):]
        lines.append(line)
    return Module(path.name, imports, exports, "\n".join(lines).strip() + "\n")


def evaluation_order(folder: Path, entry: str) -> list[Module]:
    """The modules reached from ``entry``, in the order a browser evaluates them (post-order along the imports)."""
    modules: dict[str, Module] = {}
    order: list[Module] = []

    def visit(name: str) -> None:
        if name in modules:
            return
        path = folder / name
        if not path.is_file():
            raise EmbedlensError(f"the explorer's module {name} is missing from {folder}")
        modules[name] = module = read_module(path)
        for dependency in module.imports:
            visit(dependency)
        order.append(module)

    visit(entry)
    return order


def bundle_modules(folder: Path, entry: str = "main.js") -> str:
    """``entry`` and every module it imports, as one classic script (see the module docstring)."""
    order = evaluation_order(folder, entry)
    owner: dict[str, str] = {}
    for module in order:
        for name in module.exports:
            if name in owner:
                raise EmbedlensError(f"{name} is exported by both {owner[name]} and {module.name}")
            owner[name] = module.name
    for module in order:
        for source, names in module.imports.items():
            missing = [n for n in names if owner.get(n) != source]
            if missing:
                raise EmbedlensError(f"{module.name} imports {', '.join(missing)} from {source}, which does not export it")
    parts = ["// The embedlens explorer's modules in one script (embedlens.serve.bundle), for a page opened from disk.",
             "(function () {", '"use strict";', f"let {', '.join(owner)};" if owner else ""]
    for module in order:
        names = ", ".join(module.exports)
        setter = "; ".join(f"{n} = v.{n}" for n in module.exports)
        parts += [f"// -- {module.name} " + "-" * max(3, 100 - len(module.name)), "(function (bind) {", module.body.rstrip(),
                  f"bind({{ {names} }});" if names else "", f"}})((v) => {{ {setter} }});"]
    parts.append("})();")
    return "\n".join(p for p in parts if p) + "\n"
