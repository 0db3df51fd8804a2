"""The store on both databases (SQLite, PostgreSQL): atomic replacement, stable ids, clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lecture_rag.errors import StoreError
from lecture_rag.records import Video
from lecture_rag.store import EmptyVideoError, SegmentDraft, Store
from tests.support.stores import MakeStore


def _drafts(n: int, word: str = "fala") -> list[SegmentDraft]:
    return [SegmentDraft(i * 120.0, i * 120.0 + 119.0, f"{word} {i}") for i in range(n)]


def test_replace_video_is_atomic_and_ids_are_never_reused(make_store: MakeStore) -> None:
    with make_store() as st:
        first = st.replace_video(Video("v1", title="Aula 1", url="https://youtu.be/dQw4w9WgXcQ"), _drafts(3))
        assert first == sorted(first)
        assert st.get_video("v1").duration == pytest.approx(359.0)  # type: ignore[union-attr]
        second = st.replace_video(Video("v1", title="Aula 1"), _drafts(2, "nova"))
        assert not set(first) & set(second), "replaced segments must get new ids"
        assert [s.text for s in st.segments("v1")] == ["nova 0", "nova 1"]
        assert st.get_segments(first) == {}


def test_failure_while_streaming_keeps_old_version(make_store: MakeStore) -> None:
    def broken() -> Iterator[SegmentDraft]:
        yield SegmentDraft(0, 10, "parcial")
        raise ValueError("arquivo truncado")

    with make_store() as st:
        st.replace_video(Video("v1"), _drafts(2))
        with pytest.raises(ValueError):
            st.replace_video(Video("v1"), broken())
        assert [s.text for s in st.segments("v1")] == ["fala 0", "fala 1"]
        with pytest.raises(EmptyVideoError):
            st.replace_video(Video("v1"), [])
        assert st.segment_count() == 2


def test_remove_and_list(make_store: MakeStore) -> None:
    with make_store() as st:
        st.replace_video(Video("a", course="MAC0460"), _drafts(2))
        st.replace_video(Video("b"), _drafts(1))
        assert [v.video_id for v in st.list_videos()] == ["a", "b"]
        assert st.list_videos()[0].n_segments == 2
        assert st.remove_video("a") is True
        assert st.remove_video("a") is False
        assert st.segment_count() == 1


def test_store_survives_reopen(make_store: MakeStore) -> None:
    with make_store() as st:
        ids = st.replace_video(Video("a"), _drafts(2))
    with make_store(create=False) as st:
        assert sorted(st.get_segments(ids)) == ids


def test_missing_store_is_a_clear_error(make_store: MakeStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="lecture-rag ingest"):
        make_store(tmp_path / "nada", create=False)


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lecture-rag.sqlite3").write_bytes(b"isto nao e um banco sqlite" * 100)
    with pytest.raises(StoreError, match="corrompido"):
        Store(tmp_path)


def test_corpus_ids_of_some_videos_without_reading_their_text(make_store: MakeStore) -> None:
    with make_store() as st:
        a = st.replace_video(Video("a"), _drafts(3))
        b = st.replace_video(Video("b"), _drafts(2))
        c = st.replace_video(Video("c"), _drafts(1))
        assert st.corpus_ids() == sorted(a + b + c)
        assert st.corpus_ids(["c", "a"]) == sorted(a + c)
        assert st.corpus_ids(["nenhum"]) == [] and st.corpus_ids([]) == []
