"""What every batch engine is: the :class:`Stage` it runs and the :class:`Engine` protocol.

Why a module of its own (like httpx's ``BaseTransport``): callers (ingest,
indexing, runs, judge evaluations) are written against this protocol only;
what differs between engines is said by the engine itself
(:attr:`Engine.in_process`, :meth:`Engine.at_once`), never asked of its class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, NoReturn, Protocol, TypeVar

from lecture_rag.errors import LectureRagError

R = TypeVar("R")  # what a worker builds once (a model)
T = TypeVar("T")  # one work item
U = TypeVar("U")  # its result


@dataclass(frozen=True, slots=True)
class Stage(Generic[R, T, U]):
    """A stage function and how a worker builds, once, what the function needs.

    ``setup(cpus)`` builds the worker's resource (a model) from the settings
    it carries; ``cpus`` is the worker's share of cores, for the model's
    thread count (0: every core of this machine, as a local run uses).
    ``work(resource, item)`` is the stage function. Both must pickle (module
    functions, bound methods of frozen specs, or :func:`functools.partial` of
    them over settings) so that they reach Ray actors. ``name`` keys the
    actors: consecutive stages of one name (segments, then passages) reuse
    the same loaded models.
    """

    name: str
    setup: Callable[[int], R]
    work: Callable[[R, T], U]


@dataclass(frozen=True, slots=True)
class Job(Generic[R, T, U]):
    """A stage over its items, and how the caller wants them: the one value an engine's :meth:`~Engine.map` takes.

    ``ordered``: results in the items' order (else as they finish).
    ``local`` is the resource this process already holds (an in-process
    engine uses it instead of calling ``stage.setup``); ``threads`` is how
    many threads an in-process engine may share it with (it must then be
    thread-safe). Other engines ignore both: their workers build their own.
    """

    stage: Stage[R, T, U]
    items: Sequence[T]
    ordered: bool = False
    local: R | None = None
    threads: int = 1


@dataclass(frozen=True, slots=True)
class LocalOnly:
    """The setup of a stage whose resource only the caller holds (made without the settings a worker needs).

    Only an in-process engine, given the caller's resource, can run such a
    stage; another engine's workers say ``why`` on their first item.
    """

    why: str

    def __call__(self, cpus: int) -> NoReturn:
        raise LectureRagError(self.why)


class Engine(Protocol):
    """Runs a stage over work items and yields ``(index of the item, result)``."""

    @property
    def name(self) -> str:
        """``local`` or ``ray``: what messages and run summaries say."""
        ...

    @property
    def workers(self) -> int:
        """How many workers of its own the engine runs items on (1 for the local loop)."""
        ...

    @property
    def in_process(self) -> bool:
        """Whether stage functions run in this process, on the caller's resource and threads.

        Then a stage function may do what cannot travel to another process:
        return an iterator that streams into the store, call back (progress),
        or use the caller's model. Otherwise items, resources' settings and
        results must pickle, and progress is counted in items.
        """
        ...

    def at_once(self, threads: int) -> int:
        """How many items run at once when the caller may share its resource on ``threads`` threads."""
        ...

    def map(self, job: Job[R, T, U]) -> Iterator[tuple[int, U]]:
        """``(index of the item, result)`` for each item of ``job``, as they finish or in order.

        An exception raised by the stage function is raised here. The local
        engine runs an item only when the caller asks for its result, so a
        caller that stores each result before the next one streams.
        """
        ...

    def close(self) -> None:
        """Let go of the workers (and of a session the engine started)."""
        ...
