"""Segmenter: duplicates dropped, order restored, windows at cue boundaries."""

from __future__ import annotations

import itertools

from lecture_rag.config import SegmentationSettings
from lecture_rag.ingest.segment import SegmentStats, clean_cues, windows
from lecture_rag.records import Cue, Segment


def _cues(n: int, step: float = 10.0, prefix: str = "w") -> list[Cue]:
    return [Cue(i * step, i * step + step - 0.5, f"{prefix}{i} fala") for i in range(n)]


def test_resegmented_second_pass_is_dropped() -> None:
    first = _cues(30)
    # the same speech cut finer, with times overlapping the first pass (as in NURC files)
    second = [Cue(c.start + 1, c.start + 4, "repetido") for c in first]
    stats = SegmentStats()
    out = list(clean_cues(first + second, stats))
    assert out == first
    assert stats.duplicates == len(second)


def test_out_of_order_cues_are_sorted_and_never_overlap() -> None:
    cues = _cues(20)
    shuffled = cues[5:10] + cues[:5] + cues[10:]
    out = list(clean_cues(shuffled))
    assert [c.text for c in out] == [c.text for c in cues]
    overlapping = [Cue(0, 10, "a"), Cue(8, 20, "b")]
    fixed = list(clean_cues(overlapping))
    assert fixed[1].start == 10 and fixed[1].text == "b"


def test_windows_cut_at_boundaries_and_cover_everything() -> None:
    settings = SegmentationSettings(window_seconds=120, max_window_seconds=180, overlap_seconds=0)
    cues = _cues(100)  # 1000 s of speech
    wins = list(windows(cues, settings))
    assert 7 <= len(wins) <= 9
    joined = " ".join(w.text for w in wins)
    assert joined == " ".join(c.text for c in cues)  # nothing lost, nothing repeated, no word cut
    for a, b in itertools.pairwise(wins):
        assert a.end <= b.start
    assert all(w.end - w.start <= 180 for w in wins)
    assert wins[0].start == cues[0].start  # Início is the first cue's start


def test_windows_mark_where_each_cue_begins() -> None:
    """Each mark is a cue's start second and the offset of its text, so a link can open at the sentence."""
    settings = SegmentationSettings(window_seconds=120, max_window_seconds=180, overlap_seconds=0)
    cues = _cues(100)
    by_start = {c.start: c.text for c in cues}
    for win in windows(cues, settings):
        assert win.marks[0] == (win.start, 0)
        for second, offset in win.marks:
            assert win.text[offset:].startswith(by_start[second])
        assert [p.text for p in Segment(0, "v", win.start, win.end, win.text, marks=win.marks).pieces()] == [
            by_start[second] for second, _ in win.marks
        ]


def test_window_overlap_repeats_tail_only() -> None:
    settings = SegmentationSettings(window_seconds=60, max_window_seconds=90, overlap_seconds=15)
    wins = list(windows(_cues(30), settings))
    for a, b in itertools.pairwise(wins):
        assert b.start < a.end
        assert b.text.split()[0] in a.text
    assert len(wins) >= 5


def test_long_cue_never_split() -> None:
    settings = SegmentationSettings(window_seconds=30, max_window_seconds=40)
    cues = [Cue(0, 100, "um monólogo longo"), Cue(100, 105, "fim")]
    wins = list(windows(cues, settings))
    assert (wins[0].start, wins[0].end, wins[0].text) == (0, 100, "um monólogo longo")
