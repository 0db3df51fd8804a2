"""The seed's record format, field for field (see ``../shared/seed/``).

The layout is a required output: course teams compare these records with the
reference system's, so spacing and field order follow the seed byte for byte
(a golden test renders the seed's own content and compares).
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from lecture_rag.links import hhmmss
from lecture_rag.records import Answer, Hit, Reference
from lecture_rag.templating import text_templates


@dataclass(slots=True)
class RecordView:
    """Everything one seed record shows; evaluation fields are optional."""

    number: int | str
    question: str
    hits: list[Hit]
    answer: str
    references: list[Reference]
    evaluated: bool = False
    manual_label: str | None = None
    ar_score: float | None = None
    auto_label: str | None = None
    ar_reasoning: str = ""


def _oneline(text: str | None) -> str:
    """Fields are one markdown line: each newline becomes a space, as in the seed."""
    return (text or "").replace("\r\n", "\n").replace("\n", " ").strip()


def _score(value: float | None) -> str:
    return "-" if value is None else repr(float(value))


def _ar(value: float | None) -> str:
    return "n/d" if value is None else f"{value:.2f}"


def _mdlink(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")


def _environment() -> Environment:
    env = text_templates("lecture_rag.report", "templates", keep_trailing_newline=True)
    env.filters.update(oneline=_oneline, score=_score, hhmmss=hhmmss, ar=_ar, mdlink=_mdlink)
    return env


_ENV = _environment()


def render_record(record: RecordView, *, hide_urls: bool = False) -> str:
    """One record in the seed's markdown layout, ending with ``---``."""
    return _ENV.get_template("record.md.j2").render(r=record, hide_urls=hide_urls)


def render_records(records: list[RecordView], *, hide_urls: bool = False) -> str:
    """Several records, one after another, each closed by ``---``."""
    return "\n".join(render_record(r, hide_urls=hide_urls) for r in records)


def record_from_answer(answer: Answer, number: int | str) -> RecordView:
    """The record of an answer without evaluation fields (``ask --format markdown``)."""
    text = answer.text if not answer.error else f"(erro do LLM: {answer.error})"
    return RecordView(
        number=number,
        question=answer.question,
        hits=list(answer.hits),
        answer=text,
        references=list(answer.references),
    )
