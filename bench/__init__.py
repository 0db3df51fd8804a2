"""Benchmarks, run from the repository root as modules (``python -m bench.bench_search``).

As modules they import the test suite's helpers (``tests.support``) from the root without
editing ``sys.path``.
"""
