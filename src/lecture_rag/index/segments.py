"""A published index that grows in place: a base build, small delta builds and tombstones, searched as one.

Why: after every ingest or removal the whole index used to be rebuilt (from
the embedding cache) and every web replica reloaded it, minutes at 1M
windows. Now ``index`` writes only the new lectures' windows and passages as
a *delta* (a build folder of the same layout, a few hundred rows) and lists
removed or re-ingested windows as *tombstones*; the pointer names the base,
the deltas and the tombstones (:mod:`lecture_rag.index.build`). A periodic
compaction (``index --compact``, or automatically when the deltas grow past
a fraction of the base) folds them into a new base.

Results equal a full rebuild's:

* dense: a cosine does not depend on the rest of the corpus, so each part is
  searched for ``k`` plus its tombstoned rows, tombstones dropped, lists
  merged by (score, id) as one index's top-k is ordered;
* BM25: a score does (IDF, average length). Each part stores its Lucene
  scores ``idf_p * tf / (tf + norm_p(len))`` and its documents' lengths, so
  the term frequency is recovered exactly (``tf = r * norm_p / (1 - r)``,
  ``r = score / idf_p``, rounded: term counts are integers) and re-scored
  with the live corpus's document count, document frequencies and average
  length, in the same float32 operations as :class:`~lecture_rag.index.bm25.BM25Builder`.
  Tombstoned documents count nowhere (unlike Lucene, which counts deleted
  documents until a merge). Measured in ``tests/unit/index/test_delta.py``:
  the top-10 of base + delta equals a full rebuild's on real NURC lectures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lecture_rag.index.bm25 import BM25Index, PortugueseAnalyzer
from lecture_rag.index.vectors import VectorIndex

_EMPTY = (np.empty(0, np.int64), np.empty(0, np.float32))
_Postings = tuple[np.ndarray, np.ndarray, np.float32]  # one term in one part: rows, stored scores, the part's idf


class Tombstones:
    """Removed windows of a published index; ``shift`` maps a passage id to its window (``id >> shift``)."""

    def __init__(self, dead: Iterable[int], shift: int = 0) -> None:
        self.ids = np.unique(np.asarray(list(dead), dtype=np.int64))
        self.shift = shift

    def __len__(self) -> int:
        return int(self.ids.size)

    def mask(self, ids: np.ndarray) -> np.ndarray:
        """True where an id (a window's, or a passage of one) is tombstoned."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.ids.size == 0 or ids.size == 0:
            return np.zeros(ids.shape, dtype=bool)
        return np.isin(ids >> self.shift, self.ids)


def merge_top(lists: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (id, score) pairs of several lists, ordered by score then id, as one index orders them."""
    lists = [pair for pair in lists if pair[0].size]
    if not lists or k <= 0:
        return _EMPTY
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in lists])
    scores = np.concatenate([np.asarray(s, dtype=np.float32) for _, s in lists])
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


class _Segmented:
    """What both segmented views share: the parts (base first), the tombstones, the publication's fingerprint."""

    def __init__(self, parts: Sequence[Any], dead: Tombstones, fingerprint: str) -> None:
        self.parts = tuple(parts)
        self.dead = dead
        self.manifest = self.parts[0].manifest
        self.fingerprint = fingerprint

    @property
    def ids(self) -> np.ndarray:
        """The live ids, ascending."""
        ids = np.concatenate([np.asarray(p.ids) for p in self.parts])
        return np.sort(ids[~self.dead.mask(ids)])


class SegmentedVectors(_Segmented):
    """Dense search over the parts of a published index, tombstones left out (see module docstring)."""

    parts: tuple[VectorIndex, ...]

    def __init__(self, parts: Sequence[VectorIndex], dead: Tombstones, fingerprint: str) -> None:
        super().__init__(parts, dead, fingerprint)
        self._dead_rows = [int(np.count_nonzero(dead.mask(p.ids))) for p in self.parts]
        self._count = sum(len(p) for p in self.parts) - sum(self._dead_rows)

    def __len__(self) -> int:
        return self._count

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each part's top ``k`` (plus as many as it has tombstoned rows), tombstones dropped, merged."""
        found = []
        for part, dead in zip(self.parts, self._dead_rows, strict=True):
            ids, scores = part.search(query, k + dead, allowed=allowed)
            keep = ~self.dead.mask(ids)
            found.append((ids[keep], scores[keep]))
        return merge_top(found, k)

    def cosines(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact cosines of ``ids`` (0 for ids no live part holds): each id lives in one part, 0 in the others."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(ids.shape[0], dtype=np.float32)
        for part in self.parts:
            out += part.cosines(ids, query)
        out[self.dead.mask(ids)] = 0.0
        return out


class SegmentedBM25(_Segmented):
    """BM25 over the parts of a published index, scored with the live corpus's statistics (module docstring)."""

    parts: tuple[BM25Index, ...]

    def __init__(self, parts: Sequence[BM25Index], dead: Tombstones, fingerprint: str) -> None:
        super().__init__(parts, dead, fingerprint)
        self.k1 = float(self.manifest.get("k1", 1.2))
        self.b = float(self.manifest.get("b", 0.75))
        lengths = [_lengths(p) for p in self.parts]
        self._dead_masks = [dead.mask(p.ids) for p in self.parts]
        self._dead_rows = [np.flatnonzero(mask) for mask in self._dead_masks]
        live = [np.delete(length, rows) for length, rows in zip(lengths, self._dead_rows, strict=True)]
        # The same float32 mean a full rebuild takes (live documents in id order: deltas hold newer ids).
        every = np.concatenate(live).astype(np.float32)
        self._count = int(every.size)
        avg = float(every.mean()) if every.size else 1.0
        self._norms = [self._norm(length, avg) for length in lengths]  # with the live corpus's average
        self._own_norms = [
            self._norm(length, float(p.manifest.get("avg_len") or 1.0))
            for p, length in zip(self.parts, lengths, strict=True)
        ]  # as each part's scores were computed

    def _norm(self, lengths: np.ndarray, avg: float) -> np.ndarray:
        """``k1 * (1 - b + b * len / avg)`` in float32, as :class:`~lecture_rag.index.bm25.BM25Builder` computes it."""
        return self.k1 * ((1 - self.b) + self.b * lengths.astype(np.float32) / (avg or 1.0))

    @property
    def analyzer(self) -> PortugueseAnalyzer:
        return self.parts[0].analyzer

    def __len__(self) -> int:
        return self._count

    # -- statistics -----------------------------------------------------------
    def _postings(self, part: int, term: str) -> _Postings | None:
        """Rows and stored scores of ``term`` in one part, and the idf they were computed with (None: unknown)."""
        index = self.parts[part]
        vocab, data, indices, indptr = index.postings()
        tid = vocab.get(term)
        if tid is None or tid + 1 >= indptr.shape[0]:
            return None
        start, end = int(indptr[tid]), int(indptr[tid + 1])
        return np.asarray(indices[start:end]), np.asarray(data[start:end]), _lucene_idf(len(index), end - start)

    def _found(self, terms: Iterable[str]) -> dict[str, list[_Postings | None]]:
        """Each distinct term's postings in each part (read once per query)."""
        return {t: [self._postings(p, t) for p in range(len(self.parts))] for t in set(terms)}

    def _df(self, postings: list[_Postings | None]) -> int:
        """Live documents holding a term across parts, from its postings in each part."""
        total = 0
        for found, dead, rows in zip(postings, self._dead_masks, self._dead_rows, strict=True):
            if found is not None:
                total += int(found[0].size) - (int(dead[found[0]].sum()) if rows.size else 0)
        return total

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """IDF of each analysed term over the live corpus; terms no live document holds are left out."""
        out: dict[str, float] = {}
        for term, postings in self._found(terms).items():
            df = self._df(postings)
            if df > 0:
                out[term] = float(np.log(1.0 + (self._count - df + 0.5) / (df + 0.5)))
        return out

    # -- scoring --------------------------------------------------------------
    def _part_scores(
        self, part: int, terms: list[str], found: dict[str, list[_Postings | None]], idf: dict[str, np.float32],
        wanted: np.ndarray | None,
    ) -> np.ndarray:  # fmt: skip
        """Scores of the rows of one part (only ``wanted`` ones, when given), each query term re-scored.

        Query terms repeated count again, as bm25s does.
        """
        scores = np.zeros(len(self.parts[part]), dtype=np.float32)
        for term in terms:
            postings = found[term][part]
            if postings is None:
                continue
            rows, stored, own_idf = postings
            if wanted is not None:
                keep = wanted[rows]
                rows, stored = rows[keep], stored[keep]
            ratio = stored.astype(np.float64) / float(own_idf)
            tf = np.rint(ratio * self._own_norms[part][rows] / (1.0 - ratio)).astype(np.float32)
            scores[rows] += idf[term] * (tf / (self._norms[part][rows] + tf))
        scores[self._dead_rows[part]] = 0.0
        return scores

    def _all_scores(self, query: str, wanted: list[np.ndarray] | None = None) -> list[np.ndarray] | None:
        """Each part's scores for ``query`` (None when no query term is in the live corpus)."""
        terms = self.analyzer(query)
        found = self._found(terms)
        idf = {t: _lucene_idf(self._count, df) for t, postings in found.items() if (df := self._df(postings)) > 0}
        terms = [t for t in terms if t in idf]
        if not terms:
            return None
        return [
            self._part_scores(p, terms, found, idf, None if wanted is None else wanted[p])
            for p in range(len(self.parts))
        ]

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) with score > 0 over the live corpus, restricted to ``allowed`` ids if given."""
        every = self._all_scores(query) if k > 0 else None
        if every is None:
            return _EMPTY
        found = []
        for part, scores in zip(self.parts, every, strict=True):
            if allowed is not None:
                scores = np.where(np.isin(part.ids, np.asarray(allowed, dtype=np.int64)), scores, 0.0)
            positive = np.flatnonzero(scores > 0)
            found.append((np.asarray(part.ids)[positive], scores[positive].astype(np.float32)))
        return merge_top(found, k)

    def scores_for(self, query: str, ids: np.ndarray) -> np.ndarray:
        """BM25 score of each id in ``ids`` (0 for ids no live part holds), in that order.

        Only the postings of these ids are re-scored (a reranker asks for a few hundred).
        """
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(ids.shape[0], dtype=np.float32)
        if ids.size == 0:
            return out
        where = []
        for part in self.parts:
            pos = np.minimum(np.searchsorted(part.ids, ids), max(len(part) - 1, 0))
            known = part.ids[pos] == ids if len(part) else np.zeros(ids.shape, dtype=bool)
            wanted = np.zeros(len(part), dtype=bool)
            wanted[pos[known]] = True
            where.append((pos, known, wanted))
        every = self._all_scores(query, [w for _, _, w in where])
        if every is None:
            return out
        for (pos, known, _), scores in zip(where, every, strict=True):
            out[known] = scores[pos[known]]
        return out


def _lucene_idf(count: int, df: int) -> np.float32:
    """Lucene's idf as :class:`~lecture_rag.index.bm25.BM25Builder` computes it (float64, then float32)."""
    return np.float32(np.log(1.0 + (count - df + 0.5) / (df + 0.5)))


def _lengths(part: BM25Index) -> np.ndarray:
    if part.lengths is None:
        raise ValueError("segment without document lengths: it cannot be searched with other segments")
    return np.asarray(part.lengths, dtype=np.int32)
