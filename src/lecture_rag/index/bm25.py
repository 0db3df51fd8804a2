"""Lexical retrieval: BM25 (``bm25s``) over a Portuguese analyzer.

Why a custom analyzer and not bm25s' own tokenizer: lecture text comes from
ASR or hand transcripts where accents are unreliable ("avaliacao" vs
"avaliação") and students ask with other inflections than the lecturer used
("dificuldades" in the lecture, "difícil" in the question). The analyzer
lowercases, drops Portuguese stopwords, stems with Snowball (PyStemmer) and
folds accents *after* stemming, because the Snowball Portuguese rules expect
accented suffixes ("-ção", "-ência"). Each stem of five or more letters also
emits a 5-letter prefix token ("dific~"): Snowball leaves "dificuldad" and
"dificil" apart, and 5-letter truncation is a known strong conflation for
Portuguese; IDF keeps over-general prefixes cheap. Measured MRR@10 (all
questions, paragraphs as documents): FaQuAD 0.918 with prefix terms, 0.912
without, 0.913 with bm25s' own Portuguese tokenizer and stemmer; SQuAD-pt
sample 0.764 / 0.765 / 0.763. So the prefixes buy conflation at no cost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
import uuid
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lecture_rag.errors import StoreError
from lecture_rag.index.integrity import MappedFiles, checksums, problem

BM25_DIRNAME = "bm25"
MANIFEST = "manifest.json"
IDS_FILE = "ids.npy"
LENGTHS_FILE = "lengths.npy"  # each document's term count: lets segments be scored with global statistics
FORMAT_VERSION = 1
PREFIX_LEN = 5
PREFIX_MARK = "~"

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Words that are noise in spoken lectures but not in bm25s' (written) list.
_EXTRA_STOPWORDS = ("né", "tá", "aí", "então", "assim", "vai", "gente", "pra", "pro", "ah", "eh", "hum")


class _FoldTable(dict[int, int | str]):
    """``str.translate`` table filled on demand: each distinct character is decomposed once."""

    def __missing__(self, code: int) -> int | str:
        char = chr(code)
        folded = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        value: int | str = code if folded == char else folded
        self[code] = value
        return value


_FOLD = _FoldTable()


def fold_accents(text: str) -> str:
    """'percepção' -> 'percepcao': NFKD, then drop combining marks (per character, cached)."""
    return text if text.isascii() else text.translate(_FOLD)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_PORTUGUESE

    return frozenset(fold_accents(w) for w in (*STOPWORDS_PORTUGUESE, *_EXTRA_STOPWORDS))


class PortugueseAnalyzer:
    """Text -> index terms (folded Snowball stems plus 5-letter prefix terms)."""

    def __init__(self, *, prefixes: bool = True, min_len: int = 2) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer("portuguese")
        self._prefixes = prefixes
        self._min_len = min_len
        self._stop = _stopwords()

    def words(self, text: str) -> list[str]:
        """Lowercased words that are not stopwords (accents kept, for the stemmer)."""
        lowered = unicodedata.normalize("NFC", text).lower()
        return [w for w in _TOKEN.findall(lowered) if len(w) >= self._min_len and fold_accents(w) not in self._stop]

    def __call__(self, text: str) -> list[str]:
        terms: list[str] = []
        for stem in self._stemmer.stemWords(self.words(text)):
            folded = fold_accents(stem)
            terms.append(folded)
            if self._prefixes and len(folded) >= PREFIX_LEN and not folded.isdigit():
                terms.append(folded[:PREFIX_LEN] + PREFIX_MARK)
        return terms


class BM25Index:
    """BM25 scores over corpus ids; persisted in a build folder's ``bm25/``."""

    def __init__(
        self, ids: np.ndarray, model: Any, manifest: dict[str, Any], lengths: np.ndarray | None = None
    ) -> None:
        self.ids = ids
        self.lengths = lengths  # terms per document, aligned with ids (None: a build from before they were kept)
        self._model = model
        self.manifest = manifest
        self._analyzer = PortugueseAnalyzer(prefixes=bool(manifest.get("prefixes", True)))
        self.directory: Path | None = None  # where it was loaded from (for messages)
        self.mapped: MappedFiles | None = None  # the files under the memory maps

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @classmethod
    def build(
        cls,
        ids: Sequence[int] | np.ndarray,
        texts: Sequence[str],
        *,
        fingerprint: str,
        prefixes: bool = True,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> BM25Index:
        """Index ``texts`` aligned with ``ids``."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        pairs = zip((int(i) for i in ids), texts, strict=True)
        return cls.build_from_pairs(pairs, fingerprint=fingerprint, prefixes=prefixes, k1=k1, b=b)

    @classmethod
    def build_from_pairs(
        cls,
        pairs: Iterable[tuple[int, str]],
        *,
        fingerprint: str,
        prefixes: bool = True,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> BM25Index:
        """Index (corpus id, text) pairs as they stream from the store (see :class:`BM25Builder`)."""
        builder = BM25Builder(prefixes=prefixes, k1=k1, b=b)
        for corpus_id, text in pairs:
            builder.add(corpus_id, text)
        return builder.finish(fingerprint=fingerprint)

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) with score > 0, restricted to ``allowed`` ids if given."""
        self._check_files()
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        term_ids = self._model.get_tokens_ids(self._analyzer(query))
        if not term_ids or len(self) == 0 or k <= 0:
            return empty
        mask = None
        if allowed is not None:
            mask = np.isin(self.ids, np.asarray(allowed, dtype=np.int64)).astype(np.float32)
        scores = np.asarray(self._model.get_scores(term_ids, weight_mask=mask), dtype=np.float32)
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return empty
        take = positive if positive.size <= k else positive[np.argpartition(-scores[positive], k - 1)[:k]]
        order = take[np.lexsort((self.ids[take], -scores[take]))]
        return self.ids[order], scores[order]

    def scores_for(self, query: str, ids: np.ndarray) -> np.ndarray:
        """BM25 score of each id in ``ids`` (0 for ids not indexed or no query term), in that order.

        For reranking a few candidates: one pass over the query terms' postings,
        then a look-up, instead of a top-k search restricted to them.
        """
        self._check_files()
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(ids.shape[0], dtype=np.float32)
        term_ids = self._model.get_tokens_ids(self._analyzer(query))
        if not term_ids or len(self) == 0 or ids.size == 0:
            return out
        scores = np.asarray(self._model.get_scores(term_ids), dtype=np.float32)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self) - 1)
        known = self.ids[pos] == ids
        out[known] = scores[pos[known]]
        return out

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """BM25's (Lucene) inverse document frequency of each analysed term; unknown terms are left out.

        Lets a caller weigh words of a short text (a sentence) the way the
        corpus does, without indexing the sentence.
        """
        self._check_files()
        vocab = self._model.vocab_dict
        indptr = np.asarray(self._model.scores["indptr"])
        n = len(self)
        out: dict[str, float] = {}
        for term in terms:
            tid = vocab.get(term)
            if tid is None or tid + 1 >= indptr.shape[0]:
                continue
            df = int(indptr[tid + 1] - indptr[tid])
            out[term] = float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
        return out

    def postings(self) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """The score matrix as stored (vocabulary, CSC ``data``/``indices``/``indptr``), files checked first.

        For :mod:`lecture_rag.index.segments`, which re-scores a segment's
        postings with the statistics of the whole published index.
        """
        self._check_files()
        scores = self._model.scores
        return self._model.vocab_dict, scores["data"], scores["indices"], scores["indptr"]

    @property
    def analyzer(self) -> PortugueseAnalyzer:
        """The analyzer this index was built with (the same terms for queries and texts scored against it)."""
        return self._analyzer

    # -- persistence ----------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write into a fresh sibling folder, then swap it in, so a crash never leaves half an index."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        self._model.save(str(tmp), show_progress=False)
        np.save(tmp / IDS_FILE, self.ids)
        if self.lengths is not None:
            np.save(tmp / LENGTHS_FILE, np.asarray(self.lengths, dtype=np.int32))
        self.manifest["checksums"] = checksums(
            tmp, sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != MANIFEST)
        )
        (tmp / MANIFEST).write_text(json.dumps(self.manifest, indent=2), encoding="utf-8")
        old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Load (memory-mapped); missing or corrupt files raise StoreError with the fix."""
        import bm25s

        directory = Path(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            raise StoreError(
                f"Índice BM25 não encontrado em {directory}. Rode 'lecture-rag index' "
                "(ou 'lecture-rag index --rebuild' se o índice foi apagado)."
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            damage = problem(directory, dict(manifest.get("checksums") or {}), full=False)
            if damage is not None:
                raise ValueError(damage)
            ids = np.load(directory / IDS_FILE, mmap_mode="r", allow_pickle=False)
            model = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
            count = int(manifest["count"])
            str(manifest["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _corrupt(directory, exc) from exc
        if ids.shape != (count,) or int(model.scores["num_docs"]) != count:
            raise _corrupt(directory, f"{count} documentos no manifesto, {ids.shape[0]} ids no arquivo")
        lengths = _lengths_or_none(directory, count)
        index = cls(np.asarray(ids, dtype=np.int64), model, manifest, lengths)
        index.mapped = MappedFiles(sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".npy"))
        index.directory = directory
        return index

    def _check_files(self) -> None:
        """Refuse to read a memory map whose file was truncated since load (see MappedFiles)."""
        damage = self.mapped.problem() if self.mapped is not None else None
        if damage is not None:
            raise _corrupt(self.directory or Path("(em memória)"), damage)

    @staticmethod
    def verify(directory: Path) -> str | None:
        """What is wrong with a saved index, checking every byte (None when it is whole and has checksums)."""
        try:
            manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
            recorded = dict(manifest["checksums"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"manifesto BM25 ilegível ou sem somas de verificação ({exc})"
        return problem(Path(directory), recorded, full=True)


class BM25Builder:
    """A BM25 index built from texts added one at a time, in compact arrays.

    Why not ``bm25s.BM25.index``: it takes every document as a Python list of
    term ids (about 40 bytes per token) and builds from those; at 1M windows
    plus 3.2M passages that alone outgrew a 24 GB machine. Here each text adds
    its distinct term ids and their counts to int32 arrays (8 bytes per
    distinct term), and :meth:`finish` computes bm25s' Lucene scores
    (``idf * tf / (tf + k1 * (1 - b + b * len / avg_len))``, idf
    ``log(1 + (N - df + 0.5) / (df + 0.5))``) into the same CSC matrix that
    bm25s searches and saves, so search and the files on disk are unchanged.
    """

    def __init__(self, *, prefixes: bool = True, k1: float = 1.2, b: float = 0.75) -> None:
        self.prefixes, self.k1, self.b = prefixes, k1, b
        self._analyzer = PortugueseAnalyzer(prefixes=prefixes)
        self.vocab: dict[str, int] = {}
        self._ids = array("q")
        self._lengths = array("i")
        self._distinct = array("i")  # distinct terms per document
        self._terms = array("i")
        self._counts = array("i")

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, corpus_id: int, text: str) -> None:
        vocab = self.vocab
        counts = Counter(self._analyzer(text))
        self._ids.append(int(corpus_id))
        self._lengths.append(sum(counts.values()))
        self._distinct.append(len(counts))
        self._terms.extend(vocab.setdefault(term, len(vocab)) for term in counts)
        self._counts.extend(counts.values())

    def finish(self, *, fingerprint: str) -> BM25Index:
        """The index (ids ascending), ready to search and save."""
        import bm25s

        ids = np.frombuffer(self._ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        if ids.size and np.any(np.diff(ids[order]) == 0):
            raise ValueError("duplicate corpus ids")
        rank = np.empty(ids.size, dtype=np.int32)
        rank[order] = np.arange(ids.size, dtype=np.int32)
        model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        model.scores = self._scores(rank)
        model.vocab_dict = dict(self.vocab)
        model.vocab_dict[""] = len(self.vocab)  # as bm25s' index() adds it
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.nonoccurrence_array = None
        manifest = {
            "format": FORMAT_VERSION,
            "count": int(ids.size),
            "fingerprint": fingerprint,
            "prefixes": self.prefixes,
            "k1": self.k1,
            "b": self.b,
            "analyzer": "pt-snowball-fold-prefix5",
            "avg_len": self._avg_len(),
        }
        lengths = np.frombuffer(self._lengths, dtype=np.int32)[order]
        return BM25Index(np.ascontiguousarray(ids[order]), model, manifest, np.ascontiguousarray(lengths))

    def _avg_len(self) -> float:
        """The average document length the scores use (kept in the manifest so a segment can be re-scored)."""
        lengths = np.frombuffer(self._lengths, dtype=np.int32).astype(np.float32)
        return float(lengths.mean()) if lengths.size else 1.0

    def _scores(self, rank: np.ndarray) -> dict[str, Any]:
        """bm25s' score matrix: for each term (CSC column), the documents holding it and their scores."""
        n_docs, n_vocab = len(self._ids), len(self.vocab)
        lengths = np.frombuffer(self._lengths, dtype=np.int32).astype(np.float32)
        terms = np.frombuffer(self._terms, dtype=np.int32)
        distinct = np.frombuffer(self._distinct, dtype=np.int32)
        df = np.bincount(terms, minlength=n_vocab)
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = np.frombuffer(self._counts, dtype=np.int32).astype(np.float32)
        avg = self._avg_len()
        norm = self.k1 * ((1 - self.b) + self.b * lengths / (avg or 1.0))
        data = idf[terms] * (tf / (np.repeat(norm, distinct) + tf))
        del tf, norm
        docs = np.repeat(rank, distinct)  # each entry's document, as its position among ascending ids
        order = np.argsort(terms, kind="stable")  # documents stay ascending within a term when added in id order
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        return {
            "data": data[order].astype(np.float32),
            "indices": docs[order].astype(np.int32),
            "indptr": indptr.astype(np.int32 if indptr[-1] < 2**31 else np.int64),
            "num_docs": n_docs,
        }


def _lengths_or_none(directory: Path, count: int) -> np.ndarray | None:
    """The documents' lengths (memory-mapped), or None for a build made before they were saved."""
    path = directory / LENGTHS_FILE
    if not path.exists():
        return None
    lengths = np.load(path, mmap_mode="r", allow_pickle=False)
    if lengths.shape != (count,):
        raise ValueError(f"{lengths.shape[0]} comprimentos para {count} documentos")
    return lengths


def _corrupt(directory: Path, why: object) -> StoreError:
    return StoreError(
        f"O índice BM25 em {directory} está corrompido ou incompleto ({why}). "
        "Rode 'lecture-rag index --rebuild' para refazê-lo."
    )
