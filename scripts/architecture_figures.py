"""Figures of the code's shape: import cycles, the largest modules, and where model names are spelled.

    .venv/bin/python scripts/architecture_figures.py [--json]

* Import cycles: strongly connected components of two or more modules in the import graph of
  ``ml``, ``webapp`` and ``workers`` (grimp, the graph import-linter checks; imports inside
  functions count), and whether the three packages import each other in a circle.
* Largest modules: lines of the five longest Python files outside tests.
* Model names: for each registered model name, the places (file:line) outside tests, docs and
  weights where it is written as a string literal.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ml", "webapp", "workers")
SOURCE_DIRS = ("ml", "webapp", "workers", "bench", "scripts")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph; components of two or more modules, largest first."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = [0]

    def visit(root: str) -> None:
        # Iterative depth-first search: the graph is deep enough to hit Python's recursion limit.
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(components, key=len, reverse=True)


def package_edges(graph: grimp.ImportGraph) -> list[str]:
    edges = []
    for importer in PACKAGES:
        for imported in PACKAGES:
            if importer == imported:
                continue
            if graph.chain_exists(importer=importer, imported=imported, as_packages=True):
                edges.append(f"{importer} -> {imported}")
    return edges


def largest_modules(count: int = 5) -> list[tuple[str, int]]:
    sizes = []
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            sizes.append((str(path.relative_to(ROOT)), len(path.read_text().splitlines())))
    return sorted(sizes, key=lambda item: -item[1])[:count]


def model_names() -> list[str]:
    from ml.registry import registry

    return registry.names()


def spellings(names: list[str]) -> dict[str, list[str]]:
    """file:line of every string literal equal to a model name, in non-test Python source."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts or path.name == Path(__file__).name:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in found:
                    found[node.value].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = strongly_connected(graph)
    edges = package_edges(graph)
    report = {
        "import_cycles": len(cycles),
        "modules_in_cycles": sum(len(cycle) for cycle in cycles),
        "cycles": cycles,
        "package_imports": edges,
        "largest_modules": largest_modules(),
        "model_name_spellings": {name: places for name, places in spellings(model_names()).items()},
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"import cycles (strongly connected components): {report['import_cycles']}")
    for cycle in cycles:
        print(f"  {len(cycle)} modules: {', '.join(cycle)}")
    print(f"package imports: {', '.join(edges) or 'none'}")
    print("largest modules:")
    for path, lines in report["largest_modules"]:
        print(f"  {lines:>5}  {path}")
    print("model names spelled as string literals (outside tests):")
    for name, places in report["model_name_spellings"].items():
        print(f"  {name}: {len(places)}  {' '.join(places)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
