.PHONY: install test test-slow test-all lint imports bench check-base docs

install:
	./scripts/setup

# The default suite: every test but the slow ones (~18 min on 2 cores). CI runs it, then test-slow.
test:
	.venv/bin/python -m pytest -q -m "not slow"

# The slow tests: big models, Ray clusters, several web replicas at once (CI runs them too).
test-slow:
	.venv/bin/python -m pytest -q -m slow

# Everything in one pytest run.
test-all:
	.venv/bin/python -m pytest -q

# Style, format, types, and the layers of the data flow (contract in pyproject.toml).
lint:
	.venv/bin/ruff check src tests bench scripts
	.venv/bin/ruff format --check src tests bench scripts
	.venv/bin/mypy
	.venv/bin/lint-imports

# The base package alone (no extras) in a fresh venv: ingest + search + ask on a caption file.
check-base:
	./scripts/check-base

# Which part of the package imports which (the layer graph, from the code).
imports:
	.venv/bin/python scripts/import_graph.py

# The documentation site: the CLI reference regenerated from the app, then MkDocs (strict: broken links fail) into site/.
docs:
	.venv/bin/python scripts/cli_reference.py
	.venv/bin/mkdocs build --strict

bench:
	.venv/bin/python -m bench.bench_indexing
	.venv/bin/python -m bench.bench_search
