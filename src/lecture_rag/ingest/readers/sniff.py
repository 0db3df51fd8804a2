"""Recognising a transcript file: its format from the suffix and first bytes, its encoding from the whole file.

Encodings are tried in the order the package docstring explains (BOM, strict UTF-8,
cp1252, then charset-normalizer).
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import charset_normalizer

from lecture_rag.errors import IngestError
from lecture_rag.ingest.readers.common import (
    FORMAT_NAMES,
    SUPPORTED_SUFFIXES,
    TRUNCATED_TODO,
    Source,
    binary_error,
    error,
)
from lecture_rag.ingest.readers.nurc_csv import csv_header
from lecture_rag.ingest.readers.srt import SRT_TIMING
from lecture_rag.userfiles import BOMS, JSONNestingError, looks_binary, parse_json

_EMPTY = "o arquivo está vazio. Exporte a transcrição de novo e tente outra vez."

#: Bytes sniffed to recognise the format and encoding.
_SNIFF_BYTES = 64 * 1024


def sniff(path: Path) -> Source:
    """Check suffix, emptiness and binary content, then recognise the format from the head."""
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise IngestError(
            f"{path.name}: extensão '{path.suffix or '(nenhuma)'}' não é de transcrição. "
            f"Use um destes formatos: {FORMAT_NAMES}."
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
            f"{path.name}: o conteúdo não é uma transcrição reconhecida. Formatos aceitos: {FORMAT_NAMES}."
        )
    return Source(path=path, fmt=fmt, encoding=encoding, head=head)


def _format_of(head: str, suffix: str) -> str | None:
    """Recognise the format from the decoded head of the file (None if unknown)."""
    text = head.lstrip()
    if text.startswith("WEBVTT"):
        return "vtt"
    if text.startswith(("{", "[")):
        return _json_kind(text, suffix)
    lines = [line.strip() for line in text.splitlines()[:3]]
    if SRT_TIMING.match(lines[0]) or (len(lines) > 1 and lines[0].isdigit() and "-->" in lines[1]):
        return "srt"
    if csv_header(lines[0]) is not None:
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


def _head_encoding(path: Path, raw: bytes) -> str:
    """Encoding that decodes the sniffed head: BOM, strict UTF-8, cp1252, then a detector."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return encoding
    if b"\x00" in raw:
        raise binary_error(path)
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
        raise binary_error(path)
    return best.encoding


def whole_file_encoding(source: Source) -> str:
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
            raise error(
                source,
                "",
                f"o arquivo termina no meio de um caractere ({encoding}): parece cortado (download ou cópia "
                "incompletos)",
                TRUNCATED_TODO,
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


def _refuse_damaged_utf8(source: Source) -> None:
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
        raise error(
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
    if looks_binary(head):
        raise binary_error(path)
