"""Question files as people hand them over: other encodings, wrong files, broken JSON and SQuAD, odd values.

Each ends either in the questions it holds or in one clear error that names the file (and the line
or the place in a SQuAD file) and says what to do; never in a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.questions import evidence_warning, is_squad, load_questions, load_squad
from lecture_rag.records import Evidence, Question, Video
from lecture_rag.store import SegmentDraft, Store

DEEP = 100_000


def _refused(path: Path) -> str:
    with pytest.raises(LectureRagError) as info:
        load_questions(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


def _jsonl(tmp_path: Path, *records: Any, name: str = "perguntas.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_cp1252_jsonl_and_squad_are_read(tmp_path: Path) -> None:
    """Saved from a Windows spreadsheet; they used to end in a UnicodeDecodeError traceback."""
    record = {"id": "q1", "question": "O que é a ação reflexa?", "answer": "Uma reação."}
    path = tmp_path / "perguntas.jsonl"
    path.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("cp1252"))
    [question] = load_questions(path)
    assert (question.question, question.answer) == ("O que é a ação reflexa?", "Uma reação.")
    squad = {
        "data": [
            {
                "title": "Ação",
                "paragraphs": [{"context": "A ação.", "qas": [{"id": "s1", "question": "Ação?", "answers": []}]}],
            }
        ]
    }
    squad_path = tmp_path / "squad.json"
    squad_path.write_bytes(json.dumps(squad, ensure_ascii=False).encode("cp1252"))
    assert is_squad(squad_path)
    paragraphs, questions = load_squad(squad_path)
    assert paragraphs[0].title == "Ação" and questions[0].question == "Ação?"


def test_binary_files_and_folders_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "perguntas.jsonl"
    binary.write_bytes(bytes(range(256)) * 8)
    assert "binário" in _refused(binary)
    folder = tmp_path / "pasta.jsonl"
    folder.mkdir()
    assert not is_squad(folder)
    assert "pasta" in _refused(folder)
    squad_folder = tmp_path / "pasta.json"
    squad_folder.mkdir()
    assert not is_squad(squad_folder)
    assert "pasta" in _refused(squad_folder)


def test_deeply_nested_json_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "fundo.jsonl"
    path.write_text(
        json.dumps({"id": "q1", "question": "ok?"})
        + "\n"
        + '{"id": "q2", "question": '
        + "[" * DEEP
        + "]" * DEEP
        + "}\n",
        encoding="utf-8",
    )
    message = _refused(path)
    assert "linha 2" in message and "aninhad" in message


def test_deeply_nested_squad_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fundo.json"
    path.write_text('{"data": ' + "[" * DEEP + "]" * DEEP + "}", encoding="utf-8")
    assert is_squad(path)
    assert "aninhad" in _refused(path)


def _squad(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        ({"title": "x"}, "'data'", "lista"),
        (["artigo"], "artigo 1", "objeto"),
        ([{"title": "t", "paragraphs": "texto"}], "artigo 1", "'paragraphs'"),
        ([{"title": "t", "paragraphs": [{"qas": []}]}], "artigo 1, parágrafo 1", "'context'"),
        ([{"title": "t", "paragraphs": [{"context": 5, "qas": []}]}], "artigo 1, parágrafo 1", "'context'"),
        ([{"title": "t", "paragraphs": [{"context": "c", "qas": {"q": 1}}]}], "artigo 1, parágrafo 1", "'qas'"),
        ([{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "a"}]}]}], "pergunta 1", "'question'"),
        ([{"title": "t", "paragraphs": [{"context": "c", "qas": [{"question": None}]}]}], "pergunta 1", "'question'"),
        (
            [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"question": "q?", "answers": "sim"}]}]}],
            "pergunta 1",
            "'answers'",
        ),
        (
            [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"question": "q?", "answers": [{"start": 1}]}]}]}],
            "pergunta 1",
            "'text'",
        ),
    ],
)
def test_broken_squad_files_name_the_place(tmp_path: Path, data: Any, where: str, what: str) -> None:
    """Missing keys and wrong types used to end in KeyError, TypeError or AttributeError tracebacks."""
    message = _refused(_squad(tmp_path, data))
    assert where in message and what in message, message
    assert "SQuAD" in message


def test_a_squad_file_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lista.json"
    path.write_text('{"data": 1}', encoding="utf-8")
    assert "'data'" in _refused(path)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"id": "q1", "question": None}, "'question'"),  # it used to become the question "None"
        ({"id": "q1"}, "'question'"),
        ({"id": "q1", "question": ["o que é?"]}, "'question'"),
        ({"id": "q1", "question": "   "}, "'question'"),
        ({"id": "q1", "question": "ok?", "label": 3}, "'label'"),  # a numeric label
        ({"id": "q1", "question": "ok?", "label": True}, "'label'"),
        ({"id": ["q1"], "question": "ok?"}, "'id'"),
        ({"id": "q1", "question": "ok?", "answer": {"text": "x"}}, "'answer'"),
        ({"id": "q1", "question": "ok?", "evidence": "SP_EF_405"}, "'evidence'"),
        ({"id": "q1", "question": "ok?", "evidence": [{"video_id": "v", "start": "zero"}]}, "'start'"),
        ({"id": "q1", "question": "ok?", "evidence": [{"start": 0, "end": 1}]}, "'video_id'"),
        ({"id": "q1", "question": "ok?", "evidence": [{"video_id": "v", "start": 5, "end": 1}]}, "fim"),
        ({"id": "q1", "question": "ok?", "evidence": [{"video_id": "v", "start": 0, "end": 1e999}]}, "'end'"),
        ({"id": "q1", "question": "ok?", "type": ["a"]}, "'type'"),
        (["q1", "ok?"], "objeto"),
    ],
)
def test_bad_values_in_a_question_line_are_refused_with_the_line(tmp_path: Path, record: Any, expected: str) -> None:
    path = _jsonl(tmp_path, {"id": "q0", "question": "primeira?"}, record)
    message = _refused(path)
    assert "linha 2" in message and expected in message, message
    assert "For further information" not in message  # no pydantic dump


def test_numbers_as_ids_and_answers_are_read_as_text(tmp_path: Path) -> None:
    [question] = load_questions(_jsonl(tmp_path, {"id": 7, "question": "Quanto?", "answer": 42, "type": "factual"}))
    assert (question.id, question.answer, question.type) == ("7", "42", "factual")


def test_a_good_line_still_reads_as_before(tmp_path: Path) -> None:
    record = {
        "id": "q1",
        "question": " O que é? ",
        "answer": None,
        "evidence": [{"video_id": "SP_EF_405", "start": 1, "end": 2.5}],
        "type": "definition",
        "label": "C",
    }
    [question] = load_questions(_jsonl(tmp_path, record))
    assert question == Question(
        id="q1",
        question="O que é?",
        answer=None,
        evidence=[Evidence("SP_EF_405", 1.0, 2.5)],
        type="definition",
        label="C",
    )


def test_evidence_naming_videos_not_in_the_store_gives_one_warning(tmp_path: Path) -> None:
    questions = [
        Question("q1", "a?", evidence=[Evidence("aula1", 0, 1), Evidence("fantasma", 0, 1)]),
        Question("q2", "b?", evidence=[Evidence("outro-fantasma", 0, 1)]),
        Question("q3", "c?", evidence=[Evidence("fantasma", 5, 6)]),
        Question("q4", "d?"),
    ]
    with Store(tmp_path / "store") as store:
        store.replace_video(Video("aula1", title="Aula 1"), [SegmentDraft(0.0, 1.0, "texto")])
        warning = evidence_warning(questions, store)
        assert evidence_warning([questions[3]], store) is None
    assert warning is not None and "\n" not in warning
    assert "fantasma, outro-fantasma" in warning and "3 pergunta(s)" in warning and "aula1" not in warning
