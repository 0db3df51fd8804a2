"""Long-lived resources of the web app: loaded once at startup, shared safely between threads.

Why locks: FastAPI runs sync endpoints and the answer workers in thread
pools, while the retriever reads through one SQLite connection and the
embedder's C engine keeps per-call state; neither may be entered by two
threads at once. Retrieval and embedding take tens of milliseconds, so one
re-entrant lock around them costs little. An HTTP LLM streams *outside* that
lock (a slow generation never blocks search); an in-process GGUF model is not
thread-safe and gets a lock of its own. Run pages open a short-lived
connection per request instead: SQLite in WAL mode serves many readers, and a
write waits for the write lock (30 s) instead of failing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from lecture_rag.config import Settings
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.runs import RunStore
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.generate.llm import LLM, OpenAICompatibleLLM, make_llm
from lecture_rag.index.store import Store
from lecture_rag.records import Hit
from lecture_rag.retrieve.embedders import Embedder, make_embedder
from lecture_rag.retrieve.search import Retriever

log = logging.getLogger(__name__)

# Answer workers: generations of an HTTP LLM overlap; retrieval inside them is serialised anyway.
ANSWER_WORKERS = 8


class LockedEmbedder:
    """An embedder whose calls hold the shared lock (the extractive answer embeds passages)."""

    def __init__(self, embedder: Embedder, lock: threading.RLock) -> None:
        self._embedder = embedder
        self._lock = lock

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dim(self) -> int:
        return self._embedder.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embedder.embed_passages(texts)


class LockedRetriever:
    """The retriever as :class:`AnswerEngine` sees it, with every call under the shared lock."""

    def __init__(self, retriever: Retriever, lock: threading.RLock) -> None:
        self._retriever = retriever
        self._lock = lock
        self.embedder = LockedEmbedder(retriever.embedder, lock)
        self.store = retriever.store

    def search(self, query: str, **kwargs: Any) -> list[Hit]:
        with self._lock:
            return list(self._retriever.search(query, **kwargs))

    def warm_up(self) -> str:
        """Load the indexes and run the embedder once now, so the first question is not the slow one.

        Returns what is wrong with the store ('' when nothing is).
        """
        with self._lock:
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


@dataclass(slots=True)
class Resources:
    """Everything the requests share; built by :meth:`load`, released by :meth:`close`."""

    settings: Settings
    token: str
    store: Store
    retriever: LockedRetriever
    engine: AnswerEngine
    answer_lock: AbstractContextManager[Any]
    executor: ThreadPoolExecutor
    problem: str = ""

    @classmethod
    def load(cls, settings: Settings, token: str) -> Resources:
        """Open the store, the embedder, the indexes and the LLM once."""
        store = Store(settings.home, create=False)
        lock = threading.RLock()
        retriever = LockedRetriever(Retriever(store, make_embedder(settings.embedder), settings), lock)
        llm: LLM | None = make_llm(settings.llm)
        engine = AnswerEngine(retriever, llm, settings.llm)
        answer_lock: AbstractContextManager[Any] = (
            nullcontext() if llm is None or isinstance(llm, OpenAICompatibleLLM) else threading.Lock()
        )
        executor = ThreadPoolExecutor(max_workers=ANSWER_WORKERS, thread_name_prefix="answer")
        resources = cls(settings, token, store, retriever, engine, answer_lock, executor)
        resources.problem = retriever.warm_up()
        return resources

    @property
    def llm_name(self) -> str:
        llm = self.engine.llm
        return llm.name if llm is not None else "nenhum (respostas extrativas)"

    def counts(self) -> tuple[int, int]:
        """(videos, segments) in the store, on a connection of their own (no wait behind a search)."""
        with Store(self.settings.home, create=False) as store:
            return len(store.list_videos()), store.segment_count()

    @contextmanager
    def runs(self) -> Iterator[RunStore]:
        """A run store over a connection of this request's own."""
        with Store(self.settings.home, create=False) as store:
            yield RunStore(store)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        closer = getattr(self.engine.llm, "close", None)
        if callable(closer):
            closer()
        self.store.close()
