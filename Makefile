.PHONY: install test test-fast test-slow lint imports bench

install:
	./scripts/setup

# The full suite (model tests included), as CI runs it.
test:
	.venv/bin/python -m pytest -q

# Quick loop while coding: skips tests that load models or compile.
test-fast:
	.venv/bin/python -m pytest -q -m "not slow"

# Style, format, types, and the layers of the data flow (contract in pyproject.toml).
lint:
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/mypy
	.venv/bin/lint-imports

# Which part of the package imports which (the layer graph, from the code).
imports:
	.venv/bin/python scripts/import_graph.py

bench:
	.venv/bin/python bench/bench_indexing.py
	.venv/bin/python bench/bench_search.py
