"""Superseded segments: a re-ingested or removed lecture stays searchable until an index without it is published."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lecture_rag.records import Video
from lecture_rag.store import EmptyVideoError, SegmentDraft, Store
from lecture_rag.store.schema import SCHEMA_VERSION
from tests.support.stores import MakeStore, previous_release_store


def _drafts(n: int, word: str) -> list[SegmentDraft]:
    return [SegmentDraft(i * 120.0, i * 120.0 + 119.0, f"{word} {i}") for i in range(n)]


def test_replaced_segments_stay_resolvable_until_purged(make_store: MakeStore) -> None:
    with make_store() as st:
        old = st.replace_video(Video("v1", title="Antiga", url="https://youtu.be/dQw4w9WgXcQ"), _drafts(2, "velha"))
        new = st.replace_video(Video("v1", title="Nova"), _drafts(3, "nova"))
        assert min(new) > max(old)  # ids are still never reused
        # The current version is what the corpus shows and what an index is built from ...
        assert [s.text for s in st.segments("v1")] == ["nova 0", "nova 1", "nova 2"]
        assert st.corpus_ids() == new and st.segment_count() == 3
        assert st.get_video("v1").n_segments == 3  # type: ignore[union-attr]
        assert st.get_segments(old) == {}
        # ... while a published index that still holds the old ids can resolve them.
        kept = st.get_segments([*old, *new], superseded=True)
        assert sorted(kept) == sorted(old + new)
        assert kept[old[0]].text == "velha 0" and kept[old[0]].title == "Antiga"
        assert kept[old[0]].video_url == "https://youtu.be/dQw4w9WgXcQ"
        assert st.corpus_ids(["v1"], superseded=True) == sorted(old + new)
        assert st.superseded_ids() == old
        assert st.purge_superseded(keep=[old[1]], grace=0) == 1  # still referenced by the published index: kept
        assert st.superseded_ids() == [old[1]]
        assert st.purge_superseded(keep=[], grace=0) == 1
        assert st.get_segments(old, superseded=True) == {}


def test_a_removed_lecture_stays_resolvable_until_purged(make_store: MakeStore) -> None:
    with make_store() as st:
        gone = st.replace_video(Video("a", course="MAC0460"), _drafts(2, "a"))
        st.replace_video(Video("b"), _drafts(1, "b"))
        assert st.remove_video("a") is True
        assert [v.video_id for v in st.list_videos()] == ["b"] and st.segment_count() == 1
        kept = st.get_segments(gone, superseded=True)
        assert [kept[i].video_id for i in gone] == ["a", "a"] and kept[gone[0]].course == "MAC0460"
        assert st.remove_video("a") is False
        st.purge_superseded(keep=[], grace=0)
        assert st.get_segments(gone, superseded=True) == {}


def test_a_failed_replacement_supersedes_nothing(make_store: MakeStore) -> None:
    with make_store() as st:
        old = st.replace_video(Video("v1"), _drafts(2, "velha"))
        with pytest.raises(EmptyVideoError):  # the transaction is rolled back whole
            st.replace_video(Video("v1"), [])
        assert st.superseded_ids() == [] and st.corpus_ids() == old


def test_a_version_2_store_is_upgraded_in_place(tmp_path: Path) -> None:
    db = previous_release_store(tmp_path, version=2)
    with Store(tmp_path, create=False) as st:
        [seg] = st.segments("v1")
        new = st.replace_video(Video("v1"), _drafts(1, "nova"))
        assert new[0] > seg.corpus_id
        assert st.get_segments([seg.corpus_id], superseded=True)[seg.corpus_id].text == "olá"
    with sqlite3.connect(db) as conn:
        assert int(conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]) == SCHEMA_VERSION
        assert SCHEMA_VERSION >= 3
