"""The test suite's and the benches' own layout: shared helpers live in ``tests/support``, nowhere else.

A test module that imports another test module runs that module's import-time code and
couples two files that look independent (``test_web_api.py`` was a helper module for four
others); a bench that edits ``sys.path`` works only from one directory. Both are read from
the source with ``ast``, so the check costs nothing and names the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO, TESTS

BENCH = REPO / "bench"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import in ``tree``, nested ones included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _is_test_module(module: str) -> bool:
    """``tests.<anything>.test_x`` (or ``conftest``): a module pytest collects, not a helper."""
    parts = module.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:])


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_tests_import_helpers_only_from_tests_support() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in _imported_modules(_parse(path))
        if _is_test_module(module) or module.startswith(("tests.unit", "tests.e2e"))
    ]
    assert offenders == [], "helpers shared between test modules belong in tests/support/:\n" + "\n".join(offenders)


def test_benches_do_not_edit_sys_path() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sorted(BENCH.rglob("*.py"))
        for node in ast.walk(_parse(path))
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert offenders == [], "run benches as modules from the root (python -m bench.bench_x):\n" + "\n".join(offenders)


def test_the_layout_check_sees_what_it_forbids() -> None:
    """The checks above would catch the patterns they were written for."""
    tree = ast.parse(
        "def f():\n    from tests.e2e.test_web_api import WebServer\nimport tests.unit.index.test_embed_pipeline\n"
    )
    modules = [m for _, m in _imported_modules(tree)]
    assert all(_is_test_module(m) for m in modules)
    assert not _is_test_module("tests.support.web")
