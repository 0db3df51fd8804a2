"""Video ids from a sidecar ``NAME.json`` or the ``videos.csv`` manifest follow the file-name rule (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecture_rag.config import SegmentationSettings
from lecture_rag.errors import IngestError
from lecture_rag.ingest.pipeline import IngestOptions, VideoMeta, file_meta, ingest_file, ingest_paths, load_manifest
from lecture_rag.store import Store

HOSTILE_IDS = [
    ("../../etc/<b>aula 1</b>", "..-..-etc-b-aula-1-b"),
    ("aula\n<script>alert(1)</script>", "aula-script-alert-1-script"),
    ("[[x]] [bold]aula[/bold]", "x-bold-aula-bold"),
    ("aula_01.v2", "aula_01.v2"),
]


@pytest.mark.parametrize(("given", "expected"), HOSTILE_IDS)
def test_sidecar_video_id_is_sanitised_like_a_file_name(tmp_path: Path, given: str, expected: str) -> None:
    transcript = tmp_path / "aula.srt"
    transcript.write_text("1\n00:00:01,000 --> 00:00:02,000\noi\n", encoding="utf-8")
    transcript.with_suffix(".json").write_text(json.dumps({"video_id": given, "title": "T"}), encoding="utf-8")
    meta = file_meta(transcript, {})
    assert meta.video_id == expected


@pytest.mark.parametrize(("given", "expected"), HOSTILE_IDS)
def test_manifest_video_id_is_sanitised_like_a_file_name(tmp_path: Path, given: str, expected: str) -> None:
    escaped = given.replace('"', '""')
    (tmp_path / "videos.csv").write_text(f'file,video_id,title\naula.srt,"{escaped}",T\n', encoding="utf-8")
    manifest = load_manifest(tmp_path)
    assert manifest["aula.srt"].video_id == expected
    assert file_meta(tmp_path / "aula.srt", manifest).video_id == expected


@pytest.mark.parametrize("given", ["<>", "///", "  "])
def test_an_id_with_nothing_safe_left_falls_back_to_the_file_name(tmp_path: Path, given: str) -> None:
    transcript = tmp_path / "aula-7.srt"
    transcript.with_suffix(".json").write_text(json.dumps({"video_id": given, "title": "T"}), encoding="utf-8")
    assert file_meta(transcript, {}).video_id is None
    (tmp_path / "videos.csv").write_text(f'file,video_id\naula-7.srt,"{given}"\n', encoding="utf-8")
    assert load_manifest(tmp_path)["aula-7.srt"].video_id is None


@pytest.mark.parametrize(("given", "expected"), HOSTILE_IDS)
def test_the_video_id_flag_follows_the_same_rule(tmp_path: Path, given: str, expected: str) -> None:
    """``ingest --video-id`` reaches ``ingest_file`` as the user typed it: the same rule applies there."""
    transcript = tmp_path / "aula.srt"
    transcript.write_text("1\n00:00:01,000 --> 00:00:02,000\noi\n", encoding="utf-8")
    with Store(tmp_path / "store") as store:
        result = ingest_file(store, transcript, VideoMeta(video_id=given), IngestOptions(SegmentationSettings()))
        assert result.video_id == expected
        assert [v.video_id for v in store.list_videos()] == [expected]


def test_files_of_one_batch_stored_as_one_video_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    """Two transcripts the manifest stores as one video: the second would silently replace the first (N12).

    The batch is refused up front, naming both files and the ways out, and
    the store keeps what it held (b's version from an earlier ingest).
    """
    folder = tmp_path / "aulas"
    folder.mkdir()
    for name, text in (("a.srt", "primeira versão"), ("b.srt", "segunda versão")):
        (folder / name).write_text(f"1\n00:00:01,000 --> 00:00:03,000\n{text}\n", encoding="utf-8")
    (folder / "videos.csv").write_text("file,video_id\na.srt,aula\nb.srt,aula\n", encoding="utf-8")
    options = IngestOptions(SegmentationSettings())
    with Store(tmp_path / "store") as store:
        ingest_paths(store, [folder / "b.srt"], options)  # the store holds b's version
        with pytest.raises(IngestError) as refused:
            ingest_paths(store, [folder], options)
        assert "a.srt" in str(refused.value) and "b.srt" in str(refused.value) and "video_id" in str(refused.value)
        (segment,) = store.segments("aula")
        assert segment.text == "segunda versão"
