"""Importing people's labels: names and aliases as everywhere else, exact line numbers, JSON arrays."""

from __future__ import annotations

import csv
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


# --------------------------------------------------------------------------- hostile files (issue 16)


def _refused(path: Path) -> str:
    with pytest.raises(LectureRagError) as info:
        read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    message = str(info.value)
    assert str(path) in message and "Traceback" not in message
    return message


def test_a_long_comment_is_imported(tmp_path: Path) -> None:
    """A 4.7 KB quoted comment (with commas) made the delimiter sniffer give up: 'Could not determine delimiter'."""
    comment = "A resposta cita o trecho certo, mas esquece a data; " * 90
    path = tmp_path / "labels.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["qid", "label", "comment"], ["q1", "P", comment], ["q2", "C", "ok"]])
    assert path.stat().st_size > 4700
    labels = read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    assert [(x.qid, x.label) for x in labels] == [("q1", "P"), ("q2", "C")]
    assert labels[0].comment == comment.strip()


@pytest.mark.parametrize(
    ("header", "missing"),
    [("qid\nq1\nq2\n", "label"), ("label\nC\nP\n", "qid"), ("pergunta;nota\nq1;C\n", "qid")],
)
def test_a_file_without_the_needed_columns_says_which(tmp_path: Path, header: str, missing: str) -> None:
    """A one-column file used to end in 'Could not determine delimiter' (csv.Error traceback)."""
    path = tmp_path / "labels.csv"
    path.write_text(header, encoding="utf-8")
    message = _refused(path)
    assert "linha 1" in message and f"'{missing}'" in message and "nada foi importado" in message


def test_a_row_with_too_many_fields_is_refused_with_its_line(tmp_path: Path) -> None:
    """An unquoted comma in a comment shifts the columns: refuse the row, never import it misaligned."""
    path = tmp_path / "labels.csv"
    path.write_text("qid,label,annotator,comment\nq1,C,ana,ok\nq2,P,ana,bom, mas curto\n", encoding="utf-8")
    message = _refused(path)
    assert "linha 3" in message and "5 campos" in message and "4" in message and "aspas" in message
    assert "nada foi importado" in message


def test_rows_without_the_optional_trailing_columns_are_imported(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("qid,label,annotator,comment\nq1,C\nq2,P,bia\n", encoding="utf-8")
    labels = read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    assert [(x.qid, x.label, x.annotator) for x in labels] == [("q1", "C", "importado"), ("q2", "P", "bia")]


def test_a_cp1252_csv_is_imported_with_its_accents(tmp_path: Path) -> None:
    """Excel on Windows saves Windows-1252 with ';': it used to end in a UnicodeDecodeError traceback."""
    path = tmp_path / "labels.csv"
    path.write_bytes(
        "qid;rótulo;comentário\nq1;não respondeu;sem resposta à pergunta\nq2;correta;ótima\n".encode("cp1252")
    )
    labels = read_labels(path, "importado", QIDS, DEFAULT_SCHEME)
    assert [(x.qid, x.label, x.comment) for x in labels] == [
        ("q1", "N", "sem resposta à pergunta"),
        ("q2", "C", "ótima"),
    ]


def test_tab_separated_utf16_from_a_spreadsheet_is_imported(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes("qid\tlabel\nq1\tC\n".encode("utf-16"))
    assert [(x.qid, x.label) for x in read_labels(path, "importado", QIDS, DEFAULT_SCHEME)] == [("q1", "C")]


def test_an_unclosed_quote_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text('qid,label,comment\nq1,C,ok\nq2,P,"sem fim\n' + "x" * 200_000 + "\n", encoding="utf-8")
    message = _refused(path)
    assert "linha 3" in message and "aspas" in message and "nada foi importado" in message


def test_binary_files_and_folders_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "labels.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    assert "binário" in _refused(binary)
    folder = tmp_path / "pasta.csv"
    folder.mkdir()
    assert "pasta" in _refused(folder)


def test_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"qid": "q1", "label": "C"}\n{"qid": "q2", "label": ' + deep + "}\n", encoding="utf-8")
    assert "linha 2" in _refused(lines)
    array = tmp_path / "labels.json"
    array.write_text(deep, encoding="utf-8")
    assert "aninhad" in _refused(array)


def test_a_label_that_is_not_text_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps([{"qid": "q1", "label": "C"}, {"qid": "q2", "label": [[["C"]]]}]), encoding="utf-8")
    message = _refused(path)
    assert "item 2" in message and "'label'" in message
