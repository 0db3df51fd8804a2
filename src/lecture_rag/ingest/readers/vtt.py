"""WebVTT (.vtt), YouTube's automatic captions included (their rolling repeats dropped: see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError
from webvtt.models import Timestamp

from lecture_rag.ingest.readers.common import (
    CUE_NUMBER,
    Block,
    Source,
    check_times,
    clean_text,
    cue_blocks,
    cut_timing,
    lines_of,
    open_text,
    partial_timing_at,
    refuse_broken_timing,
    timing_problem,
    truncated,
    with_last,
)
from lecture_rag.records import Cue

#: A YouTube transition cue lasts 10 ms; anything this short that only repeats text is one.
_TRANSITION_SECONDS = 0.05
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{2}\.\d{1,3})>")


def read_vtt(source: Source) -> Iterator[Cue]:
    """WebVTT via webvtt-py, one cue block at a time, with YouTube rolling captions de-duplicated."""
    rolling = _RollingCaptions()
    with open_text(source) as handle:
        blocks = with_last(cue_blocks(source, lines_of(source, handle), whitespace_is_blank=False))
        for index, (block, last) in enumerate(blocks):
            for start, end, lines in _vtt_block(source, block, header=index == 0, last=last):
                cue = rolling.feed(start, end, lines)
                if cue is not None:
                    yield cue


def _vtt_block(source: Source, block: Block, *, header: bool, last: bool) -> list[tuple[float, float, list[str]]]:
    """Parse one block with webvtt-py (strict), validating its times."""
    text = "\n".join(block.lines) if header else "WEBVTT\n\n" + "\n".join(block.lines)
    where = f"linha {block.line_no}"
    try:
        captions = webvtt.from_string(text, strict=True).captions
    except (MalformedCaptionError, MalformedFileError):
        at = next((i for i, line in enumerate(block.lines) if "-->" in line), 0)
        if last and cut_timing(source, block.lines[at]):
            raise truncated(source, block.line_no + at, block.lines[at]) from None
        raise timing_problem(source, where, block.lines[at]) from None
    if not captions:
        _check_not_lost_cue(source, block, header=header, last=last)
        return []
    out = []
    for caption in captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        check_times(source, where, start, end)
        out.append((start, end, list(caption.lines)))
    return out


def _check_not_lost_cue(source: Source, block: Block, *, header: bool, last: bool) -> None:
    """A block without cue that looks like timings is a typo, or the end of a file cut short.

    Either would silently drop speech: a timing line without its arrow
    (``00:00:10.000``) or cut short (``00:0``), and at the end of the file a
    lone cue identifier, are refused with their line.
    """
    if header or block.lines[0].startswith(("NOTE", "STYLE", "REGION")):
        return
    at = partial_timing_at(block.lines)
    if last and at is not None and cut_timing(source, block.lines[at]):
        raise truncated(source, block.line_no + at, block.lines[at])
    if last and len(block.lines) == 1 and CUE_NUMBER.match(block.lines[0]):
        raise truncated(source, block.line_no, block.lines[0])
    if at is not None:
        raise timing_problem(source, f"linha {block.line_no + at}", block.lines[at])
    refuse_broken_timing(source, block)


class _RollingCaptions:
    """Turns YouTube "rolling" auto-captions into one cue per spoken line.

    A rolling cue repeats the previous cue's last line(s) before its new line;
    transition cues (~10 ms) repeat a line alone. Repeats are recognised by
    comparing clean lines with the previous cue's, and dropped. Whole-cue
    repeats are only dropped once the file has shown it is rolling (inline
    word timings or a repeated first line), so an ordinary file where someone
    says "sim" twice in a row keeps both.
    """

    def __init__(self) -> None:
        self.previous: list[str] = []
        self.rolling = False

    def feed(self, start: float, end: float, raw_lines: list[str]) -> Cue | None:
        pairs = [(raw, clean) for raw in raw_lines if (clean := clean_text(raw))]
        current = [clean for _, clean in pairs]
        overlap = _overlap(self.previous, current)
        timed = any(_INLINE_TIME.search(raw) for raw, _ in pairs)
        self.previous = current
        if timed or 0 < overlap < len(current):
            self.rolling = True
        if overlap == len(current) and (self.rolling or end - start <= _TRANSITION_SECONDS):
            return None
        fresh = pairs[overlap:] if self.rolling else pairs
        if not fresh:
            return None
        first_word = _first_word_time(fresh[0][0], start, end)
        return Cue(first_word, end, " ".join(clean for _, clean in fresh))


def _overlap(previous: list[str], current: list[str]) -> int:
    """Largest k with previous[-k:] == current[:k] (how many leading lines are repeats)."""
    for k in range(min(len(previous), len(current)), 0, -1):
        if previous[-k:] == current[:k]:
            return k
    return 0


def _first_word_time(raw: str, start: float, end: float) -> float:
    """Time of the first word of a line from its inline ``<hh:mm:ss.mmm>`` timings.

    YouTube puts no timing before the first word (it starts with the cue), but
    a line may begin with a timing tag; a tag outside the cue is ignored.
    """
    time = start
    for piece in re.split(r"(<(?:\d+:)?\d{1,2}:\d{2}\.\d{1,3}>)", raw):
        match = _INLINE_TIME.fullmatch(piece)
        if match:
            try:
                stamp = Timestamp.from_string(match.group(1))
            except MalformedCaptionError:
                continue
            seconds = stamp.in_milliseconds() / 1000
            if start <= seconds <= end:
                time = seconds
        elif clean_text(piece):
            return time
    return start
