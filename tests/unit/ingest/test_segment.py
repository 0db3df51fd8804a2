"""Segmenter: duplicates dropped, order restored, windows at cue boundaries."""

from __future__ import annotations

import itertools

from lecture_rag.config import SegmentationSettings
from lecture_rag.ingest.segment import SegmentStats, clean_cues, windows
from lecture_rag.records import Cue


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
    joined = " ".join(text for _, _, text in wins)
    assert joined == " ".join(c.text for c in cues)  # nothing lost, nothing repeated, no word cut
    for (_s1, e1, _), (s2, _e2, _) in itertools.pairwise(wins):
        assert e1 <= s2
    assert all(e - s <= 180 for s, e, _ in wins)
    assert wins[0][0] == cues[0].start  # Início is the first cue's start


def test_window_overlap_repeats_tail_only() -> None:
    settings = SegmentationSettings(window_seconds=60, max_window_seconds=90, overlap_seconds=15)
    wins = list(windows(_cues(30), settings))
    for (_, e1, t1), (s2, _, t2) in itertools.pairwise(wins):
        assert s2 < e1
        assert t2.split()[0] in t1
    assert len(wins) >= 5


def test_long_cue_never_split() -> None:
    settings = SegmentationSettings(window_seconds=30, max_window_seconds=40)
    cues = [Cue(0, 100, "um monólogo longo"), Cue(100, 105, "fim")]
    wins = list(windows(cues, settings))
    assert wins[0] == (0, 100, "um monólogo longo")
