"""Store layer: the only code that talks SQL (corpus, evaluation runs, embedding cache)."""

from lecture_rag.config import Settings
from lecture_rag.store.cache import CACHE_NAME, EmbeddingCache, cache_path, text_hash
from lecture_rag.store.failures import StorageError
from lecture_rag.store.runs import RunStore, RunSummary
from lecture_rag.store.sqlite import DB_NAME, EmptyVideoError, SegmentDraft, Store


def open_store(settings: Settings, *, create: bool = True, read_only: bool = False) -> Store:
    """The store the settings name: the one entry point, so every command and process opens the same place."""
    return Store(settings.home, create=create, read_only=read_only)


__all__ = [
    "CACHE_NAME",
    "DB_NAME",
    "EmbeddingCache",
    "EmptyVideoError",
    "RunStore",
    "RunSummary",
    "SegmentDraft",
    "StorageError",
    "Store",
    "cache_path",
    "open_store",
    "text_hash",
]
