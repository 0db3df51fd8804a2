"""The FastAPI application and the function the ``serve`` command calls.

``create_app`` loads the store, embedder, indexes and LLM once (a missing
store fails here, before the server binds, with the usual Portuguese
message) and wires the API, the pages and the security layers. ``serve``
checks the access policy first (serving beyond this machine needs the
allowed host names), then runs uvicorn with the limits of
:mod:`lecture_rag.web.server`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lecture_rag.config import TOKEN_ENV, Settings
from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.records import Answer
from lecture_rag.web import api, media, pages
from lecture_rag.web.models import SseError, SseHits, SseToken
from lecture_rag.web.resources import Resources
from lecture_rag.web.security import (
    DOCS_PATH,
    Access,
    BodyLimitMiddleware,
    LoginThrottle,
    SecurityHeadersMiddleware,
    access_for,
    is_loopback,
    new_token,
)
from lecture_rag.web.server import connection_budget, make_server

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Perguntas e respostas sobre videoaulas, com citações no segundo certo. Escritas (anotações) exigem "
    "`Authorization: Bearer TOKEN`, o token de `lecture-rag serve`. Num servidor compartilhado na rede, ler "
    "rodadas e anotações também exige o token (ou a sessão aberta pelo link de login)."
)
# Validation error types → what to tell the person (the rest fall back to pydantic's text).
_EXPLAIN: dict[str, Callable[[dict[str, Any]], str]] = {
    "string_too_long": lambda c: f"longo demais (máximo {c.get('max_length')} caracteres)",
    "string_too_short": lambda c: "vazio",
    "missing": lambda c: "obrigatório e ausente",
    "less_than_equal": lambda c: f"deve ser no máximo {c.get('le')}",
    "greater_than_equal": lambda c: f"deve ser no mínimo {c.get('ge')}",
    "literal_error": lambda c: f"deve ser um de {c.get('expected')}",
    "int_parsing": lambda c: "deve ser um número inteiro",
    "extra_forbidden": lambda c: "campo desconhecido",
    "json_invalid": lambda c: "JSON inválido",
    "model_attributes_type": lambda c: "o corpo deve ser um objeto JSON",
    "value_error": lambda c: str(c.get("error", "valor inválido")),
}


# Starlette's own English messages for errors the router raises itself.
_STARLETTE_DEFAULTS = {
    "Not Found": "Página ou recurso não encontrado. Confira o endereço.",
    "Method Not Allowed": "Método HTTP não permitido neste endereço (veja /api/openapi.json).",
}


def _package_version() -> str:
    try:
        return version("lecture-rag")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0"


def _explain(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "corpo"
    explain = _EXPLAIN.get(str(err.get("type")))
    return f"{where}: {explain(err.get('ctx') or {}) if explain else err.get('msg', 'inválido')}"


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api") or path.startswith("/static"))


def _error_response(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        return pages.render(request, "error.html", status=status, status_code=status, detail=detail)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "Erro."
        detail = _STARLETTE_DEFAULTS.get(detail, detail)
        return _error_response(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": _explain(e)} for e in exc.errors()]
        detail = "Pedido inválido: " + "; ".join(e["msg"] for e in errors) + "."
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(LectureRagError)
    async def user_error(request: Request, exc: LectureRagError) -> Response:
        return _error_response(request, 503 if isinstance(exc, StoreError) else 400, str(exc))


def _sse_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI with the SSE event payloads as components, referenced from /api/ask's 200 response."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        events: Sequence[type[Any]] = (SseHits, SseToken, Answer, SseError)
        for model in events:
            js = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
            for sub_name, sub in js.pop("$defs", {}).items():
                components.setdefault(sub_name, sub)
            components.setdefault(model.__name__, js)
        content = schema["paths"]["/api/ask"]["post"]["responses"]["200"]["content"]
        content["text/event-stream"] = {
            "schema": {"oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in events]}
        }
        app.openapi_schema = schema
        return schema

    return build


def create_app(settings: Settings, *, token: str, access: Access | None = None) -> FastAPI:
    """The web app over ``settings.home``; writes need ``token``.

    ``access`` says which ``Host`` names are answered and whether reading
    runs needs the token (default: a server on this machine only, see
    :func:`~lecture_rag.web.security.access_for`).
    """
    if not token:
        raise LectureRagError(
            f"O token do servidor está vazio: omita-o para gerar um, ou dê um com --token-file ou {TOKEN_ENV}."
        )
    access = access or access_for("127.0.0.1", settings.web)
    resources = Resources.load(settings, token, access)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        resources.close()

    app = FastAPI(
        title="lecture-rag",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=DOCS_PATH,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.resources = resources
    app.state.login_throttle = LoginThrottle(free=settings.web.login_free_attempts)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(media.router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(access.allowed_hosts))
    app.add_middleware(SecurityHeadersMiddleware)
    app.openapi = _sse_openapi(app)  # type: ignore[method-assign]
    return app


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutos" if seconds >= 120 else f"{seconds:g} segundos"


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
    """Run the app with uvicorn until interrupted; prints a one-time login link.

    Beyond this machine (a non-loopback ``host``) the allowed host names
    are required (checked before anything loads) and reading runs needs a
    login. A generated token is printed once; a given one (flag, file or
    environment) never is.
    """
    access = access_for(host, settings.web)
    generated = not token
    token = token or new_token()
    app = create_app(settings, token=token, access=access)
    web = settings.web
    budget = connection_budget(web)
    code = app.state.resources.sessions.new_code(ttl=web.login_code_ttl)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    # The login link goes to the terminal (stderr) once, never to a logger: it opens a session.
    print(f"lecture-rag: abra http://{shown}:{port}/login?code={code}", file=sys.stderr, flush=True)
    print(
        f"  (link de login de uso único, vale {_duration(web.login_code_ttl)}: abre a sessão deste navegador para "
        f"anotar; depois, entre em /login com o token. Para só perguntar: http://{shown}:{port}/)",
        file=sys.stderr,
        flush=True,
    )
    if generated:
        print(
            f"  token gerado para esta execução: {token} (para /login em outro navegador ou 'Authorization: Bearer';"
            f" fixe um com --token-file ou {TOKEN_ENV})",
            flush=True,
        )
    if not is_loopback(host):
        names = ", ".join(h for h in access.allowed_hosts if not is_loopback(h.strip("[]")) and h != "localhost")
        print(
            f"  Atenção: servindo em {host}, acessível por outras máquinas da rede pelos nomes: {names}. "
            "Ler rodadas e anotações exige login.",
            flush=True,
        )
    if budget.max_connections < web.max_connections:
        print(
            f"  Atenção: o limite de arquivos abertos do processo (ulimit -n = {budget.fd_limit}) permite "
            f"{budget.max_connections} conexões simultâneas (pedidas: {web.max_connections}).",
            flush=True,
        )
    make_server(app, host, port, web, budget).run()
