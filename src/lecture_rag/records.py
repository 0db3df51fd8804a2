"""Plain records that flow between stages.

They are deliberately dumb dataclasses: stages exchange data, not behaviour,
so that a stage can be swapped (another reader, another store) without the
others noticing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lecture_rag.links import deep_link


@dataclass(frozen=True, slots=True)
class Cue:
    """One timed piece of transcript, as a caption file or ASR gives it (seconds)."""

    start: float
    end: float
    text: str


@dataclass(slots=True)
class Video:
    """A lecture recording and where its transcript came from."""

    video_id: str
    title: str = ""
    course: str = ""
    url: str = ""
    language: str = "pt"
    duration: float = 0.0
    source_path: str = ""
    source_hash: str = ""
    ingested_at: str = ""
    n_segments: int = 0


@dataclass(slots=True)
class Segment:
    """A ~2-minute window of one video: the unit retrieved, cited and judged."""

    corpus_id: int
    video_id: str
    start: float
    end: float
    text: str
    url: str = ""
    title: str = ""
    course: str = ""

    def url_at(self, seconds: float | None = None) -> str:
        """Deep link that opens the video at ``seconds`` (default: segment start)."""
        return deep_link(self.url, self.start if seconds is None else seconds)


@dataclass(slots=True)
class Hit:
    """A retrieved segment with the scores that ranked it.

    ``score`` is what the seed shows: the E5 cosine similarity when the dense
    retriever saw the segment. ``rank_score`` is what the mode ranked by (RRF
    for hybrid, BM25 for bm25), kept apart so the cosine is never overwritten.
    """

    segment: Segment
    score: float | None
    rank: int
    rank_score: float
    bm25: float | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)


@dataclass(slots=True)
class CitedTime:
    """One cited moment: the segment behind ``[n]`` and its link."""

    number: int
    corpus_id: int
    start: float
    url: str


@dataclass(slots=True)
class Reference:
    """A cited video, listed once, with every cited moment in it."""

    video_id: str
    title: str
    url: str
    times: list[CitedTime] = field(default_factory=list)


@dataclass(slots=True)
class Answer:
    """What the generate stage hands to reports, the CLI and the web app.

    ``hits`` are all retrieved segments (shown to the user); ``context`` the
    ones that fitted the model's window, numbered ``[1..n]`` in that order.
    """

    question: str
    language: str
    hits: list[Hit]
    context: list[Hit]
    text: str
    references: list[Reference] = field(default_factory=list)
    citations: list[int] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    extractive: bool = False
    no_citations: bool = False
    model: str = ""
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None
    total_s: float | None = None
    dropped_segments: int = 0
