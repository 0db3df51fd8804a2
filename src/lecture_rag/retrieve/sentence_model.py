"""Which sentence of the retrieved windows answers: a fitted scorer over signals the search already has.

Why (issue 22): quoting exactly the sentences that hold the answer would give
the extractive answer about twice the gold-word recall it had, so the gap was
in *choosing* sentences. The previous choice fused three orderings by
reciprocal rank with hand-set weights; here every candidate span gets
:data:`FEATURES` (its passage's E5 cosine and its lexical share of the
question, both also relative to the best span; the IDF-weighted coverage of
the question's rare words with accents folded before stemming, also for its
neighbouring spans; its window's rank and cosine; its start relative to its
window's cited second, :mod:`lecture_rag.retrieve.cite`; its position in the
window, its length, whether it is in the best-ranked lecture) and a logistic
model turns them into one score. The label it was fitted on is whether the
span overlaps the seconds where the reference answer is said (the question's
evidence), on leave-one-lecture-out folds of the NURC-SP lectures (human and
ASR, with FaQuAD/SQuAD-pt distractors in the store) by ``python -m
bench.bench_heldout --fit-sentences``; the weights ship as
``sentence_model.json`` beside this module.

Nothing is embedded: every cosine comes from the index build's passage
vectors through the search's :class:`~lecture_rag.retrieve.cite.PieceSignals`,
so scoring costs a few microseconds per span (issue 26: an answer costs about
a search).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from lecture_rag.records import Hit
from lecture_rag.retrieve.learned import FittedLogistic, coverage, read_fitted
from lecture_rag.retrieve.rerank import Query

MODEL_PATH = Path(__file__).with_name("sentence_model.json")
FEATURES = (
    "semantic",
    "semantic_gap",
    "lexical",
    "lexical_gap",
    "coverage",
    "coverage_gap",
    "neighbour_coverage",
    "window_inverse_rank",
    "window_cosine_gap",
    "position",
    "first_in_window",
    "log_words",
    "top_lecture",
    "best_passage_of_window",
    "from_cited",
    "near_cited",
)
#: Seconds after its window's cited second within which a span counts as near it.
NEAR_CITED = 20.0


class Span(Protocol):
    """A quotable span of window ``number`` (1-based rank), ``order``-th of its window, with its cheap signals."""

    number: int
    video_id: str
    order: int
    start: float
    text: str
    semantic: float
    lexical: float


@dataclass(frozen=True, slots=True)
class SentenceModel(FittedLogistic):
    """A fitted logistic scorer over standardised :data:`FEATURES` (the log-odds that a span holds the answer)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    about: str = ""

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> SentenceModel:
        """The model in ``path``; a missing or malformed file is a user error naming it."""
        return read_fitted(cls, path, "features", FEATURES, "modelo de frases da resposta extrativa")


@cache
def sentence_model() -> SentenceModel:
    """The shipped model, read once per process."""
    return SentenceModel.load()


def span_features(query: Query, hits: Sequence[Hit], spans: Sequence[Span]) -> np.ndarray:
    """The :data:`FEATURES` of each span (one row each); relative features are relative to these spans."""
    n = len(spans)
    if not n:
        return np.zeros((0, len(FEATURES)))
    semantic = np.asarray([s.semantic for s in spans], dtype=np.float64)
    lexical = np.asarray([s.lexical for s in spans], dtype=np.float64)
    covered = coverage(query, cast(Sequence[Hit], spans))  # coverage reads only ``.text``
    numbers = np.asarray([s.number for s in spans])
    window_cos = np.asarray([hits[k - 1].score or 0.0 for k in numbers], dtype=np.float64)
    since = np.asarray([s.start - hits[s.number - 1].cite_start for s in spans], dtype=np.float64)
    count = {k: int((numbers == k).sum()) for k in set(numbers.tolist())}
    best_in_window = {k: float(semantic[numbers == k].max()) for k in count}
    neighbour = np.zeros(n)
    for i, span in enumerate(spans):
        near = [covered[j] for j in (i - 1, i + 1) if 0 <= j < n and spans[j].number == span.number]
        neighbour[i] = max(near, default=0.0)
    columns = [
        semantic,
        semantic - semantic.max(),
        lexical,
        lexical - lexical.max(),
        covered,
        covered - covered.max(),
        neighbour,
        1.0 / numbers,
        window_cos - float(max(h.score or 0.0 for h in hits)),
        np.asarray([s.order / max(1, count[s.number] - 1) for s in spans], dtype=np.float64),
        np.asarray([s.order == 0 for s in spans], dtype=np.float64),
        np.log1p([len(s.text.split()) for s in spans]),
        np.asarray([s.video_id == hits[0].video_id for s in spans], dtype=np.float64),
        np.asarray([semantic[i] >= best_in_window[numbers[i]] for i in range(n)], dtype=np.float64),
        np.clip(since / NEAR_CITED, -3.0, 3.0),
        ((since >= 0) & (since <= NEAR_CITED)).astype(np.float64),
    ]
    return np.column_stack(columns)
