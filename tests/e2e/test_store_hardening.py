"""Hardening of the store and of runs through the real CLI (issue 24): labels that survive a kill, a damaged
SQLite file, atomic annotation imports, run locks that survive a PostgreSQL restart, passwords in messages.

Every interruption here is real: a SIGKILL of the CLI at a moment the test observes in the database,
a file-size limit (``RLIMIT_FSIZE``), a damaged file, a stopped and restarted PostgreSQL server.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from lecture_rag.store.database import FAULT_KILL_AFTER_COMMITS as KILL_AFTER
from tests.support.cli import EXE, cli_env, kill_when, run_cli
from tests.support.limits import run_with_file_limit

QUESTIONS = 60
DB = "lecture-rag.sqlite3"
RUN = ("--llm", "none", "--judge-llm", "none", "--judges", "ar")


def _t(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d},000"


def _srt(path: Path, cues: int, words: str, gap: int = 200) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(cues):
            handle.write(f"{i + 1}\n{_t(i * gap)} --> {_t(i * gap + 5)}\n{words} número {i}\n\n")
    return path


def _questions(path: Path, n: int, *, label: str | None = None) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {"id": f"q{i}", "question": f"o que mostram as pinturas de Altamira? ({i})", "answer": None}
            handle.write(json.dumps({**row, "evidence": [], "type": "factual", "label": label}) + "\n")
    return path


def _rows(store: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store / DB) as conn:
        return conn.execute(sql).fetchall()


def _clean_failure(result: subprocess.CompletedProcess[str], *must: str) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    for word in must:
        assert word in text, (word, text)
    return text


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small lectures, ingested and indexed (40 segments)."""
    root = tmp_path_factory.mktemp("hardening")
    src = root / "aulas"
    src.mkdir()
    _srt(src / "pintura.srt", 20, "as pinturas rupestres de Altamira mostram bisontes")
    _srt(src / "cinema.srt", 20, "o cinema brasileiro dos anos trinta conheceu o som")
    store = root / "store"
    result = run_cli("ingest", str(src), store=store)
    assert result.returncode == 0, result.stderr + result.stdout
    return store


@pytest.fixture
def store(indexed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(indexed, copy)
    return copy


# -- N6: a question file's label lands with its answer ---------------------------------------
def _unlabelled(run: str) -> str:
    return f"""SELECT COUNT(*) FROM run_items i WHERE i.run='{run}' AND NOT EXISTS
               (SELECT 1 FROM annotations a WHERE a.run=i.run AND a.qid=i.qid)"""


def test_a_run_killed_after_any_commit_never_loses_a_question_files_label(store: Path, tmp_path: Path) -> None:
    """The run is killed (SIGKILL) right after its 1st, 2nd, ... commit, then resumed. Before: the answer
    and its label were two transactions; killed between them, the resumed run skipped the answered
    question and its label was lost for good."""
    questions = _questions(tmp_path / "q.jsonl", 3, label="C")
    for n in range(1, 5):  # the run's start, then the first questions (every gap: the slow fault suite)
        name = f"rotulada-{n}"
        killed = run_cli("run", str(questions), "--name", name, *RUN, store=store, env={KILL_AFTER: str(n)})
        resumed = run_cli("run", str(questions), "--name", name, *RUN, store=store)
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        assert _rows(store, _unlabelled(name)) == [(0,)], f"label lost when killed after commit {n}"
        assert _rows(store, f"SELECT COUNT(*) FROM annotations WHERE run='{name}'") == [(3,)]
        assert killed.returncode == -signal.SIGKILL, killed.stderr


# -- N20: no piece of a database password in messages --------------------------------------
@pytest.mark.parametrize(
    "password",
    ["xqzv@kw9mt", "abcq/defr7", "seg@red/ox", "pq?rs#tuvw", "mno%40pqr%2Fstu", "zz:yyyy@xxxx"],
)
def test_a_database_password_with_reserved_characters_never_shows(password: str, tmp_path: Path) -> None:
    """Before: urlsplit ended the user info at the first '@' or '/', and 'db status' printed the rest of the
    password as the server, the path or the port ('Port could not be cast to integer value as ...')."""
    for url in (f"postgresql://ana:{password}@127.0.0.1:1/acervo", f"postgresql://ana:{password}@127.0.0.1:5x/acervo"):
        result = run_cli("db", "status", store=tmp_path / "s", env={"LECTURE_RAG_DATABASE_URL": url})
        text = _clean_failure(result, "ana@127.0.0.1")
        fragments = {password, *(p for p in re.split(r"[@/:?#%]", password) if len(p) >= 4)}
        assert not [f for f in fragments if f in text], text


# -- N21 (second half): intervals and timeouts are bounded and finite ---------------------------
@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("[store]\nindex_poll_seconds", "0.000001", "store.index_poll_seconds: Input should be greater than or equal to 0.5"),
        ("[store]\nindex_poll_seconds", "nan", "store.index_poll_seconds"),
        ("[llm]\ntimeout", "inf", "llm.timeout"),
        ("[judge_llm]\ntimeout", "1e12", "judge_llm.timeout"),
    ],
)
def test_a_poll_interval_or_timeout_out_of_bounds_is_refused(
    setting: str, value: str, says: str, tmp_path: Path
) -> None:
    """Before: index_poll_seconds = 0.000001 was accepted (an idle server used 0.41 of a core), and an
    infinite LLM timeout too."""
    config = tmp_path / "config.toml"
    config.write_text(f"{setting} = {value}\n", encoding="utf-8")
    result = run_cli("corpus", "list", store=tmp_path / "s", env={"LECTURE_RAG_CONFIG": str(config)})
    _clean_failure(result, "Configuração inválida", says)
