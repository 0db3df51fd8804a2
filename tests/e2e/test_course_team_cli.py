"""The course team's side through the real CLI (issue 25): what a person enters is kept, manifests, one dialect.

Each test is a defect seen by a course team; each failed before its fix.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.paths import FIXTURES, shared

SRT = "1\n00:00:01,000 --> 00:00:04,000\n{text}\n"


def _videos(store: Path) -> dict[str, dict[str, object]]:
    result = run_cli("corpus", "list", "--json", store=store)
    assert result.returncode == 0, result.stderr
    return {str(v["video_id"]): v for v in json.loads(result.stdout)}


def _srt(path: Path, text: str) -> Path:
    path.write_text(SRT.format(text=text), encoding="utf-8")
    return path


def test_reingest_after_a_caption_fix_keeps_title_and_course_and_says_what_changed(tmp_path: Path) -> None:
    aula = _srt(tmp_path / "aula.srt", "a fotossíntese acontece no cloroplasto")
    store = tmp_path / "s"
    first = run_cli(
        "ingest", str(aula), "--title", "Aula 1: fotossíntese", "--course", "Biologia Celular", "--no-index",
        store=store,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    _srt(aula, "a fotossíntese acontece nos cloroplastos")  # the captions were corrected
    again = run_cli("ingest", str(aula), "--no-index", store=store)
    assert again.returncode == 0, again.stderr
    video = _videos(store)["aula"]
    assert (video["title"], video["course"]) == ("Aula 1: fotossíntese", "Biologia Celular")
    # A flag changes it, and the change is said, one line per field.
    third = run_cli("ingest", str(aula), "--course", "Biologia", "--no-index", store=store)
    assert third.returncode == 0, third.stderr
    assert "aula: curso: 'Biologia Celular' → 'Biologia'" in third.stdout
    assert "título" not in third.stdout
    assert _videos(store)["aula"]["course"] == "Biologia"


def test_corpus_edit_is_kept_on_reingest(tmp_path: Path) -> None:
    aula = _srt(tmp_path / "aula.srt", "texto da aula")
    store = tmp_path / "s"
    assert run_cli("ingest", str(aula), "--no-index", store=store).returncode == 0
    edited = run_cli(
        "corpus", "edit", "aula", "--title", "Aula 2: mitose", "--course", "Biologia", "--url",
        "https://media.example.edu/aula2.mp4", store=store,
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "aula: título: 'aula' → 'Aula 2: mitose'" in edited.stdout
    _srt(aula, "texto da aula corrigido")
    assert run_cli("ingest", str(aula), "--no-index", store=store).returncode == 0
    video = _videos(store)["aula"]
    assert (video["title"], video["course"], video["url"]) == (
        "Aula 2: mitose", "Biologia", "https://media.example.edu/aula2.mp4",
    )  # fmt: skip
    missing = run_cli("corpus", "edit", "nao-existe", "--title", "x", store=store)
    assert missing.returncode == 2 and "corpus list" in missing.stderr


def test_title_and_video_id_with_a_url_are_refused_not_ignored(tmp_path: Path) -> None:
    for flag in ("--title", "--video-id"):
        result = run_cli("ingest", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", flag, "x", store=tmp_path / "s")
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{flag} vale(m) só para um arquivo" in result.stderr and "corpus edit" in result.stderr
        assert "Traceback" not in result.stderr
    folder = tmp_path / "pasta"
    folder.mkdir()
    _srt(folder / "a.srt", "um")
    result = run_cli("ingest", str(folder), "--title", "x", store=tmp_path / "s")
    assert result.returncode == 2 and "manifesto" in result.stderr


def test_asr_transcript_does_not_silently_replace_the_human_one(tmp_path: Path) -> None:
    store = tmp_path / "s"
    human = shared("nurc-sp", "transcripts", "sentences_SP_EF_405.csv")
    asr = shared("nurc-sp", "asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv")
    assert run_cli("ingest", str(human), "--no-index", store=store).returncode == 0
    before = run_cli("corpus", "show", "SP_EF_405", "--json", store=store).stdout
    refused = run_cli("ingest", str(asr), "--no-index", store=store)
    assert refused.returncode == 1
    assert "já tem transcrição humana (CSV NURC)" in refused.stderr and "--video-id SP_EF_405-asr" in refused.stderr
    assert run_cli("corpus", "show", "SP_EF_405", "--json", store=store).stdout == before
    # Both kept, as the message says; the labels tell them apart.
    both = run_cli("ingest", str(asr), "--video-id", "SP_EF_405-asr", "--no-index", store=store)
    assert both.returncode == 0, both.stderr
    videos = _videos(store)
    assert videos["SP_EF_405"]["source_label"] == "transcrição humana (CSV NURC)"
    assert videos["SP_EF_405-asr"]["source_label"] == "transcrição automática (ASR, CSV NURC)"


def test_course_manifest_gives_the_nurc_sample_its_titles(tmp_path: Path) -> None:
    store = tmp_path / "s"
    manifest = FIXTURES / "nurc" / "lecture-rag.toml"
    result = run_cli(
        "ingest", str(shared("nurc-sp", "transcripts")), "--manifest", str(manifest), "--no-index", store=store
    )
    assert result.returncode == 0, result.stderr
    videos = _videos(store)
    assert videos["SP_EF_405"]["title"] == "Pré-história: o paleolítico"
    assert {v["course"] for v in videos.values()} == {"NURC-SP: elocuções formais"}
    assert not any(str(v["title"]).startswith("sentences_") for v in videos.values())


def test_manifest_in_the_folder_sets_titles_courses_and_media_urls(tmp_path: Path) -> None:
    folder = tmp_path / "curso"
    folder.mkdir()
    for name in ("aula1", "aula2"):
        _srt(folder / f"{name}.srt", f"conteúdo da {name}")
    (folder / "manifest.csv").write_text(
        "file,title,course,media_url,language\n"
        "aula1.srt,Aula 1: células,Biologia Celular,https://media.example.edu/aula1.mp4,pt\n"
        "aula2.srt,Aula 2: membranas,Biologia Celular,,pt\n",
        encoding="utf-8",
    )
    result = run_cli("ingest", str(folder), "--no-index", store=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    assert "manifest.csv" not in result.stderr  # a manifest is metadata, not an unsupported transcript
    videos = _videos(tmp_path / "s")
    assert videos["aula1"]["title"] == "Aula 1: células" and videos["aula2"]["title"] == "Aula 2: membranas"
    assert videos["aula1"]["url"] == "https://media.example.edu/aula1.mp4"
    assert {v["course"] for v in videos.values()} == {"Biologia Celular"}
    (folder / "lecture-rag.toml").write_text(
        'course = "Biologia"\n[[lecture]]\nfile = "aula2.srt"\ntitle = "Aula 2: a membrana"\n', encoding="utf-8"
    )
    (folder / "manifest.csv").unlink()
    again = run_cli("ingest", str(folder), "--no-index", store=tmp_path / "s")
    assert again.returncode == 0, again.stderr
    assert "aula2: título: 'Aula 2: membranas' → 'Aula 2: a membrana'" in again.stdout
    assert _videos(tmp_path / "s")["aula1"]["title"] == "Aula 1: células"  # not in this manifest: kept


def test_corpus_remove_asks_before_removing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    assert run_cli("ingest", str(_srt(tmp_path / "aula.srt", "texto")), "--no-index", store=store).returncode == 0
    refused = run_cli("corpus", "remove", "aula", "--no-index", store=store)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "aula" in _videos(store)
    done = run_cli("corpus", "remove", "aula", "--no-index", "--yes", store=store)
    assert done.returncode == 0 and "Removido: aula" in done.stdout


def test_ingest_ends_with_what_to_do_next(tmp_path: Path) -> None:
    result = run_cli("ingest", str(_srt(tmp_path / "aula.srt", "texto")), "--no-index", store=tmp_path / "s")
    assert result.returncode == 0
    assert "Próximo passo: 'lecture-rag index'" in " ".join(result.stderr.split())
