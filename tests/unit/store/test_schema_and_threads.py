"""The store's versioned schema (run tables included), per-thread connections, and concurrent runs."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from lecture_rag.errors import StoreError
from lecture_rag.records import Answer, QuestionMeta, RunConfig, Video
from lecture_rag.store import DB_NAME, RunStore, SegmentDraft, Store
from lecture_rag.store.schema import MIGRATIONS, SCHEMA_VERSION
from lecture_rag.wire import from_data
from tests.support.stores import MakeStore

RUN_TABLES = {"runs", "run_items", "judgments", "annotations"}


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def test_a_new_store_has_every_table_at_the_current_version(tmp_path: Path) -> None:
    """The run tables are part of the versioned schema, created with the store, not on first use."""
    with Store(tmp_path):
        pass
    assert _tables(tmp_path / DB_NAME) >= RUN_TABLES
    assert _version(tmp_path / DB_NAME) == SCHEMA_VERSION >= 2


def test_a_version_1_store_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    with sqlite3.connect(db) as conn:  # a store as the first release wrote it: corpus tables only
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta(key, value) VALUES('schema_version', '1')")
        conn.execute("INSERT INTO videos(video_id, title, ingested_at) VALUES('v1', 'Aula', '2026-01-01')")
        conn.execute("INSERT INTO segments(video_id, seq, start, end, text) VALUES('v1', 0, 0, 60, 'olá')")
    with Store(tmp_path, create=False) as store:
        assert [v.video_id for v in store.list_videos()] == ["v1"]
        assert RunStore(store).names() == []
    assert _tables(db) >= RUN_TABLES and _version(db) == SCHEMA_VERSION


def test_a_store_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    with Store(tmp_path):
        pass
    db = tmp_path / DB_NAME
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    before = db.read_bytes()
    with pytest.raises(StoreError, match="mais novo"):
        Store(tmp_path, create=False)
    assert db.read_bytes() == before


def test_each_thread_reads_through_its_own_connection(tmp_path: Path) -> None:
    """A worker thread must not see, or disturb, the writer thread's open transaction."""
    store = Store(tmp_path)
    store.replace_video(Video("v1"), [SegmentDraft(0.0, 60.0, "olá")])
    seen: dict[str, object] = {}
    writing = threading.Event()
    checked = threading.Event()

    def reader() -> None:
        writing.wait(10)
        seen["conn"] = store.db.conn
        seen["count"] = store.segment_count()
        checked.set()

    worker = threading.Thread(target=reader)
    worker.start()
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO segments(video_id, seq, start, end, text) VALUES('v1', 1, 60, 120, 'x')")
        writing.set()
        assert checked.wait(10)
        raise RuntimeError("roll back")
    worker.join(10)
    assert seen["conn"] is not store.db.conn
    assert seen["count"] == 1  # the uncommitted row was invisible to the other thread
    assert store.segment_count() == 1
    store.close()


def test_two_starts_of_one_new_run_at_once_never_collide(make_store: MakeStore) -> None:
    """Two processes creating the same run used to end in a raw IntegrityError traceback."""
    make_store().close()
    config = from_data(RunConfig, {"k": 10, "mode": "dense"})
    barrier = threading.Barrier(4)
    results: list[object] = []

    def start() -> None:
        with make_store(create=False) as store:
            barrier.wait(10)
            try:
                results.append(RunStore(store).start("base", config))
            except Exception as exc:  # the test records what each start raised
                results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(map(repr, results)) == sorted(["True", "False", "False", "False"])


def test_a_run_held_by_another_process_is_refused_clearly(make_store: MakeStore) -> None:
    with make_store() as one, make_store(create=False) as two:
        with (
            RunStore(one).running("base"),
            pytest.raises(StoreError, match="já está sendo executada"),
            RunStore(two).running("base"),
        ):
            pass
        with RunStore(two).running("base"):  # free again once the holder is done
            pass


def test_run_items_come_back_as_records(make_store: MakeStore) -> None:
    with make_store() as store:
        runs = RunStore(store)
        runs.start("r", from_data(RunConfig, {"k": 1}))
        answer = Answer("O que é?", "pt", [], [], "Não encontrei a resposta nas aulas.", abstained=True)
        runs.save_item("r", "q1", 0, "O que é?", QuestionMeta("resposta", [], "factual"), answer)
        runs.annotate("r", "q1", "ana", "N")
        [item] = runs.items("r")
    assert item.answer == answer and item.meta.type == "factual"
    assert item.annotations["ana"].label == "N" and item.number == 1
