"""The FastAPI application and the function the ``serve`` command calls.

``create_app`` loads the store, embedder, indexes and LLM once (a missing
store fails here, before the server binds, with the usual Portuguese
message) and wires the API, the pages and the security layers.
"""

from __future__ import annotations

import ipaddress
import logging
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

from lecture_rag.config import Settings
from lecture_rag.errors import LectureRagError, StoreError
from lecture_rag.records import Answer
from lecture_rag.web import api, pages
from lecture_rag.web.models import SseError, SseHits, SseToken
from lecture_rag.web.resources import Resources
from lecture_rag.web.security import DOCS_PATH, BodyLimitMiddleware, SecurityHeadersMiddleware, new_token

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
DESCRIPTION = (
    "Perguntas e respostas sobre videoaulas, com citações no segundo certo. Escritas (anotações) exigem "
    "`Authorization: Bearer TOKEN`, o token impresso por `lecture-rag serve`."
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


def create_app(settings: Settings, *, token: str, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The web app over ``settings.home``; writes need ``token``.

    ``allowed_hosts`` are the ``Host`` names answered (default: loopback
    names only; ``["*"]`` answers any, for a server shared on a network).
    """
    if not token:
        raise LectureRagError("O token do servidor está vazio: gere um com 'lecture-rag serve' (ele imprime o token).")
    resources = Resources.load(settings, token)

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
    app.include_router(api.router)
    app.include_router(pages.router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS))
    app.add_middleware(SecurityHeadersMiddleware)
    app.openapi = _sse_openapi(app)  # type: ignore[method-assign]
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
    """Run the app with uvicorn until interrupted; prints the URL with the token once.

    On a non-loopback address the server answers any Host name (people on the
    network reach it by the machine's name or address) and says so.
    """
    import uvicorn

    token = token or new_token()
    loopback = is_loopback(host)
    allowed = None if loopback else ["*"]
    app = create_app(settings, token=token, allowed_hosts=allowed)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    print(f"lecture-rag: abra http://{shown}:{port}/?token={token}", flush=True)
    print("  (o token autoriza anotações; quem só pergunta pode usar o endereço sem ele)", flush=True)
    if not loopback:
        print(f"  Atenção: servindo em {host}, acessível por outras máquinas da rede.", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=5)
