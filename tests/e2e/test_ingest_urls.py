"""``lecture-rag ingest URL`` through yt-dlp against a real HTTP server on 127.0.0.1 (no network).

The server (the standard library's) serves files made in a temporary
folder from real data: speech synthesised from NURC-SP lecture lines
(espeak-ng pt-br, in an mp4 with a picture track) and a WebVTT caption file
cut from a NURC human transcript with its real times. yt-dlp's generic
extractor reads an HTML page with a ``<video>`` and its ``<track>`` (the
uploaded captions) and direct media links (no captions: audio + Whisper).
"""

from __future__ import annotations

import csv
import functools
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.paths import shared
from tests.support.speech import nurc_sentences, synthesise


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These servers live on 127.0.0.1, which ingest refuses by default ([ingest] allow_private_urls)."""
    monkeypatch.setenv("LECTURE_RAG_INGEST__ALLOW_PRIVATE_URLS", "true")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _vtt_from_nurc(out: Path, rows: int = 40) -> list[str]:
    """The first ``rows`` lines of a NURC lecture as WebVTT, with their real times; returns the texts."""
    with shared("nurc-sp", "transcripts", "sentences_SP_EF_405.csv").open(encoding="utf-8") as handle:
        lines = [r for r in csv.DictReader(handle, delimiter=";") if r["text"].strip()][:rows]

    def clock(value: str) -> str:
        seconds = float(value.replace(",", "."))
        return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"

    cues = [f"{clock(r['start_sec'])} --> {clock(r['end_sec'])}\n{r['text']}\n" for r in lines]
    out.write_text("WEBVTT\n\n" + "\n".join(cues), encoding="utf-8")
    return [r["text"] for r in lines]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path_factory.mktemp("site")
    spoken = synthesise(nurc_sentences(1), root / "fala.wav", gap=1.0, speed=120)
    black = ("-f", "lavfi", "-i", "color=c=black:s=64x64:r=5")
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-y"]
    subprocess.run([*ffmpeg, *black, "-i", str(spoken.path), "-c:v", "libx264", "-c:a", "aac", "-shortest",
                    str(root / "aula-sem-legenda.mp4")], check=True, timeout=120)  # fmt: skip
    subprocess.run([*ffmpeg, *black, "-t", "2", "-c:v", "libx264", str(root / "muda.mp4")], check=True, timeout=60)
    whole = (root / "aula-sem-legenda.mp4").read_bytes()
    (root / "cortada.mp4").write_bytes(whole[: len(whole) // 2])
    captions = _vtt_from_nurc(root / "aula.pt.vtt")
    (root / "aula.html").write_text(
        "<html><head><title>Pré-História</title></head><body><video controls>"
        '<source src="aula-sem-legenda.mp4" type="video/mp4">'
        '<track kind="captions" srclang="pt" src="aula.pt.vtt" label="Português"></video></body></html>',
        encoding="utf-8",
    )
    # A course page with two lectures (yt-dlp reads it as a playlist of two), each with its own captions.
    _vtt_from_nurc(root / "aula2.pt.vtt", rows=20)
    (root / "curso.html").write_text(
        "<html><head><title>Curso</title></head><body>"
        + "".join(
            f'<video controls><source src="{media}" type="video/mp4"><track kind="captions" srclang="pt" '
            f'src="{vtt}" label="Português"></video>'
            for media, vtt in (("aula-sem-legenda.mp4", "aula.pt.vtt"), ("muda.mp4", "aula2.pt.vtt"))
        )
        + "</body></html>",
        encoding="utf-8",
    )
    (root / "vazia.html").write_text("<html><head><title>Nada</title></head><body><p>sem vídeo</p></body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, captions
    finally:
        server.shutdown()
        server.server_close()


def _videos(store: Path) -> dict[str, dict[str, object]]:
    result = run_cli("corpus", "list", "--json", store=store)
    assert result.returncode == 0, result.stderr
    return {str(v["video_id"]): v for v in json.loads(result.stdout)}


def _segments(store: Path, video: str) -> list[dict[str, object]]:
    return list(json.loads(run_cli("corpus", "show", video, "--json", store=store).stdout))


@pytest.mark.slow
def test_captions_first_audio_otherwise_failures_reported_and_rerun_is_a_noop(
    site: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, _, captions = site
    store = tmp_path / "store"
    urls = [f"{base}/aula.html", f"{base}/nao-existe.mp4", f"{base}/aula-sem-legenda.mp4"]
    first = run_cli("ingest", *urls, "--no-index", "--course", "História", store=store)
    assert first.returncode == 1, first.stderr  # one URL failed
    assert f"Falhou: {base}/nao-existe.mp4" in first.stderr.replace("\n", " ")
    assert "404" in first.stderr

    videos = _videos(store)
    assert sorted(videos) == ["aula-1", "aula-sem-legenda"]
    page, audio = videos["aula-1"], videos["aula-sem-legenda"]
    assert page["transcript_source"] == "captions:uploaded" and page["language"] == "pt"
    assert page["source_label"] == "legendas enviadas pelo autor"
    assert page["url"] == f"{base}/aula.html" and str(page["title"]).startswith("Pré-História")
    assert page["course"] == "História" and len(str(page["upload_date"])) == 10  # from Last-Modified
    text = " ".join(str(s["text"]) for s in _segments(store, "aula-1"))
    assert captions[0] in text and captions[-1] in text  # the caption file, not the synthetic speech

    assert audio["transcript_source"] == "whisper:base" and audio["language"] == "pt"
    assert audio["url"] == f"{base}/aula-sem-legenda.mp4"
    [segment] = _segments(store, "aula-sem-legenda")
    assert len(str(segment["text"]).split()) >= 5 and str(segment["url"]).startswith(f"{base}/aula-sem-legenda.mp4#t=")

    shown = run_cli("corpus", "show", "aula-sem-legenda", store=store).stdout
    assert "Transcrição: transcrição automática (Whisper base)" in " ".join(shown.split())

    before = run_cli("corpus", "show", "aula-1", "--json", store=store).stdout
    again = run_cli("ingest", *urls, "--no-index", "--course", "História", store=store)
    assert again.returncode == 1
    assert again.stdout.count("sem mudança") == 2
    assert run_cli("corpus", "show", "aula-1", "--json", store=store).stdout == before


def test_bad_urls_are_reported_by_name_and_nothing_is_stored(site: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    base, _, _ = site
    store = tmp_path / "store"
    cases = {
        f"{base}/vazia.html": "endereço não suportado",
        f"{base}/muda.mp4": "não tem faixa de áudio",
        f"{base}/cortada.mp4": "corrompido",
        "ftp://127.0.0.1/aula.mp4": "só endereços http:// ou https://",
    }
    result = run_cli("ingest", *cases, "--no-index", store=store)
    assert result.returncode == 1
    stderr = " ".join(result.stderr.split())
    for url, reason in cases.items():
        assert f"Falhou: {url}" in stderr and reason in stderr, (url, stderr)
    assert "Traceback" not in result.stderr
    assert _videos(store) == {}


def test_unknown_language_is_refused_before_anything_is_downloaded(
    site: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, _, _ = site
    store = tmp_path / "store"
    result = run_cli("ingest", f"{base}/aula-sem-legenda.mp4", "--language", "xx", "--no-index", store=store)
    assert result.returncode == 1
    assert "Idioma 'xx' desconhecido" in " ".join(result.stderr.split())
    assert _videos(store) == {}


def test_a_playlist_bar_counts_its_videos(site: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    """Two videos on the page: the bar ends at 2/2, not 2/3 (the playlist itself is not one more video)."""
    base, _, _ = site
    store = tmp_path / "store"
    result = run_cli("ingest", f"{base}/curso.html", "--no-index", store=store)
    assert result.returncode == 0, result.stderr
    assert sorted(_videos(store)) == ["curso-1", "curso-2"]
    [bar] = [line for line in result.stderr.splitlines() if line.startswith("Vídeos")]
    assert re.search(r"\s2/2\s", bar), bar


def test_a_manifest_titles_a_video_by_its_url_on_the_first_ingest(
    site: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    """The manifest's title and course for a URL were applied only to a video already stored."""
    base, _, _ = site
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"url,title,course\n{base}/aula.html,Aula 3: a arte rupestre,História da Arte\n", "utf-8")
    store = tmp_path / "store"
    result = run_cli("ingest", f"{base}/aula.html", "--manifest", str(manifest), "--no-index", store=store)
    assert result.returncode == 0, result.stderr
    [video] = _videos(store).values()
    assert (video["title"], video["course"]) == ("Aula 3: a arte rupestre", "História da Arte")
