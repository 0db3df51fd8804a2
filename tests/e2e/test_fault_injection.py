"""Fault injection through the real CLI (issue 24): a kill between every pair of transactions of ingest,
run and annotate import, a full disk, a database that goes down. After each fault the rerun completes
and the store is whole: no duplicated or reused corpus id, no lost label, no half-written work.

A kill "between transactions" is the store's test hook ``LECTURE_RAG_FAULT_KILL_AFTER_COMMITS=N``: the
command SIGKILLs itself right after its Nth commit (:func:`lecture_rag.store.database.after_commit`),
for N = 1, 2, ... until the command finishes before its Nth commit. A full disk is a real tmpfs of a
few hundred KiB (root only; skipped otherwise); a database down is a real PostgreSQL server stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lecture_rag.store.database import FAULT_KILL_AFTER_COMMITS as KILL_AFTER
from tests.support.cli import EXE, cli_env, run_cli, wait_for_count
from tests.support.postgres import PgServer
from tests.support.transcripts import spaced_srt

pytestmark = pytest.mark.slow

DB = "lecture-rag.sqlite3"
LECTURES = {
    "pintura": "as pinturas rupestres de Altamira mostram bisontes",
    "cinema": "o cinema brasileiro dos anos trinta conheceu o som",
    "musica": "a bossa nova misturou samba e jazz no Rio",
}
RUN = ("--llm", "none", "--judge-llm", "none", "--judges", "ar")
MAX_COMMITS = 200


def _lectures(folder: Path, cues: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, words in LECTURES.items():
        spaced_srt(folder / f"{name}.srt", cues, words)
    return folder


def _questions(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            row = {"id": f"q{i}", "question": f"o que mostram as pinturas? ({i})", "answer": None}
            handle.write(json.dumps({**row, "evidence": [], "type": "factual", "label": "C"}) + "\n")
    return path


def _rows(store: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store / DB) as conn:
        return conn.execute(sql).fetchall()


def _killed_at_every_commit(args: list[str], store: Path, check: object, env: dict[str, str] | None = None) -> int:
    """Run ``args`` killed after commit 1, 2, ...; after each, rerun it whole and call ``check(store)``.

    Returns how many kill points were tried (the command's commits). Each try starts from a copy of
    ``store`` as it was, so every kill point is tried on the same starting state.
    """
    pristine = store.with_name(store.name + "-pristine")
    shutil.copytree(store, pristine)
    for n in range(1, MAX_COMMITS):
        shutil.rmtree(store)
        shutil.copytree(pristine, store)
        killed = run_cli(*args, store=store, env={**(env or {}), KILL_AFTER: str(n)})
        rerun = run_cli(*args, store=store, env=env)
        assert rerun.returncode == 0, (n, rerun.stderr + rerun.stdout)
        assert "Traceback" not in rerun.stderr, rerun.stderr
        check(store)  # type: ignore[operator]
        if killed.returncode == 0:
            return n - 1
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr + killed.stdout)
    pytest.fail(f"{args[0]} did not finish within {MAX_COMMITS} commits")


def _store_is_whole(store: Path) -> None:
    assert _rows(store, "PRAGMA integrity_check") == [("ok",)]
    assert sorted(str(r[0]) for r in _rows(store, "SELECT video_id FROM videos")) == sorted(LECTURES)
    assert _rows(store, "SELECT COUNT(*) FROM segments") == [(8 * len(LECTURES),)]
    ids = "SELECT corpus_id FROM segments UNION ALL SELECT corpus_id FROM superseded_segments"
    assert _rows(store, f"SELECT COUNT(*) - COUNT(DISTINCT corpus_id) FROM ({ids})") == [(0,)]
    for words in LECTURES.values():  # the published index points to the text it was built from
        hits = json.loads(run_cli("search", words, "--k", "3", "--json", store=store).stdout)
        assert hits, words
        for hit in hits:
            stored = _rows(store, f"SELECT text FROM segments WHERE corpus_id={int(hit['corpus_id'])}")
            assert stored == [(hit["text"],)], hit


@pytest.fixture(scope="module")
def lectures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _lectures(tmp_path_factory.mktemp("aulas") / "aulas")


@pytest.fixture(scope="module")
def ingested(lectures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("ingested") / "store"
    made = run_cli("ingest", str(lectures), store=store)
    assert made.returncode == 0, made.stderr + made.stdout
    return store


# -- a kill between every pair of transactions ------------------------------------------------
def test_ingest_killed_after_every_commit_reruns_to_a_whole_store(lectures: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    tried = _killed_at_every_commit(["ingest", str(lectures)], store, _store_is_whole)
    assert tried >= len(LECTURES)


def test_run_killed_after_every_commit_loses_no_label_and_duplicates_nothing(ingested: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(ingested, store)
    questions = _questions(tmp_path / "q.jsonl", 4)

    def whole(store: Path) -> None:
        assert _rows(store, "SELECT COUNT(*), COUNT(DISTINCT qid) FROM run_items WHERE run='falha'") == [(4, 4)]
        assert _rows(store, "SELECT COUNT(*) FROM annotations WHERE run='falha' AND label='C'") == [(4,)]
        assert _rows(store, "SELECT COUNT(DISTINCT qid) FROM judgments WHERE run='falha'") == [(4,)]

    tried = _killed_at_every_commit(["run", str(questions), "--name", "falha", *RUN], store, whole)
    assert tried >= 9  # the run's start, then an answer with its label and its judgments per question


def test_annotate_import_killed_after_every_commit_is_all_or_nothing(ingested: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(ingested, store)
    questions = _questions(tmp_path / "q.jsonl", 4)
    assert run_cli("run", str(questions), "--name", "base", *RUN, store=store).returncode == 0
    labels = tmp_path / "rotulos.csv"
    labels.write_text("qid,label,annotator\n" + "".join(f"q{i},P,bia\n" for i in range(4)), encoding="utf-8")

    def whole(store: Path) -> None:
        assert _rows(store, "SELECT COUNT(*) FROM annotations WHERE run='base' AND annotator='bia'") == [(4,)]

    assert _killed_at_every_commit(["annotate", "import", "base", str(labels)], store, whole) == 1


# -- a full disk (a real tmpfs) ---------------------------------------------------------------
@pytest.fixture
def tiny_disk(ingested: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the store on a tmpfs with 256 KiB to spare."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (test_hostile_storage.py covers a full disk by RLIMIT_FSIZE)")
    mount = tmp_path / "disco"
    mount.mkdir()
    used = sum(p.stat().st_size for p in ingested.rglob("*") if p.is_file())
    size = (used + 2 * 1024 * 1024) // 4096 * 4096
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=False)
    if made.returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        store = mount / "store"
        shutil.copytree(ingested, store)
        free = shutil.disk_usage(mount).free - 256 * 1024
        (mount / "enchimento").write_bytes(b"\0" * max(0, free))
        yield store
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_ingest_and_run_clearly_and_keeps_the_store(tiny_disk: Path, tmp_path: Path) -> None:
    before = run_cli("corpus", "list", "--json", store=tiny_disk).stdout
    big = spaced_srt(tmp_path / "grande.srt", 4000, "uma fala longa " * 20, gap=2)
    questions = _questions(tmp_path / "q.jsonl", 200)
    for args in (["ingest", str(big)], ["run", str(questions), "--name", "cheia", *RUN]):
        result = run_cli(*args, store=tiny_disk)
        text = result.stdout + result.stderr
        assert result.returncode == 2, text
        assert "Traceback" not in text and "espaço" in text and "corrompido" not in text, text
        assert _rows(tiny_disk, "PRAGMA integrity_check") == [("ok",)]
    assert run_cli("corpus", "list", "--json", store=tiny_disk).stdout == before


# -- the database goes down ------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A PostgreSQL server of this module's own: stopping it disturbs no other test."""
    server = PgServer(tmp_path_factory.mktemp("pg-falhas"))
    yield server
    server.stop()


def _clean_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    text = " ".join((result.stdout + result.stderr).split())  # the terminal wraps long messages
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    assert "nada foi gravado" in text.lower() or "desfeita" in text, text
    return text


def test_ingest_and_run_with_the_database_down_stop_clearly(
    own_server: PgServer, lectures: Path, tmp_path: Path
) -> None:
    url = own_server.new_database()
    env = {"LECTURE_RAG_DATABASE_URL": url}
    questions = _questions(tmp_path / "q.jsonl", 3)
    own_server.pause()
    try:
        _clean_exit_2(run_cli("ingest", str(lectures), store=tmp_path / "s", env=env))
        _clean_exit_2(run_cli("run", str(questions), "--name", "fora", *RUN, store=tmp_path / "s", env=env))
    finally:
        own_server.resume()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('segments') IS NULL").fetchone() == (True,)


def test_a_run_whose_database_goes_down_stops_clearly_and_resumes(
    own_server: PgServer, lectures: Path, tmp_path: Path
) -> None:
    url = own_server.new_database()
    env = {"LECTURE_RAG_DATABASE_URL": url}
    assert run_cli("ingest", str(lectures), store=tmp_path / "s", env=env).returncode == 0
    questions = _questions(tmp_path / "q.jsonl", 300)
    args = [EXE, "run", str(questions), "--name", "queda", *RUN]
    proc = subprocess.Popen(
        args, env=cli_env(tmp_path / "s", env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_count(proc, url, "SELECT COUNT(*) FROM run_items", 3, timeout=120)
        own_server.pause()
        # Slow by the pool's 60 s wait per read (the questions in flight finish failing first): N3's fail-fast
        # for a server that is down shortens it; the point here is how it ends.
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        own_server.resume()
    _clean_exit_2(subprocess.CompletedProcess(args, proc.returncode, out, err))
    with psycopg.connect(url) as conn:  # every saved question whole: its label with it, no duplicate
        items = conn.execute("SELECT COUNT(*), COUNT(DISTINCT qid) FROM run_items WHERE run='queda'").fetchone()
        labelled = conn.execute("SELECT COUNT(*) FROM annotations WHERE run='queda'").fetchone()
    assert items is not None and items[0] == items[1] and labelled == (items[0],)
    resumed = run_cli("run", str(questions), "--name", "queda", *RUN, store=tmp_path / "s", env=env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
