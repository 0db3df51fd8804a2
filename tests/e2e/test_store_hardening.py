"""Hardening of the store and of runs through the real CLI (issue 24): labels that survive a kill, a damaged
SQLite file, atomic annotation imports, run locks that survive a PostgreSQL restart, passwords in messages.

Every interruption here is real: a SIGKILL of the CLI at a moment the test observes in the database,
a file-size limit (``RLIMIT_FSIZE``), a damaged file, a stopped and restarted PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from lecture_rag.store.database import FAULT_KILL_AFTER_COMMITS as KILL_AFTER
from tests.support.cli import EXE, cli_env, kill_when, run_cli, wait_for_count
from tests.support.limits import run_with_file_limit
from tests.support.postgres import PgServer
from tests.support.stores import two_small_lectures
from tests.support.transcripts import spaced_srt

QUESTIONS = 60
DB = "lecture-rag.sqlite3"
RUN = ("--llm", "none", "--judge-llm", "none", "--judges", "ar")


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
    store = two_small_lectures(root)
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
        (
            "[store]\nindex_poll_seconds",
            "0.000001",
            "store.index_poll_seconds: Input should be greater than or equal to 0.5",
        ),
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


# -- N16 / N17: an annotation import is all or nothing, and its names are the web API's -------------
ANNOTATORS = 100  # x QUESTIONS rows: a file big enough to be caught half way


@pytest.fixture(scope="module")
def answered(indexed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The indexed store with a run 'base' of QUESTIONS answered questions."""
    root = tmp_path_factory.mktemp("answered")
    store = root / "store"
    shutil.copytree(indexed, store)
    questions = _questions(root / "q.jsonl", QUESTIONS)
    made = run_cli("run", str(questions), "--name", "base", *RUN, store=store)
    assert made.returncode == 0, made.stderr + made.stdout
    return store


@pytest.fixture
def run_store(answered: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(answered, copy)
    return copy


def _big_import(path: Path) -> Path:
    rows = ["qid,label,annotator,comment"]
    rows += [f"q{q},C,pessoa {a},{'um comentário longo ' * 3}" for a in range(ANNOTATORS) for q in range(QUESTIONS)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


_ANNOTATIONS = "SELECT COUNT(*) FROM annotations WHERE run='base'"


def test_a_killed_import_stores_all_or_nothing(run_store: Path, tmp_path: Path) -> None:
    """SIGKILL once 500 rows are visible (or at the end). Before: one transaction per row, 500+ of 6,000 stayed."""
    path = _big_import(tmp_path / "rotulos.csv")
    proc = subprocess.Popen(
        [EXE, "annotate", "import", "base", str(path)],
        env=cli_env(run_store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_when(proc, run_store / DB, _ANNOTATIONS, 500, timeout=300)
    assert _rows(run_store, _ANNOTATIONS)[0][0] in (0, QUESTIONS * ANNOTATORS)
    again = run_cli("annotate", "import", "base", str(path), store=run_store)
    assert again.returncode == 0, again.stderr + again.stdout
    assert _rows(run_store, _ANNOTATIONS) == [(QUESTIONS * ANNOTATORS,)]


def test_an_import_stopped_by_a_file_size_limit_leaves_nothing(run_store: Path, tmp_path: Path) -> None:
    """Before: it said "desfeita" (undone) but the rows committed before the limit stayed."""
    path = _big_import(tmp_path / "rotulos.csv")
    result = run_with_file_limit(["annotate", "import", "base", str(path)], 40_000, store=run_store)
    _clean_failure(result, "espaço", "desfeita")
    assert _rows(run_store, _ANNOTATIONS) == [(0,)]
    with sqlite3.connect(run_store / DB) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("name", ["x" * 10_000, "ana\x07bia", "ana\x1b[2J", "\u0085"])
def test_annotator_names_the_web_api_refuses_are_refused_everywhere(run_store: Path, tmp_path: Path, name: str) -> None:
    """Before: 'annotate import' stored 10,000-character and control-character names the web API refuses."""
    path = tmp_path / "rotulos.jsonl"
    rows = [{"qid": "q0", "label": "C", "annotator": "ana"}, {"qid": "q1", "label": "C", "annotator": name}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    imported = run_cli("annotate", "import", "base", str(path), store=run_store)
    _clean_failure(imported, "linha 2", "Nome de anotador inválido", "nada foi importado")
    flagged = run_cli("annotate", "import", "base", str(path), "--annotator", name, store=run_store)
    _clean_failure(flagged, "Nome de anotador inválido")
    terminal = run_cli("annotate", "base", "--annotator", name, store=run_store, input="c\nq\n")
    _clean_failure(terminal, "Nome de anotador inválido")
    assert _rows(run_store, _ANNOTATIONS) == [(0,)]
    assert name not in json.dumps(_rows(run_store, "SELECT annotator FROM annotations"))


# -- N18: a run's lock survives a PostgreSQL restart -------------------------------------------
_LOCK_WORDS = ("já está sendo executada", "outro processo assumiu")


@pytest.mark.slow
def test_a_second_run_after_a_postgres_restart_never_runs_beside_the_first(
    pg_server: PgServer, indexed: Path, tmp_path: Path
) -> None:
    """The server restarts while run A answers, then run B of the same name starts. Before: A's session
    advisory lock died with its connection, A went on through its pool, and B started too (both answered
    the same questions). Now one of them stops with a clear message: B refused, or A (if B took the lock
    first)."""
    env = {"LECTURE_RAG_DATABASE_URL": pg_server.new_database()}
    made = run_cli("ingest", str(indexed.parent / "aulas"), store=tmp_path / "a", env=env)
    assert made.returncode == 0, made.stderr + made.stdout
    questions = _questions(tmp_path / "q.jsonl", 400)
    args = ["run", str(questions), "--name", "reinicio", *RUN]
    log = (tmp_path / "a.log").open("w+", encoding="utf-8")
    first = subprocess.Popen([EXE, *args], env=cli_env(tmp_path / "a", env), stdout=log, stderr=log, text=True)
    try:
        wait_for_count(first, env["LECTURE_RAG_DATABASE_URL"], "SELECT COUNT(*) FROM run_items", 5, timeout=120)
        assert first.poll() is None, "run A ended before the restart"
        pg_server.restart()
        second = run_cli(*args, store=tmp_path / "b", env=env)
        a_running = first.poll() is None
        if second.returncode == 0:  # B took the lock first: A must stop at its next write
            first.wait(timeout=120)
            log.seek(0)
            a_text = log.read()
            assert first.returncode == 2 and "outro processo assumiu" in a_text, a_text
        else:
            _clean_failure(second, "já está sendo executada")
            assert a_running, "A stopped, yet B did not run"
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait()
        log.close()


# -- L7: a damaged SQLite database ------------------------------------------------------------
def _damage(db: Path, how: str) -> None:
    size = db.stat().st_size
    if how == "truncated":
        os.truncate(db, size // 2)
    elif how == "zero-byte":
        os.truncate(db, 0)
    else:  # bytes overwritten in the middle, as a bad sector or a partial copy leaves them
        with db.open("r+b") as handle:
            handle.seek(size // 2 // 4096 * 4096)
            handle.write(bytes(range(256)) * 32)


@pytest.mark.parametrize("how", ["truncated", "overwritten", "zero-byte"])
def test_a_damaged_database_gives_one_clear_error_and_takes_no_write(store: Path, tmp_path: Path, how: str) -> None:
    """Before: raw tracebacks (DatabaseError: database disk image is malformed) in search, ask, run and
    index; writes accepted into a file that fails integrity_check; a zero-byte file read as an empty store
    ("acervo vazio") while the published index described 40 segments, and an ingest restarted the ids at 1."""
    db = store / DB
    _damage(db, how)
    before = db.read_bytes()
    new = spaced_srt(tmp_path / "nova.srt", 5, "uma aula nova sobre gravuras")
    questions = _questions(tmp_path / "q.jsonl", 3)
    commands = [
        ("search", "pinturas de Altamira"),
        ("ask", "o que mostram as pinturas?", "--llm", "none"),
        ("run", str(questions), "--name", "danificada", *RUN),
        ("index", "--rebuild"),
        ("ingest", str(new)),
    ]
    said = []
    for args in commands:
        result = run_cli(*args, store=store)
        text = result.stdout + result.stderr
        assert "Traceback" not in text and "acervo vazio" not in text, (args, text)
        if result.returncode == 0:  # a read that never touched the damaged pages (an index build writes nothing)
            assert args[0] in ("search", "ask", "index") and how == "overwritten", (args, text)
            continue
        said.append(_clean_failure(result, str(db), "backup"))
    assert db.read_bytes() == before, "something was written into the damaged file"
    assert len(said) >= (2 if how == "overwritten" else 3)  # an overwritten page may spare every read
    if how == "zero-byte":
        assert all("40 segmentos" in text for text in said), said
    else:
        assert all("corrompido" in text for text in said), said
