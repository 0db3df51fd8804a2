.PHONY: install test test-fast test-slow lint bench

install:
	./scripts/setup

# The full suite (model tests included), as CI runs it.
test:
	.venv/bin/python -m pytest -q

# Quick loop while coding: skips tests that load models or compile.
test-fast:
	.venv/bin/python -m pytest -q -m "not slow"

lint:
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy

bench:
	.venv/bin/python bench/bench_indexing.py
	.venv/bin/python bench/bench_search.py
