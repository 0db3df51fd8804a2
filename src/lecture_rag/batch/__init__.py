"""Batch engines: one way to run a stage function over many work items, in this process or on a Ray cluster.

Why: transcription (a media file), embedding (a batch of texts) and question
runs (a question) are independent per work item, so they spread over many
cores or machines; the store, though, has one writer. A :class:`Stage` is a
stage function plus how a worker builds the model it needs; an
:class:`Engine` hands the items out and gives the results back to the
caller, which writes each one to the store (or the embedding cache) as it
comes. A killed job therefore loses at most the items in flight, and the
rerun does only what the store lacks.

* :class:`LocalEngine` (the default) is the in-process loop the stages always
  ran: the caller's own model, and the caller's threads where it has some.
* :class:`~lecture_rag.batch.ray_engine.RayEngine` (``--engine ray``) runs a
  pool of Ray actors per stage, each building its model once from the
  stage's settings; results stream back as they finish (``ray.wait``).

Ray is an optional extra (``pip install 'lecture-rag[ray]'``): it is imported
only when the Ray engine is asked for, never by importing this package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from lecture_rag.config import BatchSettings
from lecture_rag.errors import LectureRagError

R = TypeVar("R")  # what a worker builds once (a model)
T = TypeVar("T")  # one work item
U = TypeVar("U")  # its result

_INSTALL_HINT = "pip install 'lecture-rag[ray]'"


@dataclass(frozen=True, slots=True)
class Stage(Generic[R, T, U]):
    """A stage function and how a worker builds, once, what the function needs.

    ``setup(cpus)`` builds the worker's resource (a model) from the settings
    it carries; ``cpus`` is the worker's share of cores, for the model's
    thread count (0: every core of this machine, as a local run uses).
    ``work(resource, item)`` is the stage function. Both must pickle (module
    functions, or :func:`functools.partial` of them over settings) so that
    they reach Ray actors. ``name`` keys the actors: consecutive stages of
    one name (segments, then passages) reuse the same loaded models.
    """

    name: str
    setup: Callable[[int], R]
    work: Callable[[R, T], U]


class Engine(Protocol):
    """Runs a stage over work items and yields ``(index of the item, result)``."""

    @property
    def name(self) -> str:
        """``local`` or ``ray``: what messages and run summaries say."""
        ...

    @property
    def workers(self) -> int:
        """How many items run at once (1 for the local loop)."""
        ...

    def map(
        self,
        stage: Stage[R, T, U],
        items: Sequence[T],
        *,
        ordered: bool = False,
        local: R | None = None,
        threads: int = 1,
    ) -> Iterator[tuple[int, U]]:
        """Results as they finish, or in the items' order with ``ordered``.

        ``local`` is the resource this process already holds (the local
        engine uses it instead of calling ``stage.setup``); ``threads`` is how
        many threads the local engine may share it with (it must then be
        thread-safe). An exception raised by ``work`` is raised here.
        """
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Today's in-process loop: one item after another, or the caller's thread pool."""

    name = "local"
    workers = 1

    def map(
        self,
        stage: Stage[R, T, U],
        items: Sequence[T],
        *,
        ordered: bool = False,
        local: R | None = None,
        threads: int = 1,
    ) -> Iterator[tuple[int, U]]:
        resource = local if local is not None else stage.setup(0)
        if threads <= 1:
            for index, item in enumerate(items):
                yield index, stage.work(resource, item)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = {pool.submit(stage.work, resource, item): index for index, item in enumerate(items)}
            for future in futures if ordered else as_completed(futures):
                yield futures[future], future.result()

    def close(self) -> None:
        return None


LOCAL = LocalEngine()


@contextmanager
def open_engine(settings: BatchSettings) -> Iterator[Engine]:
    """The engine ``settings`` ask for, for the duration of the block (then closed).

    For Ray this connects (or starts a local Ray) on entry, so the caller
    enters it before opening anything for writing: an address that does not
    answer, or Ray not installed, is a :class:`LectureRagError` with nothing
    written.
    """
    engine = _start(settings)
    try:
        yield engine
    finally:
        engine.close()


def _start(settings: BatchSettings) -> Engine:
    if settings.engine == "local":
        return LocalEngine()
    ray_auth_env(settings)
    try:
        from lecture_rag.batch.ray_engine import RayEngine
    except ImportError as exc:
        if exc.name != "ray" and not str(exc.name or "").startswith("ray."):
            raise
        raise LectureRagError(
            f"--engine ray precisa do pacote ray, que não está instalado. Instale o extra com: {_INSTALL_HINT} "
            "(ou use --engine local)."
        ) from None
    return RayEngine.connect(settings)


def ray_auth_env(settings: BatchSettings) -> None:
    """Send this machine's Ray token to a cluster given by address, unless ``RAY_AUTH_MODE`` says otherwise.

    Why: clusters started with ``ray start`` (Ray 2.5x) require the token when
    the head has one (``~/.ray/auth_token``), but a driver given an explicit
    address sends it only with ``RAY_AUTH_MODE=token``; without it the join
    retries until the timeout. Ray makes the same choice for a cluster it finds
    with ``auto``, and a cluster without authentication ignores the token.
    Ray reads the variable when it is imported, hence before the import.
    """
    address = settings.ray_address.strip() or os.environ.get("RAY_ADDRESS", "").strip()
    if address and "RAY_AUTH_MODE" not in os.environ and token_at_hand():
        os.environ["RAY_AUTH_MODE"] = "token"


def token_at_hand() -> bool:
    """Whether Ray would find an authentication token here (the places ``ray`` itself looks)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return os.path.isfile(path)


__all__ = ["LOCAL", "Engine", "LocalEngine", "Stage", "open_engine"]
