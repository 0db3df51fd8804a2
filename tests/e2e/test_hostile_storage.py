"""Hostile storage through the real CLI: a full disk, a read-only store, a damaged index, a killed build,
and a lecture re-ingested or removed without indexing.

A full disk is real without root: the CLI runs under a small file-size limit
(``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored), so its writes fail with ``EFBIG``
mid-transaction and mid-publication. A read-only store is one whose owner
removed its write bits (``chmod a-w``), which lecture-rag honours even for
root, who would otherwise write through them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import run_cli
from tests.support.limits import cap_files_when, run_with_file_limit
from tests.support.stores import two_small_lectures
from tests.support.transcripts import spaced_srt

LIMIT = 40_000  # bytes: above SQLite's 32 KiB -shm, below what each command below must write
QUESTIONS = 60


def _tree(store: Path) -> dict[str, bytes]:
    """Every path under the store, with the bytes of each file: a command that wrote nothing leaves it equal."""
    return {str(p.relative_to(store)): p.read_bytes() if p.is_file() else b"/" for p in sorted(store.rglob("*"))}


def _integrity(store: Path) -> list[str]:
    out = []
    for name in ("lecture-rag.sqlite3", "embeddings.sqlite3"):
        with sqlite3.connect(store / name) as conn:
            out.append(str(conn.execute("PRAGMA integrity_check").fetchone()[0]))
    return out


def _clean_failure(result: subprocess.CompletedProcess[str], *must: str) -> str:
    """Exit code 2 and one clear message: no traceback, no rollback noise, no false "corrupt"."""
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text and "cannot rollback" not in text and "corrompido" not in text, text
    for word in must:
        assert word in text, (word, text)
    return str(text)


def _search(store: Path, query: str, k: int = 3) -> list[dict[str, object]]:
    result = run_cli("search", query, "--k", str(k), "--json", store=store)
    assert result.returncode == 0, result.stderr + result.stdout
    return list(json.loads(result.stdout))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small lectures, ingested and indexed: 40 segments, a vectors file larger than LIMIT.

    float32 vectors (61 KB for 40 windows): float16 ones, the default, fit under LIMIT,
    which cannot go lower (SQLite's -shm file takes 32 KiB).
    """
    root = tmp_path_factory.mktemp("hostile")
    store = two_small_lectures(root)
    (store / "config.toml").write_text('[retrieval]\nvector_dtype = "f32"\n', encoding="utf-8")
    assert run_cli("index", store=store).returncode == 0  # rebuilt with float32 vectors
    questions = root / "perguntas.jsonl"
    with questions.open("w", encoding="utf-8") as handle:
        for i in range(QUESTIONS):
            row = {"id": f"q{i}", "question": f"o que mostram as pinturas de Altamira? ({i})", "answer": None}
            handle.write(json.dumps({**row, "evidence": [], "type": "factual", "label": None}) + "\n")
    return store


@pytest.fixture
def store(indexed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(indexed, copy)
    return copy


@pytest.fixture
def questions(indexed: Path) -> Path:
    return indexed.parent / "perguntas.jsonl"


# -- a full disk --------------------------------------------------------------------------
def test_full_disk_during_ingest_names_the_cause_and_keeps_the_store(store: Path, tmp_path: Path) -> None:
    """Before: a raw traceback ending in "cannot rollback - no transaction is active"."""
    before = run_cli("corpus", "list", "--json", store=store).stdout
    big = spaced_srt(tmp_path / "grande.srt", 3000, "uma fala longa " * 20, gap=2)
    result = run_with_file_limit(["ingest", str(big), "--no-index"], LIMIT, store=store)
    _clean_failure(result, "espaço", "ulimit -f", "intacto")
    assert _integrity(store) == ["ok", "ok"]
    assert run_cli("corpus", "list", "--json", store=store).stdout == before
    assert _search(store, "pinturas de Altamira")[0]["video_id"] == "pintura"


def test_full_disk_during_index_keeps_the_published_pair(store: Path) -> None:
    current = (store / "index" / "current.json").read_text(encoding="utf-8")
    builds = sorted(p.name for p in (store / "index").iterdir())
    result = run_with_file_limit(["index", "--rebuild"], LIMIT, store=store)
    _clean_failure(result, "espaço", "ulimit -f")
    assert (store / "index" / "current.json").read_text(encoding="utf-8") == current
    assert sorted(p.name for p in (store / "index").iterdir()) == builds  # no staging folder left
    assert _search(store, "cinema brasileiro")[0]["video_id"] == "cinema"
    assert run_cli("index", store=store).returncode == 0


def test_full_disk_during_a_run_stops_it_cleanly(store: Path, questions: Path) -> None:
    """The disk fills once the run is answering (its language detector unpacks a model into a temporary
    file at the first question, which a limit set from the start would stop instead)."""
    args = ["run", str(questions), "--name", "cheia", "--llm", "none", "--judge-llm", "none", "--judges", "ar"]
    db = store / "lecture-rag.sqlite3"
    result = cap_files_when(args, db, "SELECT COUNT(*) FROM run_items", 1, store=store)
    _clean_failure(result, "espaço", "ulimit -f", "intacto")
    assert _integrity(store) == ["ok", "ok"]
    with sqlite3.connect(db) as conn:
        saved = conn.execute("SELECT COUNT(*) FROM run_items WHERE run='cheia'").fetchone()[0]
    assert 1 <= saved < QUESTIONS
    resumed = run_cli(*args, store=store)  # with room again, the run resumes where it stopped
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM run_items WHERE run='cheia'").fetchone()[0] == QUESTIONS


def test_full_disk_while_embedding_does_not_call_the_cache_corrupt(store: Path, tmp_path: Path) -> None:
    (store / "embeddings.sqlite3").unlink()  # every vector must be embedded and cached again
    result = run_with_file_limit(["index", "--rebuild"], LIMIT, store=store)
    text = _clean_failure(result, "espaço")
    assert "apague" not in text
    assert _integrity(store) == ["ok", "ok"]
    assert run_cli("index", "--rebuild", store=store).returncode == 0


# -- a read-only store --------------------------------------------------------------------
@pytest.fixture
def read_only(store: Path) -> Iterator[Path]:
    paths = [store, *store.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield store
    for path in paths:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_read_only_store_answers_reads_and_refuses_writes_by_name(
    read_only: Path, questions: Path, tmp_path: Path
) -> None:
    """Before: root wrote through chmod a-w; on a read-only mount every command said "corrompido"."""
    before = _tree(read_only)
    assert "pintura" in run_cli("corpus", "list", store=read_only).stdout
    assert _search(read_only, "pinturas de Altamira")[0]["video_id"] == "pintura"
    new = spaced_srt(tmp_path / "nova.srt", 2, "uma aula nova")
    _clean_failure(run_cli("ingest", str(new), "--no-index", store=read_only), "somente leitura")
    _clean_failure(run_cli("index", "--rebuild", store=read_only), "somente leitura")
    _clean_failure(run_cli("corpus", "remove", "cinema", "--yes", store=read_only), "somente leitura")
    run = run_cli("run", str(questions), "--name", "ro", "--llm", "none", "--judge-llm", "none", store=read_only)
    _clean_failure(run, "somente leitura")
    assert run_cli("index", store=read_only).returncode == 0  # up to date: nothing to write
    assert _tree(read_only) == before


# -- a damaged index ----------------------------------------------------------------------
def _vectors_file(store: Path) -> Path:
    pointer = json.loads((store / "index" / "current.json").read_text(encoding="utf-8"))
    folder = store / "index" / f"build-{pointer['build']}"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return folder / manifest["files"]["vectors"]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_index_says_rebuild_and_index_rebuilds_it(store: Path, damage: str) -> None:
    """Before: 'index' said skipped=True over a truncated file; garbage gave cosines like 3e+37."""
    vectors = _vectors_file(store)
    data = bytearray(vectors.read_bytes())
    if damage == "truncated":
        vectors.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[128:] = np.random.default_rng(3).integers(0, 256, len(data) - 128, dtype=np.uint8).tobytes()
        vectors.write_bytes(bytes(data))
    for mode in ("dense", "hybrid"):
        result = run_cli("search", "pinturas de Altamira", "--mode", mode, "--json", store=store)
        assert result.returncode == 2, result.stdout
        assert "lecture-rag index --rebuild" in result.stderr and "Traceback" not in result.stderr
    rebuilt = run_cli("index", store=store)
    assert rebuilt.returncode == 0 and "skipped=False" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    hits = _search(store, "pinturas de Altamira", k=5)
    assert hits[0]["video_id"] == "pintura"
    assert all(-1.0 - 1e-4 <= float(h["score"]) <= 1.0 + 1e-4 for h in hits)  # type: ignore[arg-type]


def test_leftovers_of_a_killed_index_are_removed_by_the_next_one(store: Path) -> None:
    root = store / "index"
    kept = sorted(p.name for p in root.iterdir())
    (root / ".build-20260101T000000-deadbeef.tmp" / ".bm25.tmp-1234").mkdir(parents=True)
    (root / ".build-20260101T000000-deadbeef.tmp" / ".vectors-1234.npy.tmp").write_bytes(b"\0" * 1000)
    (root / ".current.json.20260101T000000-deadbeef.tmp").write_text("{", encoding="utf-8")
    result = run_cli("index", store=store)
    assert result.returncode == 0 and "skipped=True" in result.stdout
    assert sorted(p.name for p in root.iterdir()) == kept


# -- a lecture re-ingested or removed without indexing -----------------------------------
def _superseded(store: Path) -> int:
    with sqlite3.connect(store / "lecture-rag.sqlite3") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM superseded_segments").fetchone()[0])


def test_a_reingested_lecture_is_served_until_the_new_version_is_indexed(store: Path, tmp_path: Path) -> None:
    """Before: 'ingest --no-index' of a changed file made the lecture vanish from search until 'index'."""
    src = tmp_path / "pintura.srt"
    spaced_srt(src, 20, "os afrescos de Pompeia retratam banquetes romanos")
    old_hits = _search(store, "pinturas rupestres de Altamira com bisontes", k=3)
    assert old_hits[0]["video_id"] == "pintura"
    result = run_cli("ingest", str(src), "--no-index", store=store)
    assert result.returncode == 0 and "substituído" in result.stdout, result.stdout + result.stderr
    shown = json.loads(run_cli("corpus", "show", "pintura", "--json", store=store).stdout)
    assert all("Pompeia" in s["text"] for s in shown)  # the corpus shows the current version

    hits = _search(store, "pinturas rupestres de Altamira com bisontes", k=3)
    assert [h["corpus_id"] for h in hits] == [h["corpus_id"] for h in old_hits]
    assert hits[0]["video_id"] == "pintura" and "Altamira" in str(hits[0]["text"])
    assert float(hits[0]["end"]) > float(hits[0]["start"]) >= 0  # type: ignore[arg-type]
    assert hits[0]["title"] == "pintura"
    filtered = run_cli("search", "Altamira", "--video", "pintura", "--json", store=store)
    assert filtered.returncode == 0 and json.loads(filtered.stdout), filtered.stderr
    assert _superseded(store) == 20

    assert run_cli("index", store=store).returncode == 0
    hits = _search(store, "afrescos de Pompeia e banquetes romanos", k=3)
    assert hits[0]["video_id"] == "pintura" and "Pompeia" in str(hits[0]["text"])
    assert not any("Altamira" in str(h["text"]) for h in _search(store, "pinturas rupestres de Altamira", k=10))
    assert _superseded(store) == 0


def test_a_removed_lecture_is_served_until_the_index_drops_it(store: Path) -> None:
    result = run_cli("corpus", "remove", "cinema", "--no-index", "--yes", store=store)
    assert result.returncode == 0, result.stderr
    assert [v["video_id"] for v in json.loads(run_cli("corpus", "list", "--json", store=store).stdout)] == ["pintura"]
    hits = _search(store, "cinema brasileiro dos anos trinta", k=3)
    assert hits[0]["video_id"] == "cinema" and "cinema" in str(hits[0]["text"])
    assert run_cli("index", store=store).returncode == 0
    assert {h["video_id"] for h in _search(store, "cinema brasileiro dos anos trinta", k=5)} == {"pintura"}
    assert _superseded(store) == 0
