"""Search over the indexed segments: dense (E5 cosine), BM25, or hybrid (RRF).

Why hybrid by reciprocal-rank fusion: BM25 scores and cosines live on
different scales, RRF only needs ranks, and it rewards segments both
retrievers agree on. Whatever ranked a hit, ``Hit.score`` is the E5 cosine of
that segment when an embedding of the query exists (dense and hybrid), so a
caller can apply one "too far from the question" threshold in every mode.

Neighbouring windows of one lecture often repeat the same explanation; left
alone they fill the top k with one passage. :func:`suppress_near_duplicates`
drops a hit that overlaps a better one of the same video in time, or whose
words nearly equal a better one's.

A search takes one value (:class:`SearchRequest`) and returns one
(:class:`SearchResult`): the hits with the question's vector and each hit's
piece signals, so the stages after it (the answer engine) never embed the
question or score the pieces again.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Protocol

import numpy as np

from lecture_rag.config import RetrievalMode, RetrievalSettings, Settings
from lecture_rag.embed import Embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.index.bm25 import fold_accents
from lecture_rag.index.build import Indexes
from lecture_rag.records import Hit, Segment
from lecture_rag.retrieve.cite import PieceSignals, cite_hits, piece_signals
from lecture_rag.retrieve.priority import AnswerEmbedder, PriorityLock
from lecture_rag.retrieve.rerank import SCORE_DECIMALS, Query, Reranker, best_passage_cosines, rerank_or_keep
from lecture_rag.retrieve.served import ServedIndex
from lecture_rag.store import Store

log = logging.getLogger(__name__)

MODES = tuple(mode.value for mode in RetrievalMode)
# E5 reads 512 tokens; Portuguese runs ~4.2 characters per token with its
# tokenizer (2,000 characters of FaQuAD text = 481 tokens), so 2,000 characters
# keep a pasted essay inside one model window instead of paying for several.
MAX_QUERY_CHARS = 2000
HYBRID_CANDIDATES_PER_K = 5
DEDUP_JACCARD = 0.8
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(slots=True)
class Candidate:
    """A segment on its way to becoming a Hit."""

    corpus_id: int
    rank_score: float
    cosine: float | None = None
    bm25: float | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class DedupPolicy:
    """When a lower-ranked hit is a near duplicate of a kept one.

    ``overlap``: same video and the shared time exceeds this fraction of the
    shorter window. ``jaccard``: word-set Jaccard at or above this (any video:
    the same lecture uploaded twice is as redundant as two overlapping windows).
    """

    overlap: float = 0.5
    jaccard: float = DEDUP_JACCARD


def prepare_query(query: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    """Collapse whitespace, refuse an empty query, cut an over-long one at a word boundary."""
    text = " ".join(str(query or "").split())
    if not text:
        raise LectureRagError(
            "A pergunta está vazia: escreva o que quer encontrar nas aulas, "
            "por exemplo 'o que caracteriza a arte do Paleolítico?'."
        )
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[: cut if cut > max_chars // 2 else max_chars]


def parse_mode(mode: RetrievalMode | str) -> RetrievalMode:
    """The retrieval mode named ``mode``; an unknown name is a user error that lists the modes."""
    try:
        return RetrievalMode(mode)
    except ValueError:
        raise LectureRagError(f"Modo de busca '{mode}' desconhecido: use um de {', '.join(MODES)}.") from None


def rrf_fuse(
    ranked_lists: dict[str, Sequence[int]], k: int, weights: dict[str, float] | None = None
) -> list[tuple[int, float, tuple[str, ...]]]:
    """Reciprocal-rank fusion: sum of weight/(k + rank) over the lists (rank from 1, weight 1 by default)."""
    scores: dict[int, float] = {}
    sources: dict[int, list[str]] = {}
    for name, ids in ranked_lists.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, corpus_id in enumerate(ids, start=1):
            scores[corpus_id] = scores.get(corpus_id, 0.0) + weight / (k + rank)
            sources.setdefault(corpus_id, []).append(name)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [(cid, scores[cid], tuple(sources[cid])) for cid in order]


WordLookup = Callable[[str], tuple[int, int]]


class WordSets:
    """Window word sets as bitmasks over one vocabulary, kept across searches (bounded).

    Deduplication's CPU was tokenizing windows and intersecting Python sets;
    a set here is a Python int with one bit per vocabulary word, so an
    intersection is ``(a & b).bit_count()``. Keyed by the text itself, so a
    cached set never belongs to another text. Past ``size`` texts the cache
    and its vocabulary start over (a cheap bound), but only between two
    deduplications: each one reads a single vocabulary (:meth:`lookup`), and
    new words get their bits under a lock, so concurrent searches (the web
    app's threads) never compare masks of two numberings.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[int, int]] = {}
        self._vocab: dict[str, int] = {}

    def lookup(self) -> WordLookup:
        """text -> (bitmask, number of words), over one vocabulary, for one deduplication."""
        with self._lock:
            if len(self._sets) >= self.size:
                self._sets, self._vocab = {}, {}
            sets, vocab = self._sets, self._vocab

        def words_of(text: str) -> tuple[int, int]:
            found = sets.get(text)
            if found is None:
                words = frozenset(_WORD.findall(fold_accents(text.lower())))
                mask = 0
                with self._lock:
                    for word in words:
                        mask |= 1 << vocab.setdefault(word, len(vocab))
                found = sets[text] = (mask, len(words))
            return found

        return words_of


def suppress_near_duplicates(
    candidates: Sequence[Candidate],
    segments: dict[int, Segment],
    policy: DedupPolicy | None,
    limit: int,
    words: WordSets | None = None,
    reserved: frozenset[int] = frozenset(),
) -> list[Candidate]:
    """Keep candidates in order, skipping near duplicates of kept ones, up to ``limit``.

    ``words``: a cache of window word sets kept by the caller across searches.
    ``reserved``: positions kept wherever they stand (the best passages' windows,
    :func:`passage_places`); the others fill ``limit - len(reserved)`` places, and
    the place of a reserved window that is a near duplicate of a kept one.
    ``policy`` None: nothing is a near duplicate.
    """
    kept: list[Candidate] = []
    lookup = (words or WordSets()).lookup()
    others = limit - len(reserved)
    last = max(reserved, default=-1)
    for i, cand in enumerate(candidates):
        if others <= 0 and i > last:
            break
        mine = i in reserved
        if not mine and others <= 0:
            continue
        seg = segments[cand.corpus_id]
        if policy is not None and any(_near_duplicate(seg, segments[k.corpus_id], policy, lookup) for k in kept):
            others += 1 if mine else 0  # a reserved window repeating a kept one gives its place to the next
            continue
        kept.append(cand)
        others -= 0 if mine else 1
    return kept


def time_overlap(a: Segment, b: Segment) -> float:
    """Shared seconds over the shorter window's length (0 for different videos)."""
    if a.video_id != b.video_id:
        return 0.0
    shared = min(a.end, b.end) - max(a.start, b.start)
    shorter = min(a.end - a.start, b.end - b.start)
    if shared <= 0:
        return 0.0
    return 1.0 if shorter <= 0 else min(1.0, shared / shorter)


def _near_duplicate(a: Segment, b: Segment, policy: DedupPolicy, words: WordLookup) -> bool:
    if time_overlap(a, b) > policy.overlap:
        return True
    (mask_a, size_a), (mask_b, size_b) = words(a.text), words(b.text)
    # Jaccard <= smaller/larger set size: many pairs are ruled out without intersecting them.
    if min(size_a, size_b) < policy.jaccard * max(size_a, size_b):
        return False
    shared = (mask_a & mask_b).bit_count()  # |a ∪ b| = |a| + |b| - |a ∩ b|
    union = size_a + size_b - shared
    return (shared / union if union else 1.0) >= policy.jaccard


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search, as one value: what to find, how many, how, where, and how to order them.

    Built once and valid once built (a user error names what is wrong):
    ``question`` is the text searched (:func:`prepare_query`: whitespace
    collapsed, an essay cut at :data:`MAX_QUERY_CHARS`), ``mode`` a
    :class:`RetrievalMode`, ``k`` at least 1. ``course``/``video`` restrict
    the search. ``reranker``: ``...`` for the retriever's own, None for none,
    or one to use instead. ``dedup=False`` keeps near-duplicate windows (see
    :class:`DedupPolicy`). Equal requests ask for the same hits.
    """

    question: str
    k: int = 10
    mode: RetrievalMode = RetrievalMode.DENSE
    course: str | None = None
    video: str | None = None
    dedup: bool = True
    reranker: Reranker | EllipsisType | None = ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", prepare_query(self.question))
        object.__setattr__(self, "mode", parse_mode(self.mode))
        if self.k < 1:
            raise LectureRagError(f"k={self.k} inválido: peça pelo menos 1 resultado.")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What one search found, with what it computed on the way, for the stages after it.

    ``query``: the question as searched, its E5 vector and the build it was
    searched in; ``hits``: best first; ``signals``: each hit's timed pieces
    scored against the question (:func:`~lecture_rag.retrieve.cite.piece_signals`,
    one per hit, in order), which chose its ``cite_start``. The answer engine
    quotes and packs from these instead of embedding the question or scoring
    the pieces again, as haystack passes ``query_embedding`` between components.
    """

    request: SearchRequest
    query: Query
    hits: tuple[Hit, ...]
    signals: tuple[PieceSignals, ...]


class Searcher(Protocol):
    """What the answer engine needs from retrieval: a search, the embedder, and the store behind them."""

    embedder: Embedder
    store: Store

    def search(self, request: SearchRequest) -> SearchResult: ...


class Retriever:
    """Ranks: the hits of a :class:`SearchRequest` in the build ``index`` serves.

    Which build that is (first load, a newer one published, a watcher's swap)
    is :class:`~lecture_rag.retrieve.served.ServedIndex`'s business; a search
    reads it once (:meth:`ServedIndex.current`) and ranks in it (:meth:`rank`).
    """

    def __init__(
        self, index: ServedIndex, *, dedup_jaccard: float = DEDUP_JACCARD, reranker: Reranker | None = None
    ) -> None:
        self.index = index
        self.store = index.store
        self.embedder = index.embedder
        self.settings = index.settings
        self.reranker = reranker
        self.dedup_policy = DedupPolicy(overlap=self.settings.retrieval.dedup_overlap, jaccard=dedup_jaccard)
        self.word_sets = WordSets()

    @classmethod
    def open(
        cls, store: Store, embedder: Embedder, settings: Settings, *, reranker: Reranker | None = None
    ) -> Retriever:
        """A retriever for one process's own searches (the CLI, a run's workers).

        It follows the pointer (an ``index`` run meanwhile is searched next),
        and on a shared store it first builds this folder's index if it has
        none (:meth:`ServedIndex.build_if_missing`).
        """
        index = ServedIndex(store, embedder, settings)
        index.build_if_missing()
        return cls(index, reranker=reranker)

    def search(self, request: SearchRequest) -> SearchResult:
        """The top ``request.k`` hits in the build served now (see :meth:`rank`).

        Raises StoreError for an empty store or missing/foreign indexes.
        """
        return self.rank(request, self.index.current())

    def rank(self, request: SearchRequest, indexes: Indexes) -> SearchResult:
        """The top ``request.k`` hits in ``indexes``, each with the second to cite and its pieces' signals.

        The question is embedded here, once. With a reranker (this
        retriever's unless the request says otherwise) the first stage fetches
        ``[retrieval] rerank_candidates`` windows and the reranker picks the
        top ``k``. Every hit gets the second to cite (:mod:`lecture_rag.retrieve.cite`).
        Raises LectureRagError for an unknown course or video.
        """
        allowed = self._allowed(request.course, request.video)
        chosen = self.reranker if request.reranker is ... else request.reranker
        first_k = max(request.k, self.settings.retrieval.rerank_candidates) if chosen is not None else request.k
        pool = self.settings.retrieval.passage_pool if chosen is not None else 0
        text = request.question
        query = Query(text, self.embedder.embed_queries([text])[0], indexes)
        hits = self._first_stage(query, request.mode, first_k, allowed, request.dedup, pool)
        hits = rerank_or_keep(chosen, query, hits)[: request.k]
        for rank, hit in enumerate(hits, start=1):
            hit.rank = rank
        signals = piece_signals(query, hits)
        cite_hits(hits, signals)
        return SearchResult(request, query, tuple(hits), tuple(signals))

    def _first_stage(
        self,
        query: Query,
        mode: RetrievalMode,
        k: int,
        allowed: np.ndarray | None,
        dedup: bool,
        passage_pool: int = 0,
    ) -> list[Hit]:
        """Top-``k`` hits of the retrievers ``mode`` names (near duplicates dropped when ``dedup``), of which
        ``passage_pool`` are the fetched windows with the best passages (:func:`passage_places`)."""
        fetch = k * HYBRID_CANDIDATES_PER_K if mode == "hybrid" else (k * 3 if dedup or passage_pool else k)
        total = len(query.indexes.vectors) if allowed is None else int(allowed.size)
        while True:
            candidates, exhausted = self._candidates(query, mode, fetch, allowed)
            # Ids of the published index: a re-ingested or removed lecture resolves to its superseded
            # version until an index without it is published; ids purged since are simply gone.
            segments = self.store.get_segments((c.corpus_id for c in candidates), superseded=True)
            candidates = [c for c in candidates if c.corpus_id in segments]
            places = passage_places(query, candidates, segments, k, passage_pool)
            if dedup:
                kept = suppress_near_duplicates(candidates, segments, self.dedup_policy, k, self.word_sets, places)
            else:
                kept = suppress_near_duplicates(candidates, segments, None, k, reserved=places)
            if len(kept) >= k or exhausted or fetch >= total:
                break
            fetch = min(total, fetch * 4)
        return [_hit(c, segments[c.corpus_id], rank) for rank, c in enumerate(kept, start=1)]

    def _candidates(
        self, query: Query, mode: str, fetch: int, allowed: np.ndarray | None
    ) -> tuple[list[Candidate], bool]:
        """Ranked candidates, and whether the retrievers had no more to give."""
        indexes, text, qvec = query.indexes, query.text, query.vector
        if mode == "bm25":
            ids, scores = indexes.bm25.search(text, fetch, allowed=allowed)
            cands = [Candidate(int(i), float(s), None, float(s), ("bm25",)) for i, s in zip(ids, scores, strict=True)]
            return cands, len(ids) < fetch
        d_ids, d_cos = indexes.vectors.search(qvec, fetch, allowed=allowed)
        if mode == "dense":
            cands = [Candidate(int(i), float(s), float(s), None, ("dense",)) for i, s in zip(d_ids, d_cos, strict=True)]
            return cands, len(d_ids) < fetch
        b_ids, b_scores = indexes.bm25.search(text, fetch, allowed=allowed)
        fused = _hybrid(indexes, qvec, d_ids, b_ids, b_scores, self.settings.retrieval)
        return fused, len(d_ids) < fetch and len(b_ids) < fetch

    def _allowed(self, course: str | None, video: str | None) -> np.ndarray | None:
        """Corpus ids the filters allow (None: no filter); unknown names are user errors."""
        if course is None and video is None:
            return None
        videos = self.store.list_videos()
        chosen = videos
        if video is not None:
            chosen = [v for v in chosen if v.video_id == video]
            if not chosen:
                raise LectureRagError(f"A aula '{video}' não está no acervo. Veja 'lecture-rag corpus list'.")
        if course is not None:
            wanted = course.casefold()
            chosen = [v for v in chosen if v.course.casefold() == wanted]
            if not chosen:
                known = sorted({v.course for v in videos if v.course}) or ["(nenhum curso cadastrado)"]
                where = f" com a aula '{video}'" if video else ""
                raise LectureRagError(
                    f"Nenhuma aula do curso '{course}'{where} no acervo. Cursos disponíveis: {', '.join(known)}."
                )
        ids = self.store.corpus_ids([v.video_id for v in chosen], superseded=True)  # what the index may hold
        return np.asarray(ids, dtype=np.int64)


def passage_places(
    query: Query, candidates: Sequence[Candidate], segments: dict[int, Segment], k: int, size: int
) -> frozenset[int]:
    """Positions in ``candidates`` of the ``size`` windows with the best passage cosine, when more than ``k``
    were fetched: they keep places among the first ``k`` (:func:`suppress_near_duplicates`).

    Why: a window's vector averages two minutes of speech, so a 25-second
    answer inside it can leave the window far down the cosine list (86th, in
    the held-out bench) while its passage is the fourth best. The reranker
    reads the best passage cosine, but only of the windows it is handed.
    The other ``k - size`` places go to the first candidates in order, so a
    first stage's top ``k - size`` always stays (with the defaults, its top 40).
    ``size`` above ``k`` counts as ``k``.
    """
    if size <= 0 or len(candidates) <= k or query.indexes.passages is None:
        return frozenset()
    best = best_passage_cosines(query, [segments[c.corpus_id] for c in candidates])
    best = np.round(best.astype(np.float64), SCORE_DECIMALS)  # as rerank_or_keep: a Ray worker picks the same
    return frozenset(np.argsort(-best, kind="stable")[: min(size, k)].tolist())


def _hybrid(
    indexes: Indexes,
    qvec: np.ndarray,
    d_ids: np.ndarray,
    b_ids: np.ndarray,
    b_scores: np.ndarray,
    settings: RetrievalSettings,
) -> list[Candidate]:
    """RRF over both lists; every candidate gets its true cosine from the stored vectors."""
    weights = {"dense": settings.dense_weight, "bm25": settings.bm25_weight}
    fused = rrf_fuse({"dense": d_ids.tolist(), "bm25": b_ids.tolist()}, settings.rrf_k, weights)
    ids = np.asarray([cid for cid, _, _ in fused], dtype=np.int64)
    cosines = indexes.vectors.cosines(ids, qvec)
    bm25 = {int(i): float(s) for i, s in zip(b_ids, b_scores, strict=True)}
    out = [
        Candidate(cid, score, float(cos), bm25.get(cid), src)
        for (cid, score, src), cos in zip(fused, cosines, strict=True)
    ]
    out.sort(key=lambda c: (-c.rank_score, -(c.cosine or 0.0)))
    return out


def _hit(cand: Candidate, segment: Segment, rank: int) -> Hit:
    return Hit(
        corpus_id=segment.corpus_id,
        video_id=segment.video_id,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        video_url=segment.video_url,
        title=segment.title,
        course=segment.course,
        marks=segment.marks,
        score=cand.cosine,
        rank=rank,
        rank_score=cand.rank_score,
        bm25=cand.bm25,
        sources=cand.sources,
    )


class SharedRetriever:
    """A retriever that several threads share (the web app's requests, a run's workers).

    Search reads indexes and the embedder's C engine, which keeps per-call
    state; both go under one re-entrant lock, also taken by the embedder
    this object hands out (the extractive answer embeds passages), so no two
    threads are ever inside the engine at once. Searches take it first; answer
    work (the handed-out embedder, which the extractive answer uses for its
    sentences) takes it at low priority, a few texts per turn, so a search never
    queues behind answers being prepared (:mod:`lecture_rag.retrieve.priority`).
    The store needs no lock: each thread has its own connection. The build
    searched may be swapped meanwhile (:meth:`ServedIndex.swap`, one reference
    assignment, no lock): a search under way finishes on the build it read.
    """

    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever
        self._lock = PriorityLock()
        self.embedder: Embedder = AnswerEmbedder(retriever.embedder, self._lock)
        self.store = retriever.store

    def search(self, request: SearchRequest) -> SearchResult:
        with self._lock.high():
            return self._retriever.search(request)

    def warm_up(self) -> str:
        """Load the indexes and run the embedder once now, so the first question is not the slow one.

        Returns what is wrong with the store ('' when nothing is).
        """
        with self._lock.high():
            try:
                self._retriever.index.current()
                self.embedder.embed_queries(["aquecimento"])
            except LectureRagError as exc:
                log.warning("%s", exc)
                return str(exc)
        return ""

    @property
    def stale(self) -> bool:
        return self._retriever.index.stale
