"""The HTTP server under the app: uvicorn, with limits for clients that connect and never ask.

uvicorn closes a kept-alive connection after ``timeout_keep_alive``, but a
connection that never sends a complete request head stays open for ever,
and uvicorn accepts connections until the process runs out of file
descriptors. Then every ``accept`` fails and logs a traceback, and nothing,
``/api/health`` included, is answered. Here:

* a connection must send its request head within ``header_timeout`` seconds
  of opening (or of its first byte after a kept-alive pause), else it is
  closed;
* a request body must arrive within ``body_timeout`` seconds, and after
  ``header_timeout`` seconds keep up ``body_min_rate`` bytes/s on average,
  else the connection is closed (a client trickling a byte now and then
  would otherwise hold its connection for ever);
* at most ``max_connections`` are open; that and the listen backlog (asyncio
  accepts a backlog's worth at once) are fitted below the process's
  descriptor limit (:func:`connection_budget`). A new connection beyond the
  limit closes the oldest one still waiting for a request head, or else the
  oldest one whose body has been arriving for over :data:`BODY_STALLED_S`
  (an idle or trickling flood cannot lock out a real client); if every open connection is busy
  with a request, the new one's request is answered 503 with
  ``Retry-After`` and the connection closed;
* a warning repeated many times (a failing ``accept``, the limit reached)
  is logged once with its traceback, then at most once per
  :data:`LOG_INTERVAL_S` seconds as one line with the count since.

uvicorn's own ``limit_concurrency`` is not used: it counts idle connections
too, so an idle flood would turn every real request into 503.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from lecture_rag.config import WebSettings

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0
# Descriptors the server needs besides its connections: two per SQLite connection, one of those per
# request thread (anyio's pool: 40) and per answer worker, plus the index, models, logs and sockets.
REQUEST_THREADS = 40
FD_SPARE = 64
# Connections beyond the limit while every open one is busy: each is answered 503 once its request
# head arrives (within REFUSE_HEAD_S), so the client reads the answer instead of a reset.
REFUSING_MAX = 32
REFUSE_HEAD_S = 1.0
RETRY_AFTER_S = 1
BUSY_DETAIL = "Servidor no limite de conexões simultâneas. Tente de novo em instantes."
# A body still arriving after this long is "stalled": its connection may be closed for a new one
# (bodies are at most 64 KB; a real client sends one in milliseconds).
BODY_STALLED_S = 1.0
BODY_CHECK_S = 0.5  # how often a body's pace is checked


async def busy_app(scope: Any, receive: Any, send: Any) -> None:
    """The answer to a request on a connection beyond the limit: 503 with Retry-After, then close."""
    body = json.dumps({"detail": BUSY_DETAIL}, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RepeatedLogFilter(logging.Filter):
    """Let a warning through once, then once per ``interval`` as one line with the count since.

    Records are "the same" when their logger, level, first line of the
    message template and exception type match (arguments such as a client's
    address may differ). The first one keeps its traceback; the later
    summary lines do not. Records below WARNING pass untouched.
    """

    MAX_KEYS = 1000

    def __init__(self, interval: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._windows: dict[tuple[str, int, str, str], list[float]] = {}  # key → [window start, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0], exc)
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= self.MAX_KEYS:
                    self._windows.pop(next(iter(self._windows)))
                self._windows[key] = [now, 0]
                return True
            if now - window[0] < self.interval:
                window[1] += 1
                return False
            suppressed = int(window[1])
            window[0], window[1] = now, 0
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        record.msg = (
            f"{record.msg} [repetido: mais {suppressed + 1} vez(es) em {self.interval:.0f} s]"
            if suppressed
            else f"{record.msg} [repetido]"
        )
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with :class:`RepeatedLogFilter` on its handler and on the root logger's.

    The root handler carries what asyncio logs (a failing ``accept``) and
    this package's own warnings, which otherwise reach stderr unfiltered.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"repeated": {"()": RepeatedLogFilter}}
    config["handlers"]["default"]["filters"] = ["repeated"]
    config["handlers"]["access"]["filters"] = ["repeated"]
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


def fd_reserve(answer_workers: int) -> int:
    """Descriptors kept for everything but connections."""
    return 2 * (REQUEST_THREADS + answer_workers) + FD_SPARE + REFUSING_MAX


@dataclass(frozen=True, slots=True)
class Budget:
    """Connections and listen backlog that fit the process's descriptors (``fd_limit`` -1: no limit)."""

    max_connections: int
    backlog: int
    fd_limit: int = -1


def connection_budget(web: WebSettings) -> Budget:
    """``web``'s connection limit and backlog, lowered to fit the descriptor limit (raised first if it can be).

    asyncio accepts up to ``backlog`` waiting connections in one go, before
    any of them reaches the guard; so the descriptors must cover the open
    connections, one backlog's worth in flight, and everything else the
    server holds (:func:`fd_reserve`).
    """
    reserve = fd_reserve(web.answer_workers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = web.max_connections + web.backlog + reserve
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return Budget(web.max_connections, web.backlog, -1 if soft == resource.RLIM_INFINITY else soft)
    room = max(0, soft - reserve)
    backlog = min(web.backlog, max(16, room // 4))
    return Budget(max(8, min(web.max_connections, room - backlog)), backlog, soft)


@dataclass
class ConnectionGuard:
    """The open connections of one server, and which of them wait for a request head (oldest first)."""

    limit: int
    header_timeout: float
    body_timeout: float = 30.0
    body_min_rate: int = 0
    open: set[GuardedH11Protocol] = field(default_factory=set)
    waiting: dict[GuardedH11Protocol, None] = field(default_factory=dict)
    receiving: dict[GuardedH11Protocol, float] = field(default_factory=dict)  # body started at (monotonic)
    refusing: set[GuardedH11Protocol] = field(default_factory=set)
    evicted: int = 0
    refused: int = 0
    timed_out: int = 0

    def body_too_slow(self, elapsed: float, received: int) -> bool:
        """Whether a body ``elapsed`` seconds in with ``received`` bytes has missed its deadline or pace."""
        if elapsed > self.body_timeout:
            return True
        grace = self.header_timeout
        return self.body_min_rate > 0 and elapsed > grace and received < self.body_min_rate * (elapsed - grace)

    def evictable(self) -> GuardedH11Protocol | None:
        """The oldest connection waiting for a head, else the oldest whose body is stalled, else None."""
        oldest = next(iter(self.waiting), None)
        if oldest is not None:
            return oldest
        stalled, since = next(iter(self.receiving.items()), (None, 0.0))
        return stalled if stalled is not None and time.monotonic() - since > BODY_STALLED_S else None

    def admit(self, conn: GuardedH11Protocol) -> bool:
        """Count ``conn`` in, making room by closing an idle or stalled connection; False if none can go."""
        if len(self.open) >= self.limit:
            oldest = self.evictable()
            if oldest is None:
                self.refused += 1
                log.warning("Limite de %d conexões atingido, todas ocupadas: conexão nova recusada (503).", self.limit)
                return False
            self.evicted += 1
            log.warning("Limite de %d conexões atingido: a mais antiga sem pedido (ou parada) foi fechada.", self.limit)
            self.forget(oldest)
            oldest.transport.close()
        self.open.add(conn)
        return True

    def forget(self, conn: GuardedH11Protocol) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)
        self.receiving.pop(conn, None)
        self.refusing.discard(conn)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with head and body deadlines and the connection limit of :class:`ConnectionGuard`."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_bytes = 0
        self._admitted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.guard.admit(self):
            self._admitted = True
            self._wait_for_head(start_clock=True)
        elif len(self.guard.refusing) < REFUSING_MAX:
            # Read the request head before answering 503: closing with it unread would reset the
            # connection and the client might never see the answer.
            self.guard.refusing.add(self)
            self.app = busy_app
            self._start_clock(REFUSE_HEAD_S)
        else:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        self._stop_body_clock()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._admitted and self._head_timer is None and self._awaiting_head():
            self._start_clock()  # the first bytes of a request on a kept-alive connection
        if self._body_timer is not None:
            self._body_bytes += len(data)
        super().data_received(data)
        self._check_head()
        self._check_body()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._admitted and not self.transport.is_closing() and self._awaiting_head():
            # Idle between requests: the keep-alive timeout governs until the next request's first byte.
            self._wait_for_head(start_clock=False)
        else:
            self._check_head()
        self._check_body()

    # -- the request-head deadline -------------------------------------------
    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _wait_for_head(self, start_clock: bool) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.waiting[self] = None
        if start_clock:
            self._start_clock()

    def _check_head(self) -> None:
        if not self._awaiting_head() or self.transport.is_closing():
            self.guard.waiting.pop(self, None)
            self._stop_clock()

    def _start_clock(self, seconds: float | None = None) -> None:
        self._stop_clock()
        self._head_timer = self.loop.call_later(seconds or self.guard.header_timeout, self._head_timeout)

    def _stop_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and not self.transport.is_closing():
            self.guard.timed_out += 1
            self.guard.forget(self)
            self.transport.close()

    # -- the request-body deadline -------------------------------------------
    def _in_body(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing()

    def _check_body(self) -> None:
        """Start the body clock when a request's head is in and its body is not; stop it when the body is."""
        if not self._admitted:
            return
        if self._in_body():
            if self._body_timer is None:
                self._body_bytes = 0
                self.guard.receiving[self] = time.monotonic()
                self._body_timer = self.loop.call_later(BODY_CHECK_S, self._body_tick)
        elif self._body_timer is not None:
            self._stop_body_clock()

    def _stop_body_clock(self) -> None:
        self.guard.receiving.pop(self, None)
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_tick(self) -> None:
        self._body_timer = None
        started = self.guard.receiving.get(self)
        if started is None or not self._in_body():
            self._stop_body_clock()
            return
        if self.guard.body_too_slow(time.monotonic() - started, self._body_bytes):
            self.guard.timed_out += 1
            log.warning("Corpo de pedido lento demais (ou parado): conexão fechada.")
            self._stop_body_clock()
            self.guard.forget(self)
            self.transport.close()
            return
        self._body_timer = self.loop.call_later(BODY_CHECK_S, self._body_tick)


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class bound to one server's guard (uvicorn builds one instance per connection)."""
    bound: type[GuardedH11Protocol] = type("LectureRagHTTP", (GuardedH11Protocol,), {"guard": guard})
    return bound


def make_server(
    app: Any, host: str, port: int, web: WebSettings, budget: Budget | None = None, *, configure_logging: bool = True
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the limits of ``web``, fitted to the descriptors by ``budget``.

    Without ``budget`` the limits are used as given. ``configure_logging=False``
    leaves the process's logging alone (a server started inside another program).
    """
    budget = budget or Budget(web.max_connections, web.backlog)
    guard = ConnectionGuard(
        limit=budget.max_connections,
        header_timeout=web.header_timeout,
        body_timeout=web.body_timeout,
        body_min_rate=web.body_min_rate,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(guard),
        ws="none",  # no WebSocket routes; an upgrade would also leave the guard's count
        backlog=budget.backlog,
        timeout_keep_alive=web.keep_alive_timeout,
        # X-Forwarded-Proto/-For are believed from these addresses only (a reverse proxy: docs/deploy.md).
        proxy_headers=True,
        forwarded_allow_ips=list(web.trusted_proxies),
        timeout_graceful_shutdown=5,
        log_config=log_config() if configure_logging else None,
        log_level="info",
        access_log=False,
    )
    return uvicorn.Server(config)
