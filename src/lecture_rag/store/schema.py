"""The store's versioned schema: every table the store owns, created and upgraded by numbered migrations.

A store records its version in ``meta.schema_version``. Opening a store runs
the migrations it lacks, in one transaction each, under SQLite's write lock,
so two processes opening an old store at once upgrade it once. A store
written by a newer lecture-rag (a version this code does not know) is
refused rather than guessed at. Version 1 stores predate versioned run
tables (they were created on first use, outside the version), hence
``IF NOT EXISTS`` in version 2. Version 3 keeps the segments of replaced or
removed lectures until an index without them is published (see
:mod:`lecture_rag.store.sqlite`); existing stores gain the empty table in place.
Version 4 records each video's transcript source, channel and upload date;
lectures stored before it show an empty source until they are re-ingested.
"""

from __future__ import annotations

import sqlite3

from lecture_rag.errors import StoreError
from lecture_rag.store.failures import rollback

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the corpus
    (
        """CREATE TABLE IF NOT EXISTS meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS videos (
            video_id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            course TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT 'pt',
            duration REAL NOT NULL DEFAULT 0,
            source_path TEXT NOT NULL DEFAULT '',
            source_hash TEXT NOT NULL DEFAULT '',
            ingested_at TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS segments (
            corpus_id INTEGER PRIMARY KEY AUTOINCREMENT,
            video_id TEXT NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (video_id, seq)
        )""",
        "CREATE INDEX IF NOT EXISTS segments_video ON segments(video_id, start)",
    ),
    # 2: evaluation runs, their answers, judgments and annotations
    (
        """CREATE TABLE IF NOT EXISTS runs (
            name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            config TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS run_items (
            run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
            qid TEXT NOT NULL,
            position INTEGER NOT NULL,
            question TEXT NOT NULL,
            meta TEXT NOT NULL,
            answer TEXT NOT NULL,
            answered_at TEXT NOT NULL,
            PRIMARY KEY (run, qid)
        )""",
        """CREATE TABLE IF NOT EXISTS judgments (
            run TEXT NOT NULL,
            qid TEXT NOT NULL,
            kind TEXT NOT NULL,
            score REAL,
            label TEXT,
            parsed INTEGER NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run, qid, kind),
            FOREIGN KEY (run, qid) REFERENCES run_items(run, qid) ON DELETE CASCADE
        )""",
        """CREATE TABLE IF NOT EXISTS annotations (
            run TEXT NOT NULL,
            qid TEXT NOT NULL,
            annotator TEXT NOT NULL,
            label TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (run, qid, annotator)
        )""",
    ),
    # 3: superseded segments, still referenced by the published index (corpus ids kept, video fields copied)
    (
        """CREATE TABLE IF NOT EXISTS superseded_segments (
            corpus_id INTEGER PRIMARY KEY,
            video_id TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            course TEXT NOT NULL DEFAULT '',
            superseded_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS superseded_video ON superseded_segments(video_id)",
    ),
    # 4: where each transcript came from (captions, Whisper model, file format), and the site's metadata
    (
        "ALTER TABLE videos ADD COLUMN transcript_source TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE videos ADD COLUMN channel TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE videos ADD COLUMN upload_date TEXT NOT NULL DEFAULT ''",
    ),
    # 5: where each cue of a segment begins (second, character offset), for links to the sentence
    (
        "ALTER TABLE segments ADD COLUMN marks TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE superseded_segments ADD COLUMN marks TEXT NOT NULL DEFAULT ''",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a database records (0 for an empty one)."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; returns the version it had."""
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"O acervo em {where} usa o esquema {found}, mais novo que esta versão do lecture-rag "
            f"({SCHEMA_VERSION}). Atualize o lecture-rag; nada foi alterado."
        )
    if found == SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)  # another process may have upgraded while we waited for the lock
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(version + 1),),
            )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return found
