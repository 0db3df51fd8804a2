"""The store contract on both databases (SQLite file, real PostgreSQL server), and PostgreSQL's own failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import psycopg
import pytest

from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.records import Answer, Judgment, QuestionMeta, RunConfig, Video
from lecture_rag.store import RunStore, SegmentDraft, Store
from lecture_rag.store.postgres import PostgresDatabase
from lecture_rag.store.schema import SCHEMA_VERSION, OutdatedSchemaError
from lecture_rag.wire import from_data
from tests.support.stores import MakeStore

T = TypeVar("T")


def _drafts(n: int, word: str = "fala") -> list[SegmentDraft]:
    return [
        SegmentDraft(i * 120.0 + 0.25, i * 120.0 + 119.5, f"{word} {i}", ((i * 120.0 + 0.25, 0),)) for i in range(n)
    ]


def _at_once(make_store: MakeStore, work: Callable[[Store, T], None], args: list[T]) -> list[BaseException]:
    """``work(store, arg)`` for each arg in a thread of its own with its own store, all released at once.

    Returns what the threads raised (the tests expect nothing).
    """
    barrier = threading.Barrier(len(args))
    errors: list[BaseException] = []

    def run(arg: T) -> None:
        with make_store(create=False) as st:
            barrier.wait(10)
            try:
                work(st, arg)
            except BaseException as exc:  # collected for the test to assert on
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def _answer(text: str) -> Answer:
    return Answer("O que é?", "pt", [], [], text)


def test_times_marks_and_metadata_come_back_exactly(make_store: MakeStore) -> None:
    """PostgreSQL's REAL is 4 bytes: times must still come back to the millisecond, marks intact."""
    with make_store() as st:
        video = Video("v1", title="Aula", course="MAC0460", url="https://youtu.be/dQw4w9WgXcQ", channel="USP")
        ids = st.replace_video(video, [SegmentDraft(12345.678, 12465.432, "olá", ((12345.678, 0), (12400.125, 2)))])
        [seg] = st.segments("v1")
        assert (seg.corpus_id, seg.start, seg.end) == (ids[0], 12345.678, 12465.432)
        assert seg.marks == ((12345.678, 0), (12400.125, 2)) and seg.course == "MAC0460"
        assert st.get_video("v1").channel == "USP"  # type: ignore[union-attr]
        assert [b for batch in st.iter_texts(batch=1) for b in batch] == [(ids[0], "olá")]


def test_the_corpus_version_rises_with_every_change(make_store: MakeStore) -> None:
    with make_store() as st:
        assert st.corpus_version() == 0
        st.replace_video(Video("a"), _drafts(1))
        st.replace_video(Video("a"), _drafts(2))
        assert st.corpus_version() == 2
        assert st.remove_video("nenhum") is False and st.corpus_version() == 2
        assert st.remove_video("a") is True and st.corpus_version() == 3


def test_concurrent_ingests_of_one_lecture_never_interleave(make_store: MakeStore) -> None:
    """Corpus writes are exclusive on both databases: the last version wins whole, nothing collides."""
    make_store().close()

    def ingest(st: Store, word: str) -> None:
        for _ in range(3):
            st.replace_video(Video("v1"), _drafts(5, word))

    assert _at_once(make_store, ingest, ["a", "b", "c", "d"]) == []
    with make_store(create=False) as st:
        texts = [s.text for s in st.segments("v1")]
        assert len(texts) == 5 and len({t.split()[0] for t in texts}) == 1
        assert st.corpus_version() == 12


def test_judgments_and_annotations_round_trip(make_store: MakeStore) -> None:
    with make_store() as st:
        runs = RunStore(st)
        runs.start("r", from_data(RunConfig, {"k": 5}))
        runs.save_item("r", "q1", 0, "O que é?", QuestionMeta("x", [], "factual"), _answer("É isto."), ("ana", "C"))
        verdict = Judgment("answer_relevance", score_raw=2, score=2 / 3, parsed=True, reasoning="Score: 2")
        runs.save_judgments("r", "q1", [verdict])
        runs.save_judgments("r", "q1", [verdict], suffix="#2")
        runs.annotate("r", "q1", "bia", "I", "faltou a fonte")
        [item] = runs.items("r")
        assert item.judgments["answer_relevance"] == verdict and "answer_relevance#2" in item.judgments
        assert {k: a.label for k, a in item.annotations.items()} == {"ana": "C", "bia": "I"}
        assert runs.judged("r") == {"q1": {"answer_relevance", "answer_relevance#2"}}
        [summary] = runs.summaries()
        assert (summary.items, summary.annotated) == (1, 1)
        with pytest.raises(LectureRagError, match="não tem a pergunta"):
            runs.annotate("r", "q9", "ana", "C")


def test_many_annotators_at_once_lose_no_write(make_store: MakeStore) -> None:
    """Two annotators on the same items at the same time: each keeps their last label, nothing is lost."""
    with make_store() as st:
        runs = RunStore(st)
        runs.start("r", from_data(RunConfig, {"k": 5}))
        for i in range(10):
            runs.save_item("r", f"q{i}", i, "?", QuestionMeta(), _answer("resposta"))

    def label(st: Store, who: tuple[str, str]) -> None:
        annotator, final = who
        runs = RunStore(st)
        for rnd in range(3):
            for i in range(10):
                runs.annotate("r", f"q{i}", annotator, final if rnd == 2 else "N", f"rodada {rnd}")

    assert _at_once(make_store, label, [("ana", "C"), ("bia", "I")] * 2) == []
    with make_store(create=False) as st:
        items = RunStore(st).items("r")
    assert len(items) == 10
    for item in items:
        assert {k: (a.label, a.comment) for k, a in item.annotations.items()} == {
            "ana": ("C", "rodada 2"),
            "bia": ("I", "rodada 2"),
        }


def test_the_embedding_cache_round_trips_and_prunes(make_store: MakeStore) -> None:
    with make_store() as st, st.embedding_cache() as cache:
        e5 = cache.embedder_id("e5", 4)
        assert cache.embedder_id("e5", 4) == e5
        vecs = {bytes([i]) * 32: np.arange(4, dtype=np.float32) + i for i in range(3)}
        cache.put_many(e5, vecs.items())
        cache.put_many(e5, list(vecs.items())[:1])  # writing a vector again is harmless
        got = cache.get_many(e5, [*vecs, b"x" * 32], 4)
        assert set(got) == set(vecs) and all(np.array_equal(got[k], vecs[k]) for k in vecs)
        assert cache.count() == 3 and cache.count("e5") == 3
        assert cache.prune("e5", keep=list(vecs)[:2]) == 1 and cache.count("e5") == 2
        assert cache.embedder_id("e5", 8) != e5 and cache.count("e5") == 0  # a new dimension drops stale vectors


def test_a_newer_postgres_schema_is_refused_untouched(pg_url: str, tmp_path: Path) -> None:
    Store(tmp_path, database=PostgresDatabase(pg_url)).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value=%s WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="mais novo"):
        Store(tmp_path, database=PostgresDatabase(pg_url))
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION + 1),
        )


def test_an_older_postgres_schema_waits_for_db_upgrade(pg_url: str, tmp_path: Path) -> None:
    """A shared database changes schema only through 'lecture-rag db upgrade', never as a side effect."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    with pytest.raises(OutdatedSchemaError, match="lecture-rag db upgrade"):
        Store(tmp_path, database=PostgresDatabase(pg_url))
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('segments')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@localhost/db", "URL de banco de dados inválida"),
        ("postgresql://u:p@localhost:porta/db", "malformada"),
        ("postgresql://u:p@localhost:5432", "não diz qual banco"),
    ],
)
def test_a_malformed_database_url_is_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        PostgresDatabase(url)
    assert ":p@" not in str(caught.value)  # never the password


def test_a_server_that_does_not_answer_is_named_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Não foi possível usar o banco") as caught:
        PostgresDatabase(f"postgresql://ana:segredo@/acervo?host={tmp_path}")
    assert "segredo" not in str(caught.value) and "Nada foi gravado" in str(caught.value)


def test_a_missing_database_says_to_create_it(pg_url: str) -> None:
    with pytest.raises(StoreError, match="crie o banco"):
        PostgresDatabase(pg_url.replace("/t_", "/nao_existe_", 1))
