"""Importing people's labels: names and aliases as everywhere else, exact line numbers, JSON arrays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.annotations import read_labels
from lecture_rag.evaluate.labels import DEFAULT_SCHEME

QIDS = {"q1", "q2", "q3"}


def test_names_and_aliases_are_accepted_like_on_the_web_page(tmp_path: Path) -> None:
    """``correta``, ``parcial`` and ``wrong`` resolve as the page and question files resolve them."""
    path = tmp_path / "labels.csv"
    path.write_text("qid,label,annotator\nq1,correta,ana\nq2,parcial,ana\nq3,wrong,bia\n", encoding="utf-8")
    labels = read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    assert [(x.qid, x.label, x.annotator) for x in labels] == [
        ("q1", "C", "ana"),
        ("q2", "P", "ana"),
        ("q3", "I", "bia"),
    ]


def test_json_lines_problems_name_the_real_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"qid": "q1", "label": "C"}\n\n{"qid": "q2", "label": "talvez"}\n{"qid": "q9", "label": "C"}\n',
        encoding="utf-8",
    )
    with pytest.raises(LectureRagError) as info:
        read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    message = str(info.value)
    assert "linha 3: rótulo 'talvez' inválido" in message
    assert "linha 4: pergunta 'q9' não está na rodada" in message
    assert "nada foi importado" in message


def test_csv_problems_name_the_line_as_an_editor_numbers_it(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("qid,label\nq1,C\nq2,X\n", encoding="utf-8")
    with pytest.raises(LectureRagError, match="linha 3: rótulo 'X' inválido"):
        read_labels(path, "importado", QIDS, DEFAULT_SCHEME)


def test_a_json_file_is_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(
        json.dumps([{"qid": "q1", "label": "C", "annotator": "ana"}, {"qid": "q2", "label": "não respondeu"}]),
        encoding="utf-8",
    )
    labels = read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    assert [(x.qid, x.label, x.annotator) for x in labels] == [("q1", "C", "ana"), ("q2", "N", "importado")]
    path.write_text(json.dumps([{"qid": "q1", "label": "C"}, {"qid": "q2", "label": "??"}]), encoding="utf-8")
    with pytest.raises(LectureRagError, match="item 2: rótulo"):
        read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
