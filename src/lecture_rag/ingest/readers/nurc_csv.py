"""NURC-SP style CSV transcripts (``;``-separated, decimal commas; human or ASR), streamed row by row."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from lecture_rag.ingest.readers.common import (
    Source,
    check_times,
    clean_text,
    error,
    lines_of,
    open_text,
)
from lecture_rag.records import Cue

_NURC_NAME = re.compile(r"^(?:sentences_)?(SP_[A-Z0-9]+_\d+)(?:_asr_[^/\\]*)?\.csv$")
_CSV_START = ("start_sec", "start")
_CSV_END = ("end_sec", "end")


def nurc_video_id(path: Path) -> str | None:
    """``SP_EF_405`` for NURC-SP files (human or ASR), else None.

    Both versions of a lecture must share one video id, so that citations of
    the human and the ASR transcript point at the same recording.
    """
    match = _NURC_NAME.match(Path(path).name)
    return match.group(1) if match else None


def csv_header(line: str) -> tuple[str, list[str]] | None:
    """(delimiter, column names) when ``line`` is a CSV header with start and end columns."""
    for delimiter in (";", ",", "\t"):
        names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter), [])]
        if any(n in names for n in _CSV_START) and any(n in names for n in _CSV_END):
            return delimiter, names
    return None


def csv_column(source: Source, column: str | None) -> str:
    """The text column: the override, else ``prediction`` for ASR files, else ``text``."""
    header = csv_header(source.head.splitlines()[0])
    assert header is not None  # sniffing classified the file by this header
    names = header[1]
    wanted = column.strip().lower() if column else ("prediction" if "prediction" in names else "text")
    if wanted not in names:
        raise error(
            source,
            "linha 1",
            f"a coluna '{wanted}' não existe (colunas: {', '.join(names)})",
            "Escolha uma coluna de texto existente com --column",
        )
    return wanted


def read_csv(source: Source) -> Iterator[Cue]:
    """NURC-SP style CSV (``;``-separated, decimal commas), streamed row by row."""
    with open_text(source, newline="") as handle:
        lines = lines_of(source, handle)
        header_line = next(lines)
        found = csv_header(header_line.removeprefix("\ufeff").strip())
        if found is None:
            raise error(
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


def _csv_row(source: Source, where: str, row: list[str], width: int, idx: tuple[int, int, int]) -> Cue | None:
    if not any(cell.strip() for cell in row):
        return None
    if len(row) != width:
        raise error(
            source,
            where,
            f"a linha tem {len(row)} campos, o cabeçalho tem {width}",
            "Confira o separador ';' e aspas na linha",
        )
    i_start, i_end, i_text = idx
    start = _csv_number(source, where, row[i_start])
    end = _csv_number(source, where, row[i_end])
    check_times(source, where, start, end)
    text = clean_text(row[i_text])
    return Cue(start, end, text) if text else None


def _csv_number(source: Source, where: str, cell: str) -> float:
    """Seconds with a decimal comma or point."""
    try:
        return float(cell.strip().replace(",", "."))
    except ValueError:
        raise error(
            source, where, f"tempo malformado '{cell}'", "Use segundos com vírgula ou ponto decimal (ex.: 12,5)"
        ) from None
