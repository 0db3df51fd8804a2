"""Cues → de-duplicated, time-ordered, ~2-minute segments.

Two kinds of duplicated speech reach this stage and must never be indexed
twice: overlapping re-segmentations of the same recording (the NURC files
hold each lecture twice) and caption cues that repeat earlier speech. A cue
is dropped when most of its time span is already covered by accepted cues.

A cue is judged in file order: it is a repeat when most of its time span is
already covered by accepted cues *and* most of its words are theirs. Covered
time alone is not enough: a transcript that lists one speaker after the other
(the NURC-SP dialogues), a seminar with questions from the room, overlapping
speakers, all put different speech at the same seconds, and that speech must
stay. A covered cue with other words is kept, unless the file re-covers a
large share of its own speech (:data:`_RECOVERED_SHARE`): then it is a second
segmentation whose words differ because a speech recogniser heard the same
audio twice (the NURC ASR files), and time decides, as it always did.
Accepted cues may arrive in any order (a whole speaker's pass after the
other's), so they are sorted before windows are cut: in a temporary SQLite
database, which spills to disk, so memory stays bounded by the merged
covered intervals and not by the file size, and no cue is ever dropped for
arriving "late".
"""

from __future__ import annotations

import bisect
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lecture_rag.config import SegmentationSettings
from lecture_rag.records import Cue, Marks
from lecture_rag.store import SegmentDraft

# Pauses shorter than this merge covered intervals, keeping the interval list
# short for long recordings while still catching re-segmented speech.
_MERGE_GAP = 1.0
#: Share of a file's speech that may be dropped with words the kept speech does not have, before ingest fails.
MAX_LOST_SHARE = 0.05
# A cue is a duplicate when at least this fraction of it is already covered...
_DUPLICATE_FRACTION = 0.5
# ... and at least this share of its letters are in words of the cues covering it.
_SAME_WORDS_FRACTION = 0.5
_WORD = re.compile(r"\w+")
# A file whose cues cover this share of its own speech a second time holds it twice (a re-segmentation):
# overlapping speakers are a few percent of a dialogue, a second pass is half of the file.
_RECOVERED_SHARE = 0.3


@dataclass(slots=True)
class SegmentStats:
    """What the segmenter did, so ingest can report it."""

    duplicates: int = 0
    chars: int = 0  # characters of speech read
    dropped_chars: int = 0  # characters of the repeats dropped
    unmatched_chars: int = 0  # of those, characters in words the covering cues do not have (speech lost)

    @property
    def lost_share(self) -> float:
        """Share of the file's speech dropped without being found in the speech kept."""
        return self.unmatched_chars / self.chars if self.chars else 0.0


class _Coverage:
    """Merged time intervals already accepted, for the duplicate test."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def covered(self, start: float, end: float) -> float:
        """Seconds of [start, end] already covered (a point cue counts 0 or its 'length' 1e-9)."""
        idx = bisect.bisect_right(self.starts, end) - 1
        total = 0.0
        while idx >= 0 and self.ends[idx] >= start:
            total += max(0.0, min(end, self.ends[idx]) - max(start, self.starts[idx]))
            if start == end and self.starts[idx] <= start <= self.ends[idx]:
                return 0.0  # zero-length cue inside covered speech: treat as fully covered
            idx -= 1
        return total

    def add(self, start: float, end: float) -> None:
        idx = bisect.bisect_left(self.starts, start)
        lo, hi = start, end
        # merge with a neighbour on the left
        if idx > 0 and self.ends[idx - 1] + _MERGE_GAP >= lo:
            idx -= 1
            lo = min(lo, self.starts[idx])
            hi = max(hi, self.ends[idx])
            del self.starts[idx], self.ends[idx]
        # absorb neighbours on the right
        while idx < len(self.starts) and self.starts[idx] <= hi + _MERGE_GAP:
            hi = max(hi, self.ends[idx])
            del self.starts[idx], self.ends[idx]
        self.starts.insert(idx, lo)
        self.ends.insert(idx, hi)


def _covered_in_time(cue: Cue, coverage: _Coverage) -> bool:
    length = cue.end - cue.start
    covered = coverage.covered(cue.start, cue.end)
    if length <= 0:
        return covered == 0.0 and _point_inside(cue.start, coverage)
    return covered >= _DUPLICATE_FRACTION * length


def _point_inside(t: float, coverage: _Coverage) -> bool:
    idx = bisect.bisect_right(coverage.starts, t) - 1
    return idx >= 0 and coverage.ends[idx] >= t


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Accepted:
    """Accepted cues in a temporary SQLite database: their words by time, then all of them sorted by start."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # a private temporary file, removed on close
        self.db.execute("CREATE TABLE cue (start REAL, end_ REAL, ord INTEGER, text TEXT, contested INTEGER)")
        self.db.execute("CREATE INDEX cue_start ON cue (start, ord)")
        self.longest = 0.0

    def add(self, order: int, cue: Cue, *, contested: bool = False) -> None:
        """Keep ``cue``; a contested one (its time covered, its words others) is left out of the word look-ups."""
        self.db.execute("INSERT INTO cue VALUES (?, ?, ?, ?, ?)", (cue.start, cue.end, order, cue.text, contested))
        self.longest = max(self.longest, cue.end - cue.start)

    def words_over(self, cue: Cue) -> set[str]:
        """Words of the accepted cues that overlap ``cue`` in time (a point cue: that contain its second)."""
        rows = self.db.execute(
            "SELECT text FROM cue WHERE start BETWEEN ? AND ? AND end_ >= ? AND NOT contested",
            (cue.start - self.longest, cue.end, cue.start),
        )
        return {word for (text,) in rows for word in _words(text)}

    def sorted(self, *, contested: bool) -> Iterator[Cue]:
        """Every cue by start (file order among equal starts); the contested ones only when ``contested``."""
        rows = self.db.execute(
            "SELECT start, end_, text FROM cue WHERE ? OR NOT contested ORDER BY start, ord", (contested,)
        )
        for start, end, text in rows:
            yield Cue(start=start, end=end, text=text)

    def close(self) -> None:
        self.db.close()


def _unmatched_share(cue: Cue, accepted: _Accepted) -> float:
    """Share of the cue's letters in words that the cues covering its time do not have (0: a true repeat)."""
    words = _words(cue.text)
    letters = sum(len(w) for w in words)
    if not letters:
        return 0.0
    known = accepted.words_over(cue)
    return sum(len(w) for w in words if w not in known) / letters


def clean_cues(cues: Iterable[Cue], stats: SegmentStats | None = None) -> Iterator[Cue]:
    """Drop repeated speech, restore time order, remove residual overlaps.

    Yields cues sorted by start whose time spans never overlap, so that
    windows cut from them never overlap either. A cue is dropped only as a
    repeat: its time mostly covered by cues already accepted and most of its
    words among theirs; ``stats`` counts what was read, dropped, and dropped
    without its words being found (:attr:`SegmentStats.lost_share`).
    """
    stats = stats if stats is not None else SegmentStats()
    coverage = _Coverage()
    accepted = _Accepted()
    covered_chars = contested_chars = contested = 0
    try:
        for order, cue in enumerate(cues):
            if not cue.text.strip():
                continue
            stats.chars += len(cue.text)
            if _covered_in_time(cue, coverage):
                covered_chars += len(cue.text)
                unmatched = _unmatched_share(cue, accepted)
                if unmatched <= 1 - _SAME_WORDS_FRACTION:
                    stats.duplicates += 1
                    stats.dropped_chars += len(cue.text)
                    stats.unmatched_chars += round(unmatched * len(cue.text))
                else:
                    contested_chars += len(cue.text)
                    contested += 1
                    accepted.add(order, cue, contested=True)
                continue
            coverage.add(cue.start, cue.end)
            accepted.add(order, cue)
        second_pass = covered_chars > _RECOVERED_SHARE * stats.chars
        if second_pass:  # a re-segmentation heard twice: its covered cues are repeats whatever their words
            stats.duplicates += contested
            stats.dropped_chars += contested_chars
            stats.unmatched_chars = 0  # the words of a recogniser's second hearing differ: noise, not speech lost
        last_end = float("-inf")
        for cue in accepted.sorted(contested=not second_pass):
            fixed = _trim(cue, last_end)
            last_end = fixed.end
            yield fixed
    finally:
        accepted.close()


def _trim(cue: Cue, last_end: float) -> Cue:
    """Start a cue no earlier than the previous one ended (residual overlaps)."""
    if cue.start >= last_end:
        return cue
    return Cue(start=last_end, end=max(cue.end, last_end), text=cue.text)


@dataclass(slots=True)
class _Window:
    cues: list[Cue] = field(default_factory=list)
    carried: int = 0  # leading cues repeated from the previous window (overlap)

    @property
    def start(self) -> float:
        return self.cues[0].start

    @property
    def end(self) -> float:
        return self.cues[-1].end

    def text(self) -> str:
        return " ".join(c.text.strip() for c in self.cues if c.text.strip())

    def marks(self) -> Marks:
        """Where each cue begins in :meth:`text`: (second, character offset)."""
        out: list[tuple[float, int]] = []
        offset = 0
        for cue in self.cues:
            text = cue.text.strip()
            if text:
                out.append((round(cue.start, 3), offset))
                offset += len(text) + 1
        return tuple(out)

    def draft(self) -> SegmentDraft:
        return SegmentDraft(self.start, self.end, self.text(), self.marks())

    def next(self, overlap: float) -> _Window:
        tail = _tail(self.cues, overlap)
        return _Window(tail, len(tail))


def windows(cues: Iterable[Cue], settings: SegmentationSettings) -> Iterator[SegmentDraft]:
    """Cut ordered, non-overlapping cues into windows.

    Windows close at cue boundaries (never mid-word) once they reach the
    target length, and before a cue that would push them past the hard cap.
    With ``overlap_seconds`` the trailing cues of a window open the next one.
    """
    current = _Window()
    for cue in cues:
        if len(current.cues) > current.carried and cue.end - current.start > settings.max_window_seconds:
            yield current.draft()
            current = current.next(settings.overlap_seconds)
        current.cues.append(cue)
        if current.end - current.start >= settings.window_seconds:
            yield current.draft()
            current = current.next(settings.overlap_seconds)
    if len(current.cues) > current.carried:
        yield current.draft()


def _tail(cues: list[Cue], seconds: float) -> list[Cue]:
    """The last cues covering ``seconds`` of speech, carried into the next window.

    The window's first cue is never carried, so every window adds new speech.
    """
    if seconds <= 0:
        return []
    out: list[Cue] = []
    for cue in reversed(cues[1:]):
        out.insert(0, cue)
        if cues[-1].end - cue.start >= seconds:
            break
    return out
