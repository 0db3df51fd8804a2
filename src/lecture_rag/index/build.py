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
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lecture_rag.batch import LOCAL, Engine
from lecture_rag.config import Settings
from lecture_rag.embed import Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.bm25 import BM25_DIRNAME, BM25Index
from lecture_rag.index.embed import embed_corpus
from lecture_rag.index.passages import PASSAGES_DIRNAME, PassageIndex, passage_texts
from lecture_rag.index.vectors import VectorIndex, check_manifest_embedder, ids_fingerprint
from lecture_rag.store import Store, text_hash
from lecture_rag.store.corpus import PUBLISHED_INDEX
from lecture_rag.store.failures import os_failure, read_only_error

ProgressFn = Callable[[int, int], None]
log = logging.getLogger(__name__)

INDEX_DIRNAME = PUBLISHED_INDEX.parent.name  # the store reads the count it publishes (a database that lost it)
CURRENT = PUBLISHED_INDEX.name
BUILD_PREFIX = "build-"
TMP_SUFFIX = ".tmp"
BUILD_LOCK = "index-build"
_LOAD_ATTEMPTS = 3  # a build deleted between reading the pointer and opening its files: read the pointer again


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
    previous: str = ""  # the build published before this one (kept one generation for readers)

    def path(self, home: Path) -> Path:
        return index_dir(home) / f"{BUILD_PREFIX}{self.build}"


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
    cache_pruned: int | None = None

    def items(self) -> list[tuple[str, object]]:
        """The fields that apply, in order, as ``index`` prints them (``name=value``)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(slots=True)
class Indexes:
    """The loaded indexes of one store, guaranteed to describe the same corpus."""

    vectors: VectorIndex
    bm25: BM25Index
    build: str = ""
    passages: PassageIndex | None = None  # None for a build made before passages existed (reindex to get them)

    @property
    def fingerprint(self) -> str:
        return self.vectors.fingerprint


def build_indexes(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    *,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    engine: Engine = LOCAL,
) -> IndexStats:
    """Embed the corpus, build both indexes and publish them as one build; returns what it did.

    ``engine`` runs the embedding batches (its workers build the embedder from
    ``settings.embedder``, which ``embedder`` must come from); building and
    publishing the indexes happen here, in this process.
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
    with store.exclusive(BUILD_LOCK, "", wait=True):
        _clean_leftovers(index_dir(store.home))
        return _build(store, embedder, settings, rebuild=rebuild, progress=progress, engine=engine)


def _corpus_ids(store: Store) -> np.ndarray:
    ids = np.asarray(store.corpus_ids(), dtype=np.int64)
    if ids.size == 0:
        raise StoreError(f"O acervo em {store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' antes de indexar.")
    return ids


def _build(
    store: Store, embedder: Embedder, settings: Settings, *, rebuild: bool, progress: ProgressFn | None, engine: Engine
) -> IndexStats:
    ids = _corpus_ids(store)
    fingerprint = ids_fingerprint(ids)
    current = _current_or_none(store.home)
    if not rebuild and current is not None and _up_to_date(store.home, current, fingerprint, embedder, settings):
        store.purge_superseded(keep=())  # the published build holds exactly the current segments
        return IndexStats(int(ids.size), embedder.name, embedder.dim, skipped=True, kind=current.kind)

    if progress is not None:
        progress = _towards(progress, _work_total(store, ids, settings))
    t0 = time.perf_counter()
    corpus_ids, vectors = embed_corpus(
        store, embedder, batch_size=settings.embedder.batch_size, progress=progress, engine=engine,
        settings=settings.embedder,
    )  # fmt: skip
    t_embed = time.perf_counter() - t0
    corpus_ids, vectors = _only_live(store, np.asarray(corpus_ids, dtype=np.int64), vectors)
    t1 = time.perf_counter()
    vindex = VectorIndex.build(
        corpus_ids, vectors, embedder_name=embedder.name, hnsw_threshold=settings.retrieval.hnsw_threshold
    )
    t2 = time.perf_counter()
    live = set(corpus_ids.tolist())
    bm25 = BM25Index.build_from_pairs(_texts(store, live), fingerprint=vindex.fingerprint)
    if len(bm25) != len(vindex):
        raise StoreError(
            "O acervo mudou durante a indexação (uma aula foi removida ou reingerida). "
            "Rode 'lecture-rag index' de novo."
        )
    t3 = time.perf_counter()
    passages = PassageIndex.build(
        store,
        embedder,
        corpus_ids.tolist(),
        seconds=settings.retrieval.passage_seconds,
        fingerprint=vindex.fingerprint,
        batch_size=settings.embedder.batch_size,
        progress=None if progress is None else _after(progress, len(vindex)),
        engine=engine,
        settings=settings.embedder,
    )
    t4 = time.perf_counter()
    publish(store.home, vindex, bm25, passages)
    store.purge_superseded(keep=vindex.ids)
    return IndexStats(
        len(vindex),
        embedder.name,
        embedder.dim,
        skipped=False,
        kind=vindex.kind,
        embed_s=round(t_embed, 2),
        vector_index_s=round(t2 - t1, 2),
        bm25_s=round(t3 - t2, 2),
        passages=len(passages.vectors),
        passages_s=round(t4 - t3, 2),
    )


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


def publish(home: Path, vindex: VectorIndex, bm25: BM25Index, passages: PassageIndex | None = None) -> None:
    """Write the indexes into a new build folder, then swap the pointer; tidy older builds.

    If writing fails (full disk, read-only folder), what was written is removed,
    the published pair stays in use, and the failure is a StorageError that names it.
    """
    root = index_dir(home)
    token = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    staging = root / f".{BUILD_PREFIX}{token}{TMP_SUFFIX}"
    final = root / f"{BUILD_PREFIX}{token}"
    tmp = root / f".{CURRENT}.{token}{TMP_SUFFIX}"
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
    }
    try:
        root.mkdir(parents=True, exist_ok=True)
        vindex.save(staging)
        bm25.save(staging / BM25_DIRNAME)
        if passages is not None:
            passages.save(staging / PASSAGES_DIRNAME)
        os.replace(staging, final)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(pointer, indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, root / CURRENT)
    except (OSError, RuntimeError) as exc:  # usearch reports a failed write as RuntimeError
        failure = os_failure(exc, "o índice", root)
        for path in (staging, final):
            shutil.rmtree(path, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        if failure is None:
            raise
        raise failure from exc
    keep = {final.name} | ({f"{BUILD_PREFIX}{previous.build}"} if previous else set())
    _tidy(root, keep)


def _tidy(root: Path, keep: set[str]) -> None:
    """Remove builds other than ``keep``, staging folders of killed builds, and the pre-build layout."""
    for path in root.iterdir():
        if path.name in keep or path.name == CURRENT:
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
    keep = {f"{BUILD_PREFIX}{b}" for b in (current.build, current.previous) if b} if current else None
    for path in root.iterdir():
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
    """True when the published build describes this corpus and this embedder, and every byte of it is intact.

    Verifying reads the whole build (SHA-256 of each file: about 1 s for the
    1.5 GB of vectors of 1M segments): far less than rebuilding it, and only ``index`` pays it.
    """
    if current.fingerprint != fingerprint or current.embedder != embedder.name or current.dim != embedder.dim:
        return False
    folder = current.path(home)
    try:
        vindex = VectorIndex.load(folder, embedder_name=embedder.name, dim=embedder.dim)
        bm25 = BM25Index.load(folder / BM25_DIRNAME)
        passages = PassageIndex.load(folder / PASSAGES_DIRNAME, embedder)
    except StoreError:
        return False
    return (
        vindex.fingerprint == fingerprint
        and bm25.fingerprint == fingerprint
        and passages.bm25.fingerprint == fingerprint
        and passages.seconds == settings.retrieval.passage_seconds
        and VectorIndex.verify(folder) is None
        and BM25Index.verify(folder / BM25_DIRNAME) is None
        and PassageIndex.verify(folder / PASSAGES_DIRNAME) is None
    )


def load_indexes(home: Path, embedder: Embedder, *, exact_subset_max: int = 50_000) -> Indexes:
    """The published pair, checked against the embedder and against each other."""
    for attempt in range(_LOAD_ATTEMPTS):
        current = published(home)
        if current is None:
            raise StoreError(
                f"Nenhum índice publicado em {index_dir(home)}. Rode 'lecture-rag index' "
                "(ou 'lecture-rag index --rebuild' se o índice foi apagado)."
            )
        check_manifest_embedder(current.embedder, current.dim, embedder.name, embedder.dim)
        folder = current.path(home)
        if not folder.is_dir() and attempt + 1 < _LOAD_ATTEMPTS:
            continue  # replaced and tidied away since we read the pointer
        vectors = VectorIndex.load(
            folder, embedder_name=embedder.name, dim=embedder.dim, exact_subset_max=exact_subset_max
        )
        bm25 = BM25Index.load(folder / BM25_DIRNAME)
        if bm25.fingerprint != vectors.fingerprint or vectors.fingerprint != current.fingerprint:
            raise StoreError(
                f"Os índices em {folder} são de versões diferentes do acervo. Rode 'lecture-rag index --rebuild'."
            )
        return Indexes(vectors=vectors, bm25=bm25, build=current.build, passages=_passages_or_none(folder, embedder))
    raise StoreError(f"O índice em {index_dir(home)} mudou várias vezes durante a leitura; tente de novo.")


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


def _only_live(store: Store, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop ids deleted while embedding ran, so both indexes describe one corpus."""
    current = np.asarray(store.corpus_ids(), dtype=np.int64)
    keep = np.isin(ids, current)
    if keep.all():
        return ids, vectors
    return ids[keep], np.asarray(vectors)[keep]


def _texts(store: Store, live: set[int]) -> Iterator[tuple[int, str]]:
    for batch in store.iter_texts():
        for corpus_id, text in batch:
            if corpus_id in live:
                yield corpus_id, text
