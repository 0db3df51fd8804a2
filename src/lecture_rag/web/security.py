"""Token check, request size limit and security headers.

The model, briefly (the README says it for users):

* the server binds to 127.0.0.1 unless told otherwise, and only answers
  requests whose ``Host`` is an allowed name (see ``create_app``), which
  defeats DNS-rebinding pages that would otherwise read the API from a
  browser;
* every writing endpoint needs ``Authorization: Bearer TOKEN``. The token is
  printed once at startup inside the URL ``http://127.0.0.1:PORT/?token=…``;
  the page moves it into ``sessionStorage`` and removes it from the address
  bar. A header, not a cookie, because a browser never attaches a header on
  its own, so a foreign site cannot forge a write (no CSRF);
* bodies over :data:`MAX_BODY_BYTES` get 413 before anything parses them;
* pages carry a strict Content-Security-Policy: scripts and styles only from
  this server, frames only from YouTube, media from any http(s) server (the
  lectures live there), no plugins, no inline script. Transcript text is
  escaped by Jinja2 and inserted with ``textContent`` in JavaScript, and the
  policy is the second wall if either ever slips. The referrer policy sends
  only the origin to other sites: YouTube's embedded player refuses to play
  without one, and the token has left the address bar by then.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

MAX_BODY_BYTES = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' https: http:",
        "frame-src https://www.youtube.com https://www.youtube-nocookie.com",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# FastAPI's interactive docs load Swagger UI from a CDN with an inline bootstrap script.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATH = "/api/docs"

bearer = HTTPBearer(auto_error=False, description="o token impresso por 'lecture-rag serve'")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 401 unless the request carries the server's token."""
    expected: str = request.app.state.resources.token
    given = credentials.credentials if credentials is not None else ""
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=401,
            detail=(
                "Token ausente ou inválido. Abra a página pelo endereço com ?token=… impresso "
                "ao iniciar 'lecture-rag serve', ou envie o cabeçalho 'Authorization: Bearer TOKEN'."
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Read at most ``limit`` bytes of a request body, then replay it; more is 413.

    Buffering is fine at 64 KB, and it catches chunked bodies that declare
    no Content-Length. Later ``receive`` calls go to the server, so a
    streaming response still learns when the client disconnects.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(send, 413, self._message())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _send_json(send, 413, self._message())
                return
            if not message.get("more_body"):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _message(self) -> str:
        return f"Pedido grande demais: o limite é {self.limit // 1024} KB. Encurte o texto enviado."


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class SecurityHeadersMiddleware:
    """Add CSP and companion headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope.get("path") == DOCS_PATH else CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
