"""Whether the lectures hold an answer at all: a calibrated decision on several signals of the search.

Why not one cosine threshold (the previous rule, E5 cosine of the best
quoted sentence below 0.84): a cosine says how close the nearest text is,
not whether it is closer than the rest. Measured with distractors in the
store (``python -m bench.bench_heldout``), a question whose lecture was
removed still finds a text as close as an answerable one often does. The
decision here is a logistic regression over :data:`SIGNALS` of the search
result (its top cosine, the margin over the next hits, the rare-word
coverage of the best window, whether dense and lexical scoring agree on it,
the best passage's cosine), fitted on leave-one-lecture-out folds; its
threshold is the one that lost at most 8% of the answerable training
questions. The weights ship as ``abstain_model.json`` beside this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from lecture_rag.retrieve import SearchResult
from lecture_rag.retrieve.learned import coverage, linear_logit, read_fitted
from lecture_rag.retrieve.rerank import best_passage_scores

MODEL_PATH = Path(__file__).with_name("abstain_model.json")
SIGNALS = ("top_cosine", "margin", "top_coverage", "agreement", "top_passage")
#: Hits after the first whose cosines the margin is taken over.
MARGIN_HITS = 4


def signals(found: SearchResult) -> np.ndarray:
    """The :data:`SIGNALS` of a search result (zeros when it has no hits)."""
    hits = list(found.hits)
    if not hits:
        return np.zeros(len(SIGNALS))
    query = found.query
    ids = np.asarray([h.corpus_id for h in hits], dtype=np.int64)
    cos = np.asarray(query.indexes.vectors.cosines(ids, query.vector), dtype=np.float64)
    rest = np.sort(cos[1:])[::-1][:MARGIN_HITS]
    lexical = np.asarray(query.indexes.bm25.scores_for(query.text, ids), dtype=np.float64)
    agreement = 1.0 / (1 + int(np.flatnonzero(np.argsort(-lexical, kind="stable") == 0)[0]))
    passage, _ = best_passage_scores(query, hits[:1])
    return np.asarray(
        [
            cos[0],
            cos[0] - (float(rest.mean()) if rest.size else 0.0),
            float(coverage(query, hits[:1])[0]),
            agreement,
            float(passage[0]),
        ]
    )


@dataclass(frozen=True, slots=True)
class AbstainModel:
    """Logistic P(the lectures answer) over standardised :data:`SIGNALS`, and the threshold below which to abstain."""

    signals: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    about: str = ""

    def probability(self, x: np.ndarray) -> float:
        logit = float(linear_logit(x, self.mean, self.scale, self.coef, self.intercept))
        return float(1.0 / (1.0 + np.exp(-logit)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> AbstainModel:
        """The model in ``path``; a missing or malformed file is a user error naming it."""
        return read_fitted(cls, path, "signals", SIGNALS, "modelo de abstenção")


@cache
def abstain_model() -> AbstainModel:
    """The shipped model, read once per process."""
    return AbstainModel.load()
