"""Run names become part of the web app's addresses: new runs get names it can open; old ones stay readable."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lecture_rag.errors import LectureRagError
from lecture_rag.records import RunConfig
from lecture_rag.store import DB_NAME, RunStore, Store
from lecture_rag.wire import from_data, to_data


@pytest.mark.parametrize("name", ["a/b", "..", ".", ".oculta", "", "com espaço", "a?b", "a#b", "a%2Fb", "x" * 101])
def test_a_new_run_with_a_name_the_web_app_cannot_open_is_refused(tmp_path: Path, name: str) -> None:
    with Store(tmp_path) as store:
        runs = RunStore(store)
        with pytest.raises(LectureRagError, match="Nome de rodada inválido") as caught:
            runs.start(name, from_data(RunConfig, {"k": 5}))
        assert "letras, números" in str(caught.value)
        assert runs.names() == []


@pytest.mark.parametrize("name", ["base", "aula-web", "rodada_2", "v1.2", "avaliação-março", "x" * 100])
def test_ordinary_names_are_accepted(tmp_path: Path, name: str) -> None:
    with Store(tmp_path) as store:
        runs = RunStore(store)
        assert runs.start(name, from_data(RunConfig, {"k": 5})) is True
        assert runs.start(name, from_data(RunConfig, {"k": 5})) is False
        assert runs.names() == [name]


def test_runs_stored_before_the_rule_stay_readable_and_resumable(tmp_path: Path) -> None:
    with Store(tmp_path):
        pass
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # written by an older version, which allowed any name
        conn.execute(
            "INSERT INTO runs(name, created_at, config) VALUES('a/b', '2026-01-01T00:00:00+00:00', ?)",
            (json.dumps({"k": 5}),),
        )
    with Store(tmp_path, create=False) as store:
        runs = RunStore(store)
        assert runs.names() == ["a/b"] and to_data(runs.require("a/b")) == {"k": 5}
        assert runs.items("a/b") == []
        assert runs.start("a/b", from_data(RunConfig, {"k": 5})) is False  # resuming it still works
