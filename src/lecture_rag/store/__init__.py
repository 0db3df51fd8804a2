"""Store layer: the only code that talks SQL (corpus, evaluation runs, embedding cache), on SQLite or PostgreSQL."""

from dataclasses import dataclass

from lecture_rag.config import Settings
from lecture_rag.store.cache import CACHE_NAME, EmbeddingCache, cache_path, text_hash
from lecture_rag.store.corpus import DB_NAME, EDITED, KEEP, WHAT, EmptyVideoError, Origin, SegmentDraft, Store
from lecture_rag.store.database import Database, is_database_url
from lecture_rag.store.failures import StorageError, read_only_error
from lecture_rag.store.runs import RunStore, RunSummary
from lecture_rag.store.schema import SCHEMA_VERSION, migrate, schema_version
from lecture_rag.store.sqlite import SqliteDatabase


def open_database(settings: Settings) -> Database | None:
    """The server database ``[store] url`` names (None: the store directory's SQLite file).

    Why here, imported lazily: the PostgreSQL driver loads only for users who configured one.
    """
    url = settings.store.url.strip()
    if not url:
        return None
    from lecture_rag.store.postgres import PostgresDatabase

    return PostgresDatabase(url, pool_size=settings.store.pool_size)


def open_store(settings: Settings, *, create: bool = True, read_only: bool = False) -> Store:
    """The store the settings name: the one entry point, so every command and process opens the same place."""
    return Store(settings.home, create=create, read_only=read_only, database=open_database(settings))


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What ``lecture-rag db status`` shows: where the store is, its schema, and how much it holds."""

    backend: str
    where: str
    schema: int
    code_schema: int
    corpus_version: int
    videos: int
    segments: int
    runs: int


def upgrade_store(settings: Settings) -> tuple[int, int]:
    """Bring the store's database to this release's schema (``lecture-rag db upgrade``); returns (before, after).

    The one way a shared database changes schema; on SQLite, where opening
    upgrades anyway, it does the same explicitly. A newer schema is refused untouched.
    """
    database = open_database(settings)
    if database is None:
        file = settings.home / DB_NAME
        before = 0
        if file.exists():
            probe = SqliteDatabase.at(file, WHAT, read_only=True)
            try:
                before = schema_version(probe)
            finally:
                probe.close()
        with Store(settings.home) as store:  # opening upgrades it, unless it is write-protected
            if store.read_only and before < SCHEMA_VERSION:
                raise read_only_error(WHAT, store.home, f"ele está no esquema {before} e atualizar grava no banco")
        return before, SCHEMA_VERSION
    try:
        before = migrate(database, upgrade=True)
    finally:
        database.close()
    return before, SCHEMA_VERSION


def store_status(settings: Settings) -> StoreStatus:
    with open_store(settings, create=False) as st:
        return StoreStatus(
            backend=st.db.dialect,
            where=st.where if st.shared else str(st.db_path),
            schema=schema_version(st.db),
            code_schema=SCHEMA_VERSION,
            corpus_version=st.corpus_version(),
            videos=len(st.list_videos()),
            segments=st.segment_count(),
            runs=len(RunStore(st).names()),
        )


__all__ = [
    "CACHE_NAME",
    "DB_NAME",
    "EDITED",
    "KEEP",
    "Database",
    "EmbeddingCache",
    "EmptyVideoError",
    "Origin",
    "RunStore",
    "RunSummary",
    "SegmentDraft",
    "StorageError",
    "Store",
    "StoreStatus",
    "cache_path",
    "is_database_url",
    "open_database",
    "open_store",
    "store_status",
    "text_hash",
    "upgrade_store",
]
