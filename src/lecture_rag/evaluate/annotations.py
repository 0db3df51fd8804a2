"""Manual annotations: import from CSV, JSON Lines or a JSON array, validated before anything is written.

Labels are read like everywhere else (:meth:`LabelScheme.resolve`): a code
(``C``), a name (``correta``) or an alias (``correct``) of the run's scheme.
Problems are reported with where they are: the line of a CSV or JSON Lines
file (as an editor numbers it), the item of a JSON array.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, scheme_of_run
from lecture_rag.store import RunStore

JSON_LINES = {".jsonl", ".ndjson"}


@dataclass(frozen=True, slots=True)
class Label:
    qid: str
    label: str
    annotator: str
    comment: str = ""


def _cells(obj: Any, where: str, path: Path) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise LectureRagError(f"{path}, {where}: esperado um objeto JSON com qid e label, veio {type(obj).__name__}.")
    return {str(k): "" if v is None else str(v) for k, v in obj.items()}


def _json_lines(path: Path) -> list[tuple[str, dict[str, str]]]:
    rows = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"linha {number}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise LectureRagError(f"{path}, {where}: JSON inválido ({exc}).") from exc
            rows.append((where, _cells(obj, where, path)))
    return rows


def _json_array(path: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise LectureRagError(
            f"{path}: JSON inválido ({exc}). Um arquivo .json deve ser uma lista de objetos "
            '[{"qid": ..., "label": ...}]; para um objeto por linha, use a extensão .jsonl.'
        ) from exc
    if not isinstance(data, list):
        raise LectureRagError(f'{path}: esperada uma lista de objetos [{{"qid": ..., "label": ...}}].')
    return [(f"item {n}", _cells(obj, f"item {n}", path)) for n, obj in enumerate(data, start=1)]


def _csv(path: Path) -> list[tuple[str, dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
        reader = csv.DictReader(handle, dialect=dialect)
        rows = []
        for row in reader:
            rows.append((f"linha {reader.line_num}", {k: v or "" for k, v in row.items() if isinstance(k, str)}))
        return rows


def _rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    suffix = path.suffix.lower()
    if suffix in JSON_LINES:
        return _json_lines(path)
    if suffix == ".json":
        return _json_array(path)
    return _csv(path)


def read_labels(
    path: Path, default_annotator: str, known_qids: set[str], scheme: LabelScheme = DEFAULT_SCHEME
) -> list[Label]:
    """Every row checked (question id exists, label in the run's scheme) before any is stored."""
    if not path.exists():
        raise LectureRagError(f"Arquivo de anotações não encontrado: {path}")
    labels: list[Label] = []
    problems: list[str] = []
    for where, row in _rows(path):
        qid = (row.get("qid") or row.get("id") or "").strip()
        given = (row.get("label") or row.get("rotulo") or "").strip()
        code = scheme.resolve(given) if given else None
        if qid not in known_qids:
            problems.append(f"{where}: pergunta '{qid}' não está na rodada")
        elif code is None:
            problems.append(f"{where}: rótulo '{given}' inválido (use {', '.join(scheme.codes)})")
        else:
            annotator = (row.get("annotator") or row.get("anotador") or default_annotator).strip()
            comment = (row.get("comment") or row.get("comentario") or "").strip()
            labels.append(Label(qid, code, annotator, comment))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; e mais {len(problems) - 10}" if len(problems) > 10 else "")
        raise LectureRagError(f"{path}: nada foi importado. Corrija: {shown}.")
    if not labels:
        raise LectureRagError(f"{path}: nenhuma anotação (colunas esperadas: qid, label, annotator, comment).")
    return labels


def import_labels(runs: RunStore, run: str, path: Path, default_annotator: str) -> int:
    known = runs.answered(run)
    labels = read_labels(path, default_annotator, known, scheme_of_run(runs.require(run)))
    for item in labels:
        runs.annotate(run, item.qid, item.annotator, item.label, item.comment)
    return len(labels)
