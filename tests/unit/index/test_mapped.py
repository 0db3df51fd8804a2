"""Index files truncated under a loaded index (issue 24, N2): the next search is a StoreError, not SIGBUS.

The data files are memory-mapped; before the check, reading a page past the end of a truncated file
killed the process (exit 135). Each test truncates a saved file in place, as ``cp`` over the folder or
``rsync --inplace`` would, after the index was loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25Index
from lecture_rag.index.vectors import VectorIndex, read_manifest
from tests.support.vectors import E5, unit


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize(("kind", "threshold", "file"), [("exact", 10_000, "vectors"), ("hnsw", 10, "hnsw")])
def test_a_truncated_vector_file_is_reported_before_it_is_read(
    tmp_path: Path, kind: str, threshold: int, file: str
) -> None:
    ids = np.arange(4000, dtype=np.int64)
    VectorIndex.build(ids, unit(ids.size), embedder_name=E5, hnsw_threshold=threshold).save(tmp_path)
    index = VectorIndex.load(tmp_path, embedder_name=E5, dim=32)
    assert index.kind == kind
    query = unit(1, seed=7)[0]
    assert len(index.search(query, 5)[0]) == 5
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    _truncate(tmp_path / manifest.files[file])
    for call in (lambda: index.search(query, 5), lambda: index.cosines(ids[:3], query)):
        with pytest.raises(StoreError, match="--rebuild") as caught:
            call()
        assert "alterado enquanto servido" in str(caught.value)


def test_a_truncated_bm25_file_is_reported_before_it_is_read(tmp_path: Path) -> None:
    texts = [f"aula {i} sobre pinturas rupestres e cavernas do paleolítico, parte {i % 7}" for i in range(3000)]
    BM25Index.build(np.arange(len(texts)), texts, fingerprint="t").save(tmp_path / "bm25")
    index = BM25Index.load(tmp_path / "bm25")
    assert len(index.search("pinturas cavernas", 5)[0]) == 5
    _truncate(max((tmp_path / "bm25").glob("*.npy"), key=lambda p: p.stat().st_size))
    with pytest.raises(StoreError, match="--rebuild"):
        index.search("pinturas cavernas", 5)
    with pytest.raises(StoreError, match="--rebuild"):
        index.scores_for("pinturas", np.arange(3))
