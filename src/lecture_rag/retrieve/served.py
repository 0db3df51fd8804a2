"""The index build a process searches: load it, check it against the store, follow the pointer, swap it.

Why apart from ranking (:class:`~lecture_rag.retrieve.search.Retriever`):
which build is searched is a life-cycle question (first load, a rebuild
published by another process, a web replica's watcher swapping builds in
the background), while ranking is a pure function of a question and one
build. A :class:`ServedIndex` answers the first; the retriever asks it for
the build once per search (:meth:`ServedIndex.current`) and ranks in it.

Thread safety: the build searched is one :class:`Served` value held in one
attribute, read once per search, so :meth:`ServedIndex.swap` is one
reference assignment and a search under way finishes on the build it
started with. Nothing here builds an index behind the caller's back: a
process that wants this folder's index built when it has none says so
(:meth:`ServedIndex.build_if_missing`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lecture_rag.config import Settings
from lecture_rag.embed import Embedder
from lecture_rag.errors import StoreError
from lecture_rag.index.build import Indexes, build_indexes, load_indexes, publication_version, published
from lecture_rag.index.vectors import ids_fingerprint
from lecture_rag.store import Store

log = logging.getLogger(__name__)


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


class ServedIndex:
    """Holds the build of ``store``'s folder that searches use; loaded on first use.

    ``follow_pointer``: :meth:`current` loads a newer build published (by
    ``index``, in this store folder) before answering. A web replica turns
    that off and lets its :class:`~lecture_rag.retrieve.watch.IndexWatcher`
    build and load in the background and :meth:`swap` builds in, so no search
    waits for a build or a load (only a search with nothing loaded yet loads).
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        *,
        indexes: Indexes | None = None,
        follow_pointer: bool = True,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.follow_pointer = follow_pointer
        self._served = None if indexes is None else Served(indexes, publication_version(store.home))

    def current(self) -> Indexes:
        """The build to search now, loaded and checked; an empty store is an error that says to ingest.

        A long-lived holder (the web app) picks up a rebuild made by another
        process: a build is published by replacing one pointer file atomically,
        so a changed stamp means a new pair of indexes (one stat per search).
        Never builds (see :meth:`build_if_missing`).
        """
        served = self._served  # one read: a concurrent swap never mixes two builds
        if served is None or (
            self.follow_pointer
            and (stamp := publication_version(self.store.home)) is not None
            and stamp != served.stamp
        ):
            served = self.load_served()
            self._served = served
        return served.indexes

    def build_if_missing(self) -> bool:
        """On a shared store (PostgreSQL), build this folder's index when it has none; True when it built.

        The indexes are per process folder, derived from the store, and the
        vectors mostly come from the shared embedding cache, so a process
        beside a shared database (a CLI on another machine, a run's worker)
        builds its own before its first search. On SQLite the folder *is*
        the store's, and ``lecture-rag index`` builds it: nothing to do.
        """
        if not self.store.shared or self._served is not None or published(self.store.home) is not None:
            return False
        build_indexes(self.store, self.embedder, self.settings)
        return True

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

        Changes nothing searched: a caller loads outside any lock, then :meth:`swap`.
        """
        stamp = publication_version(self.store.home)
        if self.store.segment_count() == 0:
            raise StoreError(
                f"O acervo em {self.store.home} está vazio: rode 'lecture-rag ingest ARQUIVOS' "
                "para adicionar aulas antes de buscar."
            )
        served = self._served
        indexes = load_indexes(
            self.store.home,
            self.embedder,
            exact_subset_max=self.settings.retrieval.hnsw_threshold,
            reuse=None if served is None else served.indexes,  # a new delta: only the delta is loaded
        )
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
