#!/usr/bin/env python3
"""Print which top-level parts of a package import which (the layer graph), from the code itself.

Usage: ``python scripts/import_graph.py [PACKAGE]`` (default ``lecture_rag``; run with the
project's interpreter, e.g. ``make imports``). Each line is ``importer -> imported  (N imports)``;
function-level imports count too. Pairs that import each other are marked as cycles, and
modules that import each other directly are listed at the end.
"""

from __future__ import annotations

import sys
from collections import Counter

import grimp


def top(module: str, package: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == package and len(parts) > 1 else module


def main(package: str = "lecture_rag") -> None:
    graph = grimp.build_graph(package, cache_dir=None)
    edges: Counter[tuple[str, str]] = Counter()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = top(importer, package), top(imported, package)
            if a != b and b.startswith(package + "."):
                edges[(a, b)] += 1
    width = max((len(a) for a, _ in edges), default=0)
    for (a, b), n in sorted(edges.items()):
        cycle = "  <-> cycle" if (b, a) in edges else ""
        print(f"{a:<{width}} -> {b}  ({n}){cycle}")
    mutual = sorted(
        (a, b)
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if a < b and a in graph.find_modules_directly_imported_by(b)
    )
    print(f"modules that import each other: {len(mutual)}")
    for a, b in mutual:
        print(f"  {a} <-> {b}")


if __name__ == "__main__":
    main(*sys.argv[1:])
