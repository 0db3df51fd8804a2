"""Request and response bodies of the HTTP API (they are the OpenAPI schema).

Answers, hits, videos, judgments and annotations go out in the records' own
shape (:mod:`lecture_rag.records`), the same as ``--json`` output and stored
runs; the models here are only the API's envelopes and inputs.

Limits live here so the schema states them: a question of more than
:data:`MAX_QUESTION_CHARS` characters is refused with 422 before any work is
done (the retriever would cut it at 2,000 characters anyway; 10,000 leaves
room for a pasted exercise statement without inviting megabytes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lecture_rag.config import RetrievalMode
from lecture_rag.errors import LectureRagError
from lecture_rag.llm.check import LLMCheck
from lecture_rag.records import Annotation, Answer, Hit, Judgment
from lecture_rag.retrieve import IndexStatus
from lecture_rag.store.runs import MAX_ANNOTATOR_CHARS, annotator_name

MAX_QUESTION_CHARS = 10_000
MAX_COMMENT_CHARS = 2_000
MAX_NAME_CHARS = MAX_ANNOTATOR_CHARS
MAX_K = 50

Mode = RetrievalMode


class AskRequest(BaseModel):
    """A question; unset options take the server's configured defaults."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(None, ge=1, le=MAX_K, description="how many segments to retrieve")
    mode: Mode | None = None
    course: str | None = Field(None, max_length=200)
    video: str | None = Field(None, max_length=200)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a pergunta está vazia")
        return value


class SseHits(BaseModel):
    """Event ``hits``: sent first, as soon as retrieval is done."""

    hits: list[Hit]


class SseToken(BaseModel):
    """Event ``token``: a piece of the answer text, in order."""

    text: str


class SseError(BaseModel):
    """Event ``error``: the question could not be answered (message in Portuguese); ends the stream."""

    message: str


class SearchOut(BaseModel):
    query: str
    mode: Mode
    k: int
    hits: list[Hit]


class LabelOut(BaseModel):
    code: str
    key: str = Field(description="tecla que aplica o rótulo na página de anotação")
    name: str
    description: str


class RecordOut(BaseModel):
    """One question of a run as the seed record shows it."""

    qid: str
    number: int = Field(description="1-based position in the question file")
    question: str
    answer: Answer
    reference: str | None = Field(description="the question file's expected answer, when it has one")
    answer_relevance: Judgment | None
    auto_label: str | None = Field(description="automated label; hidden (None) until the annotator has labelled")
    auto_label_hidden: bool
    annotations: dict[str, Annotation]


class RecordsOut(BaseModel):
    run: str
    total: int
    annotator: str | None
    annotated_by_annotator: int
    first_pending: int = Field(description="index of the first record the annotator has not labelled (total if none)")
    labels: list[LabelOut]
    records: list[RecordOut]


class AnnotationIn(BaseModel):
    """A person's label for one record; labelling again replaces it."""

    model_config = ConfigDict(extra="forbid")

    qid: str = Field(min_length=1, max_length=200)
    label: str = Field(
        min_length=1, max_length=40, description="a code of the run's scheme, e.g. C, P, I or N (or its name)"
    )
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)
    annotator: str = Field(min_length=1, max_length=MAX_NAME_CHARS)

    @field_validator("label")
    @classmethod
    def _strip_label(cls, value: str) -> str:
        return value.strip()  # checked against the run's own label scheme by the endpoint

    @field_validator("annotator")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        try:
            return annotator_name(value)  # the store's one check, shared with the CLI and imports
        except LectureRagError as exc:
            raise ValueError(str(exc)) from None


class AnnotationSaved(BaseModel):
    run: str
    qid: str
    annotator: str
    label: str
    comment: str
    auto_label: str | None = Field(description="revealed now that the person has chosen")
    annotated_by_annotator: int
    total: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    videos: int
    segments: int
    embedder: str
    llm: str
    stale_index: bool
    problem: str = ""
    # The index build this process searches and the corpus version it reflects (several replicas: one each)
    index: IndexStatus = Field(default_factory=IndexStatus)
    # ``?llm=true``: the answer LLM probed with one tiny generation, the same record ``lecture-rag llm check`` prints
    llm_check: LLMCheck | None = None


class LLMHealthOut(BaseModel):
    """The header's word on the answer LLM (a live probe, cached a few seconds)."""

    state: Literal["none", "checking", "ok", "down"] = Field(
        description="none: nenhum configurado; ok: responde; down: não responde (ou a última resposta falhou)"
    )
    label: str = Field(description="o texto do selo, em português")


class ErrorOut(BaseModel):
    detail: str


class SessionOut(BaseModel):
    token: str = Field(description="o token do servidor, para 'Authorization: Bearer' nas escritas")
