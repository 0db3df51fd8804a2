"""Every file the package reads at run time ships in its wheel.

``check-base`` installs the wheel into a fresh venv; a data file that ``pyproject.toml``
does not declare (the abstention model once) works from the source tree and fails only
there, after minutes of CI. Matching the declared globs against the files costs nothing.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch

from tests.support.paths import REPO

PACKAGE = REPO / "src" / "lecture_rag"


def test_every_non_python_file_in_the_package_is_declared_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["lecture_rag"]
    files = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    ]
    assert files, "no data files found: the package layout moved"
    undeclared = [f for f in files if not any(fnmatch(f, g) for g in globs)]
    assert not undeclared, f"add to [tool.setuptools.package-data] in pyproject.toml: {undeclared}"
