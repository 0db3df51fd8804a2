"""End-to-end ingest through the real CLI, on the real NURC lectures."""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lecture_rag.index.passages import split_passages
from lecture_rag.store import Store
from tests.support.cli import kill_when, run_cli
from tests.support.paths import shared
from tests.support.transcripts import big_srt


def _csv_duration(path: Path) -> float:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return max(float(r["end_sec"].replace(",", ".")) for r in rows if r["text"].strip())


@pytest.fixture(scope="module")
def nurc_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("nurc") / "store"
    result = run_cli("ingest", str(shared("nurc-sp", "transcripts")), "--no-index", store=store)
    assert result.returncode == 0, result.stderr + result.stdout
    return store


def _videos(store: Path) -> list[dict[str, object]]:
    result = run_cli("corpus", "list", "--json", store=store)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_four_lectures_with_matching_durations(nurc_store: Path) -> None:
    videos = {str(v["video_id"]): v for v in _videos(nurc_store)}
    assert sorted(videos) == ["SP_EF_124", "SP_EF_153", "SP_EF_377", "SP_EF_405"]
    for vid, video in videos.items():
        expected = _csv_duration(shared("nurc-sp", "transcripts", f"sentences_{vid}.csv"))
        assert abs(float(video["duration"]) - expected) <= 1.0, (vid, video["duration"], expected)  # type: ignore[arg-type]


def test_segments_are_two_minute_windows_without_duplicated_speech(nurc_store: Path) -> None:
    for video in _videos(nurc_store):
        result = run_cli("corpus", "show", str(video["video_id"]), "--json", store=nurc_store)
        segments = json.loads(result.stdout)
        lengths = sorted(s["end"] - s["start"] for s in segments)
        assert 100 <= lengths[len(lengths) // 2] <= 180, lengths
        for a, b in itertools.pairwise(segments):
            assert a["end"] <= b["start"], f"overlap in {video['video_id']}: {a['end']} > {b['start']}"
        # the first pass of the lecture is kept once: its first sentence appears exactly once
        text = " ".join(s["text"] for s in segments)
        first = segments[0]["text"].split()[:6]
        assert text.count(" ".join(first)) == 1


def test_reingest_is_a_noop_with_stable_ids(nurc_store: Path) -> None:
    before = run_cli("corpus", "show", "SP_EF_405", "--json", store=nurc_store).stdout
    result = run_cli("ingest", str(shared("nurc-sp", "transcripts")), "--no-index", store=nurc_store)
    assert result.returncode == 0
    assert result.stdout.count("sem mudança") == 4
    assert run_cli("corpus", "show", "SP_EF_405", "--json", store=nurc_store).stdout == before


def test_asr_transcript_shares_the_video_id(tmp_path: Path) -> None:
    asr = shared("nurc-sp", "asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv")
    result = run_cli("ingest", str(asr), "--no-index", store=tmp_path)
    assert result.returncode == 0, result.stderr
    [video] = _videos(tmp_path)
    assert video["video_id"] == "SP_EF_405"


def test_changed_file_replaces_segments(tmp_path: Path) -> None:
    srt = tmp_path / "aula.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:04,000\nprimeira versão\n", encoding="utf-8")
    store = tmp_path / "store"
    assert run_cli("ingest", str(srt), "--no-index", store=store).returncode == 0
    srt.write_text("1\n00:00:01,000 --> 00:00:04,000\nsegunda versão\n", encoding="utf-8")
    result = run_cli("ingest", str(srt), "--no-index", store=store)
    assert "substituído" in result.stdout
    shown = json.loads(run_cli("corpus", "show", "aula", "--json", store=store).stdout)
    assert [s["text"] for s in shown] == ["segunda versão"]


def test_single_file_flags_and_deep_links(tmp_path: Path) -> None:
    srt = tmp_path / "qualquer nome.srt"
    srt.write_text("1\n00:42:50,000 --> 00:42:55,000\nredes neurais profundas\n", encoding="utf-8")
    result = run_cli(
        "ingest",
        str(srt),
        "--no-index",
        "--video-id",
        "aula-07",
        "--title",
        "Aula 7",
        "--course",
        "IA",
        "--url",
        "https://youtu.be/dQw4w9WgXcQ",
        store=tmp_path / "s",
    )
    assert result.returncode == 0, result.stderr
    [seg] = json.loads(run_cli("corpus", "show", "aula-07", "--json", store=tmp_path / "s").stdout)
    assert seg["url"] == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s"
    [video] = _videos(tmp_path / "s")
    assert (video["title"], video["course"]) == ("Aula 7", "IA")


def test_directory_metadata_from_manifest_and_sidecar(tmp_path: Path) -> None:
    d = tmp_path / "curso"
    d.mkdir()
    for name in ("a1", "a2"):
        (d / f"{name}.srt").write_text(f"1\n00:00:01,000 --> 00:00:02,000\ntexto {name}\n", encoding="utf-8")
    (d / "videos.csv").write_text(
        "file,title,course,url\na1.srt,Introdução,Cálculo I,https://media.example.edu/a1.mp4\n", encoding="utf-8"
    )
    (d / "a2.json").write_text(
        json.dumps({"title": "Limites", "url": "https://youtu.be/abcdefghijk"}), encoding="utf-8"
    )
    result = run_cli("ingest", str(d), "--no-index", store=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    videos = {v["video_id"]: v for v in _videos(tmp_path / "s")}
    assert videos["a1"]["title"] == "Introdução" and videos["a1"]["course"] == "Cálculo I"
    assert videos["a2"]["title"] == "Limites" and videos["a2"]["url"] == "https://youtu.be/abcdefghijk"


def test_mixed_directory_reports_each_bad_file(tmp_path: Path) -> None:
    d = tmp_path / "misto"
    d.mkdir()
    (d / "boa.srt").write_text("1\n00:00:01,000 --> 00:00:03,000\naula boa\n", encoding="utf-8")
    (d / "vazia.vtt").write_text("", encoding="utf-8")
    (d / "binaria.srt").write_bytes(bytes(range(256)) * 50)
    (d / "invertida.srt").write_text("1\n00:00:09,000 --> 00:00:03,000\nfim antes do início\n", encoding="utf-8")
    (d / "planilha.xlsx").write_bytes(b"PK\x03\x04")
    result = run_cli("ingest", str(d), "--no-index", store=tmp_path / "s")
    assert result.returncode == 1
    for name in ("vazia.vtt", "binaria.srt", "invertida.srt", "planilha.xlsx"):
        assert name in result.stderr, name
    assert [v["video_id"] for v in _videos(tmp_path / "s")] == ["boa"]


def test_missing_path_is_reported(tmp_path: Path) -> None:
    result = run_cli("ingest", str(tmp_path / "nao-existe.vtt"), "--no-index", store=tmp_path / "s")
    assert result.returncode == 1
    assert "não existe" in result.stderr


def test_corpus_commands_without_store_say_what_to_do(tmp_path: Path) -> None:
    result = run_cli("corpus", "list", store=tmp_path / "vazio")
    assert result.returncode == 2
    assert "lecture-rag ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_corpus_remove_reindexes_and_prune_cache_forgets_its_vectors(tmp_path: Path) -> None:
    src = tmp_path / "aulas"
    src.mkdir()
    for vid in ("SP_EF_377", "SP_EF_405"):
        (src / f"sentences_{vid}.csv").symlink_to(shared("nurc-sp", "transcripts", f"sentences_{vid}.csv"))
    store = tmp_path / "store"
    assert run_cli("ingest", str(src), store=store).returncode == 0
    listed = json.loads(run_cli("corpus", "list", "--json", store=store).stdout)
    assert [(v["video_id"], v["n_segments"]) for v in listed] == [("SP_EF_377", 15), ("SP_EF_405", 15)]
    shown = run_cli("corpus", "show", "SP_EF_377", "--json", store=store)
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 15

    with Store(store, create=False) as st:  # the removed lecture's ~25 s passages are cached too
        passages = sum(len(split_passages(seg, 25.0)) for seg in st.segments("SP_EF_377"))
    assert passages > 2 * 15
    removed = run_cli("corpus", "remove", "SP_EF_377", "nao-existe", "--yes", store=store)
    assert removed.returncode == 2 and "Removido: SP_EF_377" in removed.stdout and "nao-existe" in removed.stderr
    assert [v["video_id"] for v in json.loads(run_cli("corpus", "list", "--json", store=store).stdout)] == ["SP_EF_405"]
    # Re-indexed on removal (from the cache): search is current, without the stale-index warning.
    found = run_cli("search", "paleolítico", "--k", "3", "--json", store=store)
    assert found.returncode == 0 and "não reflete o acervo" not in found.stderr + found.stdout
    assert {h["video_id"] for h in json.loads(found.stdout)} == {"SP_EF_405"}

    pruned = run_cli("index", "--prune-cache", store=store)
    assert pruned.returncode == 0, pruned.stderr
    assert f"cache_pruned={15 + passages}" in pruned.stdout  # the removed lecture's windows and passages
    assert "cache_pruned=0" in run_cli("index", "--prune-cache", store=store).stdout
    assert "skipped=True" in pruned.stdout  # the index itself was already current


def test_killed_ingest_leaves_store_consistent_and_rerun_completes(tmp_path: Path) -> None:
    d = tmp_path / "aulas"
    d.mkdir()
    for name in ("a", "b"):
        (d / f"{name}.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\ncurta\n", encoding="utf-8")
    big_srt(d / "c_grande.srt", 200_000)
    store = tmp_path / "s"
    exe = Path(sys.executable).parent / "lecture-rag"
    proc = subprocess.Popen(
        [str(exe), "ingest", str(d), "--no-index", "--store", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = store / "lecture-rag.sqlite3"
    kill_when(proc, db, "SELECT COUNT(*) FROM videos", 2, timeout=60)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = conn.execute(
            "SELECT COUNT(*) FROM videos v WHERE NOT EXISTS (SELECT 1 FROM segments s WHERE s.video_id=v.video_id)"
        ).fetchone()[0]
        assert orphans == 0
        assert conn.execute("SELECT COUNT(*) FROM videos WHERE video_id='c_grande'").fetchone()[0] == 0
    result = run_cli("ingest", str(d), "--no-index", store=store)
    assert result.returncode == 0, result.stderr
    assert sorted(v["video_id"] for v in _videos(store)) == ["a", "b", "c_grande"]
    assert result.stdout.count("sem mudança") == 2
