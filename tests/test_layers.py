"""No import circles among our own modules, lazy (function-level) imports included.

import-linter's layers and forbidden contracts (``[tool.importlinter]`` in pyproject.toml, run
by ``make lint``) keep the packages in order, but a circle inside one layer passes them. This
test reads every ``import`` statement of ``sharding``, ``models``, ``service`` and ``workers``
(module level, inside functions and under ``TYPE_CHECKING`` alike), builds the module graph
and fails on any strongly connected component of two or more modules (Tarjan), naming the
import lines of each circle.

Edges between a package and its own submodules are not counted: ``service/api/__init__.py``
re-exporting ``service.api.app`` is not a circle.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sharding", "models", "service", "workers")


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(
    node: ast.Import | ast.ImportFrom, *, module: str, is_package: bool
) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        anchor = (module if is_package else module.rpartition(".")[0]).split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        source = ".".join(anchor + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    return [source] + [f"{source}.{alias.name}" for alias in node.names]


def import_graph(
    root: Path = ROOT, packages: tuple[str, ...] = PACKAGES
) -> dict[str, dict[str, list[int]]]:
    """``graph[importer][imported]`` = the line numbers of the imports, for our modules only."""
    modules = _modules(root, packages)
    graph: dict[str, dict[str, list[int]]] = {name: {} for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imported_names(node, module=module, is_package=path.name == "__init__.py")
            for name in names:
                target = _resolve(name, modules)
                if (
                    target is None
                    or target == module
                    or module.startswith(target + ".")
                    or target.startswith(module + ".")
                ):
                    continue
                lines = graph[module].setdefault(target, [])
                if node.lineno not in lines:
                    lines.append(node.lineno)
    return graph


def circles(graph: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """Strongly connected components with two or more modules (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop(0)
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(component: list[str], graph: dict[str, dict[str, list[int]]]) -> str:
    members = set(component)
    edges = [
        f"    {importer} -> {imported} (l.{', l.'.join(map(str, sorted(lines)))})"
        for importer in component
        for imported, lines in sorted(graph[importer].items())
        if imported in members
    ]
    return "circle: " + " <-> ".join(component) + "\n" + "\n".join(edges)


def test_no_import_circles() -> None:
    graph = import_graph()
    found = circles(graph)
    report = "\n".join(_describe(component, graph) for component in found)
    assert not found, f"{len(found)} import circle(s) among {len(graph)} modules:\n{report}"


def test_import_linter_sees_every_package() -> None:
    """grimp skips a directory without ``__init__.py`` (and every import of it), so such a
    namespace package must be a root of its own; and a root inside a regular package makes
    ``lint-imports`` exit 1 without a message (grimp's NotATopLevelModule)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    roots = set(config["tool"]["importlinter"]["root_packages"])
    namespace = {
        ".".join(path.relative_to(ROOT).parts)
        for package in PACKAGES
        for path in [ROOT / package, *(ROOT / package).rglob("*")]
        if path.is_dir() and any(path.glob("*.py")) and not (path / "__init__.py").exists()
    }
    nested = {root for root in roots if "." in root}
    missing = sorted(namespace - roots)
    assert not missing, f"give {missing} an __init__.py (or name them in root_packages)"
    assert nested <= namespace, f"remove {sorted(nested - namespace)} from root_packages"


def test_a_lazy_import_that_closes_a_circle_is_caught(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import f\n")
    (package / "a.py").write_text("from pkg import b\n\ndef f() -> None:\n    b.g()\n")
    (package / "b.py").write_text("def g() -> None:\n    from .a import f\n    f()\n")
    (package / "c.py").write_text("import pkg.a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.b"] == {"pkg.a": [2]}
    assert circles(graph) == [["pkg.a", "pkg.b"]]
