"""Stores as earlier releases wrote them, for upgrade and read-only checks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from lecture_rag.store import DB_NAME, Store
from lecture_rag.store.schema import MIGRATIONS

#: The ``make_store`` fixture: open a store on the test's backend (SQLite or PostgreSQL).
MakeStore = Callable[..., Store]


def previous_release_store(home: Path, version: int = 2) -> Path:
    """A store at schema ``version`` holding one video 'v1' with one segment 'olá'; returns the database file."""
    db = home / DB_NAME
    with sqlite3.connect(db) as conn:
        for migration in MIGRATIONS[:version]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("INSERT INTO meta(key, value) VALUES('schema_version', ?)", (str(version),))
        conn.execute("INSERT INTO videos(video_id, title, ingested_at) VALUES('v1', 'Aula', '2026-01-01')")
        conn.execute("INSERT INTO segments(video_id, seq, start, end, text) VALUES('v1', 0, 0, 60, 'olá')")
    return db


def two_small_lectures(root: Path) -> Path:
    """Two small lectures (20 cues each) ingested and indexed under ``root``: 40 segments; returns the store."""
    from tests.support.cli import run_cli
    from tests.support.transcripts import spaced_srt

    src = root / "aulas"
    src.mkdir()
    spaced_srt(src / "pintura.srt", 20, "as pinturas rupestres de Altamira mostram bisontes")
    spaced_srt(src / "cinema.srt", 20, "o cinema brasileiro dos anos trinta conheceu o som")
    store = root / "store"
    result = run_cli("ingest", str(src), store=store)
    assert result.returncode == 0, result.stderr + result.stdout
    return store
