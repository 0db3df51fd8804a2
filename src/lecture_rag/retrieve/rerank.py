"""Reranking: reorder the top ~50 candidates of a search before the top k are kept.

Why a stage of its own: the first-stage retrievers score a whole 2-minute
window at once, which on speech-recognised transcripts puts the right window
first only about half the time. A reranker may look closer (at the window's
~25-second passages, or through a cross-encoder or an LLM reading question
and text together) because it sees 50 candidates, not the whole corpus.

Rerankers (the :class:`Reranker` protocol; pick one with ``--rerank`` or
``[retrieval] rerank``):

* ``none``: the first-stage order.
* ``passages`` (offline default): reciprocal-rank fusion of four orderings of
  the candidates: window cosine, window BM25, best-passage cosine and
  best-passage BM25 (see :mod:`lecture_rag.index.passages`). Needs nothing
  but the index build.
* ``learned``: a logistic model over the candidates' signals, fitted on
  held-out folds with distractors (:mod:`lecture_rag.retrieve.learned`);
  reorders the first stage's top 10 only.
* ``cross-encoder``: a sentence-transformers ``CrossEncoder`` scores each
  (question, window) pair; for users who have a reranker model.
* ``llm`` (off by default): an LLM orders the candidates listwise
  (:class:`LLMReranker`).

:func:`make_reranker` is the one place a reranker name becomes an object: the
CLI, the web app and ``eval retrieval`` all go through it.

A reranker that fails (model missing, endpoint down) never costs the user the
hits: :func:`rerank_or_keep` logs a warning naming the cause and keeps the
first-stage order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lecture_rag.config import LLMSettings, Reranking, Settings, env_var
from lecture_rag.errors import LectureRagError
from lecture_rag.index.build import Indexes
from lecture_rag.llm import LLM, Request, chat, make_llm
from lecture_rag.records import Hit, Segment

log = logging.getLogger(__name__)

RERANKERS = tuple(r.value for r in Reranking)
#: RRF constant of the ``passages`` fusion. Over 50 candidates a small constant lets the top of
#: each ordering count (60, the usual value for whole-corpus lists, measured 0.01 MRR lower).
PASSAGES_RRF_K = 10
SCORE_DECIMALS = 9  # rerank scores are kept to this many decimals (see rerank_or_keep)
#: Words of each candidate the LLM reads: enough to judge, short enough for 20 candidates in 4k tokens.
LLM_PASSAGE_WORDS = 120
#: Candidates the LLM orders (the rest keep their order after them).
LLM_CANDIDATES = 20
_NUMBER = re.compile(r"\d+")


class RerankError(LectureRagError):
    """A reranker could not score the candidates (the search keeps its first-stage order)."""


@dataclass(frozen=True, slots=True)
class CandidateSignals:
    """What a reranker computed for each candidate (row ``i`` is corpus id ``ids[i]``), for the stages after it.

    Why kept: the abstention (:mod:`lecture_rag.generate.abstain`) needs the
    same cosines, BM25 scores, rare-word coverage and passage cosines of the
    hits it judges; reading them here is one feature pass per search instead of two.
    ``bm25`` is the raw per-question score; ``score`` the reranker's own (log-odds for ``learned``).
    """

    ids: np.ndarray
    cosine: np.ndarray
    bm25: np.ndarray
    passage_cosine: np.ndarray
    coverage: np.ndarray
    score: np.ndarray

    def rows(self, hits: Sequence[Hit]) -> np.ndarray | None:
        """The rows of ``hits`` (None when one of them was not among these candidates)."""
        where = {int(cid): i for i, cid in enumerate(self.ids)}
        rows = [where.get(h.corpus_id) for h in hits]
        return None if any(r is None for r in rows) else np.asarray(rows, dtype=np.int64)


@dataclass(slots=True)
class Query:
    """What a reranker may use: the text, its E5 vector, and the indexes it was searched in.

    ``candidates``: what the reranker computed per candidate, filled by the
    ``learned`` reranker during this search (None otherwise).
    """

    text: str
    vector: np.ndarray
    indexes: Indexes
    candidates: CandidateSignals | None = None


class Reranker(Protocol):
    """Scores candidates; a higher score ranks first. Same input, same scores (rankings are reproducible)."""

    @property
    def name(self) -> str: ...

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]: ...


def rerank_or_keep(reranker: Reranker | None, query: Query, hits: list[Hit]) -> list[Hit]:
    """``hits`` in the reranker's order (ties keep the first-stage order), or unchanged if it fails."""
    if reranker is None or len(hits) < 2:
        return hits
    try:
        scores = reranker.scores(query, hits)
        if len(scores) != len(hits) or not all(np.isfinite(scores)):
            raise RerankError(f"devolveu {len(scores)} notas para {len(hits)} trechos")
    except Exception as exc:
        log.warning(
            "O reordenador '%s' falhou (%s); os resultados seguem na ordem da busca. "
            "Confira o modelo ou o servidor configurado, ou use --rerank none.",
            reranker.name,
            exc,
        )
        return hits
    # Rounded to 1e-9: a score's last bits follow the summation order of numpy/BLAS kernels, which a Ray
    # worker (one thread) and a local process need not share, and a run on Ray must give the local results
    # field for field (a 1e-15 difference in rerank_score was seen); near-ties then keep the first-stage order.
    kept = [round(float(v), SCORE_DECIMALS) for v in scores]
    order = sorted(range(len(hits)), key=lambda i: (-kept[i], i))
    out = []
    for i in order:
        hits[i].rerank_score = kept[i]
        out.append(hits[i])
    return out


def make_reranker(settings: Settings, name: Reranking | str | None = None) -> Reranker | None:
    """The reranker ``name`` (default: ``[retrieval] rerank``); None for ``none``. Unknown names are user errors."""
    try:
        chosen = Reranking(str(name).strip().lower()) if name is not None else settings.retrieval.rerank
    except ValueError:
        raise LectureRagError(f"Reordenador '{name}' desconhecido: use um de {', '.join(RERANKERS)}.") from None
    if chosen is Reranking.NONE:
        return None
    if chosen is Reranking.PASSAGES:
        return PassageReranker()
    if chosen is Reranking.LEARNED:
        from lecture_rag.retrieve.learned import LearnedReranker  # it builds on this module's helpers

        return LearnedReranker()
    if chosen is Reranking.CROSS_ENCODER:
        return CrossEncoderReranker(settings.retrieval.cross_encoder_model)
    return LLMReranker(_llm_or_error(settings.llm))


def _llm_or_error(settings: LLMSettings) -> LLM:
    llm = make_llm(settings)
    if llm is None:
        raise LectureRagError(
            f"--rerank llm precisa de um LLM: defina {env_var('llm', 'backend')}=openai (com "
            f"{env_var('llm', 'base_url')} e {env_var('llm', 'model')}) ou gguf:/caminho/modelo.gguf."
        )
    return llm


class PassageReranker:
    """Reciprocal-rank fusion of window and best-passage scores (see module docstring)."""

    name = "passages"

    def __init__(self, rrf_k: int = PASSAGES_RRF_K) -> None:
        self.rrf_k = rrf_k

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]:
        passages = query.indexes.passages
        if passages is None:
            raise RerankError("o índice não tem trechos: rode 'lecture-rag index'")
        ids = np.asarray([h.corpus_id for h in hits], dtype=np.int64)
        features = [
            query.indexes.vectors.cosines(ids, query.vector),
            query.indexes.bm25.scores_for(query.text, ids),
            *best_passage_scores(query, hits),
        ]
        return [float(x) for x in rank_fusion(features, self.rrf_k)]


def rank_fusion(
    orderings: Sequence[Sequence[float] | np.ndarray],
    rrf_k: int = PASSAGES_RRF_K,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """(Weighted) reciprocal-rank fusion of score lists over the same candidates (ties keep the candidates' order)."""
    n = len(orderings[0]) if orderings else 0
    fused = np.zeros(n)
    for values, weight in zip(orderings, weights or [1.0] * len(orderings), strict=True):
        order = sorted(range(n), key=lambda i: (-float(values[i]), i))
        for rank, i in enumerate(order, start=1):
            fused[i] += weight / (rrf_k + rank)
    return fused


def best_passage_scores(query: Query, hits: Sequence[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """Each window's best passage cosine and best passage BM25 score (0 when it has no passages indexed)."""
    return _best_of_passages(query, hits, lexical=True)


def best_passage_cosines(query: Query, windows: Sequence[Segment]) -> np.ndarray:
    """Each window's best passage cosine (0 without passages): no BM25, for a first stage's whole fetch."""
    return _best_of_passages(query, windows, lexical=False)[0]


def _best_of_passages(query: Query, windows: Sequence[Segment], lexical: bool) -> tuple[np.ndarray, np.ndarray]:
    passages = query.indexes.passages
    cos = np.zeros(len(windows), dtype=np.float32)
    lex = np.zeros(len(windows), dtype=np.float32)
    if passages is None or not windows:
        return cos, lex
    owner, ids = passages.of_windows(np.asarray([w.corpus_id for w in windows], dtype=np.int64))
    if not ids.size:
        return cos, lex
    if lexical:
        p_cos, p_lex = passages.scores(query.text, query.vector, ids)
        np.maximum.at(lex, owner, p_lex)
    else:
        p_cos = passages.vectors.cosines(ids, query.vector)
    np.maximum.at(cos, owner, p_cos)
    return cos, lex


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` scoring (question, window text) pairs.

    ``model`` is a model name (loaded from the Hugging Face hub or its cache)
    or a local folder. Loaded on first use, once.
    """

    def __init__(self, model: str, *, batch_size: int = 16, max_length: int = 512) -> None:
        if not model.strip():
            raise LectureRagError(
                "O reordenador cross-encoder precisa de um modelo: defina [retrieval] cross_encoder_model "
                f"(ou {env_var('retrieval', 'cross_encoder_model')}) com o nome ou a pasta de um CrossEncoder, "
                "por exemplo cross-encoder/mmarco-mMiniLMv2-L12-H384-v1."
            )
        self.model_name = model.strip()
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None

    @property
    def name(self) -> str:
        return f"cross-encoder:{self.model_name}"

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:
                raise RerankError("sentence-transformers não está instalado (pip install 'lecture-rag[st]')") from exc
            try:
                self._model = CrossEncoder(self.model_name, max_length=self.max_length, device="cpu")
            except Exception as exc:
                raise RerankError(f"não foi possível carregar o modelo '{self.model_name}': {exc}") from exc
        return self._model

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]:
        model = self._load()
        pairs = [(query.text, hit.text) for hit in hits]
        values = model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(len(hits), -1)[:, -1]]


class LLMReranker:
    """Listwise reranking by an LLM.

    The LLM reads the question and the candidates (numbered, each cut to its
    first words) and names their numbers, most relevant first (a "listwise"
    ranking, as in RankGPT). Candidates it does not name keep their
    first-stage order after the ones it names; numbers that do not exist are
    ignored. Off by default: on 2 cores with a local model it costs seconds
    per question, and its quality is the plugged-in model's.
    """

    def __init__(self, llm: LLM, *, candidates: int = LLM_CANDIDATES, max_tokens: int = 96) -> None:
        self.llm = llm
        self.candidates = candidates
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"llm:{self.llm.name}"

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]:
        shown = list(hits[: self.candidates])
        lines = [f"[{i}] {' '.join(h.text.split()[:LLM_PASSAGE_WORDS])}" for i, h in enumerate(shown, start=1)]
        prompt = (
            f"Pergunta: {query.text}\n\nTrechos de aulas:\n" + "\n".join(lines) + "\n\nOrdene os trechos do mais "
            "ao menos útil para responder à pergunta. Responda só com os números entre colchetes, "
            "separados por ' > ', por exemplo: [2] > [1] > [3]"
        )
        system = "Você ordena trechos de aulas por relevância para uma pergunta."
        completion = self.llm.complete(Request(chat(system, prompt), max_tokens=self.max_tokens))
        order = parse_ranking(completion.text, len(shown))
        if not order:
            raise RerankError(f"resposta sem números de trechos: {completion.text[:80]!r}")
        rank_of = {i: r for r, i in enumerate(order)}
        n = len(hits)
        # Named candidates first, in the LLM's order; the others after, in the first-stage order.
        return [float(2 * n - rank_of[i]) if i in rank_of else float(n - i) for i in range(n)]


def parse_ranking(text: str, count: int) -> list[int]:
    """0-based candidate indexes in the order the text names them (each once; out-of-range numbers ignored)."""
    seen: list[int] = []
    for match in _NUMBER.finditer(text):
        i = int(match.group()) - 1
        if 0 <= i < count and i not in seen:
            seen.append(i)
    return seen
