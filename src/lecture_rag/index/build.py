"""Build, publish and load the search indexes of a store (dense vectors + BM25).

Both indexes are derived data: they can always be rebuilt from the store.
Building is skipped when the published build already describes the store's
current corpus ids and embedder (corpus ids are never reused, so the same
ids mean the same texts); ``rebuild=True`` forces it.

Publishing is atomic for the *pair*: a build writes both indexes into a
fresh folder ``index/build-TOKEN/`` and only then replaces the pointer
``index/current.json`` (``os.replace``), so a reader (a running web app)
always loads a vector index and a BM25 index of the same corpus: the old
pair until the new pair is complete, then the new one. The previous build is
kept one generation, so a reader that read the old pointer just before the
swap can still open its files; older builds are deleted.

Builds of one store run one at a time (an ``flock`` in the store's ``locks/``
folder; a second ``index`` waits), so the leftovers of a killed build (a
staging folder, a temporary pointer, a build renamed into place but never
published) are removed at the start of the next one, even when that one has
nothing to rebuild. Before skipping, ``index`` verifies every byte of the
published build against the checksums in its manifests: a damaged build is
rebuilt, not skipped. A build that cannot be written (full disk, read-only
folder) leaves the published pair in use, removes what it wrote and says why.
Publishing a build purges the superseded segments (re-ingested or removed
lectures, see :mod:`lecture_rag.store.corpus`) that it no longer references.

The index grows in place (:mod:`lecture_rag.index.segments`): after an ingest
or a removal, ``index`` builds only the new windows into a *delta* folder (same
layout, same staging and rename) and lists gone windows as *tombstones*; the
pointer names the base, its deltas and the tombstones, and is replaced as
before, so a reader loads one whole publication. A reader that already holds
the base loads only the new delta. When deltas and tombstones outgrow
``[retrieval] compact_fraction`` of the base (or ``max_deltas`` deltas), the base
is rebuilt with them folded in (compaction). By default (``[retrieval] compaction =
"background"``) that happens beside the writers, not in the ``index`` that crossed the
limit: that ``index`` still publishes its delta (the new lecture is searchable at once)
and says a compaction is due; ``index --compact`` (started in the background by the
CLI) builds the new base from a snapshot of the publication without holding the build
lock, so ingests keep publishing deltas meanwhile, then re-publishes the deltas and
tombstones that arrived during the build over the new base, in one pointer swap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lecture_rag.batch import LOCAL, Engine
from lecture_rag.config import Settings
from lecture_rag.embed import Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25_DIRNAME, BM25Builder, BM25Index
from lecture_rag.index.embed import embed_texts
from lecture_rag.index.passages import (
    ID_BITS,
    PASSAGES_DIRNAME,
    PassageIndex,
    passage_id,
    passage_texts,
    split_passages,
)
from lecture_rag.index.segments import SegmentedBM25, SegmentedVectors, Tombstones
from lecture_rag.index.vectors import VectorIndex, VectorWriter, check_manifest_embedder, ids_fingerprint
from lecture_rag.store import Store, text_hash
from lecture_rag.store.corpus import PUBLISHED_INDEX
from lecture_rag.store.failures import os_failure, read_only_error
from lecture_rag.store.sqlite import file_lock

ProgressFn = Callable[[int, int], None]
log = logging.getLogger(__name__)

INDEX_DIRNAME = PUBLISHED_INDEX.parent.name  # the store reads the count it publishes (a database that lost it)
CURRENT = PUBLISHED_INDEX.name
BUILD_PREFIX = "build-"
TMP_SUFFIX = ".tmp"
BUILD_LOCK = "index-build"
COMPACT_LOCK = "index-compact"  # held by the one compaction of a store while it runs
COMPACT_PREFIX = "compact-"  # a running compaction's staging folder: .compact-TOKEN.tmp (kept while it runs)
#: With background compaction, deltas past this many times the limits fold in the foreground after all:
#: a compactor that keeps failing must not let every search scan an ever longer list of deltas.
HARD_LIMIT_FACTOR = 4
SLICE_WINDOWS = 20_000  # windows read, embedded and indexed at a time (~70k passages): bounds a build's memory
_LOAD_ATTEMPTS = 3  # a build deleted between reading the pointer and opening its files: read the pointer again
#: Deltas and tombstones beyond this share of the base's windows: ``index`` folds them into a new base
#: (compaction) instead of adding one more delta. Each delta costs every search one more small scan.


def index_dir(home: Path) -> Path:
    """Where the indexes of a store live."""
    return Path(home) / INDEX_DIRNAME


@dataclass(frozen=True, slots=True)
class Published:
    """What ``current.json`` says: which build folder readers use, and what it holds."""

    build: str
    fingerprint: str
    embedder: str
    dim: int
    kind: str
    count: int
    built_at: str
    previous: str = ""  # the base build published before this one (kept one generation for readers)
    deltas: tuple[str, ...] = ()  # delta builds over the base, oldest first (see lecture_rag.index.segments)
    dead: tuple[int, ...] = ()  # tombstoned window ids: removed or re-ingested since the base was built
    retired: tuple[str, ...] = ()  # the parts of the publication before this one (kept one generation for readers)
    publication: str = ""  # this pointer's own token: changes with every publication, delta or not

    def path(self, home: Path) -> Path:
        return index_dir(home) / f"{BUILD_PREFIX}{self.build}"

    @property
    def parts(self) -> tuple[str, ...]:
        """The build folders' tokens readers load: the base, then the deltas."""
        return (self.build, *self.deltas)

    @property
    def label(self) -> str:
        """Which publication this is (the base's token for a plain build)."""
        return self.publication or self.build


def published(home: Path) -> Published | None:
    """The published build, or None when nothing was ever published; a corrupt pointer is a StoreError."""
    path = index_dir(home) / CURRENT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"O ponteiro de índice {path} está ilegível ({exc}). Rode 'lecture-rag index --rebuild'."
        ) from exc
    try:
        return Published(
            str(data["build"]),
            str(data["fingerprint"]),
            str(data["embedder"]),
            int(data["dim"]),
            str(data["kind"]),
            int(data["count"]),
            str(data.get("built_at", "")),
            str(data.get("previous") or ""),
            tuple(str(t) for t in data.get("deltas") or ()),
            tuple(int(i) for i in data.get("dead") or ()),
            tuple(str(t) for t in data.get("retired") or ([data["previous"]] if data.get("previous") else ())),
            str(data.get("publication") or data["build"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"O ponteiro de índice {path} está incompleto ({exc}). Rode 'lecture-rag index --rebuild'."
        ) from exc


def publication_version(home: Path) -> tuple[int, int] | None:
    """A cheap stamp of the published pointer (one ``stat``): it changes whenever a new build is published."""
    try:
        info = (index_dir(home) / CURRENT).stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_ino


@dataclass(slots=True)
class IndexStats:
    """What ``index`` did: the corpus it indexed, and for a build made (not skipped) what it took.

    The build-only fields are None when the published build was up to date
    (``skipped``); ``cache_pruned`` is set by ``index --prune-cache``.
    """

    segments: int
    embedder: str
    dim: int
    skipped: bool
    kind: str
    embed_s: float | None = None
    vector_index_s: float | None = None
    bm25_s: float | None = None
    passages: int | None = None
    passages_s: float | None = None
    delta: int | None = None  # windows added as a delta (an incremental update: no new base was built)
    tombstoned: int | None = None  # windows removed by tombstones in an incremental update
    compaction_due: bool | None = None  # the deltas passed the limits: a background compaction should fold them
    compacted_later: int | None = None  # a compaction: deltas published while it built, kept over the new base
    cache_pruned: int | None = None

    def items(self) -> list[tuple[str, object]]:
        """The fields that apply, in order, as ``index`` prints them (``name=value``)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True, slots=True)
class Part:
    """One build folder of a publication (the base or a delta), loaded."""

    token: str
    vectors: VectorIndex
    bm25: BM25Index
    passages: PassageIndex | None  # None for a build made before passages existed (reindex to get them)

    @property
    def growable(self) -> bool:
        """Whether deltas can be searched beside it: its BM25 indexes kept their documents' lengths."""
        passages = None if self.passages is None else self.passages.bm25
        return self.bm25.lengths is not None and isinstance(passages, BM25Index) and passages.lengths is not None


@dataclass(slots=True)
class Indexes:
    """The loaded indexes of one store, guaranteed to describe the same corpus.

    For a publication with deltas or tombstones, ``vectors``, ``bm25`` and the
    passages' indexes are :mod:`~lecture_rag.index.segments` views over ``parts``.
    """

    vectors: VectorIndex | SegmentedVectors
    bm25: BM25Index | SegmentedBM25
    build: str = ""  # the publication's label (Published.label)
    passages: PassageIndex | None = None  # None for a build made before passages existed (reindex to get them)
    parts: tuple[Part, ...] = ()  # the build folders loaded (a reader reuses them when the next delta comes)

    @property
    def fingerprint(self) -> str:
        return self.vectors.fingerprint

    def part(self, token: str) -> Part | None:
        """The loaded part ``token`` (None when this publication does not hold it)."""
        return next((p for p in self.parts if p.token == token), None)


def build_indexes(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    rebuild: bool = False,
    compact: bool = False,
    progress: ProgressFn | None = None,
    engine: Engine = LOCAL,
) -> IndexStats:
    """Bring the published index up to the store's corpus; returns what it did.

    Lectures ingested or removed since the last publication go in as a delta
    and tombstones (:func:`_grow`: seconds, whatever the corpus's size);
    a full build (a new base) is made when there is none, when ``rebuild``
    or ``compact`` asks, or when the deltas outgrow ``[retrieval] compact_fraction``
    of the base. ``engine`` runs the embedding batches (its workers build the
    embedder from ``settings.embedder``, which ``embedder`` must come from);
    building and publishing the indexes happen here, in this process.
    A read-only store can only be found up to date: anything to build is a StorageError.
    """
    if store.read_only:
        ids = _corpus_ids(store)
        current = _current_or_none(store.home)
        if (
            not rebuild
            and current is not None
            and _up_to_date(store.home, current, ids_fingerprint(ids), embedder, settings)
        ):
            return IndexStats(int(ids.size), embedder.name, embedder.dim, skipped=True, kind=current.kind)
        raise read_only_error("o acervo", store.home, "indexar grava o índice e o cache de embeddings")
    if compact and not rebuild:
        return _compact(store, embedder, settings, progress=progress, engine=engine)
    with store.exclusive(BUILD_LOCK, "", wait=True):
        _clean_leftovers(index_dir(store.home))
        return _build(store, embedder, settings, rebuild=rebuild, compact=compact, progress=progress, engine=engine)


def _corpus_ids(store: Store) -> np.ndarray:
    ids = np.asarray(store.corpus_ids(), dtype=np.int64)
    if ids.size == 0:
        raise StoreError(f"O acervo em {store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' antes de indexar.")
    return ids


def _build(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    rebuild: bool,
    compact: bool,
    progress: ProgressFn | None,
    engine: Engine,
) -> IndexStats:
    ids = _corpus_ids(store)
    fingerprint = ids_fingerprint(ids)
    current = _current_or_none(store.home)
    parts = None if rebuild or current is None else _intact_parts(store.home, current, embedder, settings)
    if current is not None and parts is not None:
        whole = not (current.deltas or current.dead)
        if current.fingerprint == fingerprint and (whole or not compact):
            store.purge_superseded(keep=())  # the published build holds exactly the current segments
            return IndexStats(int(ids.size), embedder.name, embedder.dim, skipped=True, kind=current.kind)
        if not compact:
            grown = _grow(store, embedder, settings, ids, current, parts, progress, engine)
            if grown is not None:
                return grown

    if progress is not None:
        progress = _towards(progress, _work_total(store, ids, settings))
    stats, vindex, staging = _staged_build(store, embedder, settings, ids, progress, engine)
    publish(store.home, vindex, staged=staging)  # removes the staging folder itself if it fails
    store.purge_superseded(keep=vindex.ids)
    return stats


def _staged_build(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    ids: np.ndarray,
    progress: ProgressFn | None,
    engine: Engine,
    prefix: str = BUILD_PREFIX,
) -> tuple[IndexStats, VectorIndex, Path]:
    """The windows ``ids`` built into a fresh staging folder (a base or a delta); nothing published yet."""
    root = index_dir(store.home)
    staging = root / f".{prefix}{_token()}{TMP_SUFFIX}"
    try:
        staging.mkdir(parents=True)
        stats, vindex = _stream_build(store, embedder, settings, ids, staging, progress, engine)
    except (OSError, RuntimeError) as exc:  # a full disk or a read-only folder while writing (usearch: RuntimeError)
        shutil.rmtree(staging, ignore_errors=True)
        failure = os_failure(exc, "o índice", root)
        if failure is None:
            raise
        raise failure from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return stats, vindex, staging


def _grow(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    ids: np.ndarray,
    current: Published,
    parts: list[Part],
    progress: ProgressFn | None,
    engine: Engine,
) -> IndexStats | None:
    """Publish what changed as one delta (the new windows) plus tombstones (the gone ones); None: build a base.

    Only the new windows and their passages are read, embedded (from the
    cache, normally: the ingest embedded them) and indexed, so the cost is
    that of the change, not of the corpus. A full build is due (None) when
    the base cannot be searched beside deltas (built before documents'
    lengths were kept) or when the deltas and tombstones would outgrow
    ``[retrieval] compact_fraction`` of the base or ``max_deltas`` deltas.
    """
    if not all(part.growable for part in parts):
        return None
    live = _live_ids(parts, current.dead)
    added = np.setdiff1d(ids, live)
    removed = np.setdiff1d(live, ids)
    extra = sum(len(p.vectors) for p in parts[1:]) + len(current.dead) + int(added.size) + int(removed.size)
    due = _past_limits(settings, extra, len(parts[0].vectors), len(current.deltas) + int(added.size > 0), 1)
    if due and (
        settings.retrieval.compaction == "foreground"
        or len(parts[0].vectors) < settings.retrieval.background_compaction_min
        or _past_limits(settings, extra, len(parts[0].vectors), len(current.deltas) + 1, HARD_LIMIT_FACTOR)
    ):
        return None
    dead = tuple(sorted({*current.dead, *(int(i) for i in removed)}))
    stats = IndexStats(int(ids.size), embedder.name, embedder.dim, skipped=False, kind=current.kind, delta=0)
    staging = None
    if added.size:
        if progress is not None:
            progress = _towards(progress, _work_total(store, added, settings))
        stats, _, staging = _staged_build(store, embedder, settings, added, progress, engine)
        stats.segments, stats.kind, stats.delta = int(ids.size), current.kind, int(added.size)
    stats.tombstoned = int(removed.size)
    stats.compaction_due = due or None
    publish_delta(store.home, current, staged=staging, dead=dead, fingerprint=ids_fingerprint(ids), count=int(ids.size))
    if not compacting(store.home):  # a running compaction may still read the superseded rows: it purges them
        store.purge_superseded(keep=ids)
    return stats


def _past_limits(settings: Settings, extra: int, base: int, deltas: int, factor: int) -> bool:
    """Whether ``extra`` rows in ``deltas`` deltas pass ``factor`` times ``[retrieval]``'s compaction limits."""
    limits = settings.retrieval
    return extra > factor * limits.compact_fraction * base or deltas > factor * limits.max_deltas


def compacting(home: Path) -> bool:
    """Whether a compaction of this store is running now (its lock is held)."""
    try:
        with file_lock(Path(home), COMPACT_LOCK, ""):
            return False
    except StoreError:
        return True


def _compact(
    store: Store, embedder: Embedder, settings: Settings, *, progress: ProgressFn | None, engine: Engine
) -> IndexStats:
    """Fold the deltas and tombstones into a new base while ingests go on publishing deltas.

    Under the build lock: bring the publication up to the corpus (a delta)
    and snapshot it. Without it: build the snapshot's live windows into a
    staging folder (minutes at 1M windows). Under the lock again:
    :func:`_publish_compaction`. One compaction per store at a time.
    """
    busy = (
        f"Uma compactação do índice de {store.home} já está em andamento. Espere ela terminar "
        f"(o registro fica em {compaction_log(store.home)}); 'lecture-rag index', sem --compact, publica "
        "já as aulas novas ou removidas."
    )
    with store.exclusive(COMPACT_LOCK, busy):
        with store.exclusive(BUILD_LOCK, "", wait=True):
            _clean_leftovers(index_dir(store.home))
            # verifies every byte of the publication (or builds a fresh one): the snapshot is read unverified
            stats = _build(store, embedder, settings, rebuild=False, compact=False, progress=None, engine=engine)
            snapshot = _current_or_none(store.home)
            if snapshot is None or not (snapshot.deltas or snapshot.dead):
                return stats  # one whole base already: nothing to fold
            ids = _live_ids(_parts_of(store.home, snapshot.parts, embedder, settings), snapshot.dead)
        if progress is not None:
            progress = _towards(progress, _work_total(store, ids, settings))
        built, vindex, staging = _staged_build(store, embedder, settings, ids, progress, engine, COMPACT_PREFIX)
        with store.exclusive(BUILD_LOCK, "", wait=True):
            return _publish_compaction(store, embedder, settings, snapshot, built, vindex, staging)


def _publish_compaction(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    snapshot: Published,
    built: IndexStats,
    vindex: VectorIndex,
    staging: Path,
) -> IndexStats:
    """Publish the new base with the deltas and tombstones that came after ``snapshot`` (under the build lock).

    The tombstones accumulate between compactions, so the windows the new
    publication serves are the new base's and the later deltas', less the
    current tombstones. A rebuild published meanwhile made this work moot:
    it is dropped. The pointer swap is the same as a build's.
    """
    now = _current_or_none(store.home)
    if now is None or now.build != snapshot.build or (now.embedder, now.dim) != (snapshot.embedder, snapshot.dim):
        shutil.rmtree(staging, ignore_errors=True)
        count = 0 if now is None else now.count
        return IndexStats(count, embedder.name, embedder.dim, skipped=True, kind="" if now is None else now.kind)
    later = [token for token in now.deltas if token not in snapshot.deltas]
    later_ids = [np.asarray(part.vectors.ids) for part in _parts_of(store.home, later, embedder, settings)]
    covered = np.unique(np.concatenate([np.asarray(vindex.ids, dtype=np.int64), *later_ids]))
    dead = np.intersect1d(covered, np.asarray(now.dead, dtype=np.int64))
    token = staging.name.removeprefix(f".{COMPACT_PREFIX}").removesuffix(TMP_SUFFIX)
    pointer = {
        "build": token,
        "fingerprint": now.fingerprint,
        "embedder": now.embedder,
        "dim": now.dim,
        "kind": vindex.kind,
        "count": now.count,
        "built_at": vindex.manifest.built_at,
        "previous": now.build,
        "deltas": later,
        "dead": [int(i) for i in dead],
        "retired": list(now.parts),
        "publication": token,
    }
    _swap_in(index_dir(store.home), token, pointer, staging, lambda: None)
    store.purge_superseded(keep=np.setdiff1d(covered, dead))
    built.segments, built.compacted_later = now.count, len(later)
    return built


def _part_folder(home: Path, token: str) -> Path:
    """The folder of the published part ``token``."""
    return index_dir(home) / f"{BUILD_PREFIX}{token}"


def _parts_of(home: Path, tokens: Sequence[str], embedder: Embedder, settings: Settings) -> list[Part]:
    """Published parts, loaded (memory maps) without re-reading every byte: a build just verified them."""
    limit = settings.retrieval.hnsw_threshold
    return [_load_part(_part_folder(home, t), t, embedder, exact_subset_max=limit) for t in tokens]


def compaction_log(home: Path) -> Path:
    """Where a background compaction writes what it prints."""
    return Path(home) / "compact.log"


def start_background_compaction(home: Path) -> Path | None:
    """Start ``lecture-rag index --compact`` for this store as a detached process; None if one already runs.

    Why a process of its own: folding the deltas rebuilds the base (minutes
    at 1M windows); the ``index`` or ``ingest`` that crossed the limit has
    already published its delta and returns at once. The child inherits the
    environment (database URL, settings) and survives its parent.
    """
    if compacting(home):
        return None
    log_path = compaction_log(home)
    with open(log_path, "ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "lecture_rag", "index", "--compact", "--store", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    return log_path


def _live_ids(parts: list[Part], dead: tuple[int, ...]) -> np.ndarray:
    """The window ids a publication serves: every part's, tombstones left out."""
    every = np.concatenate([np.asarray(p.vectors.ids) for p in parts])
    return np.sort(every[~Tombstones(dead).mask(every)])


@dataclass(slots=True)
class _Streams:
    """The four indexes of one build being written: windows' and passages' vectors and BM25."""

    windows: VectorWriter
    window_terms: BM25Builder
    passages: VectorWriter
    passage_terms: BM25Builder


def _stream_build(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    ids: np.ndarray,
    staging: Path,
    progress: ProgressFn | None,
    engine: Engine,
) -> tuple[IndexStats, VectorIndex]:
    """Embed and index the corpus a slice of windows at a time, writing into ``staging``.

    Why slices: the whole corpus's vectors, texts and term lists held at once
    outgrew a 24 GB machine at 1M windows (issue 26). Each slice of
    :data:`SLICE_WINDOWS` windows is read, its windows and passages embedded
    (through the cache), appended to the vector files and to the BM25 builders,
    and dropped. Windows removed meanwhile are simply absent from their slice,
    so all four indexes describe the same windows.
    """
    dtype = settings.retrieval.vector_dtype
    streams = _Streams(
        VectorWriter(staging, embedder.dim, dtype),
        BM25Builder(),
        VectorWriter(staging / PASSAGES_DIRNAME, embedder.dim, dtype),
        BM25Builder(),
    )
    clock = {"embed": 0.0, "passages": 0.0, "bm25": 0.0}
    try:
        _stream_slices(store, embedder, settings, ids, streams, progress, engine, clock)
    except BaseException:
        streams.windows.abort()
        streams.passages.abort()
        raise
    return _finish(store, embedder, settings, streams, staging, clock)


def _stream_slices(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    ids: np.ndarray,
    streams: _Streams,
    progress: ProgressFn | None,
    engine: Engine,
    clock: dict[str, float],
) -> None:
    """Each slice of windows: read, embed windows and passages (cache first), append to the four indexes."""
    seconds = settings.retrieval.passage_seconds
    done = 0
    with store.embedding_cache() as cache:
        for lo in range(0, int(ids.size), SLICE_WINDOWS):
            segments = store.get_segments(ids[lo : lo + SLICE_WINDOWS].tolist())
            windows = [(cid, segments[cid].text) for cid in sorted(segments)]
            passages = [
                (passage_id(cid, j), piece.text)
                for cid in sorted(segments)
                for j, piece in enumerate(split_passages(segments[cid], seconds))
            ]
            for pairs, writer, terms, phase in (
                (windows, streams.windows, streams.window_terms, "embed"),
                (passages, streams.passages, streams.passage_terms, "passages"),
            ):
                t0 = time.perf_counter()
                got_ids, vectors = embed_texts(
                    store, [pairs], embedder, batch_size=settings.embedder.batch_size, cache=cache,
                    progress=None if progress is None else _after(progress, done), engine=engine,
                    settings=settings.embedder,
                )  # fmt: skip
                writer.add(got_ids, vectors)
                t1 = time.perf_counter()
                for corpus_id, text in pairs:
                    terms.add(corpus_id, text)
                clock[phase] += t1 - t0
                clock["bm25"] += time.perf_counter() - t1
                done += len(pairs)


def _finish(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    streams: _Streams,
    staging: Path,
    clock: dict[str, float],
) -> tuple[IndexStats, VectorIndex]:
    """Complete the four indexes in ``staging`` (graph, BM25 matrices), one at a time to bound memory."""
    if len(streams.windows) == 0:
        raise StoreError(f"O acervo em {store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' antes de indexar.")
    t0 = time.perf_counter()
    vindex = streams.windows.finish(embedder_name=embedder.name, hnsw_threshold=settings.retrieval.hnsw_threshold)
    t1 = time.perf_counter()
    streams.window_terms.finish(fingerprint=vindex.fingerprint).save(staging / BM25_DIRNAME)
    t2 = time.perf_counter()
    pvectors = streams.passages.finish(embedder_name=embedder.name, hnsw_threshold=1 << 62)
    pterms = streams.passage_terms.finish(fingerprint=vindex.fingerprint)
    pterms.manifest["passage_seconds"] = float(settings.retrieval.passage_seconds)
    pterms.save(staging / PASSAGES_DIRNAME / BM25_DIRNAME)
    t3 = time.perf_counter()
    stats = IndexStats(
        len(vindex),
        embedder.name,
        embedder.dim,
        skipped=False,
        kind=vindex.kind,
        embed_s=round(clock["embed"], 2),
        vector_index_s=round(t1 - t0, 2),
        bm25_s=round(clock["bm25"] + t2 - t1, 2),
        passages=len(pvectors),
        passages_s=round(clock["passages"] + t3 - t2, 2),
    )
    return stats, vindex


def _work_total(store: Store, ids: np.ndarray, settings: Settings) -> int:
    """Windows and passages to embed: one bar's true total, known before the first is embedded.

    Why: the bar used to count the windows (80/80, ETA 0) and then jump to windows + passages (396).
    Counting the passages costs one more read of the texts, cheap beside embedding them.
    """
    seconds = settings.retrieval.passage_seconds
    return int(ids.size) + sum(1 for _ in passage_texts(store, ids.tolist(), seconds))


def _towards(progress: ProgressFn, total: int) -> ProgressFn:
    """Progress reported against the whole build's ``total`` instead of the current phase's."""
    return lambda done, _phase_total: progress(done, max(total, done))


def _after(progress: ProgressFn, offset: int) -> ProgressFn:
    """Progress of a second phase, counted after the ``offset`` items of the first."""
    return lambda done, total: progress(offset + done, offset + total)


def publish(
    home: Path,
    vindex: VectorIndex,
    bm25: BM25Index | None = None,
    passages: PassageIndex | None = None,
    *,
    staged: Path | None = None,
) -> None:
    """Write the indexes into a new base build folder, then swap the pointer; tidy older builds.

    ``staged``: a staging folder (``.build-TOKEN.tmp``) where a streamed build already
    wrote all three indexes (then ``bm25`` and ``passages`` are not needed).
    If writing fails (full disk, read-only folder), what was written is removed,
    the published pair stays in use, and the failure is a StorageError that names it.
    """
    root = index_dir(home)
    staging = staged if staged is not None else root / f".{BUILD_PREFIX}{_token()}{TMP_SUFFIX}"
    token = staging.name.removeprefix(f".{BUILD_PREFIX}").removesuffix(TMP_SUFFIX)
    previous = _current_or_none(home)
    pointer = {
        "build": token,
        "fingerprint": vindex.fingerprint,
        "embedder": vindex.embedder_name,
        "dim": vindex.dim,
        "kind": vindex.kind,
        "count": len(vindex),
        "built_at": vindex.manifest.built_at,
        "previous": previous.build if previous else "",
        "retired": list(previous.parts) if previous else [],
        "publication": token,
    }

    def write() -> None:
        if staged is None:
            vindex.save(staging)
            if bm25 is not None:
                bm25.save(staging / BM25_DIRNAME)
            if passages is not None:
                passages.save(staging / PASSAGES_DIRNAME)

    _swap_in(root, token, pointer, staging, write)


def publish_delta(
    home: Path, current: Published, *, staged: Path | None, dead: tuple[int, ...], fingerprint: str, count: int
) -> None:
    """Publish ``current`` plus the delta built in ``staged`` (None: tombstones only) and ``dead`` tombstones.

    The base and the earlier deltas are not touched: the new pointer names
    them, the new delta folder and the whole tombstone set, and replaces the
    old pointer in one ``os.replace`` (a reader loads the old publication or
    the new one, never a mix). A failure leaves the old pointer in use.
    """
    root = index_dir(home)
    token = _token() if staged is None else staged.name.removeprefix(f".{BUILD_PREFIX}").removesuffix(TMP_SUFFIX)
    pointer = {
        "build": current.build,
        "fingerprint": fingerprint,
        "embedder": current.embedder,
        "dim": current.dim,
        "kind": current.kind,
        "count": count,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous": current.build,
        "deltas": [*current.deltas, token] if staged is not None else list(current.deltas),
        "dead": list(dead),
        "retired": list(current.parts),
        "publication": token,
    }
    _swap_in(root, token, pointer, staged, lambda: None)


def _swap_in(
    root: Path, token: str, pointer: dict[str, object], staging: Path | None, write: Callable[[], None]
) -> None:
    """Move ``staging`` (written by ``write``) to ``build-TOKEN``, then replace the pointer; tidy old parts."""
    final = root / f"{BUILD_PREFIX}{token}"
    tmp = root / f".{CURRENT}.{token}{TMP_SUFFIX}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        write()
        if staging is not None:
            os.replace(staging, final)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(pointer, indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, root / CURRENT)
    except (OSError, RuntimeError) as exc:  # usearch reports a failed write as RuntimeError
        failure = os_failure(exc, "o índice", root)
        for path in (staging, final if staging is not None else None):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        if failure is None:
            raise
        raise failure from exc
    parts = [str(pointer["build"]), *_strings(pointer.get("deltas")), *_strings(pointer.get("retired"))]
    _tidy(root, {f"{BUILD_PREFIX}{t}" for t in parts})


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _token() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _tidy(root: Path, keep: set[str]) -> None:
    """Remove builds other than ``keep``, staging folders of killed builds, and the pre-build layout.

    A running compaction's staging folder is kept: it is being written.
    """
    running = compacting(root.parent)
    for path in root.iterdir():
        if path.name in keep or path.name == CURRENT or (running and path.name.startswith(f".{COMPACT_PREFIX}")):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _clean_leftovers(root: Path) -> None:
    """Remove what killed builds left (run under the build lock, so no build of this store is running).

    Staging folders and temporary pointers always go; build folders go when
    the pointer names neither them nor the build before them (readers only
    ever open those two).
    """
    if not root.is_dir():
        return
    current = _current_or_none(root.parent)
    keep = {f"{BUILD_PREFIX}{b}" for b in (*current.parts, *current.retired) if b} if current else None
    running = compacting(root.parent)
    for path in root.iterdir():
        if running and path.name.startswith(f".{COMPACT_PREFIX}"):
            continue  # a compaction running beside this build writes it
        leftover = path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)
        orphan = keep is not None and path.name.startswith(BUILD_PREFIX) and path.name not in keep
        if not (leftover or orphan):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _current_or_none(home: Path) -> Published | None:
    try:
        return published(home)
    except StoreError:
        return None  # unreadable pointer: rebuild


def _up_to_date(home: Path, current: Published, fingerprint: str, embedder: Embedder, settings: Settings) -> bool:
    """True when the publication describes this corpus and this embedder, and every byte of it is intact."""
    return current.fingerprint == fingerprint and _intact_parts(home, current, embedder, settings) is not None


def _intact_parts(home: Path, current: Published, embedder: Embedder, settings: Settings) -> list[Part] | None:
    """The publication's parts, loaded, when they are of this embedder and settings and every byte is intact.

    Verifying reads every part whole (SHA-256 of each file: about 1 s for the
    1.5 GB of vectors of 1M segments): far less than rebuilding, and only ``index`` pays it.
    None: a full build is due.
    """
    if current.embedder != embedder.name or current.dim != embedder.dim:
        return None
    parts = []
    for token in current.parts:
        folder = _part_folder(home, token)
        try:
            part = _load_part(folder, token, embedder, exact_subset_max=settings.retrieval.hnsw_threshold)
        except StoreError:
            return None
        intact = (
            part.passages is not None
            and part.bm25.fingerprint == part.vectors.fingerprint == part.passages.bm25.fingerprint
            and part.passages.seconds == settings.retrieval.passage_seconds
            and part.vectors.manifest.dtype == part.passages.vectors.manifest.dtype == settings.retrieval.vector_dtype
            and VectorIndex.verify(folder) is None
            and BM25Index.verify(folder / BM25_DIRNAME) is None
            and PassageIndex.verify(folder / PASSAGES_DIRNAME) is None
        )
        if not intact:
            return None
        parts.append(part)
    return parts


def _load_part(folder: Path, token: str, embedder: Embedder, *, exact_subset_max: int) -> Part:
    """One build folder's indexes, checked against each other (StoreError when missing, damaged or mixed)."""
    vectors = VectorIndex.load(folder, embedder_name=embedder.name, dim=embedder.dim, exact_subset_max=exact_subset_max)
    bm25 = BM25Index.load(folder / BM25_DIRNAME)
    if bm25.fingerprint != vectors.fingerprint:
        raise StoreError(
            f"Os índices em {folder} são de versões diferentes do acervo. Rode 'lecture-rag index --rebuild'."
        )
    return Part(token, vectors, bm25, _passages_or_none(folder, embedder))


def load_indexes(
    home: Path, embedder: Embedder, *, exact_subset_max: int = 50_000, reuse: Indexes | None = None
) -> Indexes:
    """The published indexes (a base, its deltas and tombstones), checked against the embedder and each other.

    ``reuse``: indexes this process loaded before; the parts they share with
    the new publication are taken from them, so picking up a delta loads only the delta.
    """
    for attempt in range(_LOAD_ATTEMPTS):
        current = published(home)
        if current is None:
            raise StoreError(
                f"Nenhum índice publicado em {index_dir(home)}. Rode 'lecture-rag index' "
                "(ou 'lecture-rag index --rebuild' se o índice foi apagado)."
            )
        check_manifest_embedder(current.embedder, current.dim, embedder.name, embedder.dim)
        folders = [index_dir(home) / f"{BUILD_PREFIX}{token}" for token in current.parts]
        if not all(f.is_dir() for f in folders) and attempt + 1 < _LOAD_ATTEMPTS:
            continue  # replaced and tidied away since we read the pointer
        parts = tuple(
            (reuse.part(token) if reuse is not None else None)
            or _load_part(folder, token, embedder, exact_subset_max=exact_subset_max)
            for token, folder in zip(current.parts, folders, strict=True)
        )
        return _assemble(current, parts, folders[0])
    raise StoreError(f"O índice em {index_dir(home)} mudou várias vezes durante a leitura; tente de novo.")


def _assemble(current: Published, parts: tuple[Part, ...], base: Path) -> Indexes:
    """One searchable index of a publication's parts: the base itself, or segmented views with tombstones."""
    mixed = StoreError(
        f"Os índices em {base.parent} são de versões diferentes do acervo. Rode 'lecture-rag index --rebuild'."
    )
    if len(parts) == 1 and not current.dead:
        part = parts[0]
        if part.vectors.fingerprint != current.fingerprint:
            raise mixed
        return Indexes(part.vectors, part.bm25, current.label, part.passages, parts)
    if not all(part.growable for part in parts):
        raise mixed
    dead = Tombstones(current.dead)
    vectors = SegmentedVectors([p.vectors for p in parts], dead, current.fingerprint)
    if ids_fingerprint(vectors.ids) != current.fingerprint:
        raise mixed
    bm25 = SegmentedBM25([p.bm25 for p in parts], dead, current.fingerprint)
    by_passage = Tombstones(current.dead, shift=ID_BITS)
    plain = [p.passages for p in parts if p.passages is not None]
    passages = PassageIndex(
        SegmentedVectors(
            [p.vectors for p in plain if isinstance(p.vectors, VectorIndex)], by_passage, current.fingerprint
        ),
        SegmentedBM25([p.bm25 for p in plain if isinstance(p.bm25, BM25Index)], by_passage, current.fingerprint),
    )
    return Indexes(vectors, bm25, current.label, passages, parts)


def _passages_or_none(folder: Path, embedder: Embedder) -> PassageIndex | None:
    """The build's passages; a build from before them (or whose passages are damaged) still answers without."""
    try:
        passages = PassageIndex.load(folder / PASSAGES_DIRNAME, embedder)
    except StoreError as exc:
        log.warning("%s", exc)
        return None
    return passages


def prune_embedding_cache(store: Store, embedder: Embedder, settings: Settings) -> int:
    """Drop this embedder's cached vectors of texts no longer in the store; returns how many.

    The cache keeps vectors of removed or re-ingested lectures so that putting
    them back is free; on a large store that grows without bound, hence this
    explicit clean-up (``lecture-rag index --prune-cache``). Other embedders'
    vectors are kept: they are what makes switching back cheap.
    """
    keep = {text_hash(text) for chunk in store.iter_texts() for _, text in chunk}
    seconds = settings.retrieval.passage_seconds
    keep |= {text_hash(text) for _, text in passage_texts(store, store.corpus_ids(), seconds)}
    with store.embedding_cache() as cache:
        return cache.prune(embedder.name, keep)
