"""SubRip (.srt): cue blocks and timings validated here, cue text converted by pysubs2."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pysubs2
from pysubs2.formats.subrip import SubripFormat

from lecture_rag.ingest.readers.common import (
    CUE_NUMBER,
    PARTIAL_TIMING,
    Block,
    Source,
    check_times,
    clean_text,
    cue_blocks,
    cut_timing,
    error,
    lines_of,
    open_text,
    refuse_broken_timing,
    timing_problem,
    truncated,
    with_last,
)
from lecture_rag.records import Cue

_CLOCK = r"(-?)\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
SRT_TIMING = re.compile(rf"^\s*{_CLOCK}\s*-->\s*{_CLOCK}(?:\s.*)?$")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(slots=True)
class _SrtCue:
    line_no: int
    timing: str
    start: float
    end: float
    text: list[str]


def read_srt(source: Source) -> Iterator[Cue]:
    """SRT: own block splitting and timing validation, pysubs2 for the cue text.

    pysubs2 silently glues a cue with an unreadable timing line onto the
    previous cue, so timings are validated here (with the line number) and
    pysubs2 only converts each cue's text (HTML and SSA tags).
    """
    pending: _SrtCue | None = None
    with open_text(source) as handle:
        for block, last in with_last(cue_blocks(source, lines_of(source, handle), whitespace_is_blank=True)):
            timing_at = next((i for i, line in enumerate(block.lines[:3]) if "-->" in line), None)
            if timing_at is None:
                pending = _continue_srt(source, block, pending, last=last)
                continue
            if pending is not None:
                cue = _srt_cue(pending)
                if cue is not None:
                    yield cue
            pending = _parse_srt_timing(source, block, timing_at, last=last)
    if pending is not None:
        cue = _srt_cue(pending)
        if cue is not None:
            yield cue


def _continue_srt(source: Source, block: Block, pending: _SrtCue | None, *, last: bool) -> _SrtCue | None:
    """A block without timing: a lone index line, or text after a blank line inside a cue.

    A cue number followed by a timing line without its arrow is a broken cue,
    not speech; at the end of the file, a cue number with nothing readable
    after it (``57``, ``57 / 00:12:3``) means the file was cut short.
    """
    lines = block.lines
    numbered = CUE_NUMBER.match(lines[0]) is not None
    if last and numbered and not any(_LETTER.search(line) for line in lines):
        raise truncated(source, block.line_no + len(lines) - 1, lines[-1])
    if last and len(lines) == 1 and cut_timing(source, lines[0]):
        raise truncated(source, block.line_no, lines[0])
    if numbered and len(lines) > 1 and PARTIAL_TIMING.match(lines[1]):
        raise timing_problem(source, f"linha {block.line_no + 1}", lines[1])
    if len(lines) == 1 and numbered:
        return pending
    refuse_broken_timing(source, block)
    if pending is None:
        raise error(
            source,
            f"linha {block.line_no}",
            "texto sem horário antes da primeira legenda",
            "Cada legenda SRT precisa de número, linha de horário (00:00:01,000 --> 00:00:02,000) "
            "e texto; corrija o início do arquivo",
        )
    pending.text.extend(block.lines)
    return pending


def _parse_srt_timing(source: Source, block: Block, timing_at: int, *, last: bool) -> _SrtCue:
    line_no = block.line_no + timing_at
    where = f"legenda na linha {line_no}"
    timing = block.lines[timing_at]
    match = SRT_TIMING.match(timing)
    start = _seconds(*match.groups()[:5]) if match else None
    end = _seconds(*match.groups()[5:]) if match else None
    if match is None and last and cut_timing(source, timing):
        raise truncated(source, line_no, timing)
    if match is None or start is None or end is None:
        raise timing_problem(source, where, timing)
    check_times(source, where, start, end)
    return _SrtCue(line_no, timing, start, end, block.lines[timing_at + 1 :])


def _srt_cue(pending: _SrtCue) -> Cue | None:
    """The cue of a parsed SRT block; pysubs2 only sees text that carries markup.

    Without ``<``, ``{`` or ``\\``, pysubs2's conversion returns the
    lines unchanged, and skipping its per-call setup makes large files several times faster.
    """
    raw = " ".join(pending.text)
    if any(mark in raw for mark in "<{\\"):
        raw = _pysubs2_text(pending.text)
    text = clean_text(raw)
    return Cue(pending.start, pending.end, text) if text else None


def _pysubs2_text(lines: list[str]) -> str:
    """Plain text of one SRT cue as pysubs2 reads it.

    A sentinel next-cue index is appended because pysubs2 drops a trailing
    all-digit line as "the next cue's number"; with the sentinel, a cue that
    ends with a year ("1970") keeps it.
    """
    subs = pysubs2.SSAFile()
    body = ["1\n", "00:00:00,000 --> 00:00:01,000\n", *(line + "\n" for line in lines), "\n", "0\n"]
    SubripFormat.from_file(subs, io.StringIO("".join(body)), "srt")
    return " ".join(event.plaintext for event in subs.events)


def _seconds(sign: str, hours: str, minutes: str, seconds: str, fraction: str) -> float | None:
    """Clock fields to seconds; None when minutes or seconds are out of range."""
    if int(minutes) > 59 or int(seconds) > 59:
        return None
    value = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000
    return -value if sign else value
