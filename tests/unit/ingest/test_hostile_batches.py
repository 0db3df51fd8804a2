"""A folder with hostile files: each bad one is reported by name, the batch goes on, the good ones land."""

from __future__ import annotations

import json
from pathlib import Path

from lecture_rag.config import SegmentationSettings
from lecture_rag.ingest.pipeline import IngestOptions, ingest_paths
from lecture_rag.store import Store

GOOD = "1\n00:00:01,000 --> 00:00:04,000\numa aula boa\n"


def _ingest(store_dir: Path, *paths: Path) -> tuple[dict[str, str], list[str]]:
    with Store(store_dir) as store:
        report = ingest_paths(store, list(paths), IngestOptions(segmentation=SegmentationSettings()))
        ids = [video.video_id for video in store.list_videos()]
    return {path.name: reason for path, reason in report.failed}, ids


def test_deeply_nested_json_in_a_folder_is_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    """A nested JSON used to raise RecursionError out of the batch: no report, nothing after it ingested."""
    folder = tmp_path / "curso"
    folder.mkdir()
    (folder / "a_boa.srt").write_text(GOOD, encoding="utf-8")
    # small enough to be looked at as a possible sidecar (metadata) file, and large ones read as transcripts
    (folder / "b_lista.json").write_text("[" * 30_000 + "]" * 30_000, encoding="utf-8")
    (folder / "c_objetos.json").write_text('{"segments": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, encoding="utf-8")
    (folder / "d_eventos.json3").write_text('{"events": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    (folder / "e_linhas.jsonl").write_text('{"start": 0, "end": 1, "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (folder / "f_boa.srt").write_text(GOOD.replace("boa", "também boa"), encoding="utf-8")
    failed, ids = _ingest(tmp_path / "store", folder)
    assert sorted(failed) == ["b_lista.json", "c_objetos.json", "d_eventos.json3", "e_linhas.jsonl"]
    for name in ("c_objetos.json", "d_eventos.json3", "e_linhas.jsonl"):
        assert "aninhad" in failed[name], failed[name]
    assert ids == ["a_boa", "f_boa"]


def test_a_nested_sidecar_does_not_stop_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "curso"
    folder.mkdir()
    (folder / "aula.srt").write_text(GOOD, encoding="utf-8")
    (folder / "aula.json").write_text('{"title": ' + "[" * 30_000 + "]" * 30_000 + "}", encoding="utf-8")
    failed, ids = _ingest(tmp_path / "store", folder)
    assert ids == ["aula"]
    assert list(failed) == ["aula.json"] and "aninhad" in failed["aula.json"]


def test_an_unreadable_manifest_fails_its_folder_by_name_and_the_other_folders_go_on(tmp_path: Path) -> None:
    """A manifest the csv module chokes on used to stop the whole batch with a traceback."""
    broken, fine = tmp_path / "quebrada", tmp_path / "boa"
    for folder in (broken, fine):
        folder.mkdir()
        (folder / "aula.srt").write_text(GOOD, encoding="utf-8")
    # an opening quote never closed: the rest of the file is one field, beyond the csv module's limit
    (broken / "videos.csv").write_text('file,video_id,title\naula.srt,"' + "x" * 200_000 + "\n", encoding="utf-8")
    (fine / "videos.csv").write_text("file,video_id,title\naula.srt,aula-boa,Aula boa\n", encoding="utf-8")
    with Store(tmp_path / "store") as store:
        report = ingest_paths(store, [broken, fine], IngestOptions(segmentation=SegmentationSettings()))
        ids = [video.video_id for video in store.list_videos()]
    assert ids == ["aula-boa"]
    [(path, reason)] = report.failed
    assert path == broken / "aula.srt" and "videos.csv" in reason


def test_sidecar_metadata_still_applies(tmp_path: Path) -> None:
    folder = tmp_path / "curso"
    folder.mkdir()
    (folder / "aula.srt").write_text(GOOD, encoding="utf-8")
    (folder / "aula.json").write_text(json.dumps({"title": "Aula 1", "course": "MAC0460"}), encoding="utf-8")
    with Store(tmp_path / "store") as store:
        report = ingest_paths(store, [folder], IngestOptions(segmentation=SegmentationSettings()))
        [video] = store.list_videos()
    assert not report.failed and (video.title, video.course) == ("Aula 1", "MAC0460")
