"""Manual annotations: import from CSV/JSON Lines, validated before anything is written."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.evaluate.runs import RunStore


@dataclass(frozen=True, slots=True)
class Label:
    qid: str
    label: str
    annotator: str
    comment: str = ""


def _rows(path: Path) -> list[dict[str, str]]:
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        rows = []
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append({k: "" if v is None else str(v) for k, v in json.loads(line).items()})
                    except (ValueError, AttributeError) as exc:
                        raise LectureRagError(f"{path}, linha {number}: JSON inválido ({exc}).") from exc
        return rows
    with path.open(encoding="utf-8-sig", newline="") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
        return [dict(row) for row in csv.DictReader(handle, dialect=dialect)]


def read_labels(
    path: Path, default_annotator: str, known_qids: set[str], scheme: LabelScheme = DEFAULT_SCHEME
) -> list[Label]:
    """Every row checked (question id exists, label in the run's scheme) before any is stored."""
    if not path.exists():
        raise LectureRagError(f"Arquivo de anotações não encontrado: {path}")
    codes = {d.code.upper(): d.code for d in scheme.labels}
    labels: list[Label] = []
    problems: list[str] = []
    for number, row in enumerate(_rows(path), start=2):
        qid = (row.get("qid") or row.get("id") or "").strip()
        label = (row.get("label") or row.get("rotulo") or "").strip().upper()
        if qid not in known_qids:
            problems.append(f"linha {number}: pergunta '{qid}' não está na rodada")
        elif label not in codes:
            problems.append(f"linha {number}: rótulo '{label}' inválido (use {', '.join(scheme.codes)})")
        else:
            annotator = (row.get("annotator") or row.get("anotador") or default_annotator).strip()
            comment = (row.get("comment") or row.get("comentario") or "").strip()
            labels.append(Label(qid, codes[label], annotator, comment))
    if problems:
        shown = "; ".join(problems[:10]) + (f"; e mais {len(problems) - 10}" if len(problems) > 10 else "")
        raise LectureRagError(f"{path}: nada foi importado. Corrija: {shown}.")
    if not labels:
        raise LectureRagError(f"{path}: nenhuma anotação (colunas esperadas: qid, label, annotator, comment).")
    return labels


def import_labels(runs: RunStore, run: str, path: Path, default_annotator: str) -> int:
    known = runs.answered(run)
    labels = read_labels(path, default_annotator, known, runs.scheme(run))
    for item in labels:
        runs.annotate(run, item.qid, item.annotator, item.label, item.comment)
    return len(labels)
