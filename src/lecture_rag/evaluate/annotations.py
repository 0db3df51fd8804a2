"""Manual annotations: import from CSV, JSON Lines or a JSON array, validated before anything is written.

Labels are read like everywhere else (:meth:`LabelScheme.resolve`): a code
(``C``), a name (``correta``) or an alias (``correct``) of the run's scheme.
Problems are reported with where they are: the line of a CSV or JSON Lines
file (as an editor numbers it), the item of a JSON array.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, fold_text, scheme_of_run
from lecture_rag.store import RunStore
from lecture_rag.store.runs import annotator_name
from lecture_rag.userfiles import parse_json, read_user_text

JSON_LINES = {".jsonl", ".ndjson"}
_EXPECTED = "anotações em CSV, JSON Lines ou JSON"
#: Column (or key) names, without accents and case, and the field each one fills.
_COLUMNS = {
    "qid": "qid",
    "id": "qid",
    "label": "label",
    "rotulo": "label",
    "annotator": "annotator",
    "anotador": "annotator",
    "comment": "comment",
    "comentario": "comment",
}
_NEEDED = ("qid", "label")
_DELIMITERS = {",": "vírgula", ";": "ponto e vírgula", "\t": "tab"}


@dataclass(frozen=True, slots=True)
class Label:
    qid: str
    label: str
    annotator: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class _Row:
    """One record of the file: where it is, its fields by canonical name, or why it cannot be read."""

    where: str
    cells: dict[str, str]
    problem: str = ""


def _field(key: str) -> str:
    folded = fold_text(key)
    return _COLUMNS.get(folded, folded)


def _cells(obj: Any, where: str, path: Path) -> _Row:
    if not isinstance(obj, dict):
        raise LectureRagError(f"{path}, {where}: esperado um objeto JSON com qid e label, veio {type(obj).__name__}.")
    cells: dict[str, str] = {}
    for key, value in obj.items():
        name = _field(str(key))
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
        else:
            return _Row(where, {}, f"o campo '{key}' deveria ser texto, mas é {type(value).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _Row(where, {}, f"o campo '{key}' tem um caractere inválido (um escape \\u isolado)")
        if not cells.get(name):
            cells[name] = text
    return _Row(where, cells)


def _json_lines(path: Path, text: str) -> list[_Row]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"linha {number}"
        try:
            obj = parse_json(line)
        except ValueError as exc:
            raise LectureRagError(f"{path}, {where}: nada foi importado: JSON inválido ({exc}).") from None
        rows.append(_cells(obj, where, path))
    return rows


def _json_array(path: Path, text: str) -> list[_Row]:
    try:
        data = parse_json(text)
    except ValueError as exc:
        raise LectureRagError(
            f"{path}: nada foi importado: JSON inválido ({exc}). Um arquivo .json deve ser uma lista de objetos "
            '[{"qid": ..., "label": ...}]; para um objeto por linha, use a extensão .jsonl.'
        ) from None
    if not isinstance(data, list):
        raise LectureRagError(f'{path}: esperada uma lista de objetos [{{"qid": ..., "label": ...}}].')
    return [_cells(obj, f"item {n}", path) for n, obj in enumerate(data, start=1)]


def _delimiter(header: str) -> str:
    """The header's separator: the one that splits it into the most known columns (then the most columns)."""

    def score(delimiter: str) -> tuple[int, int]:
        names = next(csv.reader([header], delimiter=delimiter), [])
        return sum(_field(name) in _COLUMNS.values() for name in names), len(names)

    return max(_DELIMITERS, key=score)


def _csv(path: Path, text: str) -> list[_Row]:
    """Rows of a CSV file, by the header's column names; the header picks the separator (no guessing from data)."""
    delimiter = _delimiter(text.split("\n", 1)[0].rstrip("\r"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    names = [_field(name) for name in header]
    missing = [f"'{column}'" for column in _NEEDED if column not in names]
    if missing:
        raise LectureRagError(
            f"{path}, linha 1: nada foi importado: o cabeçalho não tem a coluna {' nem '.join(missing)} "
            f"(colunas: {', '.join(header) or 'nenhuma'}). A primeira linha precisa nomear as colunas qid e label "
            "(e, se quiser, annotator e comment), separadas por vírgula, ponto e vírgula ou tab."
        )
    rows = []
    first_line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
    while True:
        where = f"linha {first_line}"
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise LectureRagError(
                f"{path}, {where}: nada foi importado: CSV malformado ({_csv_problem(exc)}). Um campo que "
                "começa com aspas precisa terminar com aspas; corrija a linha e importe de novo."
            ) from None
        first_line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            rows.append(
                _Row(
                    where,
                    {},
                    f"{len(row)} campos, mas o cabeçalho tem {len(names)}: um texto com "
                    f"{_DELIMITERS[delimiter]} precisa estar entre aspas",
                )
            )
            continue
        rows.append(_Row(where, dict(zip(names, row, strict=False))))
    return rows


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return f"um campo passa de {limit} caracteres: aspas abertas e nunca fechadas, ou um texto longo demais"
    return str(exc)


def _rows(path: Path) -> list[_Row]:
    text = read_user_text(path, _EXPECTED)
    suffix = path.suffix.lower()
    if suffix in JSON_LINES:
        return _json_lines(path, text)
    if suffix == ".json":
        return _json_array(path, text)
    return _csv(path, text)


def read_labels(
    path: Path, default_annotator: str, known_qids: set[str], scheme: LabelScheme = DEFAULT_SCHEME
) -> list[Label]:
    """Every row checked (question id exists, label in the run's scheme) before any is stored.

    The file is read whole first (CSV in UTF-8, Windows-1252 or UTF-16, its
    separator taken from the header; JSON Lines; a JSON array): a file or a
    row that cannot be read is refused with where and why, and nothing is
    imported.
    """
    if not path.exists():
        raise LectureRagError(f"Arquivo de anotações não encontrado: {path}")
    labels: list[Label] = []
    problems: list[str] = []
    for item in _rows(path):
        if item.problem:
            problems.append(f"{item.where}: {item.problem}")
            continue
        row = item.cells
        qid = row.get("qid", "").strip()
        given = row.get("label", "").strip()
        code = scheme.resolve(given) if given else None
        if qid not in known_qids:
            problems.append(f"{item.where}: pergunta '{qid}' não está na rodada")
        elif not given:
            problems.append(f"{item.where}: falta o rótulo (coluna label)")
        elif code is None:
            problems.append(f"{item.where}: rótulo '{given}' inválido (use {', '.join(scheme.codes)})")
        else:
            try:
                annotator = annotator_name(row.get("annotator") or default_annotator)
            except LectureRagError as exc:
                problems.append(f"{item.where}: {exc}")
                continue
            comment = row.get("comment", "").strip()
            labels.append(Label(qid, code, annotator, comment))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; e mais {len(problems) - 10}" if len(problems) > 10 else "")
        raise LectureRagError(f"{path}: nada foi importado. Corrija: {shown}.")
    if not labels:
        raise LectureRagError(f"{path}: nenhuma anotação (colunas esperadas: qid, label, annotator, comment).")
    return labels


def import_labels(runs: RunStore, run: str, path: Path, default_annotator: str) -> int:
    """Store every label of the file in one transaction: a killed or failed import leaves the run as it was."""
    known = runs.answered(run)
    labels = read_labels(path, default_annotator, known, scheme_of_run(runs.require(run)))
    runs.annotate_many(run, [(item.qid, item.annotator, item.label, item.comment) for item in labels])
    return len(labels)
