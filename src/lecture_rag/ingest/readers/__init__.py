"""Transcript readers: caption and transcript files → a stream of :class:`Cue`.

Every reader yields cues in *file* order and leaves sorting and overlap removal
to the segmenter, so one reader bug cannot hide behind another stage's fix.

Why the readers look the way they do:

* Lecture files can be large (a semester of auto-captions, a concatenated
  JSONL export), so the line-based formats (WebVTT, SRT, JSONL, CSV) are read
  line by line and cut into cue blocks here; the parser libraries (webvtt-py,
  pysubs2) only ever see one cue block. Memory stays bounded by the largest
  block, not by the file.
* Brazilian files are often Latin-1/cp1252. Detectors guess badly on short
  Portuguese text, so strict UTF-8 is tried first (it almost never decodes
  cp1252 text by accident), then cp1252, and only then charset-normalizer.
* YouTube auto-captions "roll": each cue repeats the previous line and adds a
  new one, with 10 ms transition cues in between. Indexing them naively would
  triple every word, so rolling repeats are dropped here, where the cue
  structure is still visible.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import json
import math
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import charset_normalizer
import pysubs2
import webvtt
from pysubs2.formats.subrip import SubripFormat
from webvtt.errors import MalformedCaptionError, MalformedFileError
from webvtt.models import Timestamp

from lecture_rag.errors import IngestError, LectureRagError
from lecture_rag.records import Cue

__all__ = [
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "JSONNestingError",
    "clean_text",
    "detect_format",
    "nurc_video_id",
    "parse_json",
    "read_cues",
    "read_user_text",
]

#: Suffixes of transcript files this module reads (``.json3`` is what yt-dlp writes).
SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".vtt", ".srt", ".json", ".json3", ".jsonl", ".ndjson", ".csv"})

#: Format names :func:`detect_format` returns.
FORMATS: tuple[str, ...] = ("vtt", "srt", "json3", "whisper_json", "jsonl", "nurc_csv")

_FORMAT_NAMES = (
    "WebVTT (.vtt, inclusive legendas automáticas do YouTube), SubRip (.srt), "
    "YouTube json3 (.json/.json3), JSON do Whisper/faster-whisper (.json), "
    "JSONL com start/end/text (.jsonl) e CSV do NURC-SP (.csv)"
)

#: JSON documents are parsed whole; above this size JSONL (streamed) is the way.
MAX_JSON_BYTES = 100 * 1024 * 1024
#: No lecture lasts two days; a larger time is a unit or typing mistake.
MAX_SECONDS = 48 * 3600.0
#: Longest line or cue block accepted: keeps memory bounded on broken files.
MAX_LINE_CHARS = 1 << 20
MAX_BLOCK_CHARS = 4 << 20
_EMPTY = "o arquivo está vazio. Exporte a transcrição de novo e tente outra vez."
#: Bytes sniffed to recognise the format and encoding.
_SNIFF_BYTES = 64 * 1024
#: A YouTube transition cue lasts 10 ms; anything this short that only repeats text is one.
_TRANSITION_SECONDS = 0.05

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts like UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Markup removed from cue text: VTT/HTML tags (<c>, </i>, <v Ana>, <c.color>),
# inline word timings (<00:00:01.000>), SSA override blocks ({\an8}) and escapes (\N).
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<(?:\d+:)?\d{1,2}:\d{2}\.\d{1,3}>")
_SSA_BLOCK = re.compile(r"\{\\[^{}]*\}")
_SSA_ESCAPE = re.compile(r"\\[Nnh]")
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{2}\.\d{1,3})>")

_CLOCK = r"(-?)\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_CLOCK}\s*-->\s*{_CLOCK}(?:\s.*)?$")
_CLOCK_LIKE = re.compile(r"\d+:\d{1,2}(?::\d{1,2})?[,.]\d+")
_NEGATIVE_TIME = re.compile(r"(?:^|[\s>])-\s*\d+:\d")

# What is left of a timing line cut short or typed without its arrow: "00:0", "00:00:10.000 ",
# "00:00:05,000 --> 00:0". Only digits, separators and an arrow, and at least one colon.
_PARTIAL_TIMING = re.compile(r"^\s*-?\d+:[\d:.,]*\s*(?:-{1,2}>?\s*[\d:.,]*)?\s*$")
_CUE_NUMBER = re.compile(r"^\s*\d+\s*$")
# Timing lines with every digit written as 0: a line that is a proper prefix of one of them
# (after the same rewrite) is a timing line cut short, not a typo.
_CLOCKS = {
    "srt": [f"{h}00:00{sep}000" for h in ("0:", "00:", "000:") for sep in ",."],
    "vtt": ["00:00.000", "00:00:00.000", "000:00:00.000"],
}
_TIMING_SHAPES = {fmt: [f"{a} --> {b}" for a in clocks for b in clocks] for fmt, clocks in _CLOCKS.items()}
_LETTER = re.compile(r"[^\W\d_]")
_TRUNCATED_TODO = "Baixe ou exporte a legenda de novo (ou apague as linhas incompletas do fim) e tente outra vez"

_NURC_NAME = re.compile(r"^(?:sentences_)?(SP_[A-Z0-9]+_\d+)(?:_asr_[^/\\]*)?\.csv$")
_CSV_START = ("start_sec", "start")
_CSV_END = ("end_sec", "end")


# --------------------------------------------------------------------------- public API


def detect_format(path: Path) -> str:
    """Name the transcript format of ``path`` from its suffix and its first bytes.

    Content wins over suffix among caption formats (a ``.srt`` that starts with
    ``WEBVTT`` is WebVTT): downloaders often mislabel files, and reading by
    content is what a user expects. The suffix still has to be a transcript one.
    """
    return _sniff(Path(path)).fmt


def read_cues(path: Path, *, column: str | None = None) -> Iterator[Cue]:
    """Cues of a transcript file, in file order, with clean non-empty text.

    The file is checked eagerly (format, encoding, CSV column) so that a wrong
    file fails at the call, not halfway through an ingest; the cues are then
    produced lazily. ``column`` picks the text column of a CSV transcript
    (default ``text``, or ``prediction`` for NURC ASR files) and is ignored for
    formats that have a single text, so one option can serve a mixed folder.

    Raises :class:`IngestError` (in Portuguese, with file and line) for empty,
    binary or malformed files and impossible times.
    """
    source = _sniff(Path(path))
    if source.fmt in ("json3", "whisper_json"):
        _check_json_size(source)
    source.encoding = _whole_file_encoding(source)
    if source.fmt == "nurc_csv":
        source.column = _csv_column(source, column)
    return _require_cues(source, _READERS[source.fmt](source))


def nurc_video_id(path: Path) -> str | None:
    """``SP_EF_405`` for NURC-SP files (human or ASR), else None.

    Both versions of a lecture must share one video id, so that citations of
    the human and the ASR transcript point at the same recording.
    """
    match = _NURC_NAME.match(Path(path).name)
    return match.group(1) if match else None


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


class JSONNestingError(ValueError):
    """A JSON document nested deeper than the parser's recursion allows (``[[[[...]]]]``)."""


def parse_json(text: str) -> Any:
    """``json.loads`` for files people hand us: absurd nesting is a :class:`JSONNestingError`.

    Python's parser recurses once per level of nesting, so ``[[[[...]]]]`` a
    hundred thousand levels deep raises ``RecursionError``, which no caller
    expects from a parser. No transcript, question set or annotation file
    nests more than a few levels (SQuAD: seven), so this is always a broken
    or hostile file. The error is a ``ValueError``, like every other
    malformed JSON, so callers report it where they report those.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONNestingError(
            "listas ou objetos JSON aninhados em níveis demais (centenas de '[' ou '{' seguidos)"
        ) from None


def read_user_text(path: Path, expected: str) -> str:
    """The whole text of a small file a person wrote (question set, annotations), decoded like transcripts.

    The encoding is found as for transcripts (a BOM, strict UTF-8, then
    Windows-1252, which spreadsheets on Windows write); folders, binary
    files and text in neither encoding are refused with a
    :class:`LectureRagError` that names the file and says what to do.
    ``expected`` names what the file should hold, for the messages (e.g.
    ``"perguntas em JSON Lines ou SQuAD"``).
    """
    if path.is_dir():
        raise LectureRagError(f"{path}: é uma pasta, não um arquivo. Indique o arquivo ({expected}).")
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise LectureRagError(
                f"{path}: arquivo grande demais ({size / 2**20:.0f} MB; o limite é {MAX_JSON_BYTES // 2**20} MB). "
                f"Confira se é mesmo o arquivo certo ({expected})."
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LectureRagError(f"{path}: arquivo não encontrado. Confira o caminho.") from None
    except OSError as exc:
        raise LectureRagError(
            f"{path}: não foi possível ler o arquivo ({exc.strerror}). Confira o caminho e as permissões."
        ) from None
    text = _decode_whole(raw)
    if text is None or _looks_binary(text):
        raise LectureRagError(
            f"{path}: o arquivo tem conteúdo binário ou não está em UTF-8 nem em Windows-1252. "
            f"Era esperado texto ({expected}); salve o arquivo como UTF-8 e tente de novo."
        )
    return text


# --------------------------------------------------------------------------- sniffing


@dataclass(slots=True)
class _Source:
    """What sniffing learnt about a file; passed to the reader of its format."""

    path: Path
    fmt: str
    encoding: str
    head: str
    column: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def _sniff(path: Path) -> _Source:
    """Check suffix, emptiness and binary content, then recognise the format from the head."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise IngestError(
            f"{path.name}: extensão '{path.suffix or '(nenhuma)'}' não é de transcrição. "
            f"Use um destes formatos: {_FORMAT_NAMES}."
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise IngestError(
            f"{path.name}: não foi possível abrir o arquivo ({exc.strerror}). Confira o caminho e as permissões."
        ) from exc
    if not raw.strip():
        raise IngestError(f"{path.name}: {_EMPTY}")
    encoding = _head_encoding(path, raw)
    head = raw.decode(encoding, errors="ignore")  # the head may end mid-character
    head = head.removeprefix("\ufeff")
    _check_text_like(path, head)
    if not head.strip():
        raise IngestError(f"{path.name}: {_EMPTY}")
    try:
        fmt = _format_of(head, path.suffix.lower())
    except JSONNestingError as exc:
        raise IngestError(f"{path.name}: JSON inválido: {exc}. Confira se o arquivo é mesmo uma transcrição.") from None
    if fmt is None and head.lstrip().startswith("{"):
        fmt = _scan_json_keys(path, encoding)
    if fmt is None:
        raise IngestError(
            f"{path.name}: o conteúdo não é uma transcrição reconhecida. Formatos aceitos: {_FORMAT_NAMES}."
        )
    return _Source(path=path, fmt=fmt, encoding=encoding, head=head)


def _format_of(head: str, suffix: str) -> str | None:
    """Recognise the format from the decoded head of the file (None if unknown)."""
    text = head.lstrip()
    if text.startswith("WEBVTT"):
        return "vtt"
    if text.startswith(("{", "[")):
        return _json_kind(text, suffix)
    lines = [line.strip() for line in text.splitlines()[:3]]
    if _SRT_TIMING.match(lines[0]) or (len(lines) > 1 and lines[0].isdigit() and "-->" in lines[1]):
        return "srt"
    if _csv_header(lines[0]) is not None:
        return "nurc_csv"
    return None


def _json_kind(text: str, suffix: str) -> str | None:
    """Tell json3, Whisper JSON and JSONL apart from the head of the file."""
    first_line = text.split("\n", 1)[0]
    try:
        first = parse_json(first_line)
    except JSONNestingError:
        raise  # no format nests like this, and the head may be all of it
    except ValueError:
        first = None
    if isinstance(first, dict):
        if "events" in first:
            return "json3"
        if "segments" in first:
            return "whisper_json"
        if suffix in (".jsonl", ".ndjson") or {"start", "end"} <= first.keys():
            return "jsonl"
    if isinstance(first, list):
        return "whisper_json"
    if re.search(r'"events"\s*:', text) or re.search(r'"wireMagic"\s*:', text):
        return "json3"
    if re.search(r'"segments"\s*:', text) or (text.startswith("[") and re.search(r'"start"\s*:', text)):
        return "whisper_json"
    if suffix in (".jsonl", ".ndjson") and text.startswith("{"):
        return "jsonl"
    return None


def _scan_json_keys(path: Path, encoding: str) -> str | None:
    """Find the json3/Whisper top-level key beyond the head, streaming.

    openai-whisper writes ``{"text": <whole transcript>, "segments": ...}``, so
    for a long lecture the ``segments`` key lies far past the sniffed head.
    """
    keys = re.compile(r'"(events|segments)"\s*:')
    tail = ""
    with path.open(encoding=encoding, errors="ignore") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), ""):
            match = keys.search(tail + chunk)
            if match:
                return "json3" if match.group(1) == "events" else "whisper_json"
            tail = chunk[-32:]
    return None


def _csv_header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, column names) when ``line`` is a CSV header with start and end columns."""
    for delimiter in (";", ",", "\t"):
        names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter), [])]
        if any(n in names for n in _CSV_START) and any(n in names for n in _CSV_END):
            return delimiter, names
    return None


# --------------------------------------------------------------------------- encoding


def _head_encoding(path: Path, raw: bytes) -> str:
    """Encoding that decodes the sniffed head: BOM, strict UTF-8, cp1252, then a detector."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding
    if b"\x00" in raw:
        raise _binary(path)
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(raw, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(raw).best()
    if best is None:
        raise _binary(path)
    return best.encoding


def _whole_file_encoding(source: _Source) -> str:
    """Confirm the head's encoding on the whole file, streaming, before any cue is produced.

    A file whose first 64 KiB are ASCII can still hold cp1252 accents further
    on; finding that out after half the cues were yielded would be too late.
    """
    candidates = ["utf-8", "cp1252"] if source.encoding == "utf-8" else [source.encoding]
    for encoding in candidates:
        fits = _decodes(source.path, encoding)
        if fits is None:
            # Every byte decoded but the last character is incomplete: the file was cut short
            # (reading it as cp1252 instead would turn every accent into mojibake).
            raise _error(
                source,
                "",
                f"o arquivo termina no meio de um caractere ({encoding}): parece cortado (download ou cópia "
                "incompletos)",
                _TRUNCATED_TODO,
            )
        if fits:
            if encoding not in _UNICODE_ENCODINGS:
                _refuse_damaged_utf8(source)
            return encoding
    raise IngestError(
        f"{source.name}: a codificação de caracteres não pôde ser identificada (nem UTF-8, nem "
        "Windows-1252). Salve o arquivo como UTF-8 e tente de novo."
    )


_UNICODE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "utf-16", "utf-32"})


def _refuse_damaged_utf8(source: _Source) -> None:
    """Refuse a UTF-8 file with a few invalid bytes rather than read all of it in a legacy encoding.

    Read as cp1252 (or whatever a detector guesses), every accent of such a
    file would turn into mojibake ("aÃ§Ã£o"). A file in a single-byte
    encoding almost never holds valid multi-byte UTF-8 sequences, so more
    valid ones than invalid bytes means: UTF-8, damaged.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    valid = invalid = 0
    first_bad_line: int | None = None
    line = 1
    with source.path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            text = decoder.decode(chunk)
            bad = [i for i, ch in enumerate(text) if "\udc80" <= ch <= "\udcff"]
            if bad and first_bad_line is None:
                first_bad_line = line + text.count("\n", 0, bad[0])
            invalid += len(bad)
            valid += sum(1 for ch in text if ord(ch) > 127) - len(bad)
            line += text.count("\n")
    if first_bad_line is not None and valid > invalid:
        raise _error(
            source,
            f"linha {first_bad_line}",
            "o arquivo está em UTF-8, mas tem bytes que não são UTF-8 válido: parece corrompido",
            "Salve o arquivo de novo como UTF-8 (ou exporte a transcrição de novo) e tente outra vez",
        )


def _decodes(path: Path, encoding: str) -> bool | None:
    """Whether the whole file decodes strictly, read in 1 MiB chunks; None when only its last character is cut."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(chunk)
    except UnicodeDecodeError:
        return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return True


def _check_text_like(path: Path, head: str) -> None:
    """Refuse binary content: text formats have (almost) no control characters."""
    if _looks_binary(head):
        raise _binary(path)


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    return "\x00" in text or controls > max(2, len(text) // 100)


def _decode_whole(raw: bytes) -> str | None:
    """Text of a whole (small) file: its BOM's encoding, else strict UTF-8, else cp1252; None if none fits."""
    encodings = [encoding for bom, encoding in _BOMS if raw.startswith(bom)][:1]
    if not encodings:
        if b"\x00" in raw:
            return None
        encodings = ["utf-8", "cp1252"]
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _binary(path: Path) -> IngestError:
    return IngestError(
        f"{path.name}: o arquivo tem conteúdo binário e não é uma transcrição reconhecida. "
        f"Formatos aceitos: {_FORMAT_NAMES}. Se for áudio ou vídeo, use a transcrição automática."
    )


# --------------------------------------------------------------------------- shared helpers


def _open_text(source: _Source, newline: str | None = None) -> TextIO:
    return source.path.open(encoding=source.encoding, errors="strict", newline=newline)


def _lines(source: _Source, handle: TextIO) -> Iterator[str]:
    """Lines of an open file, refusing absurdly long lines and NUL bytes (bounded memory)."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise _error(
                source,
                f"linha {number}",
                "linha longa demais (mais de 1 milhão de caracteres)",
                "Confira se o arquivo é mesmo uma transcrição, com quebras de linha",
            )
        if "\x00" in line:
            raise _binary(source.path)
        yield line


def _error(source: _Source, where: str, what: str, todo: str) -> IngestError:
    """The uniform message: file, place, problem, remedy."""
    place = f"{source.name}, {where}" if where else source.name
    return IngestError(f"{place}: {what}. {todo}.")


def _check_times(source: _Source, where: str, start: float, end: float) -> None:
    """Reject times no lecture can have; equal start and end are allowed (zero-length cues exist)."""
    fix = "Corrija os tempos (em segundos) e tente de novo"
    if not (math.isfinite(start) and math.isfinite(end)):
        raise _error(source, where, f"tempo inválido ({start} → {end})", fix)
    if start < 0 or end < 0:
        raise _error(source, where, f"tempo negativo ({start:g} s → {end:g} s)", fix)
    if start > MAX_SECONDS or end > MAX_SECONDS:
        raise _error(
            source,
            where,
            f"tempo absurdo ({max(start, end):.0f} s, mais de 48 horas)",
            "Confira a unidade (segundos, não milissegundos) e corrija os tempos",
        )
    if end < start:
        raise _error(source, where, f"o fim ({end:.3f} s) vem antes do início ({start:.3f} s)", fix)


def _require_cues(source: _Source, cues: Iterator[Cue]) -> Iterator[Cue]:
    """Pass cues through; a file that yields none is an error, not a silent empty video."""
    count = 0
    for cue in cues:
        count += 1
        yield cue
    if count == 0:
        raise _error(
            source,
            "",
            "nenhuma legenda com texto foi encontrada",
            "Confira se o arquivo tem falas com tempos e se a coluna de texto é a certa",
        )


@dataclass(slots=True)
class _Block:
    """Consecutive non-blank lines and the 1-based line number of the first one."""

    line_no: int
    lines: list[str] = field(default_factory=list)


def _blocks(source: _Source, lines: Iterable[str], *, whitespace_is_blank: bool) -> Iterator[_Block]:
    """Cut a line stream into blank-line separated blocks (cue blocks of VTT and SRT).

    WebVTT ends a block only at an *empty* line (YouTube puts lines holding a
    single space inside cues), SRT at any blank line.
    """
    block: _Block | None = None
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
            block = _Block(number)
        block.lines.append(line)
        size += len(line)
        if size > MAX_BLOCK_CHARS:
            raise _error(
                source,
                f"linha {block.line_no}",
                "bloco de legenda grande demais, sem linhas em branco",
                "Separe as legendas com linhas em branco",
            )
    if block is not None:
        yield block


def _with_last(blocks: Iterable[_Block]) -> Iterator[tuple[_Block, bool]]:
    """Each block and whether it is the file's last: a broken last block means the file was cut short."""
    previous: _Block | None = None
    for block in blocks:
        if previous is not None:
            yield previous, False
        previous = block
    if previous is not None:
        yield previous, True


def _truncated(source: _Source, line_no: int, line: str) -> IngestError:
    """The file ends inside a cue (its number, or a timing line cut short): say so, with the line."""
    return _error(
        source,
        f"linha {line_no}",
        f"o arquivo termina no meio de uma legenda ('{line.strip()[:40]}'): parece cortado (download ou cópia "
        "incompletos)",
        _TRUNCATED_TODO,
    )


def _cut_timing(source: _Source, line: str) -> bool:
    """Whether ``line`` is the beginning of a well-formed timing line of the file's format (cut short)."""
    shape = re.sub(r"\d", "0", line)
    return any(full.startswith(shape) and full != shape for full in _TIMING_SHAPES[source.fmt])


def _partial_timing_at(lines: list[str]) -> int | None:
    """Index of a timing line cut short or without arrow at the start of a block (after an optional id)."""
    for index, line in enumerate(lines[:2]):
        if _PARTIAL_TIMING.match(line):
            return index
    return None


def _seconds(sign: str, hours: str, minutes: str, seconds: str, fraction: str) -> float | None:
    """Clock fields to seconds; None when minutes or seconds are out of range."""
    if int(minutes) > 59 or int(seconds) > 59:
        return None
    value = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000
    return -value if sign else value


def _timing_problem(source: _Source, where: str, line: str) -> IngestError:
    """Explain a timing line that could not be read, with the syntax of the file's format."""
    if _NEGATIVE_TIME.search(line.split("-->")[0]) or _NEGATIVE_TIME.search(line.split("-->")[-1]):
        return _error(
            source,
            where,
            f"tempo negativo em '{line.strip()}'",
            "Corrija os tempos para valores a partir de 00:00:00 e tente de novo",
        )
    syntax = "HH:MM:SS,mmm --> HH:MM:SS,mmm" if source.fmt == "srt" else "HH:MM:SS.mmm --> HH:MM:SS.mmm"
    return _error(source, where, f"horário malformado em '{line.strip()}'", f"Use o formato {syntax} e tente de novo")


# --------------------------------------------------------------------------- WebVTT


def _read_vtt(source: _Source) -> Iterator[Cue]:
    """WebVTT via webvtt-py, one cue block at a time, with YouTube rolling captions de-duplicated."""
    rolling = _RollingCaptions()
    with _open_text(source) as handle:
        blocks = _with_last(_blocks(source, _lines(source, handle), whitespace_is_blank=False))
        for index, (block, last) in enumerate(blocks):
            for start, end, lines in _vtt_block(source, block, header=index == 0, last=last):
                cue = rolling.feed(start, end, lines)
                if cue is not None:
                    yield cue


def _vtt_block(source: _Source, block: _Block, *, header: bool, last: bool) -> list[tuple[float, float, list[str]]]:
    """Parse one block with webvtt-py (strict), validating its times."""
    text = "\n".join(block.lines) if header else "WEBVTT\n\n" + "\n".join(block.lines)
    where = f"linha {block.line_no}"
    try:
        captions = webvtt.from_string(text, strict=True).captions
    except (MalformedCaptionError, MalformedFileError):
        at = next((i for i, line in enumerate(block.lines) if "-->" in line), 0)
        if last and _cut_timing(source, block.lines[at]):
            raise _truncated(source, block.line_no + at, block.lines[at]) from None
        raise _timing_problem(source, where, block.lines[at]) from None
    if not captions:
        _check_not_lost_cue(source, block, header=header, last=last)
        return []
    out = []
    for caption in captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        _check_times(source, where, start, end)
        out.append((start, end, list(caption.lines)))
    return out


def _check_not_lost_cue(source: _Source, block: _Block, *, header: bool, last: bool) -> None:
    """A block without cue that looks like timings is a typo, or the end of a file cut short.

    Either would silently drop speech: a timing line without its arrow
    (``00:00:10.000``) or cut short (``00:0``), and at the end of the file a
    lone cue identifier, are refused with their line.
    """
    if header or block.lines[0].startswith(("NOTE", "STYLE", "REGION")):
        return
    at = _partial_timing_at(block.lines)
    if last and at is not None and _cut_timing(source, block.lines[at]):
        raise _truncated(source, block.line_no + at, block.lines[at])
    if last and len(block.lines) == 1 and _CUE_NUMBER.match(block.lines[0]):
        raise _truncated(source, block.line_no, block.lines[0])
    if at is not None:
        raise _timing_problem(source, f"linha {block.line_no + at}", block.lines[at])
    _refuse_broken_timing(source, block)


def _refuse_broken_timing(source: _Source, block: _Block) -> None:
    """Raise when one of the first lines of a block is a timing line the parser could not read."""
    for offset, line in enumerate(block.lines[:3]):
        if _looks_like_timing(line):
            raise _timing_problem(source, f"linha {block.line_no + offset}", line)


def _looks_like_timing(line: str) -> bool:
    """Two clock times, or one next to an arrow: a (mistyped) cue timing line, not speech."""
    clocks = len(_CLOCK_LIKE.findall(line))
    return clocks >= 2 or (clocks == 1 and ("->" in line or "--" in line))


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


# --------------------------------------------------------------------------- SRT


@dataclass(slots=True)
class _SrtCue:
    line_no: int
    timing: str
    start: float
    end: float
    text: list[str]


def _read_srt(source: _Source) -> Iterator[Cue]:
    """SRT: own block splitting and timing validation, pysubs2 for the cue text.

    pysubs2 silently glues a cue with an unreadable timing line onto the
    previous cue, so timings are validated here (with the line number) and
    pysubs2 only converts each cue's text (HTML and SSA tags).
    """
    pending: _SrtCue | None = None
    with _open_text(source) as handle:
        for block, last in _with_last(_blocks(source, _lines(source, handle), whitespace_is_blank=True)):
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


def _continue_srt(source: _Source, block: _Block, pending: _SrtCue | None, *, last: bool) -> _SrtCue | None:
    """A block without timing: a lone index line, or text after a blank line inside a cue.

    A cue number followed by a timing line without its arrow is a broken cue,
    not speech; at the end of the file, a cue number with nothing readable
    after it (``57``, ``57 / 00:12:3``) means the file was cut short.
    """
    lines = block.lines
    numbered = _CUE_NUMBER.match(lines[0]) is not None
    if last and numbered and not any(_LETTER.search(line) for line in lines):
        raise _truncated(source, block.line_no + len(lines) - 1, lines[-1])
    if last and len(lines) == 1 and _cut_timing(source, lines[0]):
        raise _truncated(source, block.line_no, lines[0])
    if numbered and len(lines) > 1 and _PARTIAL_TIMING.match(lines[1]):
        raise _timing_problem(source, f"linha {block.line_no + 1}", lines[1])
    if len(lines) == 1 and numbered:
        return pending
    _refuse_broken_timing(source, block)
    if pending is None:
        raise _error(
            source,
            f"linha {block.line_no}",
            "texto sem horário antes da primeira legenda",
            "Cada legenda SRT precisa de número, linha de horário (00:00:01,000 --> 00:00:02,000) "
            "e texto; corrija o início do arquivo",
        )
    pending.text.extend(block.lines)
    return pending


def _parse_srt_timing(source: _Source, block: _Block, timing_at: int, *, last: bool) -> _SrtCue:
    line_no = block.line_no + timing_at
    where = f"legenda na linha {line_no}"
    timing = block.lines[timing_at]
    match = _SRT_TIMING.match(timing)
    start = _seconds(*match.groups()[:5]) if match else None
    end = _seconds(*match.groups()[5:]) if match else None
    if match is None and last and _cut_timing(source, timing):
        raise _truncated(source, line_no, timing)
    if match is None or start is None or end is None:
        raise _timing_problem(source, where, timing)
    _check_times(source, where, start, end)
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


# --------------------------------------------------------------------------- JSON (whole documents)


def _check_json_size(source: _Source) -> None:
    size = source.path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise _error(
            source,
            "",
            f"arquivo JSON grande demais ({size / 2**20:.0f} MB; o limite é "
            f"{MAX_JSON_BYTES // 2**20} MB, porque JSON precisa ser lido inteiro)",
            'Converta para JSONL (um objeto {"start", "end", "text"} por linha), que é lido aos poucos',
        )


def _load_json(source: _Source) -> Any:
    with _open_text(source) as handle:
        text = handle.read()
    return _parsed(source, "", text, "Corrija o JSON (ou exporte de novo) e tente outra vez")


def _parsed(source: _Source, where: str, text: str, todo: str) -> Any:
    """One JSON document (a whole file, or one JSONL line at ``where``), every parse problem an IngestError."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        place = where or f"linha {exc.lineno}, coluna {exc.colno}"
        raise _error(source, place, f"JSON malformado ({exc.msg})", todo) from None
    except ValueError as exc:  # absurd nesting, or a number too long to convert
        raise _error(source, where, f"JSON inválido: {exc}", "Confira se o arquivo é mesmo uma transcrição") from None


#: Values quoted in messages are cut short: a hostile file can hold a huge or deeply nested one.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 2, 60, 60, 4, 4


def _shown(value: Any) -> str:
    """``value`` as a short repr for messages (bounded in length and depth)."""
    return _SHORT.repr(value)


def _number(source: _Source, where: str, value: Any, key: str) -> float:
    """A JSON time field as a float; booleans and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(
            source,
            where,
            f"o campo '{key}' deveria ser um número, mas é {_shown(value)}",
            "Corrija o campo para um número de segundos e tente de novo",
        )
    return float(value)


def _json_string(source: _Source, where: str, value: Any, key: str) -> str:
    """A JSON text field as it is; anything but a string, or a string no file can store, is refused."""
    if not isinstance(value, str):
        raise _error(
            source,
            where,
            f"o campo '{key}' deveria ser texto, mas é {_shown(value)}",
            "Corrija o registro e tente de novo",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _error(
            source,
            where,
            f"o campo '{key}' tem um caractere inválido (um escape \\u isolado, como \\ud800)",
            "Corrija o texto (ou exporte de novo) e tente outra vez",
        ) from None
    return value


def _read_json3(source: _Source) -> Iterator[Cue]:
    """YouTube json3 (timedtext): events with millisecond times and text segments.

    ASR json3 events stay on screen after the next one starts; the end of an
    event is clipped to the next event's start so the cues tile the speech.
    """
    data = _load_json(source)
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise _error(
            source,
            "",
            "JSON sem a lista 'events' do formato json3 do YouTube",
            "Baixe as legendas de novo no formato json3 ou use VTT",
        )
    timed = list(_json3_events(source, events))
    for i, (start, end, text) in enumerate(timed):
        if i + 1 < len(timed) and start < timed[i + 1][0] < end:
            end = timed[i + 1][0]
        yield Cue(start, end, text)


def _json3_events(source: _Source, events: list[Any]) -> Iterator[tuple[float, float, str]]:
    for number, event in enumerate(events, 1):
        where = f"evento {number}"
        if not isinstance(event, dict):
            raise _error(source, where, "evento não é um objeto JSON", "Baixe as legendas de novo")
        segs = event.get("segs")
        if not segs:
            continue  # window and style definitions carry no text
        if not isinstance(segs, list):
            raise _error(source, where, "'segs' deveria ser uma lista", "Baixe as legendas de novo")
        text = clean_text(
            "".join(_json_string(source, where, seg.get("utf8", ""), "utf8") for seg in segs if isinstance(seg, dict))
        )
        if not text:
            continue
        start_ms = _number(source, where, event.get("tStartMs"), "tStartMs")
        duration_ms = _number(source, where, event.get("dDurationMs", 0), "dDurationMs")
        start, end = start_ms / 1000, (start_ms + duration_ms) / 1000
        _check_times(source, where, start, end)
        yield start, end, text


def _read_whisper(source: _Source) -> Iterator[Cue]:
    """openai-whisper / faster-whisper / WhisperX output: ``segments`` or a bare list of them."""
    data = _load_json(source)
    segments = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(segments, list):
        raise _error(
            source,
            "",
            "JSON sem a lista 'segments' com start/end/text",
            "Salve a saída do Whisper com os segmentos (por exemplo, --output_format json)",
        )
    for number, segment in enumerate(segments, 1):
        cue = _timed_record(source, f"segmento {number}", segment)
        if cue is not None:
            yield cue


def _timed_record(source: _Source, where: str, record: Any) -> Cue | None:
    """A ``{"start", "end", "text"}`` object as a cue (None when the text is empty)."""
    if not isinstance(record, dict):
        raise _error(
            source, where, "esperava um objeto JSON com start, end e text", "Corrija o registro e tente de novo"
        )
    missing = [key for key in ("start", "end", "text") if key not in record]
    if missing:
        raise _error(
            source,
            where,
            f"faltam campos obrigatórios: {', '.join(missing)}",
            'Cada registro precisa de "start" e "end" (segundos) e "text"',
        )
    start = _number(source, where, record["start"], "start")
    end = _number(source, where, record["end"], "end")
    _check_times(source, where, start, end)
    text = clean_text(_json_string(source, where, record["text"], "text"))
    return Cue(start, end, text) if text else None


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(source: _Source) -> Iterator[Cue]:
    """One ``{"start", "end", "text"}`` object per line, streamed."""
    with _open_text(source) as handle:
        for number, line in enumerate(_lines(source, handle), 1):
            if not line.strip():
                continue
            where = f"linha {number}"
            record = _parsed(source, where, line, "Cada linha deve ser um objeto JSON completo; corrija a linha")
            cue = _timed_record(source, where, record)
            if cue is not None:
                yield cue


# --------------------------------------------------------------------------- NURC CSV


def _csv_column(source: _Source, column: str | None) -> str:
    """The text column: the override, else ``prediction`` for ASR files, else ``text``."""
    header = _csv_header(source.head.splitlines()[0])
    assert header is not None  # sniffing classified the file by this header
    names = header[1]
    wanted = column.strip().lower() if column else ("prediction" if "prediction" in names else "text")
    if wanted not in names:
        raise _error(
            source,
            "linha 1",
            f"a coluna '{wanted}' não existe (colunas: {', '.join(names)})",
            "Escolha uma coluna de texto existente com --column",
        )
    return wanted


def _read_csv(source: _Source) -> Iterator[Cue]:
    """NURC-SP style CSV (``;``-separated, decimal commas), streamed row by row."""
    with _open_text(source, newline="") as handle:
        lines = _lines(source, handle)
        header_line = next(lines)
        found = _csv_header(header_line.removeprefix("\ufeff").strip())
        if found is None:
            raise _error(
                source,
                "linha 1",
                "cabeçalho do CSV sem colunas de início e fim",
                "O cabeçalho precisa de start_sec, end_sec e uma coluna de texto",
            )
        delimiter, names = found
        i_start = next(names.index(n) for n in _CSV_START if n in names)
        i_end = next(names.index(n) for n in _CSV_END if n in names)
        i_text = names.index(source.column)
        reader = csv.reader(lines, delimiter=delimiter)
        for row in reader:
            cue = _csv_row(source, f"linha {reader.line_num + 1}", row, len(names), (i_start, i_end, i_text))
            if cue is not None:
                yield cue


def _csv_row(source: _Source, where: str, row: list[str], width: int, idx: tuple[int, int, int]) -> Cue | None:
    if not any(cell.strip() for cell in row):
        return None
    if len(row) != width:
        raise _error(
            source,
            where,
            f"a linha tem {len(row)} campos, o cabeçalho tem {width}",
            "Confira o separador ';' e aspas na linha",
        )
    i_start, i_end, i_text = idx
    start = _csv_number(source, where, row[i_start])
    end = _csv_number(source, where, row[i_end])
    _check_times(source, where, start, end)
    text = clean_text(row[i_text])
    return Cue(start, end, text) if text else None


def _csv_number(source: _Source, where: str, cell: str) -> float:
    """Seconds with a decimal comma or point."""
    try:
        return float(cell.strip().replace(",", "."))
    except ValueError:
        raise _error(
            source, where, f"tempo malformado '{cell}'", "Use segundos com vírgula ou ponto decimal (ex.: 12,5)"
        ) from None


_READERS: dict[str, Callable[[_Source], Iterator[Cue]]] = {
    "vtt": _read_vtt,
    "srt": _read_srt,
    "json3": _read_json3,
    "whisper_json": _read_whisper,
    "jsonl": _read_jsonl,
    "nurc_csv": _read_csv,
}
