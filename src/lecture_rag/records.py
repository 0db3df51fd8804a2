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
