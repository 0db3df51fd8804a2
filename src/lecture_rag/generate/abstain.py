"""Whether the lectures hold an answer at all: a calibrated decision on several signals of the search.

Why not one cosine threshold (the previous rule, E5 cosine of the best
quoted sentence below 0.84): a cosine says how close the nearest text is,
not whether it is closer than the rest. Measured with distractors in the
store (``python -m bench.bench_heldout``), a question whose lecture was
removed still finds a text as close as an answerable one often does. The
decision here is a logistic regression over :data:`SIGNALS` of the search
result (its top cosine, the margin over the next hits, the rare-word
coverage of the best window, whether dense and lexical scoring agree on it,
the best passage's cosine, the share of the hits from the top hit's lecture,
the ``learned`` reranker's margin between its first and second hit, and the
highest BM25 among the hits as a share of the question's IDF), fitted on
leave-one-lecture-out folds; its threshold is the one that lost 8% of the
answerable lecture questions of the training folds, each scored by a model
fitted without its fold. The weights ship as ``abstain_model.json`` beside
this module.

Why these: the lecture share and the reranker's margin are free (the search
computed them) and, in CV on NURC (124 answerable, 142 unanswerable), moved
the unanswerable caught at the same loss from about 72 to 114 (AUC .88 → .94);
the reranker's top probability and a sound-alike rare-word coverage were
measured and did not help. The model is fitted on two settings: the lectures
among thousands of paragraphs (the bench's distractor store) and a course's
own store (its lectures alone, asked their questions and general-knowledge
ones): fitted on the first alone it answered «Quem ganhou a Copa de 2002?»
in the second, where every hit comes from a few lectures. The BM25 share
came with that (docs/retrieval.md, fourth round). A third setting joined in
the sixth round: the lectures among article-long recordings, as a store of
many recordings looks (the model fitted without it lost more answerable ASR
questions there). The cosines, BM25 scores,
coverage and passage cosines come from the reranker's own feature pass
(:class:`CandidateSignals`), not a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path

import numpy as np

from lecture_rag.retrieve import SearchResult
from lecture_rag.retrieve.learned import FittedLogistic, feature_pass, learned_model, read_fitted, term_weights
from lecture_rag.retrieve.rerank import CandidateSignals

MODEL_PATH = Path(__file__).with_name("abstain_model.json")
SIGNALS = (
    "top_cosine",
    "margin",
    "top_coverage",
    "agreement",
    "top_passage",
    "lecture_share",
    "rank_margin",
    "bm25_share",
)
#: Hits after the first whose cosines the margin is taken over.
MARGIN_HITS = 4


def hit_signals(found: SearchResult) -> CandidateSignals:
    """The hits' candidate signals, in hit order: the reranker's own when it computed them for these
    hits (the ``learned`` reranker, the default: one feature pass per search), else one pass here,
    scored by the shipped ``learned`` model over these hits alone."""
    hits = list(found.hits)
    kept = found.query.candidates
    rows = kept.rows(hits) if kept is not None else None
    if kept is None or rows is None:
        kept, x = feature_pass(found.query, hits)
        return replace(kept, score=learned_model().score(x))
    return CandidateSignals(*(np.asarray(getattr(kept, f.name))[rows] for f in fields(CandidateSignals)))


def signal_values(found: SearchResult) -> dict[str, float]:
    """Every one of :data:`SIGNALS` for a search result with hits."""
    hits = found.hits
    got = hit_signals(found)
    cos = got.cosine
    rest = np.sort(cos[1:])[::-1][:MARGIN_HITS]
    agreement = 1.0 / (1 + int(np.flatnonzero(np.argsort(-got.bm25, kind="stable") == 0)[0]))
    score = got.score
    return {
        "top_cosine": float(cos[0]),
        "margin": float(cos[0] - (float(rest.mean()) if rest.size else 0.0)),
        "top_coverage": float(got.coverage[0]),
        "agreement": agreement,
        "top_passage": float(got.passage_cosine[0]),
        "rank_margin": float(score[0] - score[1]) if len(score) > 1 else 0.0,
        "lecture_share": sum(h.video_id == hits[0].video_id for h in hits) / len(hits),
        "bm25_share": bm25_share(found, float(got.bm25.max())),
    }


def bm25_share(found: SearchResult, score: float) -> float:
    """A BM25 score over the summed IDF of the question's terms, a term the corpus does not know weighing
    as the rarest (given the highest BM25 among the hits: how much of the question, by weight, the lectures
    say at all).

    Why not the raw score: BM25 grows with the corpus (IDFs are logs of its size), so a threshold
    fitted on the bench store would drift in a university's. Why unknown terms count: over the known
    terms alone, «Qual é a capital da Austrália?» is all «capital», which a lecture says.
    """
    bm25 = found.query.indexes.bm25
    total = float(sum(term_weights(bm25, set(bm25.analyzer(found.query.text))).values()))
    return score / total if total > 0 else 0.0


def signals(found: SearchResult, names: tuple[str, ...] = SIGNALS) -> np.ndarray:
    """The signals ``names`` of a search result (zeros when it has no hits)."""
    if not found.hits:
        return np.zeros(len(names))
    values = signal_values(found)
    return np.asarray([values[n] for n in names])


@dataclass(frozen=True, slots=True)
class AbstainModel(FittedLogistic):
    """Logistic P(the lectures answer) over standardised :data:`SIGNALS`, and the threshold below which to abstain."""

    signals: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    about: str = ""

    def probability(self, x: np.ndarray) -> float:
        return float(1.0 / (1.0 + np.exp(-float(self.score(x)))))

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> AbstainModel:
        """The model in ``path``; a missing or malformed file is a user error naming it."""
        return read_fitted(cls, path, "signals", SIGNALS, "modelo de abstenção")


@cache
def abstain_model() -> AbstainModel:
    """The shipped model, read once per process."""
    return AbstainModel.load()
