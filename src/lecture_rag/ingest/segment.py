"""Cues → de-duplicated, time-ordered, ~2-minute segments.

Two kinds of duplicated speech reach this stage and must never be indexed
twice: overlapping re-segmentations of the same recording (the NURC files
hold each lecture twice) and caption cues that repeat earlier speech. A cue
is dropped when most of its time span is already covered by accepted cues.

The stage streams: cues may arrive slightly out of order, so they pass a
bounded re-order buffer (a heap) before windows are cut. Memory stays bounded
by the buffer horizon and the merged covered intervals, not by the file size.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lecture_rag.config import SegmentationSettings
from lecture_rag.records import Cue, Marks
from lecture_rag.store import SegmentDraft

# Pauses shorter than this merge covered intervals, keeping the interval list
# short for long recordings while still catching re-segmented speech.
_MERGE_GAP = 1.0
# How far (in seconds) a cue may arrive after later cues and still be placed.
_REORDER_HORIZON = 600.0
# A cue is a duplicate when at least this fraction of it is already covered.
_DUPLICATE_FRACTION = 0.5


@dataclass(slots=True)
class SegmentStats:
    """What the segmenter did, so ingest can report it."""

    duplicates: int = 0
    late: int = 0  # cues that arrived after their place was written out: dropped, and said so


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


def _is_duplicate(cue: Cue, coverage: _Coverage) -> bool:
    length = cue.end - cue.start
    covered = coverage.covered(cue.start, cue.end)
    if length <= 0:
        return covered == 0.0 and _point_inside(cue.start, coverage)
    return covered >= _DUPLICATE_FRACTION * length


def _point_inside(t: float, coverage: _Coverage) -> bool:
    idx = bisect.bisect_right(coverage.starts, t) - 1
    return idx >= 0 and coverage.ends[idx] >= t


def clean_cues(cues: Iterable[Cue], stats: SegmentStats | None = None) -> Iterator[Cue]:
    """Drop duplicated speech, restore time order, remove residual overlaps.

    Yields cues sorted by start whose time spans never overlap, so that
    windows cut from them never overlap either.
    """
    stats = stats if stats is not None else SegmentStats()
    coverage = _Coverage()
    heap: list[tuple[float, int, Cue]] = []
    max_start = float("-inf")
    last_end = float("-inf")
    last_start = float("-inf")
    for order, cue in enumerate(cues):
        if not cue.text.strip():
            continue
        if _is_duplicate(cue, coverage):
            stats.duplicates += 1
            continue
        if cue.start < last_start:
            stats.late += 1  # arrived after its place was already written out
            continue
        coverage.add(cue.start, cue.end)
        heapq.heappush(heap, (cue.start, order, cue))
        max_start = max(max_start, cue.start)
        while heap and heap[0][0] < max_start - _REORDER_HORIZON:
            fixed = _trim(heapq.heappop(heap)[2], last_end)
            last_start, last_end = fixed.start, fixed.end
            yield fixed
    while heap:
        fixed = _trim(heapq.heappop(heap)[2], last_end)
        last_end = fixed.end
        yield fixed


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
