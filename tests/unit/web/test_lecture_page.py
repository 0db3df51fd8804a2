"""The lecture page's transcript lines and cited line, and which URL a lecture plays (no sockets)."""

from __future__ import annotations

from pathlib import Path

from lecture_rag.records import Piece, Segment, Video
from lecture_rag.store import Store
from lecture_rag.web.media import MediaLinks, content_type, local_media
from lecture_rag.web.pages import cited_line, transcript_lines


def _window(start: float, cues: list[tuple[float, str]]) -> Segment:
    text, marks, offset = "", [], 0
    for second, words in cues:
        marks.append((second, offset))
        text += words + " "
        offset = len(text)
    return Segment(0, "v", start, cues[-1][0] + 5, text.strip(), marks=tuple(marks))


def test_overlapping_windows_give_each_line_once_in_order() -> None:
    first = _window(0, [(0, "um"), (5, "dois"), (10, "três")])
    second = _window(10, [(10, "três"), (15, "quatro")])
    lines = transcript_lines([second, first])
    assert [(p.start, p.text) for p in lines] == [(0, "um"), (5, "dois"), (10, "três"), (15, "quatro")]


def test_the_cited_line_holds_the_whole_second_a_link_carries() -> None:
    lines = [Piece(0.0, 5.9, "a"), Piece(5.98, 12.4, "b"), Piece(12.44, 18, "c")]
    assert cited_line(lines, 12) == 2  # #t=12 of a line said at 12.44 s
    assert cited_line(lines, 11) == 1 and cited_line(lines, 0) == 0 and cited_line(lines, 999) == 2
    assert cited_line(lines, None) == -1 and cited_line([], 3) == -1


def test_a_lecture_plays_its_url_its_hosted_relative_url_or_its_local_recording(tmp_path: Path) -> None:
    recording = tmp_path / "aula.webm"
    recording.write_bytes(b"\0")
    with Store(tmp_path / "store") as store:
        links = MediaLinks(store, "http://127.0.0.1:8000/", "https://midia.ufsc.br/calc/")
        assert links.url_of("x", "https://youtu.be/dQw4w9WgXcQ") == "https://youtu.be/dQw4w9WgXcQ"
        assert links.url_of("x", "semana1/aula1.mp4") == "https://midia.ufsc.br/calc/semana1/aula1.mp4"
        assert links.url_of("nao-existe", "") == ""
    assert local_media(Video("v", media_path=str(recording))) == recording
    assert local_media(Video("v", media_path=str(tmp_path / "apagado.mp4"))) is None
    assert local_media(Video("v", source_path=str(recording))) == recording  # a store from before media_path
    assert local_media(Video("v", source_path=str(tmp_path / "aula.srt"))) is None
    assert content_type(recording) == "video/webm" and content_type(Path("a.MP3")) == "audio/mpeg"
