"""The JSON/SSE API under /api; the pages call the same endpoints.

Sync endpoints run in FastAPI's thread pool; the shared retriever takes its
own lock, and the store gives each thread its own connection (see
:mod:`lecture_rag.web.resources`). A path parameter (a run name) only ever
reaches SQL as a bound parameter, never the filesystem.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.types import Receive, Scope, Send

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import LabelScheme, scheme_of_run
from lecture_rag.evaluate.summary import auto_label, run_summary
from lecture_rag.llm.check import check_llm
from lecture_rag.records import RunItem, Video
from lecture_rag.retrieve import SearchRequest
from lecture_rag.store import RunSummary
from lecture_rag.web.llm_health import LABELS as LLM_LABELS
from lecture_rag.web.media import MediaLinks
from lecture_rag.web.models import (
    MAX_K,
    MAX_NAME_CHARS,
    MAX_QUESTION_CHARS,
    AnnotationIn,
    AnnotationSaved,
    AskRequest,
    ErrorOut,
    HealthOut,
    LLMHealthOut,
    Mode,
    RecordsOut,
    SearchOut,
    SessionOut,
)
from lecture_rag.web.payloads import labels_out, record_out
from lecture_rag.web.resources import AnswerSlot, Resources
from lecture_rag.web.security import SESSION_COOKIE, bearer, check_reader, check_token
from lecture_rag.web.sse import ask_events
from lecture_rag.wire import to_data

router = APIRouter(prefix="/api", tags=["api"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "pedido que não pode ser atendido (mensagem em português)"},
    413: {"model": ErrorOut, "description": "corpo maior que 64 KB"},
    422: {"model": ErrorOut, "description": "campos inválidos"},
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "servidor compartilhado na rede: ler rodadas exige o token ou login"},
    404: {"model": ErrorOut, "description": "rodada inexistente"},
}
BUSY = 503
ASK_RETRY_AFTER_S = 5
SSE_DESCRIPTION = (
    "Server-sent events, in order: `hits` (SseHits) once, `token` (SseToken) one or more, then `done` "
    "(Answer); or `error` (SseError) instead of `done`. Each `data:` line is one JSON object."
)


def resources_of(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


Res = Annotated[Resources, Depends(resources_of)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_token(request: Request, credentials: Credentials) -> None:
    check_token(request, credentials)


def require_reader(request: Request, credentials: Credentials) -> None:
    check_reader(request, credentials)


class AnswerStream(StreamingResponse):
    """The SSE response of one question; gives its slot back if the stream ends before a worker took it."""

    def __init__(self, content: Any, slot: AnswerSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.slot.handed_to_worker:
                self.slot.release()


def open_run(resources: Resources, name: str) -> tuple[LabelScheme, list[RunItem]]:
    """The run's label scheme and items, or 404 with the runs that exist."""
    config = resources.runs.get_config(name)
    if config is None:
        known = ", ".join(resources.runs.names()) or "nenhuma"
        raise HTTPException(404, f"Rodada '{name}' não existe (rodadas: {known}). Crie com 'lecture-rag run'.")
    return scheme_of_run(config), resources.runs.items(name)


@router.get("/health", response_model=HealthOut, summary="Estado do servidor e do acervo")
def health(
    res: Res,
    llm: Annotated[bool, Query(description="também testar o LLM das respostas (uma geração curta)")] = False,
) -> HealthOut:
    videos, segments = res.counts()
    index = res.watcher.status()
    checked = None
    if llm:
        with res.answer_lock:
            checked = check_llm(res.settings.llm, res.engine.llm)
    return HealthOut(
        status="degraded" if res.problem else "ok",
        videos=videos,
        segments=segments,
        embedder=res.retriever.embedder.name,
        llm=res.llm_name,
        stale_index=index.corpus_version != index.store_version,
        problem=res.problem,
        index=index,
        llm_check=checked,
    )


@router.get("/llm", response_model=LLMHealthOut, summary="O LLM das respostas está disponível? (selo do cabeçalho)")
def llm_health(res: Res, response: Response) -> LLMHealthOut:
    """A probe of the LLM's server, bounded by its connect timeout, at most every 30 s (the pages poll this)."""
    state = res.llm_health.refresh()
    response.headers["Cache-Control"] = "no-store"
    return LLMHealthOut(state=state, label=LLM_LABELS[state])


@router.post(
    "/ask",
    summary="Responder a uma pergunta (SSE: hits → token… → done)",
    response_class=StreamingResponse,
    responses={
        200: {"description": SSE_DESCRIPTION, "content": {"text/event-stream": {}}},
        **ERRORS,
        BUSY: {"model": ErrorOut, "description": "perguntas demais em andamento; tente após Retry-After segundos"},
    },
)
async def ask(request: Request, body: AskRequest, res: Res) -> StreamingResponse:
    slot = res.slots.take()
    if slot is None:
        raise HTTPException(
            BUSY,
            f"Servidor ocupado: {res.slots.limit} perguntas já estão sendo respondidas ou esperando. "
            f"Tente de novo em {ASK_RETRY_AFTER_S} segundos.",
            headers={"Retry-After": str(ASK_RETRY_AFTER_S)},
        )
    return AnswerStream(
        ask_events(res, body, slot, MediaLinks.of(request)),
        slot,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/search", response_model=SearchOut, responses=ERRORS, summary="Buscar segmentos")
def search(
    http: Request,
    res: Res,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="a pergunta")],
    k: Annotated[int | None, Query(ge=1, le=MAX_K)] = None,
    mode: Mode | None = None,
    course: Annotated[str | None, Query(max_length=200)] = None,
    video: Annotated[str | None, Query(max_length=200)] = None,
) -> SearchOut:
    k = k or res.settings.retrieval.k
    chosen = mode or res.settings.retrieval.mode
    request = SearchRequest(q, k=k, mode=chosen, course=course or None, video=video or None)
    hits = list(res.retriever.search(request).hits)
    MediaLinks.of(http).segments(hits)
    return SearchOut(query=q, mode=chosen, k=k, hits=hits)


@router.get("/videos", response_model=list[Video], summary="Aulas do acervo")
def videos(request: Request, res: Res) -> list[Video]:
    links = MediaLinks.of(request)
    return [links.video(v) for v in res.store.list_videos()]


@router.get(
    "/session",
    response_model=SessionOut,
    responses={401: {"model": ErrorOut}},
    summary="O token desta sessão de navegador (aberta pelo link de login), para o cabeçalho das escritas",
)
def session(request: Request, response: Response, res: Res) -> SessionOut:
    if not res.sessions.valid(request.cookies.get(SESSION_COOKIE)):
        raise HTTPException(401, "Sem sessão: abra o link de login impresso por 'lecture-rag serve' ou use /login.")
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(token=res.token)


@router.get(
    "/runs",
    response_model=list[RunSummary],
    dependencies=[Depends(require_reader)],
    responses={401: READ_ERRORS[401]},
    summary="Rodadas de avaliação",
)
def runs_list(res: Res) -> Any:
    return to_data(res.runs.summaries())  # each run's configuration as stored (the response model checks it)


@router.get(
    "/runs/{name}/records",
    response_model=RecordsOut,
    dependencies=[Depends(require_reader)],
    responses=READ_ERRORS,
    summary="Registros de uma rodada (rótulo automatizado oculto até o anotador rotular)",
)
def run_records(
    name: str,
    res: Res,
    annotator: Annotated[str | None, Query(max_length=MAX_NAME_CHARS, description="quem anota")] = None,
) -> RecordsOut:
    who = " ".join(annotator.split()) if annotator else None
    scheme, items = open_run(res, name)
    records = [record_out(item, who) for item in items]
    done = [who is not None and who in item.annotations for item in items]
    return RecordsOut(
        run=name,
        total=len(items),
        annotator=who,
        annotated_by_annotator=sum(done),
        first_pending=next((i for i, d in enumerate(done) if not d), len(items)),
        labels=labels_out(scheme),
        records=records,
    )


@router.post(
    "/runs/{name}/annotations",
    response_model=AnnotationSaved,
    dependencies=[Depends(require_token)],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, **ERRORS},
    summary="Gravar o rótulo de um anotador (requer o token)",
)
def annotate(name: str, body: AnnotationIn, res: Res) -> AnnotationSaved:
    scheme, items = open_run(res, name)
    code = scheme.resolve(body.label)
    if code is None:
        raise HTTPException(422, f"rótulo desconhecido {body.label!r}: use um de {', '.join(scheme.codes)}")
    item = next((i for i in items if i.qid == body.qid), None)
    if item is None:
        raise HTTPException(404, f"A rodada '{name}' não tem a pergunta '{body.qid}'.")
    res.runs.annotate(name, body.qid, body.annotator, code, body.comment)
    done = sum(1 for i in items if body.annotator in i.annotations or i.qid == body.qid)
    return AnnotationSaved(
        run=name,
        qid=body.qid,
        annotator=body.annotator,
        label=code,
        comment=body.comment,
        auto_label=auto_label(item),
        annotated_by_annotator=done,
        total=len(items),
    )


@router.get(
    "/runs/{name}/agreement",
    dependencies=[Depends(require_reader)],
    responses=READ_ERRORS,
    summary="Concordância manual × automatizada e entre anotadores (números do relatório)",
)
def run_agreement(name: str, res: Res) -> dict[str, Any]:
    scheme, items = open_run(res, name)
    try:
        return dict(to_data(run_summary(items, scheme)))
    except LectureRagError as exc:
        raise HTTPException(400, str(exc)) from exc
