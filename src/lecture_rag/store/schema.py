"""The store's versioned schema: every table the store owns, created and upgraded by numbered migrations.

A store records its version in ``meta.schema_version``. Opening a store runs
the migrations it lacks, in one transaction each, under SQLite's write lock,
so two processes opening an old store at once upgrade it once. A store
written by a newer lecture-rag (a version this code does not know) is
refused rather than guessed at. Version 1 stores predate versioned run
tables (they were created on first use, outside the version), hence
``IF NOT EXISTS`` in version 2. Version 3 keeps the segments of replaced or
removed lectures until an index without them is published (see
:mod:`lecture_rag.store.corpus`); existing stores gain the empty table in place.
Version 4 records each video's transcript source, channel and upload date;
lectures stored before it show an empty source until they are re-ingested.
Version 6 records where each lecture's local recording is (``serve`` plays it);
a media file stored before it is still found through its ``source_path``.
Version 7 records, per lecture and field, who set the value last (flag,
manifest, sidecar, ``corpus edit``) and the value a manifest or sidecar last
applied; lectures stored before it have none, and their next manifest applies.

One schema for both databases: the statements are written once, with
``{real}``, ``{bigint}``, ``{blob}`` and ``{serial}`` where SQLite and
PostgreSQL spell a type differently (PostgreSQL's ``REAL`` is 4 bytes, so
times and scores are ``DOUBLE PRECISION`` there; a corpus id is an
``IDENTITY`` column, never reused, like SQLite's AUTOINCREMENT).

Upgrading: the embedded SQLite store upgrades itself when opened (one user,
one machine). A PostgreSQL database shared by many processes is upgraded
only by ``lecture-rag db upgrade`` (a replica of an older release must not
change the schema under the others); an empty one is created by the first
command that writes.
"""

from __future__ import annotations

from lecture_rag.errors import StoreError
from lecture_rag.store.database import Database, Dialect

TEMPLATES: tuple[tuple[str, ...], ...] = (
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
            duration {real} NOT NULL DEFAULT 0,
            source_path TEXT NOT NULL DEFAULT '',
            source_hash TEXT NOT NULL DEFAULT '',
            ingested_at TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS segments (
            corpus_id {serial},
            video_id TEXT NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE,
            seq {bigint} NOT NULL,
            start {real} NOT NULL,
            "end" {real} NOT NULL,
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
            position {bigint} NOT NULL,
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
            score {real},
            label TEXT,
            parsed {bigint} NOT NULL,
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
            corpus_id {bigint} PRIMARY KEY,
            video_id TEXT NOT NULL,
            start {real} NOT NULL,
            "end" {real} NOT NULL,
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
    # 6: where the lecture's local recording is, so that ``serve`` can play it (issue 21)
    ("ALTER TABLE videos ADD COLUMN media_path TEXT NOT NULL DEFAULT ''",),
    # 7: who last set each lecture's title, course, URL and language, and what a manifest or sidecar last said
    # (issue 25): an unchanged manifest must not undo a later ``corpus edit``
    (
        """CREATE TABLE IF NOT EXISTS video_origins (
            video_id TEXT NOT NULL REFERENCES videos(video_id) ON DELETE CASCADE,
            field TEXT NOT NULL,
            source TEXT NOT NULL,
            listed TEXT,
            PRIMARY KEY (video_id, field)
        )""",
    ),
)

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"real": "REAL", "bigint": "INTEGER", "blob": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "blob": "BYTEA",
        "serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    },
}


def ddl(statement: str, dialect: Dialect) -> str:
    """One schema statement in a database's spelling."""
    return statement.format(**TYPES[dialect])


def migrations(dialect: Dialect) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(ddl(s, dialect) for s in step) for step in TEMPLATES)


#: The migrations as SQLite runs them (tests build stores of earlier releases from these).
MIGRATIONS = migrations("sqlite")
SCHEMA_VERSION = len(TEMPLATES)


class OutdatedSchemaError(StoreError):
    """A shared database at an older schema: only ``lecture-rag db upgrade`` changes it."""


def schema_version(db: Database) -> int:
    """The version a database records (0 for an empty one)."""
    if not db.has_table("meta"):
        return 0
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def newer_error(found: int, where: str) -> StoreError:
    return StoreError(
        f"O acervo em {where} usa o esquema {found}, mais novo que esta versão do lecture-rag "
        f"({SCHEMA_VERSION}). Atualize o lecture-rag; nada foi alterado."
    )


def migrate(db: Database, *, upgrade: bool = True) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; returns the version it had.

    ``upgrade=False`` creates an empty database but refuses to change an
    older one (:class:`OutdatedSchemaError`), for shared databases.
    A newer schema is always refused, before anything is written.
    """
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise newer_error(found, db.where)
    if found == SCHEMA_VERSION:
        return found
    if found and not upgrade:
        raise OutdatedSchemaError(
            f"O banco {db.where} está no esquema {found} e esta versão do lecture-rag usa o {SCHEMA_VERSION}. "
            "Rode 'lecture-rag db upgrade' uma vez (com as réplicas antigas paradas) e tente de novo; "
            "nada foi alterado."
        )
    steps = migrations(db.dialect)
    with db.transaction(exclusive=True) as conn:
        current = schema_version(db)  # another process may have upgraded while we waited for the lock
        if current > SCHEMA_VERSION:
            raise newer_error(current, db.where)
        for version in range(current, SCHEMA_VERSION):
            for statement in steps[version]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(version + 1),),
            )
    return found
