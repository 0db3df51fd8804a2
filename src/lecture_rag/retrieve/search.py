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
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, Protocol

import numpy as np

from lecture_rag.config import RetrievalMode, RetrievalSettings, Settings
from lecture_rag.embed import Embedder
from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.index.bm25 import fold_accents
from lecture_rag.index.build import Indexes, build_indexes, load_indexes, publication_version, published
from lecture_rag.index.vectors import ids_fingerprint
from lecture_rag.records import Hit, Segment
from lecture_rag.retrieve.cite import PieceSignals, cite_hits, piece_signals
from lecture_rag.retrieve.priority import AnswerEmbedder, PriorityLock
from lecture_rag.retrieve.rerank import Query, Reranker, rerank_or_keep
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


def suppress_near_duplicates(
    candidates: Sequence[Candidate], segments: dict[int, Segment], policy: DedupPolicy, limit: int
) -> list[Candidate]:
    """Keep candidates in order, skipping near duplicates of kept ones, up to ``limit``."""
    kept: list[Candidate] = []
    words: dict[int, frozenset[str]] = {}
    for cand in candidates:
        seg = segments[cand.corpus_id]
        if not any(_near_duplicate(seg, segments[k.corpus_id], policy, words) for k in kept):
            kept.append(cand)
            if len(kept) >= limit:
                break
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


def word_jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _near_duplicate(a: Segment, b: Segment, policy: DedupPolicy, cache: dict[int, frozenset[str]]) -> bool:
    if time_overlap(a, b) > policy.overlap:
        return True
    wa, wb = _words(a, cache), _words(b, cache)
    # Jaccard <= smaller/larger set size: many pairs are ruled out without intersecting them.
    if min(len(wa), len(wb)) < policy.jaccard * max(len(wa), len(wb)):
        return False
    return word_jaccard(wa, wb) >= policy.jaccard


def _words(seg: Segment, cache: dict[int, frozenset[str]]) -> frozenset[str]:
    if seg.corpus_id not in cache:
        cache[seg.corpus_id] = frozenset(_WORD.findall(fold_accents(seg.text.lower())))
    return cache[seg.corpus_id]


class Searcher(Protocol):
    """What the answer engine needs from retrieval: a search, the embedder, and the store behind them."""

    embedder: Embedder
    store: Store

    def search(
        self,
        query: str,
        *,
        k: int = ...,
        mode: RetrievalMode | str = ...,
        course: str | None = ...,
        video: str | None = ...,
    ) -> list[Hit]: ...

    def piece_signals(self, question: str, hits: Sequence[Hit]) -> list[PieceSignals]: ...


@dataclass(frozen=True, slots=True)
class Served:
    """The build a retriever searches, as one value so that swapping it is one assignment.

    ``stamp``: the pointer's :func:`~lecture_rag.index.build.publication_version`
    read before the build was loaded (a build published meanwhile reads as a change).
    ``stale``: the store held segments this build does not.
    """

    indexes: Indexes
    stamp: tuple[int, int] | None
    stale: bool = False


class Retriever:
    """Answers ``search`` calls over one store; indexes are loaded on first use.

    ``follow_pointer``: a query that finds a newer build published (by ``index``,
    in this process's store folder) loads it first, and on a shared store a
    first query builds this folder's index if it has none. A web replica turns
    that off and lets its :class:`~lecture_rag.retrieve.watch.IndexWatcher`
    build and load in the background and :meth:`swap` builds in, so no query
    waits for a build or a load (only a query with nothing loaded yet tries to load).
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        *,
        indexes: Indexes | None = None,
        dedup_jaccard: float = DEDUP_JACCARD,
        reranker: Reranker | None = None,
        follow_pointer: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self.follow_pointer = follow_pointer
        self.dedup_policy = DedupPolicy(overlap=settings.retrieval.dedup_overlap, jaccard=dedup_jaccard)
        self._served = None if indexes is None else Served(indexes, publication_version(store.home))

    @property
    def indexes(self) -> Indexes:
        """Load and check the indexes; an empty store is an error that says to ingest.

        A long-lived retriever (the web app) picks up a rebuild made by another
        process: a build is published by replacing one pointer file atomically,
        so a changed stamp means a new pair of indexes (one stat per query).
        On a shared store (PostgreSQL) a process whose own folder holds no
        build yet builds one first: the indexes are per process, derived from
        the store, and the vectors mostly come from the shared embedding cache.
        """
        served = self._served  # one read: a concurrent swap never mixes two builds
        if served is None or (
            self.follow_pointer
            and (stamp := publication_version(self.store.home)) is not None
            and stamp != served.stamp
        ):
            if served is None and self.follow_pointer and self.store.shared and published(self.store.home) is None:
                build_indexes(self.store, self.embedder, self.settings)
            served = self.load_served()
            self._served = served
        return served.indexes

    @property
    def served(self) -> Served | None:
        """The build searched now (None before the first load)."""
        return self._served

    @property
    def stale(self) -> bool:
        served = self._served
        return served is not None and served.stale

    def load_published(self) -> tuple[Indexes, tuple[int, int] | None]:
        """The published build of this store folder, loaded and checked, with the pointer's stamp.

        Changes nothing this retriever searches: a caller loads outside any lock, then :meth:`swap`.
        """
        stamp = publication_version(self.store.home)
        if self.store.segment_count() == 0:
            raise StoreError(
                f"O acervo em {self.store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' "
                "para adicionar aulas antes de buscar."
            )
        indexes = load_indexes(self.store.home, self.embedder, exact_subset_max=self.settings.retrieval.hnsw_threshold)
        return indexes, stamp

    def load_served(self) -> Served:
        """The published build, loaded and checked against the store, ready to :meth:`swap` in."""
        indexes, stamp = self.load_published()
        return Served(indexes, stamp, self.check_stale(indexes))

    def swap(self, served: Served) -> None:
        """Search ``served`` from now on: one reference assignment, so a search under way ends on the old build."""
        self._served = served

    def check_stale(self, indexes: Indexes) -> bool:
        """An index older than the store still answers, but the user should reindex."""
        stale = ids_fingerprint(self.store.corpus_ids()) != indexes.fingerprint
        if stale:
            log.warning(
                "O índice não reflete o acervo atual (aulas foram ingeridas ou removidas depois da "
                "indexação). Rode 'lecture-rag index' para incluí-las na busca."
            )
        return stale

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: RetrievalMode | str = RetrievalMode.DENSE,
        course: str | None = None,
        video: str | None = None,
        dedup: bool = True,
        reranker: Reranker | EllipsisType | None = ...,
    ) -> list[Hit]:
        """Top-``k`` hits for ``query``; ``course``/``video`` restrict the search.

        With a reranker (this retriever's unless ``reranker`` says otherwise;
        None for none) the first stage fetches ``[retrieval] rerank_candidates``
        windows and the reranker picks the top ``k``. Every hit gets the second
        to cite (:mod:`lecture_rag.retrieve.cite`).
        ``dedup=False`` returns near-duplicate windows too (see :class:`DedupPolicy`).
        Raises LectureRagError for an empty query, an unknown mode, course or
        video, and StoreError for an empty store or missing/foreign indexes.
        """
        text = prepare_query(query)
        mode = parse_mode(mode)
        if k < 1:
            raise LectureRagError(f"k={k} inválido: peça pelo menos 1 resultado.")
        indexes = self.indexes
        allowed = self._allowed(course, video)
        chosen = self.reranker if reranker is ... else reranker
        first_k = max(k, self.settings.retrieval.rerank_candidates) if chosen is not None else k
        qvec = self.embedder.embed_queries([text])[0]
        hits = self._first_stage(indexes, text, qvec, mode, first_k, allowed, dedup)
        asked = Query(text, qvec, indexes)
        hits = rerank_or_keep(chosen, asked, hits)[:k]
        for rank, hit in enumerate(hits, start=1):
            hit.rank = rank
        cite_hits(asked, hits)
        return hits

    def piece_signals(self, question: str, hits: Sequence[Hit]) -> list[PieceSignals]:
        """Each hit's timed pieces scored against ``question`` (see :mod:`lecture_rag.retrieve.cite`)."""
        text = prepare_query(question)
        qvec = self.embedder.embed_queries([text])[0]
        return piece_signals(Query(text, qvec, self.indexes), hits)

    def _first_stage(
        self,
        indexes: Indexes,
        text: str,
        qvec: np.ndarray,
        mode: RetrievalMode,
        k: int,
        allowed: np.ndarray | None,
        dedup: bool,
    ) -> list[Hit]:
        """Top-``k`` hits of the retrievers ``mode`` names (near duplicates dropped when ``dedup``)."""
        fetch = k * HYBRID_CANDIDATES_PER_K if mode == "hybrid" else (k * 3 if dedup else k)
        total = len(indexes.vectors) if allowed is None else int(allowed.size)
        while True:
            candidates, exhausted = self._candidates(indexes, text, qvec, mode, fetch, allowed)
            # Ids of the published index: a re-ingested or removed lecture resolves to its superseded
            # version until an index without it is published; ids purged since are simply gone.
            segments = self.store.get_segments((c.corpus_id for c in candidates), superseded=True)
            candidates = [c for c in candidates if c.corpus_id in segments]
            kept = candidates[:k]
            if dedup:
                kept = suppress_near_duplicates(candidates, segments, self.dedup_policy, k)
            if len(kept) >= k or exhausted or fetch >= total:
                break
            fetch = min(total, fetch * 4)
        return [_hit(c, segments[c.corpus_id], rank) for rank, c in enumerate(kept, start=1)]

    def _candidates(
        self,
        indexes: Indexes,
        text: str,
        qvec: np.ndarray,
        mode: str,
        fetch: int,
        allowed: np.ndarray | None,
    ) -> tuple[list[Candidate], bool]:
        """Ranked candidates, and whether the retrievers had no more to give."""
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
    work (``piece_signals`` and the handed-out embedder) takes it at low
    priority, a few texts per turn, so a search never queues behind answers
    being prepared (:mod:`lecture_rag.retrieve.priority`). The store needs no
    lock: each thread has its own connection.
    """

    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever
        self._lock = PriorityLock()
        self.embedder: Embedder = AnswerEmbedder(retriever.embedder, self._lock)
        self.store = retriever.store

    def search(self, query: str, **kwargs: Any) -> list[Hit]:
        with self._lock.high():
            return self._retriever.search(query, **kwargs)

    def piece_signals(self, question: str, hits: Sequence[Hit]) -> list[PieceSignals]:
        with self._lock.low():
            return self._retriever.piece_signals(question, hits)

    def warm_up(self) -> str:
        """Load the indexes and run the embedder once now, so the first question is not the slow one.

        Returns what is wrong with the store ('' when nothing is).
        """
        with self._lock.high():
            try:
                _ = self._retriever.indexes
                self.embedder.embed_queries(["aquecimento"])
            except LectureRagError as exc:
                log.warning("%s", exc)
                return str(exc)
        return ""

    @property
    def stale(self) -> bool:
        return self._retriever.stale
