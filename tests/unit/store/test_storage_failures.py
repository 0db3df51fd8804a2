"""A full disk, a read-only store and a corrupt file: each named for what it is, nothing half-written."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import load_settings
from lecture_rag.errors import StoreError
from lecture_rag.records import Video
from lecture_rag.store import DB_NAME, EmbeddingCache, SegmentDraft, StorageError, Store, text_hash, upgrade_store
from lecture_rag.store.failures import os_failure
from tests.support.limits import run_with_file_limit
from tests.support.stores import previous_release_store


def _drafts(n: int, word: str = "fala", size: int = 1) -> list[SegmentDraft]:
    return [SegmentDraft(i * 120.0, i * 120.0 + 119.0, f"{word} {i} " + "x" * size) for i in range(n)]


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.fixture
def write_protected() -> Iterator[list[Path]]:
    """Paths to give back their write bits after the test (so pytest can clean them up)."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        if path.exists():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _protect(paths: list[Path], *targets: Path) -> None:
    for target in targets:
        target.chmod(target.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        paths.append(target)


def test_a_full_store_says_so_and_keeps_the_previous_version(tmp_path: Path) -> None:
    """SQLite's own page limit fills the database mid-transaction: a clear error, the old version intact.

    Before, the raw ``sqlite3.OperationalError: database or disk is full`` escaped (or was
    masked by "cannot rollback - no transaction is active").
    """
    with Store(tmp_path) as st:
        old = st.replace_video(Video("v1", title="Aula 1"), _drafts(3))
        pages = int(st.db.conn.execute("PRAGMA page_count").fetchone()[0])
        st.db.conn.execute(f"PRAGMA max_page_count={pages + 2}")
        with pytest.raises(StoreError) as err:
            st.replace_video(Video("v1", title="Aula 1"), _drafts(400, "nova", size=500))
        message = str(err.value)
        assert "espaço" in message and "intacto" in message, message
        assert "cannot rollback" not in message and "corrompido" not in message
        assert not st.db.conn.in_transaction
        assert [s.corpus_id for s in st.segments("v1")] == old
        assert [s.text for s in st.segments("v1")] == [d.text for d in _drafts(3)]
        st.db.conn.execute("PRAGMA max_page_count=1073741823")
        st.replace_video(Video("v2"), _drafts(2, "depois"))  # the connection is usable again
        assert st.segment_count() == 5
    assert _integrity(tmp_path / DB_NAME) == "ok"


_REPLACE_UNDER_LIMIT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lecture_rag.records import Video
    from lecture_rag.store import SegmentDraft, Store
    st = Store(Path(sys.argv[1]), create=False)
    drafts = [SegmentDraft(i * 60.0, i * 60.0 + 59.0, f"nova fala {i} " + "y" * 300) for i in range(300)]
    try:
        st.replace_video(Video("v1"), drafts)
    except Exception as exc:
        print(type(exc).__name__ + ": " + str(exc))
    """
)


def test_a_failing_commit_is_not_masked_by_the_rollback(tmp_path: Path) -> None:
    """Under a file-size limit the write fails inside SQLite, which rolls back by itself.

    Before, the store's ROLLBACK then raised "cannot rollback - no transaction is
    active", hiding the real cause behind a traceback.
    """
    with Store(tmp_path) as st:
        old = st.replace_video(Video("v1"), _drafts(3))
    result = run_with_file_limit([sys.executable, "-c", _REPLACE_UNDER_LIMIT, str(tmp_path)], 40_000)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert out.startswith("StorageError: "), out
    assert "cannot rollback" not in out and "Traceback" not in out
    assert "ulimit -f" in out and "intacto" in out, out
    assert _integrity(tmp_path / DB_NAME) == "ok"
    with Store(tmp_path, create=False) as st:
        assert [s.corpus_id for s in st.segments("v1")] == old


def test_a_write_protected_store_is_opened_read_only_even_for_root(tmp_path: Path, write_protected: list[Path]) -> None:
    """chmod a-w does not stop root's writes; the store honours it and says what to do.

    Before, root wrote into a store its owner had marked read-only.
    """
    with Store(tmp_path) as st:
        ids = st.replace_video(Video("v1", title="Aula"), _drafts(2))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    _protect(write_protected, tmp_path / DB_NAME, tmp_path)
    with Store(tmp_path, create=False) as st:
        assert st.read_only
        assert [v.video_id for v in st.list_videos()] == ["v1"]
        assert sorted(st.get_segments(ids)) == ids
        with pytest.raises(StoreError) as err:
            st.replace_video(Video("v1"), _drafts(4, "nova"))
        assert "somente leitura" in str(err.value) and "espaço" not in str(err.value)
        with pytest.raises(StoreError, match="somente leitura"):
            st.remove_video("v1")
        with pytest.raises(StoreError, match="somente leitura"), st.exclusive("run:x", "ocupado"):
            pass
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_sqlite_read_only_open_refuses_writes_by_name(tmp_path: Path) -> None:
    with Store(tmp_path) as st:
        st.replace_video(Video("v1"), _drafts(1))
    with Store(tmp_path, create=False, read_only=True) as st:
        assert st.segment_count() == 1
        with pytest.raises(StoreError, match="somente leitura"):
            st.replace_video(Video("v2"), _drafts(1))
    with pytest.raises(StoreError, match="somente leitura"):
        Store(tmp_path / "novo", read_only=True)


def test_a_corrupt_store_is_still_called_corrupt(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"isto nao e um banco sqlite" * 200)
    with pytest.raises(StoreError, match="corrompido"):
        Store(tmp_path)


# -- the embedding cache: only a real corruption may be called corrupt -------------------
def _vectors(n: int, dim: int = 8) -> list[tuple[bytes, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(text_hash(f"t{i}"), rng.normal(size=dim).astype(np.float32)) for i in range(n)]


def test_a_write_protected_cache_is_not_called_corrupt(tmp_path: Path, write_protected: list[Path]) -> None:
    """Before, a cache that could not be written was "corrompido: apague o arquivo", which destroys a good cache."""
    path = tmp_path / "embeddings.sqlite3"
    with EmbeddingCache.open_file(path) as cache:
        eid = cache.embedder_id("e5", 8)
        cache.put_many(eid, _vectors(3))
    before = path.read_bytes()
    _protect(write_protected, path, tmp_path)
    with EmbeddingCache.open_file(path) as cache:
        assert cache.count("e5") == 3  # reading works
        with pytest.raises(StoreError) as err:
            cache.put_many(eid, _vectors(5))
    message = str(err.value)
    assert "somente leitura" in message and "corrompido" not in message and "apague" not in message, message
    assert path.read_bytes() == before


_FILL_CACHE_UNDER_LIMIT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from lecture_rag.store import EmbeddingCache, text_hash
    rng = np.random.default_rng(0)
    with EmbeddingCache.open_file(Path(sys.argv[1])) as cache:
        eid = cache.embedder_id("e5", 384)
        try:
            for start in range(0, 400, 16):
                cache.put_many(eid, [(text_hash(f"t{i}"), rng.normal(size=384).astype(np.float32))
                                     for i in range(start, start + 16)])
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc))
    """
)


def test_a_full_disk_under_the_cache_is_not_called_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite3"
    with EmbeddingCache.open_file(path) as cache:
        cache.put_many(cache.embedder_id("e5", 384), [])
    result = run_with_file_limit([sys.executable, "-c", _FILL_CACHE_UNDER_LIMIT, str(path)], 40_000)
    out = result.stdout + result.stderr
    assert out.startswith("StorageError: "), out
    assert "espaço" in out and "corrompido" not in out and "apague" not in out, out
    assert _integrity(path) == "ok"
    with EmbeddingCache.open_file(path) as cache:
        assert cache.count("e5") % 16 == 0  # whole batches only


def test_a_really_corrupt_cache_is_called_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite3"
    path.write_bytes(b"lixo" * 4096)
    with pytest.raises(StoreError, match="corrompido"):
        EmbeddingCache.open_file(path)
    assert os.path.getsize(path) == 4 * 4096  # and it is left for the user to move or delete


def test_a_read_only_store_of_the_previous_schema_is_read_as_it_is(tmp_path: Path, write_protected: list[Path]) -> None:
    """It cannot be upgraded in place, and need not be for reading (version 1, without run tables, is refused)."""
    db = previous_release_store(tmp_path, version=2)
    _protect(write_protected, db, tmp_path)
    with Store(tmp_path, create=False) as st:
        [seg] = st.segments("v1")
        assert st.get_segments([seg.corpus_id], superseded=True)[seg.corpus_id].text == "olá"
        assert st.corpus_ids(["v1"], superseded=True) == [seg.corpus_id] and st.superseded_ids() == []
    with sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"


def test_db_upgrade_of_a_write_protected_old_store_says_it_cannot(tmp_path: Path, write_protected: list[Path]) -> None:
    """It used to report the upgrade as done while the read-only store stayed at its old schema."""
    db = previous_release_store(tmp_path, version=2)
    _protect(write_protected, db, tmp_path)
    with pytest.raises(StorageError, match="somente leitura"):
        upgrade_store(load_settings(tmp_path))
    with sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (errno.ENOSPC, "Não há espaço"),
        (errno.EDQUOT, "Não há espaço"),
        (errno.EROFS, "somente leitura"),
        (errno.EACCES, "somente leitura"),
        (errno.EIO, "Erro de entrada/saída"),
        (errno.EINVAL, None),
    ],
)
def test_each_errno_of_a_failed_write_is_named_for_its_cause(tmp_path: Path, number: int, expected: str | None) -> None:
    """What index publication meets while writing a build: each cause has its own message (or none: a bug)."""
    failure = os_failure(OSError(number, os.strerror(number)), "o índice", tmp_path)
    if expected is None:
        assert failure is None
    else:
        assert failure is not None and expected in str(failure) and "corrompido" not in str(failure)
