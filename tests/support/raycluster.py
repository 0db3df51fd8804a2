"""A real Ray on this machine for the in-process tests of one module, and a check that nothing of it is left."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[None]:
    """``ray.init`` with ``num_cpus`` CPUs for the block (about 4 s to start on 2 cores).

    ``RayEngine.connect`` finds the session open and uses it without closing it,
    so one module pays the start once for all its tests.
    """
    import ray

    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()
