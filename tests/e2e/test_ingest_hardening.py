"""Issue 24, ingest part: hostile files, clashing ids, sidecars, caption and media servers, long audio, dialogues.

Everything runs through the installed ``lecture-rag`` command on real files
and real HTTP servers on 127.0.0.1 (no mocks). The servers misbehave the
ways the probe's did: a caption track trickling one byte every few seconds,
an audio "file" that never ends.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lecture_rag.store import DB_NAME
from tests.support.cli import EXE, cli_env, run_cli
from tests.support.paths import shared

SRT = "1\n00:00:01,000 --> 00:00:04,000\nA fotossíntese acontece nos cloroplastos.\n"
VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nA respiração celular libera energia.\n"
ALLOW_LOOPBACK = {"LECTURE_RAG_INGEST__ALLOW_PRIVATE_URLS": "true"}


def _videos(store: Path) -> dict[str, dict[str, object]]:
    result = run_cli("corpus", "list", "--json", store=store)
    assert result.returncode == 0, result.stderr
    return {str(v["video_id"]): v for v in json.loads(result.stdout)}


# --- N15: files that never end ------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_ingesting_a_device_is_refused_at_once(device: str, tmp_path: Path) -> None:
    result = run_cli("ingest", device, "--no-index", store=tmp_path / "store", timeout=60)
    assert result.returncode != 0
    assert "não é um arquivo comum" in " ".join(result.stderr.split())


def test_ingesting_a_fifo_named_like_a_transcript_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "aula.vtt"
    os.mkfifo(fifo)
    result = run_cli("ingest", str(fifo), "--no-index", store=tmp_path / "store", timeout=60)
    assert result.returncode != 0
    assert "não é um arquivo comum" in " ".join(result.stderr.split())


def test_serve_refuses_a_device_as_token_file(tmp_path: Path) -> None:
    result = run_cli("serve", "--token-file", "/dev/zero", store=tmp_path / "store", timeout=60)
    assert result.returncode == 2
    assert "não é um arquivo comum" in " ".join(result.stderr.split())


# --- N12: two files, one video id -----------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [("aula.vtt", "aula.srt"), ("Fotossíntese [abcdefghijk].pt.vtt", "Fotossíntese [abcdefghijk].en.vtt")],
)
def test_two_transcripts_of_one_video_id_are_refused_before_anything_is_stored(
    names: tuple[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "aulas"
    folder.mkdir()
    (folder / "outra.srt").write_text(SRT, encoding="utf-8")
    for name in names:
        (folder / name).write_text(VTT if name.endswith(".vtt") else SRT, encoding="utf-8")
    store = tmp_path / "store"
    result = run_cli("ingest", str(folder), "--no-index", store=store)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert all(name in message for name in names) and "--video-id" in message
    assert not (store / DB_NAME).exists() or _videos(store) == {}


# --- N13 / N14: sidecars ---------------------------------------------------------------------------


def test_escape_sequences_of_a_sidecar_never_reach_the_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "aulas"
    folder.mkdir()
    (folder / "aula.srt").write_text(SRT, encoding="utf-8")
    (folder / "aula.json").write_text(
        json.dumps({"title": "Fotossíntese\x1b[2J\x1b]0;pwned\x07 [bold]I[/bold]\r", "course": "Bio\x9b31m\x00logia"}),
        encoding="utf-8",
    )
    store = tmp_path / "store"
    assert run_cli("ingest", str(folder), "--no-index", store=store).returncode == 0
    video = _videos(store)["aula"]
    assert video["title"] == "Fotossíntese [bold]I[/bold]" and video["course"] == "Biologia"
    for args in (("corpus", "list"), ("corpus", "show", "aula")):
        shown = run_cli(*args, store=store)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x9b" not in shown.stdout and "\x07" not in shown.stdout
        assert "[bold]I[/bold]" in shown.stdout  # markup in a title is text, not style


def test_an_old_store_with_control_characters_prints_clean(tmp_path: Path) -> None:
    """Titles stored before the input was cleaned are cleaned on the way out too."""
    store = tmp_path / "store"
    (tmp_path / "aula.srt").write_text(SRT, encoding="utf-8")
    assert run_cli("ingest", str(tmp_path / "aula.srt"), "--no-index", store=store).returncode == 0
    with sqlite3.connect(store / DB_NAME) as db:
        db.execute("UPDATE videos SET title = ?", ("Aula\x1b[31m vermelha\x1b]0;x\x07",))
    shown = run_cli("corpus", "list", store=store)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "Aula vermelha" in shown.stdout


def test_sidecar_values_of_the_wrong_type_are_refused_by_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "aulas"
    folder.mkdir()
    (folder / "nula.srt").write_text(SRT, encoding="utf-8")
    (folder / "nula.json").write_text(json.dumps({"title": None, "course": "Biologia"}), encoding="utf-8")
    (folder / "numero.srt").write_text(SRT, encoding="utf-8")
    (folder / "numero.json").write_text(json.dumps({"title": 42, "course": ["a", "b"]}), encoding="utf-8")
    store = tmp_path / "store"
    result = run_cli("ingest", str(folder), "--no-index", store=store)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "numero.json" in message and "'title'" in message
    videos = _videos(store)
    assert list(videos) == ["nula"]
    assert videos["nula"]["title"] == "nula" and videos["nula"]["course"] == "Biologia"  # null: not given


# --- N10 / N11 / N5: what ingest URL fetches --------------------------------------------------------


class _Hostile(SimpleHTTPRequestHandler):
    """Files from a folder, plus ``/lento.vtt`` (one byte every 2 s) and ``/sem-fim.mp3`` (never ends)."""

    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/lento.vtt"):
            self._trickle()
        elif self.path.startswith("/sem-fim.mp3"):
            self._endless()
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        if self.path.startswith("/sem-fim.mp3"):
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.end_headers()
        else:
            super().do_HEAD()

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/vtt")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for byte in (VTT * 1000).encode()[:100_000]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(2)
        except OSError:
            pass

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.end_headers()
        frame = self.server.mp3_bytes  # type: ignore[attr-defined]
        try:
            while True:
                self.wfile.write(frame)
        except OSError:
            pass


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path_factory.mktemp("hostile-site")
    mp3 = root / "tom.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=20", "-b:a", "64k", str(mp3)],
        check=True,
        timeout=60,
    )
    (root / "aula.pt.vtt").write_text(VTT, encoding="utf-8")
    page = '<html><head><title>{title}</title></head><body><video controls><source src="tom.mp3" type="audio/mpeg">'
    page += '<track kind="captions" srclang="pt" src="{track}" label="Português"></video></body></html>'
    (root / "aula.html").write_text(page.format(title="Aula", track="aula.pt.vtt"), encoding="utf-8")
    (root / "lenta.html").write_text(page.format(title="Lenta", track="lento.vtt"), encoding="utf-8")
    requests: list[str] = []
    handler = type("Handler", (_Hostile,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.mp3_bytes = mp3.read_bytes()  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_pages_and_tracks_are_refused_unless_allowed(hostile: tuple[str, list[str]], tmp_path: Path) -> None:
    base, requests = hostile
    requests.clear()
    store = tmp_path / "store"
    refused = run_cli("ingest", f"{base}/aula.html", "--no-index", store=store, timeout=120)
    assert refused.returncode == 1
    assert "endereço recusado" in " ".join(refused.stderr.split()) and "allow_private_urls" in refused.stderr
    assert requests == [] and _videos(store) == {}  # nothing was even asked of the local service

    allowed = run_cli("ingest", f"{base}/aula.html", "--no-index", store=store, env=ALLOW_LOOPBACK, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert [v["transcript_source"] for v in _videos(store).values()] == ["captions:uploaded"]


def test_a_trickling_caption_server_meets_the_deadline(hostile: tuple[str, list[str]], tmp_path: Path) -> None:
    base, _ = hostile
    env = {**ALLOW_LOOPBACK, "LECTURE_RAG_INGEST__FETCH_DEADLINE_SECONDS": "4"}
    started = time.monotonic()
    result = run_cli("ingest", f"{base}/lenta.html", "--no-index", store=tmp_path / "store", env=env, timeout=90)
    assert result.returncode == 1
    assert "fetch_deadline_seconds" in " ".join(result.stderr.split())
    assert time.monotonic() - started < 60


def _leftovers(tmp: Path) -> list[Path]:
    return [p for p in tmp.rglob("*") if p.is_file()]


def test_an_endless_download_stops_at_the_cap_and_leaves_nothing(
    hostile: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, _ = hostile
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**ALLOW_LOOPBACK, "LECTURE_RAG_INGEST__MAX_DOWNLOAD_MB": "5", "TMPDIR": str(tmp)}
    result = run_cli("ingest", f"{base}/sem-fim.mp3", "--no-index", store=tmp_path / "store", env=env, timeout=120)
    assert result.returncode == 1
    assert "max_download_mb" in " ".join(result.stderr.split())
    assert _leftovers(tmp) == []


def test_sigterm_during_a_download_removes_the_partial_file(hostile: tuple[str, list[str]], tmp_path: Path) -> None:
    base, _ = hostile
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**ALLOW_LOOPBACK, "TMPDIR": str(tmp)}
    args = [EXE, "ingest", f"{base}/sem-fim.mp3", "--no-index"]
    with subprocess.Popen(
        args, env=cli_env(tmp_path / "store", env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum(p.stat().st_size for p in _leftovers(tmp)) < 20 * 2**20:
            time.sleep(0.2)
        assert sum(p.stat().st_size for p in _leftovers(tmp)) >= 20 * 2**20, "the download never started"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert _leftovers(tmp) == []


# --- N4: long audio --------------------------------------------------------------------------------


def _silence(path: Path, seconds: int) -> Path:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds),
         "-c:a", "libopus", "-b:a", "6k", str(path)],
        check=True, timeout=300,
    )  # fmt: skip
    return path


def test_audio_longer_than_the_maximum_is_refused_before_decoding(tmp_path: Path) -> None:
    audio = _silence(tmp_path / "longa.opus", 180)
    env = {"LECTURE_RAG_TRANSCRIPTION__MAX_DURATION_HOURS": "0.01"}  # 36 s: a short file keeps the test fast
    started = time.monotonic()
    result = run_cli("ingest", str(audio), "--no-index", store=tmp_path / "store", env=env, timeout=120)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "max_duration_hours" in message and "3 min" in message and "0.01 h" in message
    assert time.monotonic() - started < 30  # no model loaded, nothing decoded


_PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@pytest.mark.slow
def test_two_hours_of_audio_are_heard_in_bounded_memory(tmp_path: Path) -> None:
    """Decoded whole, 2 h of audio took about 1.6 GB; in chunks the peak does not grow with the duration."""
    audio = _silence(tmp_path / "duas-horas.opus", 2 * 3600)
    args = [sys.executable, "-c", _PEAK_RSS, EXE, "ingest", str(audio), "--no-index"]
    measured = subprocess.run(args, env=cli_env(tmp_path / "store"), capture_output=True, text=True, timeout=1200)
    peak_mb = int(measured.stdout.strip()) / 1024
    assert peak_mb < 1000, f"peak RSS {peak_mb:.0f} MB"


# --- speech of several speakers, one speaker after the other -----------------------------------------


def _first_pass(name: str) -> list[dict[str, str]]:
    """A NURC lecture's first segmentation (the file holds it twice: the second restarts near 0 s)."""
    with shared("nurc-sp", "transcripts", name).open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter=";") if r["text"].strip()]
    out: list[dict[str, str]] = []
    for row in rows:
        if out and _seconds(row["start_sec"]) < _seconds(out[-1]["start_sec"]) - 60:
            break
        out.append(row)
    return out


def _seconds(value: str) -> float:
    return float(value.replace(",", "."))


def test_a_dialogue_listed_one_speaker_after_the_other_keeps_its_speech(tmp_path: Path) -> None:
    """The NURC-SP dialogues (SP_D2_*, SP_DID_*) list each speaker's lines in time order, one speaker after the other.

    The shared data has only the EF lectures, so a dialogue is built from two real
    transcripts: their sentences take turns in time (with one in five of B's
    starting a second before A stops: overlapping speech), and the file lists
    all of A's lines, then all of B's, as the NURC layout does.
    """
    a, b = _first_pass("sentences_SP_EF_405.csv")[:150], _first_pass("sentences_SP_EF_153.csv")[:150]
    clock = 0.0
    lines: dict[str, list[tuple[float, float, str]]] = {"A": [], "B": []}
    for turn, (line_a, line_b) in enumerate(zip(a, b, strict=True)):
        for speaker, row in (("A", line_a), ("B", line_b)):
            length = max(0.5, _seconds(row["end_sec"]) - _seconds(row["start_sec"]))
            start = clock - (1.0 if speaker == "B" and turn % 5 == 0 else 0.0)
            lines[speaker].append((start, start + length, row["text"]))
            clock = start + length + 0.3
    path = tmp_path / "SP_D2_999.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["start_sec", "end_sec", "speaker", "text"])
        for speaker in ("A", "B"):
            for start, end, text in lines[speaker]:
                writer.writerow([f"{start:.3f}".replace(".", ","), f"{end:.3f}".replace(".", ","), speaker, text])
    spoken = sum(len("".join(text.split())) for rows in lines.values() for _, _, text in rows)

    store = tmp_path / "store"
    result = run_cli("ingest", str(path), "--no-index", "--window", "60", "--overlap", "0", store=store)
    assert result.returncode == 0, result.stderr
    shown = json.loads(run_cli("corpus", "show", "SP_D2_999", "--json", store=store).stdout)
    kept = sum(len("".join(str(s["text"]).split())) for s in shown)  # letters, not the spaces between cues
    assert kept >= 0.95 * spoken, f"kept {kept} of {spoken} characters"
