"""What every transcript reader shares: the file being read, its lines and blocks, time checks, messages.

The names here are the package's own (the format modules use them); the public API is
in :mod:`lecture_rag.ingest.readers`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lecture_rag.errors import IngestError

#: Suffixes of transcript files this module reads (``.json3`` is what yt-dlp writes).
SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".vtt", ".srt", ".json", ".json3", ".jsonl", ".ndjson", ".csv"})

#: Format names :func:`detect_format` returns.
FORMATS: tuple[str, ...] = ("vtt", "srt", "json3", "whisper_json", "jsonl", "nurc_csv")
FORMAT_NAMES = (
    "WebVTT (.vtt, inclusive legendas automáticas do YouTube), SubRip (.srt), "
    "YouTube json3 (.json/.json3), JSON do Whisper/faster-whisper (.json), "
    "JSONL com start/end/text (.jsonl) e CSV do NURC-SP (.csv)"
)

#: No lecture lasts two days; a larger time is a unit or typing mistake.
MAX_SECONDS = 48 * 3600.0

#: Longest line or cue block accepted: keeps memory bounded on broken files.
MAX_LINE_CHARS = 1 << 20
MAX_BLOCK_CHARS = 4 << 20

# Markup removed from cue text: VTT/HTML tags (<c>, </i>, <v Ana>, <c.color>),
# inline word timings (<00:00:01.000>), SSA override blocks ({\an8}) and escapes (\N).
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<(?:\d+:)?\d{1,2}:\d{2}\.\d{1,3}>")
_SSA_BLOCK = re.compile(r"\{\\[^{}]*\}")
_SSA_ESCAPE = re.compile(r"\\[Nnh]")
_CLOCK_LIKE = re.compile(r"\d+:\d{1,2}(?::\d{1,2})?[,.]\d+")
_NEGATIVE_TIME = re.compile(r"(?:^|[\s>])-\s*\d+:\d")

# What is left of a timing line cut short or typed without its arrow: "00:0", "00:00:10.000 ",
# "00:00:05,000 --> 00:0". Only digits, separators and an arrow, and at least one colon.
PARTIAL_TIMING = re.compile(r"^\s*-?\d+:[\d:.,]*\s*(?:-{1,2}>?\s*[\d:.,]*)?\s*$")
CUE_NUMBER = re.compile(r"^\s*\d+\s*$")

# Timing lines with every digit written as 0: a line that is a proper prefix of one of them
# (after the same rewrite) is a timing line cut short, not a typo.
_CLOCKS = {
    "srt": [f"{h}00:00{sep}000" for h in ("0:", "00:", "000:") for sep in ",."],
    "vtt": ["00:00.000", "00:00:00.000", "000:00:00.000"],
}
_TIMING_SHAPES = {fmt: [f"{a} --> {b}" for a in clocks for b in clocks] for fmt, clocks in _CLOCKS.items()}
TRUNCATED_TODO = "Baixe ou exporte a legenda de novo (ou apague as linhas incompletas do fim) e tente outra vez"


def clean_text(raw: str) -> str:
    """Cue text without markup: tags and SSA codes removed, entities decoded, spaces collapsed.

    Tags are removed without adding spaces (``pa<b>la</b>vra`` stays one
    word); line breaks become spaces. Only tag-shaped ``<...>`` is removed, so
    ``a < b`` in a maths lecture survives.
    """
    text = _SSA_BLOCK.sub("", raw)
    text = _SSA_ESCAPE.sub(" ", text)
    text = _TAG.sub("", text)
    return " ".join(html.unescape(text).split())


@dataclass(slots=True)
class Source:
    """What sniffing learnt about a file; passed to the reader of its format."""

    path: Path
    fmt: str
    encoding: str
    head: str
    column: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def binary_error(path: Path) -> IngestError:
    return IngestError(
        f"{path.name}: o arquivo tem conteúdo binário e não é uma transcrição reconhecida. "
        f"Formatos aceitos: {FORMAT_NAMES}. Se for áudio ou vídeo, use a transcrição automática."
    )


def open_text(source: Source, newline: str | None = None) -> TextIO:
    return source.path.open(encoding=source.encoding, errors="strict", newline=newline)


def lines_of(source: Source, handle: TextIO) -> Iterator[str]:
    """Lines of an open file, refusing absurdly long lines and NUL bytes (bounded memory)."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise error(
                source,
                f"linha {number}",
                "linha longa demais (mais de 1 milhão de caracteres)",
                "Confira se o arquivo é mesmo uma transcrição, com quebras de linha",
            )
        if "\x00" in line:
            raise binary_error(source.path)
        yield line


def error(source: Source, where: str, what: str, todo: str) -> IngestError:
    """The uniform message: file, place, problem, remedy."""
    place = f"{source.name}, {where}" if where else source.name
    return IngestError(f"{place}: {what}. {todo}.")


def check_times(source: Source, where: str, start: float, end: float) -> None:
    """Reject times no lecture can have; equal start and end are allowed (zero-length cues exist)."""
    fix = "Corrija os tempos (em segundos) e tente de novo"
    if not (math.isfinite(start) and math.isfinite(end)):
        raise error(source, where, f"tempo inválido ({start} → {end})", fix)
    if start < 0 or end < 0:
        raise error(source, where, f"tempo negativo ({start:g} s → {end:g} s)", fix)
    if start > MAX_SECONDS or end > MAX_SECONDS:
        raise error(
            source,
            where,
            f"tempo absurdo ({max(start, end):.0f} s, mais de 48 horas)",
            "Confira a unidade (segundos, não milissegundos) e corrija os tempos",
        )
    if end < start:
        raise error(source, where, f"o fim ({end:.3f} s) vem antes do início ({start:.3f} s)", fix)


@dataclass(slots=True)
class Block:
    """Consecutive non-blank lines and the 1-based line number of the first one."""

    line_no: int
    lines: list[str] = field(default_factory=list)


def cue_blocks(source: Source, lines: Iterable[str], *, whitespace_is_blank: bool) -> Iterator[Block]:
    """Cut a line stream into blank-line separated blocks (cue blocks of VTT and SRT).

    WebVTT ends a block only at an *empty* line (YouTube puts lines holding a
    single space inside cues), SRT at any blank line.
    """
    block: Block | None = None
    size = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        blank = not line.strip() if whitespace_is_blank else not line
        if blank:
            if block is not None:
                yield block
                block, size = None, 0
            continue
        if block is None:
            block = Block(number)
        block.lines.append(line)
        size += len(line)
        if size > MAX_BLOCK_CHARS:
            raise error(
                source,
                f"linha {block.line_no}",
                "bloco de legenda grande demais, sem linhas em branco",
                "Separe as legendas com linhas em branco",
            )
    if block is not None:
        yield block


def with_last(blocks: Iterable[Block]) -> Iterator[tuple[Block, bool]]:
    """Each block and whether it is the file's last: a broken last block means the file was cut short."""
    previous: Block | None = None
    for block in blocks:
        if previous is not None:
            yield previous, False
        previous = block
    if previous is not None:
        yield previous, True


def truncated(source: Source, line_no: int, line: str) -> IngestError:
    """The file ends inside a cue (its number, or a timing line cut short): say so, with the line."""
    return error(
        source,
        f"linha {line_no}",
        f"o arquivo termina no meio de uma legenda ('{line.strip()[:40]}'): parece cortado (download ou cópia "
        "incompletos)",
        TRUNCATED_TODO,
    )


def cut_timing(source: Source, line: str) -> bool:
    """Whether ``line`` is the beginning of a well-formed timing line of the file's format (cut short)."""
    shape = re.sub(r"\d", "0", line)
    return any(full.startswith(shape) and full != shape for full in _TIMING_SHAPES[source.fmt])


def partial_timing_at(lines: list[str]) -> int | None:
    """Index of a timing line cut short or without arrow at the start of a block (after an optional id)."""
    for index, line in enumerate(lines[:2]):
        if PARTIAL_TIMING.match(line):
            return index
    return None


def timing_problem(source: Source, where: str, line: str) -> IngestError:
    """Explain a timing line that could not be read, with the syntax of the file's format."""
    if _NEGATIVE_TIME.search(line.split("-->")[0]) or _NEGATIVE_TIME.search(line.split("-->")[-1]):
        return error(
            source,
            where,
            f"tempo negativo em '{line.strip()}'",
            "Corrija os tempos para valores a partir de 00:00:00 e tente de novo",
        )
    syntax = "HH:MM:SS,mmm --> HH:MM:SS,mmm" if source.fmt == "srt" else "HH:MM:SS.mmm --> HH:MM:SS.mmm"
    return error(source, where, f"horário malformado em '{line.strip()}'", f"Use o formato {syntax} e tente de novo")


def refuse_broken_timing(source: Source, block: Block) -> None:
    """Raise when one of the first lines of a block is a timing line the parser could not read."""
    for offset, line in enumerate(block.lines[:3]):
        if _looks_like_timing(line):
            raise timing_problem(source, f"linha {block.line_no + offset}", line)


def _looks_like_timing(line: str) -> bool:
    """Two clock times, or one next to an arrow: a (mistyped) cue timing line, not speech."""
    clocks = len(_CLOCK_LIKE.findall(line))
    return clocks >= 2 or (clocks == 1 and ("->" in line or "--" in line))
