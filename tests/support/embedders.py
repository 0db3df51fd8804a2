"""A real embedder that counts what it is asked to embed (a wrapper that delegates, not a mock)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lecture_rag.embed import Embedder


class CountingEmbedder:
    """Delegates to ``inner`` and records every call: questions and passages apart."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.queries: list[str] = []
        self.query_calls = 0
        self.passages: list[str] = []
        self.calls = 0  # calls of embed_passages

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.query_calls += 1
        self.queries.extend(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.passages.extend(texts)
        return self.inner.embed_passages(texts)

    def reset(self) -> None:
        """Forget what was counted so far (one fixture, several counted steps)."""
        self.queries.clear()
        self.passages.clear()
        self.query_calls = self.calls = 0
