"""Keep a long-lived process's search indexes current while other processes change the corpus.

A web replica searches the index build it loaded. Another process may
ingest or remove lectures at any time (a CLI on this machine, or anywhere
when the store is PostgreSQL); every such change raises the store's corpus
version in its own transaction (:meth:`~lecture_rag.store.Store.corpus_version`).
:class:`IndexWatcher` is a daemon thread that reads that counter every
``[store] index_poll_seconds``; when it moved since the build being served,
it runs :func:`~lecture_rag.index.build.build_indexes` for this process's
own store folder (only segments missing from the embedding cache are
embedded: the ingesting process normally embedded them already, so this is
cheap; when that process published into this same folder the build is
simply found up to date; otherwise it publishes only a delta and tombstones,
see :mod:`lecture_rag.index.segments`). Whatever the folder's pointer names then is
loaded *outside* any lock (reusing the parts already loaded: only a new
delta is read) and swapped in by one reference assignment
(:meth:`~lecture_rag.retrieve.served.ServedIndex.swap`): a search under way
finishes on the old build, the next one starts on the new one, and no
request waits for a build or a load.

The watcher also follows the pointer by itself, so an ``index`` run from
the command line in the same folder is picked up at the next poll.

A refresh that fails (a full disk, a damaged build, a store gone read-only)
logs a warning, keeps serving the build already loaded and tries again at
the next poll; :meth:`IndexWatcher.status` says why (``/api/health``).

The build uses an embedder of its own: the one searches use is shared under
a lock (its C engine is not reentrant), and embedding a lecture under that
lock would hold every query for the whole build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from lecture_rag.config import Settings
from lecture_rag.embed import Embedder, make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.index.build import build_indexes, publication_version, published
from lecture_rag.retrieve.served import Served, ServedIndex

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0  # how long closing the app waits for a refresh under way (the thread is a daemon)


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """Which index build a process searches and how current it is (``/api/health``'s ``index``)."""

    build: str = ""  # the build folder's token ('' = none loaded)
    corpus_version: int = -1  # the store's corpus version this build reflects (-1: not known)
    store_version: int = -1  # the store's corpus version now; ahead of corpus_version until the next swap
    loaded_at: str = ""  # when the build was swapped in (UTC, ISO 8601)
    swaps: int = 0  # builds swapped in since the process started
    refresh_s: float = 0.0  # seconds the last load took, from the poll that saw the change (build included)
    poll_seconds: float = 0.0  # how often the corpus version is checked
    error: str = ""  # why the last refresh failed ('' = it did not); the build loaded before stays in use


class IndexWatcher:
    """Rebuild, load and swap into ``index`` the build of its store folder when the corpus changes."""

    def __init__(
        self,
        index: ServedIndex,
        settings: Settings,
        *,
        poll_seconds: float | None = None,
        build_embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self.index = index
        self.store = index.store
        self.settings = settings
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.store.index_poll_seconds
        self._make_embedder = build_embedder or (lambda: make_embedder(settings.embedder))
        self._embedder: Embedder | None = None  # made at the first build
        self._known: int | None = None  # corpus version the served build reflects (None: unknown, so build)
        self._status = IndexStatus(poll_seconds=self.poll_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checking = threading.Lock()  # one refresh at a time (the thread, or a caller of check())

    # -- life cycle ---------------------------------------------------------
    def start(self) -> None:
        """Load the published build, or build one if this folder has none; then poll in a daemon thread.

        A replica whose folder holds no build (a new one beside a shared
        PostgreSQL) builds it here, before the server answers. A build that is
        loaded but older than the corpus is served while the thread rebuilds.
        """
        version = self.store.corpus_version()  # read before loading: a change meanwhile reads as one later
        try:
            if self.index.served is None and published(self.store.home) is not None:
                served = self.index.load_served()
                self.index.swap(served)
                if not served.stale:
                    self._known = version
                self._loaded(served.indexes.build, version if not served.stale else -1, took=0.0, replaced=False)
        except LectureRagError as exc:
            self._failed(exc)
        if self.index.served is None:
            self.check()  # nothing to search: build (or wait for another process's build) before answering
        self._thread = threading.Thread(target=self._run, name="index-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Stop polling; a refresh under way gets ``timeout`` seconds to end (the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0 if self._known is None else self.poll_seconds
        while not self._stop.wait(delay):
            delay = self.poll_seconds
            try:
                self.check()
            except Exception:  # never let the thread die: the next poll tries again
                log.exception("Falha inesperada ao atualizar o índice; o índice carregado continua em uso.")

    # -- one poll -----------------------------------------------------------
    def check(self) -> bool:
        """One poll: rebuild if the corpus changed, load a newly published build; True when one replaced another.

        A failure is logged and kept in :meth:`status`; the served build stays.
        """
        with self._checking:
            try:
                return self._check()
            except (LectureRagError, OSError) as exc:
                self._failed(exc)
                return False

    def _check(self) -> bool:
        began = time.perf_counter()
        version = self.store.corpus_version()
        if version != self._known:
            build_indexes(self.store, self._build_embedder(), self.settings)
        served = self.index.served
        stamp = publication_version(self.store.home)
        load = served is None or (stamp is not None and stamp != served.stamp)
        if load:
            indexes, stamp = self.index.load_published()  # outside any lock: searches go on meanwhile
            self.index.swap(Served(indexes, stamp, stale=self.store.corpus_version() != version))
            log.info("Índice %s carregado (versão do acervo %d).", indexes.build, version)
        self._known = version
        current = self.index.served
        build = current.indexes.build if current is not None else ""
        took = time.perf_counter() - began if load else None
        self._loaded(build, version, took=took, replaced=load and served is not None)
        return load and served is not None

    def _build_embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._make_embedder()
        return self._embedder

    # -- status -------------------------------------------------------------
    def status(self) -> IndexStatus:
        """What is served now, with the store's current corpus version (one small read)."""
        try:
            now = self.store.corpus_version()
        except LectureRagError:
            now = -1
        return replace(self._status, store_version=now)

    def _loaded(self, build: str, version: int, *, took: float | None, replaced: bool) -> None:
        """Record a successful poll; ``took``: seconds it spent building and loading (None: nothing loaded)."""
        status = self._status
        if took is not None:
            status = replace(
                status, loaded_at=datetime.now(UTC).isoformat(timespec="milliseconds"), refresh_s=round(took, 3)
            )
        self._status = replace(
            status, build=build, corpus_version=version, swaps=status.swaps + int(replaced), error=""
        )

    def _failed(self, exc: BaseException) -> None:
        message = str(exc)
        log.warning("Não consegui atualizar o índice (o índice carregado continua em uso): %s", message)
        self._status = replace(self._status, error=message)
