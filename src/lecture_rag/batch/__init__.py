"""Batch engines: one way to run a stage function over many work items, in this process or on a Ray cluster.

Why: transcription (a media file), embedding (a batch of texts) and question
runs (a question) are independent per work item, so they spread over many
cores or machines; the store, though, has one writer. A :class:`Stage` is a
stage function plus how a worker builds the model it needs; an
:class:`Engine` hands the items out and gives the results back to the
caller, which writes each one to the store (or the embedding cache) as it
comes. A killed job therefore loses at most the items in flight, and the
rerun does only what the store lacks.

* :mod:`.base`: the :class:`Stage` and the :class:`Engine` protocol callers
  are written against; what differs between engines is said by the engine
  (``in_process``, ``at_once``), never asked of its class.
* :mod:`.local`: :class:`LocalEngine` (the default), the in-process loop the
  stages always ran: the caller's own model, and the caller's threads where
  it has some.
* :mod:`.ray`: ``RayEngine`` (``--engine ray``) runs a pool of Ray actors per
  stage, each building its model once from the stage's settings; results
  stream back as they finish (``ray.wait``).

:func:`open_engine` is the one place an engine is picked from ``[batch]``.

Ray is an optional extra (``pip install 'lecture-rag[ray]'``): it is imported
only when the Ray engine is asked for, never by importing this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lecture_rag.batch.auth import ray_auth_env
from lecture_rag.batch.base import Engine, Job, LocalOnly, Stage
from lecture_rag.batch.local import LOCAL, LocalEngine
from lecture_rag.config import BatchSettings
from lecture_rag.errors import LectureRagError

_INSTALL_HINT = "pip install 'lecture-rag[ray]'"


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
    ray_auth_env(settings)  # before Ray is imported: it reads the variable then
    try:
        from lecture_rag.batch.ray import RayEngine
    except ImportError as exc:
        if exc.name != "ray" and not str(exc.name or "").startswith("ray."):
            raise
        raise LectureRagError(
            f"--engine ray precisa do pacote ray, que não está instalado. Instale o extra com: {_INSTALL_HINT} "
            "(ou use --engine local)."
        ) from None
    return RayEngine.connect(settings)


__all__ = ["LOCAL", "Engine", "Job", "LocalEngine", "LocalOnly", "Stage", "open_engine"]
