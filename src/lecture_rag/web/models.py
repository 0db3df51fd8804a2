"""Request and response bodies of the HTTP API (they are the OpenAPI schema).

Limits live here so the schema states them: a question of more than
:data:`MAX_QUESTION_CHARS` characters is refused with 422 before any work is
done (the retriever would cut it at 2,000 characters anyway; 10,000 leaves
room for a pasted exercise statement without inviting megabytes).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUESTION_CHARS = 10_000
MAX_COMMENT_CHARS = 2_000
MAX_NAME_CHARS = 80
MAX_K = 50

Mode = Literal["dense", "bm25", "hybrid"]


class Player(BaseModel):
    """How the page plays a video: the page appends ``?start=N&autoplay=1`` (YouTube) or ``#t=N`` (media)."""

    kind: Literal["youtube", "media", "none"] = Field(
        description="youtube: embedded player; media: HTML5 <video>; none: no playable link"
    )
    src: str | None = Field(None, description="embed URL (YouTube) or media URL without fragment")
    youtube_id: str | None = None


class HitOut(BaseModel):
    """A retrieved segment (the seed record's fields plus what the player needs)."""

    rank: int
    corpus_id: int
    score: float | None = Field(description="E5 cosine similarity (None in bm25 mode)")
    rank_score: float = Field(description="what the mode ranked by (cosine, BM25 or RRF)")
    bm25: float | None = None
    sources: list[str] = Field(default_factory=list)
    video_id: str
    title: str = ""
    course: str = ""
    video_url: str = ""
    url: str = Field("", description="deep link at the segment start ('' when the video has no URL)")
    start: float
    end: float
    inicio: str = Field(description="start as HH:MM:SS")
    fim: str = Field(description="end as HH:MM:SS")
    text: str
    player: Player


class CitedTimeOut(BaseModel):
    n: int = Field(description="the citation number [n] in the answer")
    corpus_id: int
    start: float
    inicio: str
    url: str


class ReferenceOut(BaseModel):
    """A cited video, once, with every cited moment."""

    video_id: str
    title: str
    url: str
    times: list[CitedTimeOut]
    player: Player


class TimingOut(BaseModel):
    first_token_s: float | None = None
    total_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class AnswerOut(BaseModel):
    """The final answer: the ``done`` event of /api/ask and the answer of each run record."""

    question: str
    language: str = "pt"
    answer: str = Field(description="answer text with [n] citations")
    extractive: bool = Field(description="True: no LLM configured, the text quotes the closest passages")
    abstained: bool
    model: str = ""
    citations: list[int] = Field(default_factory=list)
    invalid_citations: list[int] = Field(default_factory=list)
    no_citations: bool = False
    error: str = Field("", description="LLM failure, if any (the answer is then empty)")
    references: list[ReferenceOut] = Field(default_factory=list)
    hits: list[HitOut] = Field(default_factory=list)
    context_ids: list[int] = Field(default_factory=list)
    context_size: int = 0
    context: list[HitOut] = Field(default_factory=list, description="segments numbered [1..n] in the answer")
    dropped_segments: int = 0
    timing: TimingOut = Field(default_factory=TimingOut)


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

    hits: list[HitOut]


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
    hits: list[HitOut]


class VideoOut(BaseModel):
    video_id: str
    title: str
    course: str
    url: str
    language: str
    duration: float
    n_segments: int
    player: Player


class RunOut(BaseModel):
    name: str
    created_at: str
    items: int
    annotated: int = Field(description="questions with at least one manual label")
    config: dict[str, Any]


class JudgmentOut(BaseModel):
    kind: str
    score: float | None = Field(None, description="normalised 0-1")
    label: str | None = None
    reasoning: str = ""
    parsed: bool = False
    error: str = ""
    model: str = ""


class AnnotationOut(BaseModel):
    label: str
    comment: str = ""
    at: str = ""


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
    answer: AnswerOut
    answer_relevance: JudgmentOut | None
    auto_label: str | None = Field(description="automated label; hidden (None) until the annotator has labelled")
    auto_label_hidden: bool
    annotations: dict[str, AnnotationOut]


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
        name = " ".join(value.split())
        if not name or any(ord(ch) < 32 for ch in name):
            raise ValueError("nome do anotador vazio ou com caracteres de controle")
        return name


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


class ErrorOut(BaseModel):
    detail: str
