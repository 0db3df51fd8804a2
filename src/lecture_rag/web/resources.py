"""Long-lived resources of the web app: loaded once at startup, shared safely between threads.

FastAPI runs sync endpoints and the answer workers in thread pools. The
retriever is a :class:`~lecture_rag.retrieve.SharedRetriever` (search and
the embedder's C engine under one lock; the store gives each thread its own
connection). An LLM that takes parallel calls (an HTTP server) streams
outside any lock, so a slow generation never blocks search; one that does
not (an in-process GGUF model) gets a lock of its own.

Questions are answered by ``[web] answer_workers`` threads; ``[web]
ask_queue`` more may wait for one (:class:`AnswerSlots`), and beyond that
``/api/ask`` says the server is busy instead of queueing without end.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from lecture_rag.config import Settings
from lecture_rag.embed import make_embedder
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.generate.language import warm_up as warm_up_language
from lecture_rag.llm import LLM, make_llm
from lecture_rag.retrieve import IndexWatcher, Retriever, ServedIndex, SharedRetriever
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.store import RunStore, Store, open_store
from lecture_rag.web.llm_health import LLMHealth
from lecture_rag.web.security import Access, Sessions


class AnswerSlot:
    """One admitted question; :meth:`release` (idempotent) gives its place back."""

    def __init__(self, slots: AnswerSlots) -> None:
        self._slots = slots
        self._released = False
        # Set once the answer worker owns the slot (it releases it when it ends).
        self.handed_to_worker = False

    def release(self) -> None:
        with self._slots.lock:
            if not self._released:
                self._released = True
                self._slots.taken -= 1


@dataclass
class AnswerSlots:
    """Questions being answered or waiting for a worker: at most ``limit`` at once."""

    limit: int
    taken: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> AnswerSlot | None:
        with self.lock:
            if self.taken >= self.limit:
                return None
            self.taken += 1
        return AnswerSlot(self)


@dataclass(slots=True)
class Resources:
    """Everything the requests share; built by :meth:`load`, released by :meth:`close`."""

    settings: Settings
    token: str
    store: Store
    runs: RunStore
    retriever: SharedRetriever
    watcher: IndexWatcher
    engine: AnswerEngine
    answer_lock: AbstractContextManager[Any]
    executor: ThreadPoolExecutor
    slots: AnswerSlots
    access: Access = field(default_factory=Access)
    sessions: Sessions = field(default_factory=Sessions)
    warm_up_problem: str = ""
    # What the header tells students of the answer LLM (a cached live probe); causes go to the log.
    llm_health: LLMHealth = field(default_factory=lambda: LLMHealth(None))

    @classmethod
    def load(cls, settings: Settings, token: str, access: Access) -> Resources:
        """Open the store, the embedder, the indexes and the LLM once, and warm what is lazy elsewhere.

        The index watcher starts here: it loads the published build (building
        one first when this store folder has none) and then follows the store.
        """
        store = open_store(settings, create=False)
        reranker = make_reranker(settings)
        # Queries never load a build themselves: the watcher loads and swaps it in the background.
        index = ServedIndex(store, make_embedder(settings.embedder), settings, follow_pointer=False)
        watcher = IndexWatcher(index, settings)
        watcher.start()
        retriever = SharedRetriever(Retriever(index, reranker=reranker))
        llm: LLM | None = make_llm(settings.llm)
        engine = AnswerEngine(retriever, llm, settings.llm)
        answer_lock: AbstractContextManager[Any] = (
            nullcontext() if llm is None or llm.parallel_safe else threading.Lock()
        )
        web = settings.web
        executor = ThreadPoolExecutor(max_workers=web.answer_workers, thread_name_prefix="answer")
        slots = AnswerSlots(web.answer_workers + web.ask_queue)
        resources = cls(
            settings, token, store, RunStore(store), retriever, watcher, engine, answer_lock, executor, slots, access,
            sessions=Sessions.for_token(token), llm_health=LLMHealth(llm),
        )  # fmt: skip
        if index.served is not None:  # else the watcher's status says why there is nothing to search
            resources.warm_up_problem = retriever.warm_up()
        warm_up_language()  # the first questions arrive together; nothing left to initialise then
        return resources

    @property
    def llm_name(self) -> str:
        llm = self.engine.llm
        return llm.name if llm is not None else "nenhum (respostas extrativas)"

    @property
    def configured_llm(self) -> str:
        """The answer LLM as configured (model or backend): what a page may name without asking the server."""
        if self.engine.llm is None:
            return "nenhum (respostas extrativas)"
        return self.settings.llm.model.strip() or self.settings.llm.backend

    @property
    def problem(self) -> str:
        """What keeps questions from being answered now ('' when nothing does)."""
        if self.watcher.index.served is None:
            return self.watcher.status().error or "Nenhum índice carregado ainda."
        return self.warm_up_problem

    def counts(self) -> tuple[int, int]:
        """(videos, segments) in the store (this thread's own connection: no wait behind a search)."""
        return len(self.store.list_videos()), self.store.segment_count()

    def close(self) -> None:
        self.watcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.engine.llm is not None:
            self.engine.llm.close()
        self.store.close()
