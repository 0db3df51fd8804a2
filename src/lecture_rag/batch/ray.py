"""The Ray engine: stage functions in Ray actors, results streamed back to the one writer (this process).

Each stage gets a pool of ``workers`` actors; an actor builds the stage's
resource once (``Stage.setup``: a Whisper model, an embedder, an answer
engine with its judges) and then runs the stage function on every item it
is sent. Two items are queued per actor, so an actor never waits for the
driver. Results come back with ``ray.wait`` as they finish; this process
writes them (the actors never write the store), so a killed job loses at most
the items in flight.

Scaling model: the items of a stage run ``workers`` at a time, one actor per
CPU of the cluster by default (an actor's share of CPUs sets its model's
threads). What does not spread: the one writer (each result is a short
transaction here), the reading of the corpus before a stage, and the index
build after it (vector and BM25 indexes are built in this process). On this
2-core machine a local Ray gains nothing over the local engine, which
already keeps both cores busy (``bench/bench_ray.py``); on N machines the
embedding and transcription stages scale with the cluster's cores until the
single writer or the network, not the models, is the bottleneck.

Connecting: ``ray.init`` retries an address that does not answer for
minutes, so the address is first probed with a plain TCP connection
(seconds), and the join itself is bounded by ``[batch] connect_timeout``.
Token authentication (``RAY_AUTH_MODE``) is settled before Ray is imported:
see :func:`lecture_rag.batch.auth.ray_auth_env`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import ray
from ray.exceptions import RayError

from lecture_rag.batch.auth import token_at_hand
from lecture_rag.batch.base import Job, R, Stage, T, U
from lecture_rag.config import BatchSettings
from lecture_rag.errors import LectureRagError

_DEPTH = 2  # items queued per actor: one running, one waiting
_PROBE_SECONDS = 3.0  # a TCP connect to a live cluster takes milliseconds


class _Worker:
    """One actor of a stage's pool: its resource is built once; every item goes through the stage function.

    Errors come back as values, so the driver raises the original exception
    (a user error keeps its message), and a model that could not be built is
    said on the first item rather than as a dead actor.
    """

    def __init__(self, setup: Callable[[int], Any], cpus: int) -> None:
        self._resource: Any = None
        self._failed: Exception | None = None
        try:
            self._resource = setup(cpus)
        except Exception as exc:
            self._failed = exc

    def run(self, work: Callable[[Any, Any], Any], item: Any) -> tuple[bool, Any]:
        if self._failed is not None:
            return False, self._failed
        try:
            return True, work(self._resource, item)
        except Exception as exc:
            return False, exc


_RemoteWorker = ray.remote(_Worker)


class RayEngine:
    """Pools of Ray actors, one stage at a time (an idle pool would hold CPUs the next stage needs)."""

    name = "ray"
    in_process = False

    def __init__(self, *, workers: int, share: float, owned: bool, address: str) -> None:
        self.workers = workers
        self.address = address
        self._share = share
        self._owned = owned  # this engine called ray.init, so it shuts the session down
        self._pools: dict[str, list[Any]] = {}

    @classmethod
    def connect(cls, settings: BatchSettings) -> RayEngine:
        """Join the cluster at ``ray_address`` (or ``RAY_ADDRESS``), else start a Ray on this machine.

        A Ray session this process already holds (a test's, a notebook's) is
        used as it is and left open at the end.
        """
        address = settings.ray_address.strip() or os.environ.get("RAY_ADDRESS", "").strip()
        owned = not ray.is_initialized()
        if owned and address:
            _join(address, settings.connect_timeout)
        elif owned:
            _start_local(settings.workers)
        return cls._sized(settings.workers, owned=owned, address=address or "local")

    @classmethod
    def _sized(cls, requested: int, *, owned: bool, address: str) -> RayEngine:
        """``requested`` actors (0: one per CPU), each reserving an equal share of the CPUs that fits on a node."""
        total = float(ray.cluster_resources().get("CPU", 0.0))
        workers = requested or max(1, int(total))
        nodes = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
        share = min(total / workers, max(nodes, default=total)) if total else 0.0
        return cls(workers=workers, share=share, owned=owned, address=address)

    def at_once(self, threads: int) -> int:
        """The actors: the caller's threads are of no use to them."""
        return self.workers

    def map(self, job: Job[R, T, U]) -> Iterator[tuple[int, U]]:
        """Feed the stage's actors and yield each result as it finishes (or in order); see :class:`Engine`."""
        stage, items = job.stage, job.items
        if not items:
            return
        actors = self._pool(stage, min(self.workers, len(items)))
        queue = deque(enumerate(items))
        pending: dict[Any, tuple[int, Any]] = {}
        finished = False
        try:
            for actor in actors:
                self._feed(actor, stage, queue, pending, _DEPTH)
            yield from self._drain(stage, queue, pending, job.ordered)
            finished = True
        finally:
            if not finished:  # an error or a caller that stopped early: stop the work in flight
                self._release(stage.name)

    def _drain(
        self, stage: Stage[R, T, U], queue: deque[tuple[int, T]], pending: dict[Any, tuple[int, Any]], ordered: bool
    ) -> Iterator[tuple[int, U]]:
        waiting: dict[int, U] = {}
        next_out = 0
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(ref)
            value = self._result(stage, ref)
            self._feed(actor, stage, queue, pending, 1)
            if not ordered:
                yield index, value
                continue
            waiting[index] = value
            while next_out in waiting:
                yield next_out, waiting.pop(next_out)
                next_out += 1

    @staticmethod
    def _feed(
        actor: Any, stage: Stage[R, T, U], queue: deque[tuple[int, T]], pending: dict[Any, tuple[int, Any]], n: int
    ) -> None:
        for _ in range(n):
            if not queue:
                return
            index, item = queue.popleft()
            pending[actor.run.remote(stage.work, item)] = (index, actor)

    @staticmethod
    def _result(stage: Stage[R, T, U], ref: Any) -> U:
        try:
            ok, value = ray.get(ref)
        except RayError as exc:
            raise LectureRagError(
                f"Um trabalhador do Ray parou no meio da etapa '{stage.name}' ({type(exc).__name__}: "
                f"{_first_line(exc)}). O que já terminou está gravado: rode o comando de novo para fazer só o que "
                "falta, ou use --engine local."
            ) from None
        if not ok:
            raise value
        return value

    def _pool(self, stage: Stage[R, T, U], wanted: int) -> list[Any]:
        """The stage's actors, at least ``wanted`` of them (no more than there are items: each loads a model)."""
        if stage.name not in self._pools:
            self._release_all()
            self._pools[stage.name] = []
        pool = self._pools[stage.name]
        options = _RemoteWorker.options(num_cpus=self._share)
        while len(pool) < wanted:
            pool.append(options.remote(stage.setup, max(1, int(self._share))))
        return pool

    def _release(self, name: str) -> None:
        for actor in self._pools.pop(name, []):
            ray.kill(actor)

    def _release_all(self) -> None:
        for name in list(self._pools):
            self._release(name)

    def close(self) -> None:
        """Stop the actors; end the session this engine opened (a local Ray stops, a cluster is only left)."""
        try:
            self._release_all()
        finally:
            if self._owned:
                ray.shutdown()


def _start_local(workers: int) -> None:
    """A Ray on this machine for the command: ``workers`` CPUs, or all of them; no dashboard, quiet workers."""
    try:
        ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:  # a full /tmp, a port clash: Ray's many ways to fail to start
        raise LectureRagError(
            f"Não foi possível iniciar um Ray local nesta máquina ({type(exc).__name__}: {_first_line(exc)}). "
            "Confira o espaço em /tmp e a memória livre, passe --ray-address de um cluster, ou use --engine local."
        ) from None


def _join(address: str, timeout: float) -> None:
    """Connect to the cluster at ``address`` within ``timeout`` seconds, or say why not."""
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=min(timeout, _PROBE_SECONDS)).close()
        except OSError as exc:
            raise _unreachable(address, exc.strerror or str(exc) or type(exc).__name__) from None
    outcome: dict[str, BaseException | None] = {}

    def init() -> None:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            outcome["error"] = None
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=init, name="ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" not in outcome:
        why = f"não respondeu como um cluster Ray em {timeout:g} s"
        if not token_at_hand():
            why += "; se ele exige token, defina RAY_AUTH_TOKEN ou copie o token do nó principal para ~/.ray/auth_token"
        raise _unreachable(address, why)
    error = outcome["error"]
    if error is not None:
        raise _unreachable(address, f"{type(error).__name__}: {_first_line(error)}")


def _host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``ray://HOST:PORT``; anything else is refused with the forms that work."""
    text = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = text.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LectureRagError(
            f"Endereço do Ray inválido: '{address}'. Use HOST:PORTA (a porta do GCS do nó principal, 6379 por "
            "padrão), ray://HOST:10001 ou auto, em --ray-address, [batch] ray_address ou RAY_ADDRESS."
        )
    return host, int(port)


def _unreachable(address: str, why: str) -> LectureRagError:
    return LectureRagError(
        f"O cluster Ray em {address} não respondeu ({why}). Confira se ele está no ar ('ray status --address "
        f"{address}') e o endereço em --ray-address, [batch] ray_address ou RAY_ADDRESS; sem endereço, o "
        "lecture-rag inicia um Ray local nesta máquina. Nada foi gravado."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:300] + "…"
