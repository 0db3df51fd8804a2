"""A run's write whose connection the PostgreSQL server kills mid-transaction (what a restart does)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lecture_rag.errors import StoreError
from lecture_rag.records import Answer, QuestionMeta, RunConfig
from lecture_rag.store import RunStore, Store
from lecture_rag.store.postgres import PostgresDatabase
from lecture_rag.wire import from_data

_ANSWER = Answer("O que é?", "pt", [], [], "Não encontrei a resposta nas aulas.", abstained=True)
_META = QuestionMeta("resposta", [], "factual")


def _kill_every_other_session(url: str) -> None:
    """End every connection to the database but this one, as a server restart does."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _kill_during_first_write(store: Store, url: str, then: Any = None) -> None:
    """The store's next transaction loses its connection (and the run lock's) before it commits."""
    real = store.transaction
    calls = {"n": 0}

    @contextmanager
    def transaction(**kwargs: Any) -> Iterator[Any]:
        with real(**kwargs) as conn:
            yield conn
            calls["n"] += 1
            if calls["n"] == 1:
                _kill_every_other_session(url)
                if then is not None:
                    then()

    store.transaction = transaction  # type: ignore[method-assign]


def _items(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), str(r[1])) for r in conn.execute("SELECT run, qid FROM run_items")]


def test_a_write_cut_by_a_restart_retakes_the_lock_and_is_stored_once(tmp_path: Path, pg_url: str) -> None:
    """Before: the run stopped with 'Não foi possível usar o banco … Nada foi gravado' (CI stop 29)."""
    with Store(tmp_path / "a", database=PostgresDatabase(pg_url)) as store:
        runs = RunStore(store)
        runs.start("r", from_data(RunConfig, {"k": 1}))
        with runs.running("r"):
            _kill_during_first_write(store, pg_url)
            runs.save_item("r", "q1", 0, "O que é?", _META, _ANSWER)
            with (
                Store(tmp_path / "b", create=False, database=PostgresDatabase(pg_url)) as other,
                pytest.raises(StoreError, match="já está sendo executada"),
                RunStore(other).running("r"),
            ):
                pass  # the lock is held again by the first process
    assert _items(pg_url) == [("r", "q1")]


def test_a_write_cut_by_a_restart_stops_if_another_process_took_the_run(tmp_path: Path, pg_url: str) -> None:
    with (
        Store(tmp_path / "a", database=PostgresDatabase(pg_url)) as store,
        Store(tmp_path / "b", database=PostgresDatabase(pg_url)) as other,
    ):
        runs = RunStore(store)
        runs.start("r", from_data(RunConfig, {"k": 1}))
        taken = RunStore(other).running("r")
        with runs.running("r"):
            _kill_during_first_write(store, pg_url, then=taken.__enter__)
            with pytest.raises(StoreError, match="outro processo assumiu"):
                runs.save_item("r", "q1", 0, "O que é?", _META, _ANSWER)
        taken.__exit__(None, None, None)
    assert _items(pg_url) == []
