"""Ingest remembers each lecture's local recording, and maps a folder of recordings to the course's base URL."""

from __future__ import annotations

from pathlib import Path

from lecture_rag.config import SegmentationSettings
from lecture_rag.ingest.pipeline import IngestOptions, hosted_url, ingest_paths, media_file
from lecture_rag.store import Store
from tests.support.transcripts import srt_text

CUES = [(0, 20, "Hoje estudamos a fotossíntese nas folhas."), (20, 40, "A clorofila absorve a luz do sol.")]


def _course(root: Path) -> Path:
    """semana1/aula1.srt beside its recording aula1.mp4; semana2/aula2.srt with none."""
    (root / "semana1").mkdir(parents=True)
    (root / "semana2").mkdir()
    (root / "semana1" / "aula1.srt").write_text(srt_text(CUES), encoding="utf-8")
    (root / "semana1" / "aula1.mp4").write_bytes(b"\0" * 16)
    (root / "semana2" / "aula2.srt").write_text(srt_text(CUES), encoding="utf-8")
    return root


def test_a_transcript_plays_its_same_named_recording_and_a_recording_plays_itself(tmp_path: Path) -> None:
    course = _course(tmp_path / "curso")
    assert media_file(course / "semana1" / "aula1.srt") == (course / "semana1" / "aula1.mp4").resolve()
    assert media_file(course / "semana1" / "aula1.mp4") == (course / "semana1" / "aula1.mp4").resolve()
    assert media_file(course / "semana2" / "aula2.srt") is None


def test_a_hosted_url_is_the_base_plus_the_path_inside_the_ingested_folder(tmp_path: Path) -> None:
    media = tmp_path / "curso" / "semana 1" / "aula1.mp4"
    assert hosted_url("https://midia.ufsc.br/calc/", media, tmp_path / "curso") == (
        "https://midia.ufsc.br/calc/semana%201/aula1.mp4"
    )
    assert hosted_url("https://midia.ufsc.br/calc", media, tmp_path / "outro") == "https://midia.ufsc.br/calc/aula1.mp4"


def test_ingest_stores_the_recording_path_and_the_hosted_url(tmp_path: Path) -> None:
    course = _course(tmp_path / "curso")
    options = IngestOptions(SegmentationSettings(), media_base_url="https://midia.ufsc.br/calc/")
    with Store(tmp_path / "store") as store:
        report = ingest_paths(store, [course], options)
        assert not report.failed, report.failed
        assert sorted(r.video_id for r in report.done) == ["aula1", "aula2"]  # the recording is not a 2nd lecture
        one, two = store.get_video("aula1"), store.get_video("aula2")
    assert one is not None and two is not None
    assert one.media_path == str((course / "semana1" / "aula1.mp4").resolve())
    assert one.url == "https://midia.ufsc.br/calc/semana1/aula1.mp4"
    assert two.media_path == "" and two.url == ""  # no recording: nothing to play, no URL invented


def test_a_recording_placed_beside_an_ingested_transcript_is_stored_by_the_next_ingest(tmp_path: Path) -> None:
    course = _course(tmp_path / "curso")
    options = IngestOptions(SegmentationSettings())
    with Store(tmp_path / "store") as store:
        ingest_paths(store, [course / "semana2" / "aula2.srt"], options)
        (course / "semana2" / "aula2.webm").write_bytes(b"\0")
        report = ingest_paths(store, [course / "semana2" / "aula2.srt"], options)
        video = store.get_video("aula2")
    assert [r.status for r in report.done] == ["replaced"]
    assert video is not None and video.media_path == str((course / "semana2" / "aula2.webm").resolve())
