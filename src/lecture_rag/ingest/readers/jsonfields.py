"""JSON transcripts (json3, Whisper, JSONL): parsing a document or a line, and checking its fields.

Every problem becomes an :class:`IngestError` that names the file, the place and the
field; values quoted in messages are cut short, since a hostile file can hold huge ones.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

from lecture_rag.ingest.readers.common import (
    Source,
    check_times,
    clean_text,
    error,
    open_text,
)
from lecture_rag.records import Cue
from lecture_rag.userfiles import MAX_JSON_BYTES, parse_json


def check_json_size(source: Source) -> None:
    size = source.path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise error(
            source,
            "",
            f"arquivo JSON grande demais ({size / 2**20:.0f} MB; o limite é "
            f"{MAX_JSON_BYTES // 2**20} MB, porque JSON precisa ser lido inteiro)",
            'Converta para JSONL (um objeto {"start", "end", "text"} por linha), que é lido aos poucos',
        )


def load_json(source: Source) -> Any:
    with open_text(source) as handle:
        text = handle.read()
    return parsed(source, "", text, "Corrija o JSON (ou exporte de novo) e tente outra vez")


def parsed(source: Source, where: str, text: str, todo: str) -> Any:
    """One JSON document (a whole file, or one JSONL line at ``where``), every parse problem an IngestError."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        place = where or f"linha {exc.lineno}, coluna {exc.colno}"
        raise error(source, place, f"JSON malformado ({exc.msg})", todo) from None
    except ValueError as exc:  # absurd nesting, or a number too long to convert
        raise error(source, where, f"JSON inválido: {exc}", "Confira se o arquivo é mesmo uma transcrição") from None


#: Values quoted in messages are cut short: a hostile file can hold a huge or deeply nested one.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 2, 60, 60, 4, 4


def _shown(value: Any) -> str:
    """``value`` as a short repr for messages (bounded in length and depth)."""
    return _SHORT.repr(value)


def json_number(source: Source, where: str, value: Any, key: str) -> float:
    """A JSON time field as a float; booleans and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(
            source,
            where,
            f"o campo '{key}' deveria ser um número, mas é {_shown(value)}",
            "Corrija o campo para um número de segundos e tente de novo",
        )
    return float(value)


def json_string(source: Source, where: str, value: Any, key: str) -> str:
    """A JSON text field as it is; anything but a string, or a string no file can store, is refused."""
    if not isinstance(value, str):
        raise error(
            source,
            where,
            f"o campo '{key}' deveria ser texto, mas é {_shown(value)}",
            "Corrija o registro e tente de novo",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            source,
            where,
            f"o campo '{key}' tem um caractere inválido (um escape \\u isolado, como \\ud800)",
            "Corrija o texto (ou exporte de novo) e tente outra vez",
        ) from None
    return value


def timed_record(source: Source, where: str, record: Any) -> Cue | None:
    """A ``{"start", "end", "text"}`` object as a cue (None when the text is empty)."""
    if not isinstance(record, dict):
        raise error(
            source, where, "esperava um objeto JSON com start, end e text", "Corrija o registro e tente de novo"
        )
    missing = [key for key in ("start", "end", "text") if key not in record]
    if missing:
        raise error(
            source,
            where,
            f"faltam campos obrigatórios: {', '.join(missing)}",
            'Cada registro precisa de "start" e "end" (segundos) e "text"',
        )
    start = json_number(source, where, record["start"], "start")
    end = json_number(source, where, record["end"], "end")
    check_times(source, where, start, end)
    text = clean_text(json_string(source, where, record["text"], "text"))
    return Cue(start, end, text) if text else None
