"""The embedder protocol and the E5 conventions every backend shares.

E5 models were trained with ``query: `` / ``passage: `` prefixes; forgetting
them costs several points of recall, so the prefixes live here, once, and the
rest of the code only ever calls ``embed_queries`` / ``embed_passages`` with
plain, unprefixed text. Vectors are L2-normalised float32, so cosine
similarity is a dot product.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

PrefixMode = Literal["client", "server", "none"]


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


def looks_like_e5(model_name: str) -> bool:
    """True when the last path component of a model name names an E5 model.

    Only the last component is looked at, so a directory such as
    ``/tmp/e5-runs/minilm`` does not switch prefixes on by accident.
    """
    last = str(model_name).rstrip("/").rsplit("/", 1)[-1].lower()
    return re.search(r"(^|[^a-z0-9])e5([^a-z0-9]|$)", last) is not None
