"""Long-lived resources of the web app: loaded once at startup, shared safely between threads.

FastAPI runs sync endpoints and the answer workers in thread pools. The
retriever is a :class:`~lecture_rag.retrieve.SharedRetriever` (search and
the embedder's C engine under one lock; the store gives each thread its own
connection). An LLM that takes parallel calls (an HTTP server) streams
outside any lock, so a slow generation never blocks search; one that does
not (an in-process GGUF model) gets a lock of its own.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from lecture_rag.config import Settings
from lecture_rag.embed import make_embedder
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.generate.llm import LLM, make_llm
from lecture_rag.retrieve import Retriever, SharedRetriever
from lecture_rag.store import RunStore, Store

# Answer workers: generations of an HTTP LLM overlap; retrieval inside them is serialised anyway.
ANSWER_WORKERS = 8


@dataclass(slots=True)
class Resources:
    """Everything the requests share; built by :meth:`load`, released by :meth:`close`."""

    settings: Settings
    token: str
    store: Store
    runs: RunStore
    retriever: SharedRetriever
    engine: AnswerEngine
    answer_lock: AbstractContextManager[Any]
    executor: ThreadPoolExecutor
    problem: str = ""

    @classmethod
    def load(cls, settings: Settings, token: str) -> Resources:
        """Open the store, the embedder, the indexes and the LLM once."""
        store = Store(settings.home, create=False)
        retriever = SharedRetriever(Retriever(store, make_embedder(settings.embedder), settings))
        llm: LLM | None = make_llm(settings.llm)
        engine = AnswerEngine(retriever, llm, settings.llm)
        answer_lock: AbstractContextManager[Any] = (
            nullcontext() if llm is None or llm.parallel_safe else threading.Lock()
        )
        executor = ThreadPoolExecutor(max_workers=ANSWER_WORKERS, thread_name_prefix="answer")
        resources = cls(settings, token, store, RunStore(store), retriever, engine, answer_lock, executor)
        resources.problem = retriever.warm_up()
        return resources

    @property
    def llm_name(self) -> str:
        llm = self.engine.llm
        return llm.name if llm is not None else "nenhum (respostas extrativas)"

    def counts(self) -> tuple[int, int]:
        """(videos, segments) in the store (this thread's own connection: no wait behind a search)."""
        return len(self.store.list_videos()), self.store.segment_count()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        closer = getattr(self.engine.llm, "close", None)
        if callable(closer):
            closer()
        self.store.close()
