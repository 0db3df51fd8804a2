"""The local engine: the in-process loop the stages always ran (one item after another, or the caller's threads)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from lecture_rag.batch.base import Job, R, T, U


class LocalEngine:
    """This process: the caller's own resource, on the caller's threads where it has some."""

    name = "local"
    workers = 1
    in_process = True

    def at_once(self, threads: int) -> int:
        """The caller's threads: the local engine has no workers of its own."""
        return max(1, threads)

    def map(self, job: Job[R, T, U]) -> Iterator[tuple[int, U]]:
        """See :meth:`lecture_rag.batch.base.Engine.map`; on one thread each item runs when its result is asked for."""
        stage = job.stage
        resource = job.local if job.local is not None else stage.setup(0)
        if job.threads <= 1:
            for index, item in enumerate(job.items):
                yield index, stage.work(resource, item)
            return
        pool = ThreadPoolExecutor(max_workers=job.threads)
        try:
            futures = {pool.submit(stage.work, resource, item): index for index, item in enumerate(job.items)}
            for future in futures if job.ordered else as_completed(futures):
                yield futures[future], future.result()
        finally:
            # When the caller stops early (a failed write, a failed item, Ctrl-C), the items not started are
            # dropped: waiting for every one of them (each failing slowly against a database that went
            # away) held the process for minutes after its error.
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        return None


LOCAL = LocalEngine()
