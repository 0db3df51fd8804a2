"""A segment's timed pieces: from cue marks when stored, interpolated otherwise."""

from __future__ import annotations

from lecture_rag.records import Hit, Segment


def _segment(text: str, marks: tuple[tuple[float, int], ...] = ()) -> Segment:
    return Segment(corpus_id=1, video_id="v", start=100.0, end=220.0, text=text, marks=marks)


def test_pieces_follow_the_cue_marks() -> None:
    text = "primeira frase aqui segunda frase terceira"
    seg = _segment(text, ((100.0, 0), (130.5, text.index("segunda")), (200.0, text.index("terceira"))))
    pieces = seg.pieces()
    assert [p.text for p in pieces] == ["primeira frase aqui", "segunda frase", "terceira"]
    assert [p.start for p in pieces] == [100.0, 130.5, 200.0]
    assert [p.end for p in pieces] == [130.5, 200.0, 220.0]


def test_without_marks_pieces_are_interpolated_along_the_text() -> None:
    words = [f"w{i}" for i in range(60)]
    seg = _segment(" ".join(words))
    pieces = seg.pieces()
    assert len(pieces) == 3  # 20 words each
    assert pieces[0].start == 100.0
    assert 100.0 < pieces[1].start < pieces[2].start < 220.0
    assert " ".join(p.text for p in pieces) == seg.text


def test_marks_that_do_not_fit_the_text_are_ignored() -> None:
    text = "um dois tres"
    broken = ((100.0, 0), (150.0, 999))  # offset beyond the text
    assert [p.text for p in _segment(text, broken).pieces()] == ["um dois tres"]
    unordered = ((100.0, 0), (150.0, 8), (160.0, 3))
    assert len(_segment(text, unordered).pieces()) == 1


def test_cite_start_outside_the_window_falls_back_to_its_start() -> None:
    hit = Hit(corpus_id=1, video_id="v", start=10.0, end=130.0, text="x", video_url="https://youtu.be/abcdefghijk")
    assert hit.cite_start == 10.0
    inside = Hit(corpus_id=1, video_id="v", start=10.0, end=130.0, text="x", cite_start=61.5,
                 video_url="https://youtu.be/abcdefghijk")  # fmt: skip
    assert inside.cite_url.endswith("t=61s") or "t=61" in inside.cite_url
    outside = Hit(corpus_id=1, video_id="v", start=10.0, end=130.0, text="x", cite_start=500.0)
    assert outside.cite_start == 10.0 and outside.cite_url == ""


def test_the_cited_text_is_the_piece_the_cited_second_falls_in() -> None:
    """An extractive quote may start inside a long utterance (cut into ~15-word spans): the page still
    highlights that utterance; a hit without cue marks highlights nothing."""
    text = "primeira frase aqui segunda frase terceira"
    marks = ((100.0, 0), (130.5, text.index("segunda")), (200.0, text.index("terceira")))
    hit = Hit(corpus_id=1, video_id="v", start=100.0, end=220.0, text=text, marks=marks, cite_start=130.5)
    assert hit.cite_text == "segunda frase"
    hit.cite_start = 150.25  # inside the second utterance
    assert hit.cite_text == "segunda frase"
    hit.cite_start = 205.0
    assert hit.cite_text == "terceira"
    assert Hit(corpus_id=1, video_id="v", start=100.0, end=220.0, text=text, cite_start=150.0).cite_text == ""
