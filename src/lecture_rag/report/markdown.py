"""The seed's record format, field for field (see ``../shared/seed/``).

The layout is a required output: course teams compare these records with the
reference system's, so spacing and field order follow the seed byte for byte
(a golden test renders the seed's own content and compares).

Every text field is data, never markup: HTML in a transcript, question,
answer or title is escaped (a markdown viewer shows it, never runs it) and a
markdown link inside such text loses its target; text without HTML keeps its
bytes. Link targets are :func:`lecture_rag.links.safe_url`'s: ``http(s)`` or
relative paths, else empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import Environment

from lecture_rag.links import hhmmss, safe_url
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
    extractive: bool = False  # the answer was not written by an LLM: the record must not say it was
    manual_label: str | None = None
    ar_score: float | None = None
    auto_label: str | None = None
    ar_reasoning: str = ""


# What would start HTML in markdown (a tag, comment, declaration, autolink) or an entity.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def _oneline(text: str | None) -> str:
    """Fields are one markdown line: each line break (``\\n``, ``\\r\\n``, ``\\r``) becomes a space, as in the seed."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ").strip()


def _text(text: object) -> str:
    """Data as markdown text: one line, no HTML (``<tag`` → ``&lt;tag``, ``&lt;`` → ``&amp;lt;``), no link target.

    Only what markdown would read as HTML or as a link is changed, so text
    without HTML keeps its bytes: ``5 < 6``, ``P&D`` and ``[1]`` stay as they are.
    ``](`` becomes ``]\\(``, so ``[texto](javascript:...)`` is shown, not linked.
    """
    line = _oneline(None if text is None else str(text))
    line = _ENTITY.sub("&amp;", line)
    return _HTML_START.sub("&lt;", line).replace("](", "]\\(")


def _score(value: float | None) -> str:
    return "-" if value is None else repr(float(value))


def _ar(value: float | None) -> str:
    return "n/d" if value is None else f"{value:.2f}"


def _mdlink(text: str) -> str:
    """Text of a link: brackets would end it, so they become parentheses."""
    return _text(str(text).replace("[", "(").replace("]", ")"))


def _environment() -> Environment:
    env = text_templates("lecture_rag.report", "templates", keep_trailing_newline=True)
    env.filters.update(text=_text, score=_score, hhmmss=hhmmss, ar=_ar, mdlink=_mdlink, safe_url=safe_url)
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
        extractive=answer.extractive and not answer.error,
    )
