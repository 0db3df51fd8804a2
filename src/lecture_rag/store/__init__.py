"""Store layer: the only code that talks SQL (corpus, evaluation runs, embedding cache), on SQLite or PostgreSQL."""

from lecture_rag.config import Settings
from lecture_rag.store.cache import CACHE_NAME, EmbeddingCache, cache_path, text_hash
from lecture_rag.store.corpus import DB_NAME, EmptyVideoError, SegmentDraft, Store
from lecture_rag.store.database import Database, is_database_url
from lecture_rag.store.failures import StorageError
from lecture_rag.store.runs import RunStore, RunSummary


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


__all__ = [
    "CACHE_NAME",
    "DB_NAME",
    "Database",
    "EmbeddingCache",
    "EmptyVideoError",
    "RunStore",
    "RunSummary",
    "SegmentDraft",
    "StorageError",
    "Store",
    "cache_path",
    "is_database_url",
    "open_database",
    "open_store",
    "text_hash",
]
