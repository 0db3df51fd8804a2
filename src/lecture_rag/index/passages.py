"""Sub-passages: each ~2-minute window cut into ~25-second passages, embedded and BM25-indexed on their own.

Why ("small-to-big"): a window's single E5 vector averages two minutes of
talk, and on speech-recognised transcripts the answering sentence drowns in
the noise around it. A short passage is matched precisely; the window it
belongs to is still what is returned and cited. The reranker
(:mod:`lecture_rag.retrieve.rerank`) scores a candidate window by its best
passage, and the cited second (:mod:`lecture_rag.retrieve.cite`) comes from
the best passage too. Measured on the NURC question set (README, "Ranking and
the cited second"), 25 s passages beat 15 s and 40 s ones.

A passage's id encodes its window: ``corpus_id << 10 | j`` for the ``j``-th
passage of the window, so nothing maps ids to windows at query time, and the
passages of a window are recomputed from its stored cue marks
(:func:`split_passages` is deterministic). Passages are indexed with the
window index and published in the same build folder (``passages/``), so the
three indexes always describe one corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lecture_rag.embed import Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25_DIRNAME, BM25Index
from lecture_rag.index.segments import SegmentedBM25, SegmentedVectors
from lecture_rag.index.vectors import VectorIndex
from lecture_rag.records import Piece, Segment
from lecture_rag.store import Store

PASSAGES_DIRNAME = "passages"
ID_BITS = 10
MAX_PER_WINDOW = (1 << ID_BITS) - 1


def passage_id(corpus_id: int, j: int) -> int:
    return (int(corpus_id) << ID_BITS) | j


def split_passages(segment: Segment, seconds: float) -> list[Piece]:
    """The window's pieces grouped into passages of about ``seconds`` each, in order.

    A passage closes once it spans ``seconds``; a last passage shorter than
    half of that joins the one before, so no passage is a stray word. A very
    long window gets longer passages, never more than :data:`MAX_PER_WINDOW`.
    """
    pieces = segment.pieces()
    return [
        Piece(pieces[a].start, pieces[b - 1].end, " ".join(p.text for p in pieces[a:b]))
        for a, b in group_pieces(pieces, seconds, segment.end - segment.start)
    ]


def group_pieces(pieces: Sequence[Piece], seconds: float, duration: float) -> list[tuple[int, int]]:
    """The passages of :func:`split_passages` as ``[start, stop)`` ranges of piece indexes."""
    target = max(seconds, duration / MAX_PER_WINDOW)
    groups: list[tuple[int, int]] = []
    first = 0
    for i, piece in enumerate(pieces):
        if piece.end - pieces[first].start >= target:
            groups.append((first, i + 1))
            first = i + 1
    if first < len(pieces):
        if groups and pieces[-1].end - pieces[first].start < target / 2:
            groups[-1] = (groups[-1][0], len(pieces))
        else:
            groups.append((first, len(pieces)))
    return groups


@dataclass(slots=True)
class PassageIndex:
    """Dense and BM25 indexes over the passages of one build (or of a base and its deltas, segmented)."""

    vectors: VectorIndex | SegmentedVectors
    bm25: BM25Index | SegmentedBM25

    @property
    def seconds(self) -> float:
        return float(self.bm25.manifest.get("passage_seconds", 0.0))

    def save(self, directory: Path) -> None:
        if not isinstance(self.vectors, VectorIndex) or not isinstance(self.bm25, BM25Index):
            raise TypeError("segmented passages are saved part by part")
        self.vectors.save(directory)
        self.bm25.save(directory / BM25_DIRNAME)

    @classmethod
    def load(cls, directory: Path, embedder: Embedder) -> PassageIndex:
        """The passages of a build folder; StoreError (saying to reindex) when missing or damaged."""
        if not directory.is_dir():
            raise StoreError(
                f"O índice de trechos não existe em {directory} (índice de uma versão anterior). "
                "Rode 'lecture-rag index' para criá-lo."
            )
        vectors = VectorIndex.load(directory, embedder_name=embedder.name, dim=embedder.dim)
        return cls(vectors, BM25Index.load(directory / BM25_DIRNAME))

    @staticmethod
    def verify(directory: Path) -> str | None:
        """What is wrong with saved passages, every byte checked (None when whole)."""
        if not directory.is_dir():
            return "índice de trechos ausente"
        return VectorIndex.verify(directory) or BM25Index.verify(directory / BM25_DIRNAME)

    def of_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``windows``, passage id) of every passage indexed for ``windows``.

        Read from the ids (a window's passages are the ids ``corpus_id << ID_BITS | j``, sorted), not by
        parsing the windows' text into pieces again: that cost ~40 µs a window, 6 ms for a fetch of 150.
        A tombstoned passage may be listed; its cosine and BM25 are 0.
        """
        windows = np.asarray(windows, dtype=np.int64)
        parts = self.vectors.parts if isinstance(self.vectors, SegmentedVectors) else (self.vectors,)
        owners, found = [], []
        for part in parts:
            ids = np.asarray(part.ids)
            lo = np.searchsorted(ids, windows << ID_BITS)
            counts = np.searchsorted(ids, (windows + 1) << ID_BITS) - lo
            starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
            owners.append(np.repeat(np.arange(windows.size), counts))
            found.append(ids[starts + np.arange(int(counts.sum()))])
        return np.concatenate(owners), np.concatenate(found).astype(np.int64)

    def scores(self, query: str, qvec: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine and BM25 score of each passage in ``ids`` against the query (0 for ids not indexed)."""
        if ids.size == 0:
            return np.empty(0, np.float32), np.empty(0, np.float32)
        return self.vectors.cosines(ids, qvec), self.bm25.scores_for(query, ids)


def passage_texts(store: Store, live: Iterable[int], seconds: float) -> Iterator[tuple[int, str]]:
    """(passage id, text) of the ``live`` windows, read from the store 500 windows at a time."""
    ids = sorted(int(i) for i in live)
    for start in range(0, len(ids), 500):
        segments = store.get_segments(ids[start : start + 500])
        for corpus_id in ids[start : start + 500]:
            segment = segments.get(corpus_id)
            if segment is None:
                continue
            for j, passage in enumerate(split_passages(segment, seconds)):
                yield passage_id(corpus_id, j), passage.text
