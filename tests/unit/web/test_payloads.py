"""The annotation page's record carries the question file's reference answer (issue 25, item 3)."""

from __future__ import annotations

from lecture_rag.records import Annotation, Answer, QuestionMeta, RunItem
from lecture_rag.web.payloads import record_out


def _item(reference: str | None) -> RunItem:
    answer = Answer(question="Como a planta obtém energia?", language="pt", hits=[], context=[], text="Pela luz [1].")
    return RunItem("q1", 0, answer.question, QuestionMeta(reference), answer, annotations={"ana": Annotation("C")})


def test_the_record_carries_the_reference_answer_when_the_question_file_has_one() -> None:
    assert record_out(_item("Pela luz, na clorofila."), "ana").reference == "Pela luz, na clorofila."


def test_no_reference_reads_as_none_never_as_an_empty_text() -> None:
    assert record_out(_item(None), "ana").reference is None
    assert record_out(_item(""), "ana").reference is None
