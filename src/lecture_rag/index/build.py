"""Build and load the search indexes of a store (dense vectors + BM25).

Both indexes are derived data: they can always be rebuilt from the SQLite
store. Building is skipped when the saved manifests already describe the
store's current corpus ids and embedder (corpus ids are never reused, so the
same ids mean the same texts); ``rebuild=True`` forces it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lecture_rag.config import Settings
from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25_DIRNAME, BM25Index
from lecture_rag.index.bm25 import MANIFEST as BM25_MANIFEST
from lecture_rag.index.store import Store
from lecture_rag.index.vectors import (
    VectorIndex,
    ids_fingerprint,
    index_dir,
    read_manifest,
)
from lecture_rag.retrieve.embedders import Embedder

ProgressFn = Callable[[int, int], None]


@dataclass(slots=True)
class Indexes:
    """The loaded indexes of one store, guaranteed to describe the same corpus."""

    vectors: VectorIndex
    bm25: BM25Index

    @property
    def fingerprint(self) -> str:
        return self.vectors.fingerprint


def build_indexes(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Embed the corpus and (re)build both indexes; returns stats for the CLI to show."""
    directory = index_dir(store.home)
    ids = np.asarray(store.corpus_ids(), dtype=np.int64)
    if ids.size == 0:
        raise StoreError(f"O acervo em {store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' antes de indexar.")
    fingerprint = ids_fingerprint(ids)
    base = {"segments": int(ids.size), "embedder": embedder.name, "dim": embedder.dim}
    if not rebuild and indexes_up_to_date(directory, fingerprint, embedder):
        manifest = read_manifest(directory)
        return {**base, "skipped": True, "kind": manifest.kind if manifest else "?"}

    from lecture_rag.index.embed import embed_corpus  # written in parallel; imported lazily

    t0 = time.perf_counter()
    corpus_ids, vectors = embed_corpus(store, embedder, batch_size=settings.embedder.batch_size, progress=progress)
    t_embed = time.perf_counter() - t0
    corpus_ids, vectors = _only_live(store, np.asarray(corpus_ids, dtype=np.int64), vectors)
    t1 = time.perf_counter()
    vindex = VectorIndex.build(
        corpus_ids,
        vectors,
        embedder_name=embedder.name,
        hnsw_threshold=settings.retrieval.hnsw_threshold,
    )
    vindex.save(directory)
    t2 = time.perf_counter()
    live = set(corpus_ids.tolist())
    bm25 = BM25Index.build_from_pairs(_texts(store, live), fingerprint=vindex.fingerprint)
    if len(bm25) != len(vindex):
        raise StoreError(
            "O acervo mudou durante a indexação (uma aula foi removida ou reingerida). "
            "Rode 'lecture-rag index' de novo."
        )
    bm25.save(directory / BM25_DIRNAME)
    t3 = time.perf_counter()
    _record_meta(store, embedder, vindex)
    return {
        **base,
        "segments": len(vindex),
        "skipped": False,
        "kind": vindex.kind,
        "embed_s": round(t_embed, 2),
        "vector_index_s": round(t2 - t1, 2),
        "bm25_s": round(t3 - t2, 2),
    }


def prune_embedding_cache(store: Store, embedder: Embedder) -> int:
    """Drop this embedder's cached vectors of texts no longer in the store; returns how many.

    The cache keeps vectors of removed or re-ingested lectures so that putting
    them back is free; on a large store that grows without bound, hence this
    explicit clean-up (``lecture-rag index --prune-cache``). Other embedders'
    vectors are kept: they are what makes switching back cheap.
    """
    from lecture_rag.index.embed import EmbeddingCache, default_cache_path, text_hash

    keep = {text_hash(text) for chunk in store.iter_texts() for _, text in chunk}
    cache = EmbeddingCache(default_cache_path(store))
    try:
        return cache.prune(embedder.name, keep)
    finally:
        cache.close()


def indexes_up_to_date(directory: Path, fingerprint: str, embedder: Embedder) -> bool:
    """True when both saved manifests describe this corpus and this embedder."""
    try:
        manifest = read_manifest(directory)
        bm25_path = directory / BM25_DIRNAME / BM25_MANIFEST
        bm25_fp = json.loads(bm25_path.read_text(encoding="utf-8")).get("fingerprint")
    except (StoreError, OSError, ValueError, AttributeError):
        return False  # missing or corrupt: rebuild
    return (
        manifest is not None
        and manifest.fingerprint == fingerprint
        and bm25_fp == fingerprint
        and manifest.embedder == embedder.name
        and manifest.dim == embedder.dim
        and all((directory / name).exists() for name in manifest.files.values())
    )


def load_indexes(home: Path, embedder: Embedder, *, exact_subset_max: int = 50_000) -> Indexes:
    """Both indexes, checked against the embedder and against each other."""
    directory = index_dir(home)
    vectors = VectorIndex.load(
        directory, embedder_name=embedder.name, dim=embedder.dim, exact_subset_max=exact_subset_max
    )
    bm25 = BM25Index.load(directory / BM25_DIRNAME)
    if bm25.fingerprint != vectors.fingerprint:
        raise StoreError(
            f"Os índices em {directory} são de versões diferentes do acervo (uma indexação foi "
            "interrompida?). Rode 'lecture-rag index --rebuild'."
        )
    return Indexes(vectors=vectors, bm25=bm25)


def _only_live(store: Store, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ids deleted while embedding ran, so both indexes describe one corpus."""
    current = np.asarray(store.corpus_ids(), dtype=np.int64)
    keep = np.isin(ids, current)
    if keep.all():
        return ids, vectors
    return ids[keep], np.asarray(vectors)[keep]


def _texts(store: Store, live: set[int]) -> Iterator[tuple[int, str]]:
    for batch in store.iter_texts():
        for corpus_id, text in batch:
            if corpus_id in live:
                yield corpus_id, text


def _record_meta(store: Store, embedder: Embedder, vindex: VectorIndex) -> None:
    """The store remembers which model its index speaks, for tools that read only the DB."""
    store.set_meta("embedder_name", embedder.name)
    store.set_meta("embedder_dim", str(embedder.dim))
    store.set_meta("index_fingerprint", vindex.fingerprint)
    store.set_meta("index_kind", vindex.kind)
