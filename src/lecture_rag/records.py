"""The records that flow between stages, in the one shape every stage and output uses.

They are dataclasses: stages exchange data, not behaviour, so a stage can be
swapped (another reader, another store) without the others noticing. The
records that leave the process (a hit, an answer, a judgment, a run item) are
pydantic dataclasses: the same object the engine returns is what the CLI
prints with ``--json``, what a run stores, what the reports render and what
the web API sends, so there is one shape of an answer from engine to API
(:mod:`lecture_rag.wire` turns them into JSON and back). The values derived
from stored fields (the deep link at a segment's start, ``HH:MM:SS`` times,
how a page plays the video) are computed fields: in the JSON, never stored.

:class:`Cue` stays a plain standard-library dataclass: it is made once per
caption line (millions for a long transcript) and never leaves ingest.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    FieldSerializationInfo,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    computed_field,
    field_serializer,
    model_serializer,
    model_validator,
)
from pydantic.dataclasses import dataclass

from lecture_rag.links import Player, deep_link, hhmmss, player_for

_WORD_START = re.compile(r"(?<!\S)\S")

#: What a hidden URL reads as (the seed's ``URL: oculto``).
HIDDEN = "oculto"
#: The serialisation context key (:func:`lecture_rag.wire.to_data`) that asks for every video URL hidden.
HIDE_URLS = "hide_urls"


def _hiding(info: FieldSerializationInfo) -> bool:
    """Whether this serialisation was asked to hide URLs (a rendering option, never a change to the record)."""
    return bool(isinstance(info.context, dict) and info.context.get(HIDE_URLS))


def _shown_url(self: object, url: str, info: FieldSerializationInfo) -> str:
    """A URL field as serialised: itself, or :data:`HIDDEN` when hiding."""
    return HIDDEN if _hiding(info) else url


def _shown_player(self: object, player: Player, info: FieldSerializationInfo) -> Player:
    """A player as serialised: itself, or no player when hiding (a page must not play what it hides)."""
    return Player() if _hiding(info) else player


@dataclasses.dataclass(frozen=True, slots=True)
class Cue:
    """One timed piece of transcript, as a caption file or ASR gives it (seconds)."""

    start: float
    end: float
    text: str


@dataclass(slots=True)
class Video:
    """A lecture recording and where its transcript came from.

    ``source_path`` and ``source_hash`` are the store's bookkeeping (what file,
    which content) and stay out of the JSON: a server path is nobody's business.
    """

    video_id: str
    title: str = ""
    course: str = ""
    url: str = ""
    language: str = "pt"
    duration: float = 0.0
    source_path: str = Field(default="", exclude=True)
    source_hash: str = Field(default="", exclude=True)
    # The local recording ``serve`` plays at /media/<video_id> (absolute path; '' when none is known).
    media_path: str = Field(default="", exclude=True)
    ingested_at: str = ""
    n_segments: int = 0
    # Where the text came from: "captions:uploaded", "captions:automatic", "whisper:<model>" or
    # "file:<format>" ("" for lectures stored before it was recorded). Users judge quality by it.
    transcript_source: str = ""
    channel: str = ""
    upload_date: str = ""  # YYYY-MM-DD, when the site says

    @computed_field  # type: ignore[prop-decorator]
    @property
    def player(self) -> Player:
        """How a page plays this video."""
        return player_for(self.url)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source_label(self) -> str:
        """The transcript's source in words, for the terminal and the web page."""
        return transcript_source_label(self.transcript_source)


def transcript_source_label(source: str) -> str:
    """``whisper:base`` -> ``transcrição automática (Whisper base)``; one wording for every output.

    The label tells a person's transcript from speech recognition (Whisper, another ASR, a site's
    automatic captions): a user judges a transcript's quality by it.
    """
    kind, _, detail = source.partition(":")
    if kind == "captions":
        return "legendas automáticas do site" if detail == "automatic" else "legendas enviadas pelo autor"
    if kind == "whisper":
        return f"transcrição automática (Whisper {detail})"
    if kind == "human":
        return f"transcrição humana ({_FORMAT_WORDS.get(detail, detail)})"
    if kind == "asr":
        return f"transcrição automática (ASR, {_FORMAT_WORDS.get(detail, detail)})"
    if source == "file:whisper_json":
        return "transcrição automática (arquivo do Whisper)"
    if kind == "file":
        return f"arquivo de transcrição ({detail})"
    return "origem não registrada"


def machine_transcript(source: str) -> bool:
    """Whether ``source`` is speech recognition (Whisper, another ASR, automatic captions)."""
    kind = source.partition(":")[0]
    return kind in ("whisper", "asr") or source in ("captions:automatic", "file:whisper_json")


def human_transcript(source: str) -> bool:
    """Whether ``source`` is known to be a person's transcript (a NURC text column, an author's captions)."""
    return source.split(":")[0] == "human" or source == "captions:uploaded"


_FORMAT_WORDS = {"nurc_csv": "CSV NURC"}


#: Where each cue of a segment begins: (second, character offset of its text in the segment's text).
Marks = tuple[tuple[float, int], ...]

#: Without cue marks (a segment stored before they were, or typed by hand), a segment is cut into
#: pieces of about this many words, with times interpolated along its characters.
_FALLBACK_PIECE_WORDS = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """A timed piece of a segment's text: one caption cue or transcript sentence (``start`` in seconds)."""

    start: float
    end: float
    text: str


@dataclass(slots=True)
class Segment:
    """A ~2-minute window of one video: the unit retrieved, cited and judged.

    ``marks`` say where each of the window's cues begins (second and character
    offset): what lets a link open at the sentence that answers instead of the
    window start. They are the store's bookkeeping and stay out of the JSON.
    """

    corpus_id: int
    video_id: str
    start: float
    end: float
    text: str
    video_url: str = ""
    title: str = ""
    course: str = ""
    marks: Marks = Field(default=(), exclude=True, repr=False)

    def pieces(self) -> list[Piece]:
        """The window's text as timed pieces, in order.

        From the cue marks when the store has them; otherwise pieces of about
        twenty words whose times are interpolated along the characters (speech
        runs at a roughly even pace within two minutes), so older stores and
        hand-made segments still get a second to cite.
        """
        bounds = _valid_marks(self.marks, len(self.text), self.start, self.end) or self._interpolated()
        out: list[Piece] = []
        for i, (second, offset) in enumerate(bounds):
            stop = bounds[i + 1][1] if i + 1 < len(bounds) else len(self.text)
            until = bounds[i + 1][0] if i + 1 < len(bounds) else self.end
            text = self.text[offset:stop].strip()
            if text:
                out.append(Piece(second, max(second, until), text))
        return out

    def _interpolated(self) -> list[tuple[float, int]]:
        length = max(1, len(self.text))
        starts = [m.start() for m in _WORD_START.finditer(self.text)][::_FALLBACK_PIECE_WORDS] or [0]
        span = max(0.0, self.end - self.start)
        return [(self.start + span * offset / length, offset) for offset in starts]

    def url_at(self, seconds: float | None = None) -> str:
        """Deep link that opens the video at ``seconds`` (default: segment start)."""
        return deep_link(self.video_url, self.start if seconds is None else seconds)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """Deep link at the segment start ('' when the video has no URL)."""
        return self.url_at()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def inicio(self) -> str:
        """Start as ``HH:MM:SS``, as the seed record shows it."""
        return hhmmss(self.start)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fim(self) -> str:
        """End as ``HH:MM:SS``."""
        return hhmmss(self.end)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def player(self) -> Player:
        """How a page plays the segment's video."""
        return player_for(self.video_url)

    _url_shown = field_serializer("url", "video_url")(_shown_url)

    _player_shown = field_serializer("player")(_shown_player)


@dataclass(slots=True)
class Hit(Segment):
    """A retrieved segment with the scores that ranked it.

    ``score`` is what the seed shows: the E5 cosine similarity when the dense
    retriever saw the segment (None in bm25 mode). ``rank_score`` is what the
    mode ranked by (RRF for hybrid, BM25 for bm25), kept apart so the cosine
    is never overwritten.
    """

    score: float | None = None
    rank: int = 0
    rank_score: float = 0.0
    bm25: float | None = None
    sources: tuple[str, ...] = ()
    cite_start: float = -1.0  # the second the best-matching sentence begins; unset (or outside): the window start
    rerank_score: float | None = None

    def __post_init__(self) -> None:
        if not self.start <= self.cite_start <= max(self.start, self.end):
            self.cite_start = self.start

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cite_url(self) -> str:
        """Deep link at ``cite_start``, the second the best-matching sentence begins ('' without a URL)."""
        return self.url_at(self.cite_start)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cite_text(self) -> str:
        """The words of the cited sentence (the piece in which ``cite_start`` falls), for pages to highlight.

        The extractive answer cites a long utterance from the part that answers (issue 22: it is cut into
        ~15-word spans whose seconds fall inside it), so the piece is the last one starting at or before
        the cited second, not only one starting exactly there. '' when the segment has no cue marks (a hit
        read back from JSON): a guessed span would highlight words nobody said at that second.
        """
        if not self.marks:
            return ""
        started = [p for p in self.pieces() if p.start <= self.cite_start + 1e-6]
        return started[-1].text if started else ""

    # The deep link is a URL too: hiding URLs hides it with the others.
    _url_shown = field_serializer("url", "video_url", "cite_url")(_shown_url)


@dataclass(slots=True)
class CitedTime:
    """One cited moment: the segment behind ``[n]`` and its link."""

    n: int
    corpus_id: int
    start: float
    url: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def inicio(self) -> str:
        return hhmmss(self.start)

    _url_shown = field_serializer("url")(_shown_url)


@dataclass(slots=True)
class Reference:
    """A cited video, listed once, with every cited moment in it."""

    video_id: str
    title: str
    url: str
    times: list[CitedTime] = dataclasses.field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def player(self) -> Player:
        return player_for(self.url)

    _url_shown = field_serializer("url")(_shown_url)

    _player_shown = field_serializer("player")(_shown_player)


@dataclass(slots=True)
class Timing:
    """How long an LLM answer took and what it cost (tokens)."""

    first_token_s: float | None = None
    total_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class Answer:
    """What the generate stage hands to reports, the CLI, runs and the web app.

    ``hits`` are all retrieved segments (shown to the user); ``context`` what
    the model read, numbered ``[1..n]`` in rank order: whole windows, or (the
    default) the sentences around each window's best match, with their times.
    The text is ``answer`` in the JSON, as the reference system names it.
    """

    question: str
    language: str
    hits: list[Hit]
    context: list[Hit]
    text: str = Field(serialization_alias="answer", validation_alias=AliasChoices("text", "answer"))
    references: list[Reference] = dataclasses.field(default_factory=list)
    citations: list[int] = dataclasses.field(default_factory=list)
    invalid_citations: list[int] = dataclasses.field(default_factory=list)
    abstained: bool = False
    extractive: bool = False
    no_citations: bool = False
    # The answer is not in the question's language (kept, flagged, like an answer without citations).
    off_language: bool = False
    model: str = ""
    error: str = ""
    timing: Timing = dataclasses.field(default_factory=Timing)
    dropped_segments: int = 0
    # The extractive answer, offered beside an LLM answer that failed or is flagged ('' otherwise).
    fallback: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def context_ids(self) -> list[int]:
        return [h.corpus_id for h in self.context]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def context_size(self) -> int:
        return len(self.context)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a question's answer is said: a time span of one video."""

    video_id: str
    start: float
    end: float


@dataclass(slots=True)
class Question:
    """One question of a question set; ``answer: None`` and no evidence mark an unanswerable one."""

    id: str
    question: str
    answer: str | None = None
    evidence: list[Evidence] = dataclasses.field(default_factory=list)
    type: str = ""
    label: str | None = None

    @property
    def answerable(self) -> bool:
        return self.answer is not None or bool(self.evidence)


JudgeKind = Literal["answer_relevance", "context_relevance", "groundedness", "auto_label"]


@dataclass(slots=True)
class ItemJudgment:
    """The verdict on one retrieved segment (context relevance) or one claim (groundedness).

    ``text`` is exactly what the judge saw (a segment may be truncated to fit
    the judge's window, then ``truncated`` is True), so a verdict can be audited.
    """

    index: int
    text: str
    score_raw: int | None
    score: float | None
    reasoning: str
    raw: str
    parsed: bool
    error: str = ""
    corpus_id: int | None = None
    truncated: bool = False


@dataclass(slots=True)
class Judgment:
    """One judge's verdict on one answer.

    ``score_raw`` is the 0-3 integer the judge gave (None for the aggregated
    kinds, whose ``score`` is the mean of their items' scores, normalised);
    ``score`` is always 0-1 or None. ``error`` says why something could not
    be read; for aggregated kinds it may be set while ``parsed`` is True when
    only some items failed. ``applicable=False`` means the judgment does not
    apply to this answer (see ``note``), which is not a failure.
    """

    kind: JudgeKind
    score_raw: int | None = None
    score: float | None = None
    label: str | None = None
    reasoning: str = ""
    raw: str = ""
    parsed: bool = False
    error: str = ""
    model: str = ""
    items: list[ItemJudgment] = dataclasses.field(default_factory=list)
    note: str = ""
    applicable: bool = True
    # What the verdict cost (LLM calls, tokens, seconds) and how its form was held
    # (``json_schema``, ``gbnf`` or ``none``): judges are measured on cost and on parseability.
    calls: int = 0
    timing: Timing = dataclasses.field(default_factory=Timing)
    transport: str = ""


@dataclass(slots=True)
class Annotation:
    """A person's label for one run item (one per annotator; relabelling replaces it)."""

    label: str
    comment: str = ""
    at: str = ""


@dataclass(slots=True)
class QuestionMeta:
    """What the question file says about a run item: expected answer, evidence spans, type."""

    answer: str | None = None
    evidence: list[Evidence] = dataclasses.field(default_factory=list)
    type: str = ""


@dataclass(slots=True)
class RunItem:
    """One question of an evaluation run with everything stored about it."""

    qid: str
    position: int
    question: str
    meta: QuestionMeta
    answer: Answer
    judgments: dict[str, Judgment] = dataclasses.field(default_factory=dict)
    annotations: dict[str, Annotation] = dataclasses.field(default_factory=dict)

    @property
    def number(self) -> int:
        """The question's 1-based position in its question file: ``Pergunta N`` in every report."""
        return self.position + 1


def _valid_marks(marks: Marks, length: int, start: float, end: float) -> list[tuple[float, int]]:
    """``marks`` when they describe this text (offsets increasing inside it, times inside the window), else []."""
    if not marks or marks[0][1] != 0:
        return []
    out: list[tuple[float, int]] = []
    for second, offset in marks:
        if not 0 <= offset < max(1, length) or (out and offset <= out[-1][1]):
            return []
        out.append((min(max(float(second), start), max(start, end)), int(offset)))
    return out


#: The keys of a question run's configuration (:func:`lecture_rag.evaluate.run.run_config`).
RUN_CONFIG_KEYS = (
    "k", "mode", "llm", "judge_llm", "judge_grammar", "judge_structured", "judges", "embedder", "temperature",
    "seed", "max_tokens", "judge_temperature", "judge_seed", "judge_max_tokens", "judge_label_max_tokens",
    "prompts", "judge_prompts", "labels", "label_scheme", "questions_file", "questions_sha",
)  # fmt: skip
#: The keys of an evaluation of judges' configuration (:func:`lecture_rag.evaluate.judge_eval.eval_config`).
JUDGES_CONFIG_KEYS = (
    "kind", "dataset", "dataset_file", "dataset_sha", "llm", "k", "mode", "embedder", "judge_llm", "judge_file_sha",
    "judge_structured", "judges", "judge_temperature", "judge_seed", "judge_max_tokens", "judge_label_max_tokens",
    "judge_prompts", "examples", "labels", "label_scheme",
)  # fmt: skip
JUDGES_KIND = "judges"


@dataclass(slots=True)
class RunConfig:
    """The configuration snapshot stored with a run: a rerun with any of it changed is another experiment.

    A question run (``kind`` empty) and an evaluation of judges (``kind``
    ``judges``) each store their own keys (:data:`RUN_CONFIG_KEYS`,
    :data:`JUDGES_CONFIG_KEYS`), sorted. A snapshot stored by an older
    version may lack keys (they read as the defaults, and stay absent when
    written back: ``missing``) or hold keys no longer known (kept as they
    were: ``extra``), so an old run still loads, resumes and reports as it did.
    """

    k: int = 0
    mode: str = ""
    llm: str = ""
    judge_llm: str = ""
    embedder: str = ""
    judges: list[str] = dataclasses.field(default_factory=list)
    labels: list[str] = dataclasses.field(default_factory=list)
    label_scheme: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    judge_structured: str | None = None
    judge_temperature: float | None = None
    judge_seed: int | None = None
    judge_max_tokens: int | None = None
    judge_label_max_tokens: int | None = None
    judge_prompts: dict[str, str] | None = None
    # A question run's own: the answer LLM's settings, its prompts and the question file.
    judge_grammar: bool = False
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    prompts: dict[str, str] = dataclasses.field(default_factory=dict)
    questions_file: str = ""
    questions_sha: str = ""
    # An evaluation of judges' own: the labelled data set, a file judge's hash, the prompt examples' hash.
    kind: str = ""
    dataset: str = ""
    dataset_file: str = ""
    dataset_sha: str = ""
    judge_file_sha: str | None = None
    examples: str | None = None
    missing: tuple[str, ...] = Field(default=(), exclude=True, repr=False)
    extra: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def stored_keys(self) -> tuple[str, ...]:
        """The keys this kind of run stores."""
        return JUDGES_CONFIG_KEYS if self.kind == JUDGES_KIND else RUN_CONFIG_KEYS

    @model_validator(mode="wrap")
    @classmethod
    def _from_stored(cls, data: Any, handler: ModelWrapValidatorHandler[RunConfig]) -> RunConfig:
        """A stored snapshot: known keys become fields, absent ones are remembered, unknown ones kept."""
        if not isinstance(data, dict):
            return handler(data)
        known = set(JUDGES_CONFIG_KEYS if data.get("kind") == JUDGES_KIND else RUN_CONFIG_KEYS)
        record = handler({k: v for k, v in data.items() if k in known})
        record.missing = tuple(k for k in record.stored_keys if k not in data)
        record.extra = {k: v for k, v in data.items() if k not in known}
        return record

    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The snapshot as stored: this kind's keys present when read (or all, when made here), sorted."""
        data = handler(self)
        kept = {k: data[k] for k in self.stored_keys if k not in self.missing}
        return dict(sorted({**kept, **self.extra}.items()))
