"""The second to cite: where, inside a retrieved window, the sentence that answers begins.

Why: a window lasts two minutes and its start is on average ~40 s before the
answering sentence, so a link at the window start makes the student scrub.
Each timed piece of the window (a caption cue or transcript sentence, see
:meth:`~lecture_rag.records.Segment.pieces`) is scored by two signals, both
scaled to [0, 1] within the window and summed (lexical at half weight):

* the E5 cosine of the ~25-second passage it lies in (semantic, robust to
  paraphrase, but only passage-precise);
* the BM25-weighted share of the question's terms it contains, with the
  corpus's IDF (sentence-precise, but blind to paraphrase).

The cited second is the start of the best piece. Measured on the NURC
question set (README), the median distance to the evidence start falls from
~54 s (window start) to ~10 s. Without passages (an old build) the lexical
signal alone decides, and a window where no question word occurs is cited at
its start.

The same raw signals (:func:`piece_signals`) choose the sentences of the
no-LLM answer and of the packed LLM context (:mod:`lecture_rag.generate`),
so "the sentence that answers" means one thing everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lecture_rag.index.passages import group_pieces, passage_id
from lecture_rag.records import Hit, Piece
from lecture_rag.retrieve.rerank import Query

LEXICAL_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class PieceSignals:
    """A window's timed pieces with their raw (unscaled, comparable across windows) scores.

    ``semantic``: E5 cosine of the passage holding each piece (zeros without
    passages). ``lexical``: the IDF-weighted share of the question's terms the
    piece contains, in [0, 1] (0 when no question term is in the corpus).
    """

    pieces: list[Piece]
    semantic: np.ndarray
    lexical: np.ndarray

    def best(self) -> int:
        """Index of the piece :func:`cite_hits` cites (within-window scaling, lexical at half weight)."""
        total = _scaled(self.semantic) + LEXICAL_WEIGHT * _scaled(self.lexical)
        return int(np.argmax(total)) if total.any() else -1


def cite_hits(hits: Sequence[Hit], signals: Sequence[PieceSignals]) -> None:
    """Set ``cite_start`` on each hit (in place) from its pieces' signals (:func:`piece_signals`)."""
    for hit, scored in zip(hits, signals, strict=True):
        best = scored.best()
        if best >= 0:
            hit.cite_start = scored.pieces[best].start


def piece_signals(query: Query, hits: Sequence[Hit]) -> list[PieceSignals]:
    """Each hit's pieces scored against the question (see :class:`PieceSignals`)."""
    analyzer = query.indexes.bm25.analyzer
    idf = query.indexes.bm25.idf(set(analyzer(query.text)))
    weight = sum(idf.values())
    out = []
    for hit in hits:
        pieces = hit.pieces()
        lexical = np.asarray([_lexical(analyzer(p.text), idf) for p in pieces]) / max(weight, 1e-9)
        semantic = _passage_cosines(query, hit, pieces) if pieces else np.zeros(0)
        out.append(PieceSignals(pieces, semantic, lexical.reshape(len(pieces))))
    return out


def _lexical(terms: list[str], idf: dict[str, float]) -> float:
    """BM25-style saturation of each query term's count, weighted by its IDF."""
    score = 0.0
    for term, weight in idf.items():
        tf = terms.count(term)
        if tf:
            score += weight * tf / (tf + 1.2)
    return score


def _passage_cosines(query: Query, hit: Hit, pieces: list[Piece]) -> np.ndarray:
    """Each piece gets the cosine of the passage that holds it (zeros without passages)."""
    out = np.zeros(len(pieces))
    passages = query.indexes.passages
    if passages is None:
        return out
    groups = group_pieces(pieces, passages.seconds, hit.end - hit.start)
    ids = np.asarray([passage_id(hit.corpus_id, j) for j in range(len(groups))], dtype=np.int64)
    cosines = passages.vectors.cosines(ids, query.vector)
    for j, (first, stop) in enumerate(groups):
        out[first:stop] = cosines[j]
    return out


def _scaled(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] within the window; all zeros when the values do not differ."""
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros_like(values, dtype=float)
    return (values - low) / (high - low)
