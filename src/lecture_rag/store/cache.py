"""The embedding cache: passage vectors by (embedder name, text hash), in one SQLite file or the shared database.

Why a cache: embedding is by far the slowest step of indexing (see
:mod:`lecture_rag.index.embed`), and the only large saving is never to embed
the same text twice. Vectors are keyed by (embedder name, SHA-256 of the
exact passage text), which survives index rebuilds, re-ingests that keep
most windows unchanged, and corpus-id changes.

Only SQLite's own corruption codes make the cache "corrupt" (the one case
where deleting it is the fix); a full disk or a read-only cache is named as
such, because deleting a good cache throws away hours of embedding.

With a PostgreSQL store the cache lives in the same database (tables
``embedders`` and ``vectors``), so a vector embedded by one machine's
ingest is never embedded again by another's index build.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lecture_rag.store.database import Database
from lecture_rag.store.failures import open_error, read_only_error
from lecture_rag.store.schema import ddl
from lecture_rag.store.sqlite import SqliteDatabase

CACHE_NAME = "embeddings.sqlite3"
WHAT = "o cache de embeddings"
_SQL_CHUNK = 500  # stay well under SQLite's bound-parameter limit

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS embedders (
        id {serial},
        name TEXT NOT NULL UNIQUE,
        dim {bigint} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS vectors (
        embedder_id {bigint} NOT NULL REFERENCES embedders(id) ON DELETE CASCADE,
        text_hash {blob} NOT NULL,
        vec {blob} NOT NULL,
        PRIMARY KEY (embedder_id, text_hash)
    )""",
)


def text_hash(text: str) -> bytes:
    """SHA-256 of the exact UTF-8 text: any edit, even whitespace, is a new key."""
    return hashlib.sha256(text.encode("utf-8")).digest()


DAMAGED_ADVICE = "Ele é só um cache: apague o arquivo e rode o comando de novo (os trechos serão reprocessados)."


class EmbeddingCache:
    """Passage vectors by (embedder name, text hash), in a database of its own or the store's.

    It is only a cache: deleting it costs re-embedding, nothing else. A
    write-protected cache file is opened read-only, as the store is
    (:func:`~lecture_rag.store.failures.write_protected`). ``owned``: whether
    closing the cache closes its database (not the store's shared one).
    """

    def __init__(self, db: Database, *, owned: bool = True) -> None:
        self.db = db
        self._owned = owned
        # Created once; on a server, under the exclusive lock (two processes creating them at once would
        # collide), which is why existing tables are not created again on every open.
        if not db.read_only and not (db.has_table("embedders") and db.has_table("vectors")):
            with db.transaction(exclusive=db.dialect != "sqlite") as conn:
                for statement in _SCHEMA:
                    conn.execute(ddl(statement, db.dialect))
        db.execute("SELECT COUNT(*) FROM embedders").fetchone()

    @classmethod
    def open_file(cls, path: Path) -> EmbeddingCache:
        """The cache in one SQLite file (the store directory's, :func:`cache_path`)."""
        path = Path(path)
        db = SqliteDatabase.at(path, WHAT, advice=DAMAGED_ADVICE)
        if db.read_only and not path.exists():
            raise read_only_error(WHAT, path, "não é possível criá-lo")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls(db)
        except sqlite3.Error as exc:
            db.close()
            corrupt = (
                f"O cache de embeddings {path} está corrompido ({exc}). Ele é só um cache: "
                "apague o arquivo e rode o comando de novo (os trechos serão reprocessados)."
            )
            raise open_error(exc, WHAT, path, corrupt=corrupt) from exc
        except BaseException:
            db.close()
            raise

    @property
    def path(self) -> str:
        return self.db.where

    def close(self) -> None:
        if self._owned:
            self.db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embedder_id(self, name: str, dim: int) -> int:
        """Id of an embedder; a known name with another dimension drops its stale vectors."""
        row = self.db.execute("SELECT id, dim FROM embedders WHERE name=?", (name,)).fetchone()
        if row is not None and int(row[1]) == dim:
            return int(row[0])
        with self.db.transaction() as conn:
            if row is not None:
                conn.execute("DELETE FROM embedders WHERE id=?", (row[0],))
            conn.execute("INSERT INTO embedders(name, dim) VALUES(?, ?) ON CONFLICT(name) DO NOTHING", (name, dim))
            found = conn.execute("SELECT id FROM embedders WHERE name=?", (name,)).fetchone()
        return int(found[0])

    def get_many(self, embedder_id: int, hashes: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        """Cached vectors among ``hashes`` (absent ones are simply missing)."""
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(hashes), _SQL_CHUNK):
            chunk = list(hashes[start : start + _SQL_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
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
        if not rows:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO vectors(embedder_id, text_hash, vec) VALUES(?,?,?) "
                "ON CONFLICT(embedder_id, text_hash) DO UPDATE SET vec=excluded.vec",
                rows,
            )

    def count(self, name: str | None = None) -> int:
        """Number of cached vectors (of one embedder if ``name`` is given)."""
        if name is None:
            return int(self.db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        row = self.db.execute(
            "SELECT COUNT(*) FROM vectors v JOIN embedders e ON e.id=v.embedder_id WHERE e.name=?", (name,)
        ).fetchone()
        return int(row[0])

    def prune(self, name: str, keep: Iterable[bytes]) -> int:
        """Drop an embedder's vectors whose text is no longer in ``keep``; returns how many."""
        row = self.db.execute("SELECT id FROM embedders WHERE name=?", (name,)).fetchone()
        if row is None:
            return 0
        wanted = set(keep)
        stale = [
            (row[0], bytes(key))
            for (key,) in self.db.execute("SELECT text_hash FROM vectors WHERE embedder_id=?", (row[0],))
            if bytes(key) not in wanted
        ]
        if stale:
            with self.db.transaction() as conn:
                conn.executemany("DELETE FROM vectors WHERE embedder_id=? AND text_hash=?", stale)
        return len(stale)


def cache_path(home: Path) -> Path:
    """The cache lives next to the store database, so one store has one cache."""
    return Path(home) / CACHE_NAME
