"""The ``learned`` reranker: a logistic model over the signals the search already has.

Why a fitted model instead of the ``passages`` rank fusion: fusion gives every
signal the same say, whatever it is worth, and over 50 candidates it can push
a relevant window out of the top 10 (measured on held-out ASR lectures:
hit@10 .972 → .917). Here each candidate window gets a handful of features
(:data:`FEATURES`: window and best-passage cosine, BM25 normalised per
question, the ``passages`` reranker's fused rank, the IDF-weighted share of the question's rare terms it holds with
Portuguese stemming and accent folding, its first-stage rank, its neighbours
and its lecture as a whole), and a logistic regression fitted by
``python -m bench.bench_heldout --fit`` on leave-one-lecture-out folds of
NURC-SP plus FaQuAD and SQuAD-pt (with distractors in the store) turns them
into one score. The weights ship as ``learned_ranker.json`` beside this module.

The model reorders only the first stage's top :attr:`LearnedModel.depth`
windows (the rest keep their order after them), so it cannot lose hit@depth
against its own first stage by construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from lecture_rag.errors import LectureRagError
from lecture_rag.index.bm25 import BM25Index, PortugueseAnalyzer, fold_accents
from lecture_rag.index.segments import SegmentedBM25
from lecture_rag.records import Hit
from lecture_rag.retrieve.rerank import PASSAGES_RRF_K, CandidateSignals, Query, best_passage_scores, rank_fusion

MODEL_PATH = Path(__file__).with_name("learned_ranker.json")
#: Windows whose analysed terms are kept (a few MB for a large course).
WINDOW_TERMS_CACHE = 20_000
#: Seconds between two windows of one video for them to count as neighbours.
NEIGHBOUR_GAP = 5.0
FEATURES = (
    "cosine",
    "cosine_gap",
    "passage_cosine",
    "passage_cosine_gap",
    "bm25",
    "passage_bm25",
    "coverage",
    "inverse_rank",
    "neighbour_cosine",
    "lecture_cosine",
    "lecture_share",
    "fusion",
    "neighbour_bm25",
)


class FittedLogistic:
    """What every shipped logistic model (reranker, abstention, sentence scorer) shares: its
    standardise-weigh-sum score and its JSON; each model is a frozen dataclass with these fields."""

    __slots__ = ()
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def score(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of each row of ``x`` (see :func:`linear_logit`)."""
        return linear_logit(x, self.mean, self.scale, self.coef, self.intercept)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class LearnedModel(FittedLogistic):
    """A fitted linear scorer: standardise each feature, then a dot product (the log-odds of relevance)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    depth: int = 10
    about: str = ""

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> LearnedModel:
        """The model in ``path``; a missing or malformed file is a user error naming it."""
        return read_fitted(cls, path, "features", FEATURES, "modelo do reordenador 'learned'")


def linear_logit(
    x: np.ndarray, mean: Sequence[float], scale: Sequence[float], coef: Sequence[float], intercept: float
) -> np.ndarray:
    """Log-odds of a fitted logistic model over the last axis of ``x``: standardise, then weigh and sum.

    Summed element-wise in numpy's own order, not by BLAS's ``@``: a BLAS product's summation order
    depends on its thread count, so a Ray worker (one thread) scored the last bits differently from a
    local run, and a run on Ray no longer gave the local results field for field.
    """
    z = (np.asarray(x, dtype=np.float64) - np.asarray(mean)) / np.asarray(scale)
    return np.asarray((z * np.asarray(coef)).sum(axis=-1) + intercept)


M = TypeVar("M")


def read_fitted(cls: type[M], path: Path, inputs: str, expected: tuple[str, ...], what: str) -> M:
    """A fitted model (JSON lists as tuples) of ``cls``; unreadable, incomplete or fitted on other
    ``inputs`` than ``expected``: a user error naming the file and what to do."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        model = cls(**data)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise LectureRagError(f"O {what} em {path} não pôde ser lido ({exc}); reinstale o pacote.") from None
    if data.get(inputs) != expected:
        raise LectureRagError(
            f"O {what} em {path} foi ajustado sobre outras entradas ({', '.join(data.get(inputs) or ())}); "
            "gere-o de novo com 'python -m bench.bench_heldout --fit'."
        )
    return model


def coverage(query: Query, hits: Sequence[Hit]) -> np.ndarray:
    """Each hit's IDF-weighted share of the question's terms (stems and 5-letter prefixes).

    Both texts are accent-folded *before* stemming: the index stems accented words
    (``paleolítico`` and ``paleolitico``, typed without accents, stem apart), and
    students and ASR drop accents. A term the corpus does not know weighs as a
    term in no window (the rarest).
    """
    bm25 = query.indexes.bm25
    terms = set(bm25.analyzer(fold_accents(query.text)))
    idf = term_weights(bm25, terms)
    total = sum(idf.values())
    if total <= 0:
        return np.zeros(len(hits))
    return np.asarray([sum(idf[t] for t in folded_terms(bm25.analyzer, h.text) & terms) / total for h in hits])


def term_weights(bm25: BM25Index | SegmentedBM25, terms: set[str]) -> dict[str, float]:
    """Each term's IDF in ``bm25``; a term the corpus does not know weighs as one in no window (the rarest)."""
    known = bm25.idf(terms)
    rarest = math.log(1.0 + (len(bm25) + 0.5) / 0.5)
    return {t: known.get(t, rarest) for t in terms}


@lru_cache(maxsize=WINDOW_TERMS_CACHE)
def folded_terms(analyzer: PortugueseAnalyzer, text: str) -> frozenset[str]:
    """A window's terms, accent-folded before stemming; cached (stemming 50 windows per question was
    the reranker's largest cost, and the same windows come back question after question)."""
    return frozenset(analyzer(fold_accents(text)))


def features(query: Query, hits: Sequence[Hit]) -> np.ndarray:
    """The :data:`FEATURES` of each hit, one row per hit (relative features are relative to these hits)."""
    return feature_pass(query, hits)[1]


def feature_pass(query: Query, hits: Sequence[Hit]) -> tuple[CandidateSignals, np.ndarray]:
    """The hits' raw signals (kept for the abstention, ``score`` left at 0) and their :data:`FEATURES` rows."""
    n = len(hits)
    ids = np.asarray([h.corpus_id for h in hits], dtype=np.int64)
    cos = np.asarray(query.indexes.vectors.cosines(ids, query.vector), dtype=np.float64)
    bm25 = np.asarray(query.indexes.bm25.scores_for(query.text, ids), dtype=np.float64)
    p_cos, p_bm25 = (np.asarray(v, dtype=np.float64) for v in best_passage_scores(query, hits))
    cov = coverage(query, hits)
    rel_bm25 = _relative(bm25)
    neighbour = np.zeros(n)
    near_bm25 = np.zeros(n)
    lecture = np.zeros(n)
    share = np.zeros(n)
    lectures: dict[str, list[int]] = {}
    for i, hit in enumerate(hits):
        lectures.setdefault(hit.video_id, []).append(i)
    for same in lectures.values():
        top3 = float(np.mean(np.sort(cos[same])[-3:]))
        for i in same:
            lecture[i], share[i] = top3, len(same) / n
            near = [j for j in same if j != i and _adjacent(hits[i], hits[j])]
            neighbour[i] = max((cos[j] for j in near), default=float(cos.min()))
            near_bm25[i] = max((rel_bm25[j] for j in near), default=0.0)
    columns = [
        cos,
        cos - cos.max(),
        p_cos,
        p_cos - p_cos.max(),
        rel_bm25,
        _relative(p_bm25),
        cov,
        1.0 / np.arange(1, n + 1),
        neighbour,
        lecture,
        share,
        rank_fusion([cos, bm25, p_cos, p_bm25]) * (PASSAGES_RRF_K + 1) / 4,  # the passages reranker's score, in [0, 1]
        near_bm25,
    ]
    kept = CandidateSignals(ids, cos, bm25, p_cos, cov, np.zeros(n))
    return kept, np.column_stack(columns)


def _adjacent(a: Hit, b: Hit) -> bool:
    return abs(b.start - a.end) <= NEIGHBOUR_GAP or abs(a.start - b.end) <= NEIGHBOUR_GAP


def _relative(values: np.ndarray) -> np.ndarray:
    """Scores over the question's best (BM25 scales differ from question to question)."""
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def depth_scores(model_scores: np.ndarray, total: int) -> list[float]:
    """Scores for ``total`` hits: the model's for the first ones, the first-stage order (below them) after."""
    depth = len(model_scores)
    floor = float(model_scores.min()) if depth else 0.0
    tail = [floor - 1.0 - i for i in range(total - depth)]
    return [float(s) for s in model_scores] + tail


@cache
def learned_model() -> LearnedModel:
    """The shipped model, read once per process (the reranker and the abstention's own feature pass)."""
    return LearnedModel.load()


class LearnedReranker:
    """Reorders the first stage's top ``model.depth`` windows by the fitted model (see module docstring)."""

    name = "learned"

    def __init__(self, model: LearnedModel | None = None) -> None:
        self.model = model or learned_model()

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]:
        top = list(hits[: self.model.depth])
        kept, x = feature_pass(query, top)
        values = self.model.score(x)
        if not np.all(np.isfinite(values)):
            return [float(len(hits) - i) for i in range(len(hits))]
        query.candidates = replace(kept, score=values)  # the abstention reads these (one feature pass)
        return depth_scores(values, len(hits))
