#!/usr/bin/env python3
"""nnjit's import graph: module-level and function-level imports between nnjit modules, the
cycles among them, and the function-level imports (each is either an optional heavy dependency
or a cycle being hidden).

    python tools/import_graph.py            # cycles (strongly connected components) and counts
    python tools/import_graph.py --local    # also list every function-level import

Exit status 1 when there is a cycle. tests/test_layering.py runs it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "nnjit"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, modules: set[str]) -> list[tuple[str, int, bool]]:
    """(imported nnjit module, line, at function level) for each import in the file."""
    mod = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[str, int, bool]] = []

    def target(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    t = target(a.name)
                    if t is not None:
                        out.append((t, child.lineno, inner))
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(mod, child, path.name == "__init__.py")
                if base is None:
                    continue
                for a in child.names:
                    t = target(f"{base}.{a.name}") or target(base)
                    if t is not None:
                        out.append((t, child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return [(t, line, local) for t, line, local in out if t != mod]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    files = sorted(PKG.rglob("*.py"))
    modules = {module_name(f) for f in files}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    local: list[tuple[str, str, int]] = []
    for f in files:
        m = module_name(f)
        for t, line, is_local in imports(f, modules):
            edges[m].add(t)
            if is_local:
                local.append((m, t, line))
    return edges, local


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local", action="store_true", help="list every function-level import")
    args = ap.parse_args(argv)
    edges, local = graph()
    found = cycles(edges)
    for comp in found:
        print(f"cycle of {len(comp)} modules: {', '.join(comp)}")
    if args.local:
        for m, t, line in local:
            print(f"function-level: {m}:{line} -> {t}")
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} import edges, "
          f"{len(found)} cycles, {len(local)} function-level imports of nnjit modules")  # fmt: skip
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
