"""Server-sent events for /api/ask: the synchronous answer engine bridged to an async stream.

:meth:`AnswerEngine.answer` blocks (embedding, LLM streaming), so it runs in
a worker thread; its callbacks put events on an asyncio queue through
``call_soon_threadsafe`` and the response drains the queue. Events, in order:
``hits`` (once), ``token`` (one or more), ``done`` (the final answer), or
``error`` instead of ``done``. An extractive answer is produced whole, so it
is sent as one ``token`` per line, keeping the order the same in every mode.

When the client goes away, the next token callback raises in the worker,
which stops an LLM generation nobody will read; a question still waiting
for a worker is dropped. The question's :class:`AnswerSlot` is given back
when its worker ends, or when the response ends if no worker ever took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.records import Answer, Hit
from lecture_rag.web.media import MediaLinks
from lecture_rag.web.models import AskRequest
from lecture_rag.web.resources import AnswerSlot, Resources
from lecture_rag.wire import to_data

log = logging.getLogger(__name__)

Emit = Callable[[str, Any], None]
_END = "end"
INTERNAL_ERROR = "Erro interno ao responder. Tente de novo; se persistir, veja o log do servidor."


class _Cancelled(Exception):
    """The client disconnected; unwinds the answer engine from inside a callback."""


def format_event(event: str, data: Any) -> str:
    """One SSE message; JSON on a single line, so newlines in the text cannot break the framing."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _emitter(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[tuple[str, Any]]) -> Emit:
    def emit(event: str, data: Any) -> None:
        # A closed loop (server shutting down) raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, (event, data))

    return emit


def _answer(
    resources: Resources, req: AskRequest, emit: Emit, cancelled: threading.Event, media: MediaLinks | None
) -> Answer:
    streamed = False

    def on_hits(hits: list[Hit]) -> None:
        if media is not None:
            media.segments(hits)
        emit("hits", {"hits": to_data(hits)})

    def on_token(text: str) -> None:
        nonlocal streamed
        if cancelled.is_set():
            raise _Cancelled
        streamed = True
        emit("token", {"text": text})

    defaults = resources.settings.retrieval
    with resources.answer_lock:
        answer = resources.engine.answer(
            req.question,
            k=req.k or defaults.k,
            mode=req.mode or defaults.mode,
            course=req.course or None,
            video=req.video or None,
            on_hits=on_hits,
            on_token=on_token,
        )
    if not streamed:
        for line in answer.text.splitlines(keepends=True):
            emit("token", {"text": line})
    return answer if media is None else media.answer(answer)


def run_answer(
    resources: Resources,
    req: AskRequest,
    emit: Emit,
    cancelled: threading.Event,
    slot: AnswerSlot | None = None,
    media: MediaLinks | None = None,
) -> None:
    """The worker: every outcome ends with ``done`` or ``error``, then the end marker; the slot is given back."""
    try:
        if cancelled.is_set():
            return  # the client left while the question waited for a worker
        answer = _answer(resources, req, emit, cancelled, media)
        if not answer.extractive:
            resources.llm_health.answered(failed=bool(answer.error))
        if answer.error:  # the student sees a plain message; the cause is for whoever runs the server
            log.warning("o LLM falhou ao responder: %s", answer.error)
        emit("done", to_data(answer))
    except _Cancelled:
        log.info("cliente desconectou; resposta interrompida")
    except LectureRagError as exc:
        log.warning("pergunta não respondida: %s", exc)
        emit("error", {"message": str(exc)})
    except Exception:
        log.exception("falha ao responder a pergunta")
        emit("error", {"message": INTERNAL_ERROR})
    finally:
        if slot is not None:
            slot.release()
        emit(_END, None)


async def ask_events(
    resources: Resources, req: AskRequest, slot: AnswerSlot | None = None, media: MediaLinks | None = None
) -> AsyncIterator[str]:
    """The SSE body of one question; ``media`` gives its lectures their playable URLs (:mod:`.media`)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancelled = threading.Event()
    if slot is not None:
        slot.handed_to_worker = True
    loop.run_in_executor(resources.executor, run_answer, resources, req, _emitter(loop, queue), cancelled, slot, media)
    try:
        while True:
            event, data = await queue.get()
            if event == _END:
                return
            yield format_event(event, data)
    finally:
        cancelled.set()
