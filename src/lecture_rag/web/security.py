"""Host check, token and login sessions, request size limit and security headers.

The model, briefly (docs/reliability.md says it for users):

* the server binds to 127.0.0.1 unless told otherwise, and only answers
  requests whose ``Host`` is an allowed name (see :func:`access_for`): this
  machine's names, plus the ones listed for a server shared on a network
  (required then). That defeats DNS-rebinding pages that would otherwise
  read the API from a browser;
* every writing endpoint needs ``Authorization: Bearer TOKEN``. A header,
  not a cookie, because a browser never attaches a header on its own, so a
  foreign site cannot forge a write (no CSRF);
* the token is never put in a URL. ``serve`` prints a one-time login link
  (``/login?code=…``); opening it (or typing the token at ``/login``)
  starts a browser session: an HttpOnly, SameSite=Strict cookie, signed with
  a key derived from the token (so every replica given the same token
  accepts it), and the code is dead after that first use or after ``[web]
  login_code_ttl``. A page of a session fetches the token
  from ``/api/session`` into ``sessionStorage`` for its write headers;
  ``POST /logout`` deletes the cookie and revokes the session;
* ``/login`` is throttled per client address (:class:`LoginThrottle`), and
  ``serve`` refuses a given token shorter than :data:`MIN_TOKEN_CHARS`;
* the session cookie is ``Secure`` when the request came over HTTPS, as
  seen directly or as told by a proxy listed in ``[web] trusted_proxies``
  (``X-Forwarded-Proto``);
* on a server shared beyond this machine, reading runs and annotations
  (API and pages) needs the token or a session too; asking does not;
* bodies over :data:`MAX_BODY_BYTES` get 413 before anything parses them;
* pages carry a strict Content-Security-Policy: scripts and styles only from
  this server, frames only from YouTube, media from any http(s) server (the
  lectures live there), no plugins, no inline script. Transcript text is
  escaped by Jinja2 and inserted with ``textContent`` in JavaScript, and the
  policy is the second wall if either ever slips. The referrer policy sends
  only the origin to other sites: YouTube's embedded player refuses to play
  without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lecture_rag.config import TOKEN_ENV, WebSettings
from lecture_rag.errors import ConfigError

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

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SESSION_COOKIE = "lecture_rag_session"
LOGIN_CODE_TTL_S = 600.0
LOGIN_MAX_WAIT_S = 300.0  # the longest a throttled address waits between login tries
MIN_TOKEN_CHARS = 16

bearer = HTTPBearer(
    auto_error=False, description=f"o token de 'lecture-rag serve' (--token-file, {TOKEN_ENV} ou gerado)"
)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Access:
    """Who the server answers: the ``Host`` names it accepts, and whether reading runs needs the token."""

    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    read_needs_token: bool = False


def _host_name(value: str) -> str:
    name = value.strip().lower()
    if not name:
        raise ConfigError("Nome vazio em --allowed-host / [web] allowed_hosts.")
    if "*" in name and (not name.startswith("*.") or "*" in name[1:] or name == "*."):
        raise ConfigError(
            f"'{value}' em --allowed-host / [web] allowed_hosts aceitaria nomes de qualquer site (DNS rebinding): "
            "liste os nomes ou endereços pelos quais a rede acessa o servidor (um curinga só como '*.exemplo.lan')."
        )
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        if ":" in name or "/" in name:
            raise ConfigError(
                f"'{value}' em --allowed-host / [web] allowed_hosts: use só o nome ou o endereço, sem porta nem "
                "caminho (ex.: --allowed-host aulas.lan --allowed-host 192.168.0.10)."
            ) from None
        return name
    return f"[{address}]" if address.version == 6 else str(address)


def access_for(host: str, web: WebSettings) -> Access:
    """The access policy of a server bound to ``host``; refuses to serve beyond this machine without host names.

    On a loopback address this machine's names are answered (plus any
    listed) and runs are readable without the token unless
    ``read_needs_token`` says otherwise. On any other address the names
    people use to reach the server must be listed, and reading runs needs
    the token (or a login session) unless ``read_needs_token = false``.
    """
    listed = [_host_name(h) for h in web.allowed_hosts]
    loopback = is_loopback(host)
    if not loopback and not listed:
        raise ConfigError(
            f"Servir em {host} deixa o servidor acessível por outras máquinas, e ele só responde aos nomes "
            "listados (proteção contra DNS rebinding). Diga por quais nomes ou endereços a rede vai acessá-lo: "
            "--allowed-host NOME (repetível, ex.: --allowed-host 192.168.0.10 --allowed-host aulas.lan) ou "
            "[web] allowed_hosts no config.toml. Para usar só nesta máquina, omita --host."
        )
    read = web.read_needs_token if web.read_needs_token is not None else not loopback
    return Access(tuple(dict.fromkeys([*LOOPBACK_HOSTS, *listed])), read)


SESSION_MAX_AGE_S = 24 * 3600  # a login lasts a working day


@dataclass
class Sessions:
    """One-time login codes, and the browser sessions they open as signed cookies.

    A code is good for one login, then dead, and expires after its ``ttl``
    (the start-up link's: ``[web] login_code_ttl``). Codes are this
    process's own (each replica prints its own link).

    A session is not remembered: its cookie carries when it was opened and
    an HMAC of that under ``key``, so any replica that shares the key (all
    replicas given the same token: :meth:`for_token`) accepts a session
    another one opened, with nothing shared between them but the token. A
    session lasts :data:`SESSION_MAX_AGE_S`; logging out deletes the cookie
    and revokes it in this process (up to ``max_revoked`` of them). Without a
    key (tests, one process) a random one is drawn: a restart logs everyone out.
    """

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    max_age: float = SESSION_MAX_AGE_S
    max_codes: int = 100
    max_revoked: int = 10_000
    clock: Callable[[], float] = time.time
    _codes: dict[str, float | None] = field(default_factory=dict)  # code → expiry (None: until used)
    _revoked: dict[str, None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_token(cls, token: str) -> Sessions:
        """Sessions whose cookies every replica with this token accepts (the key is derived from the token)."""
        return cls(key=hmac.new(token.encode(), b"lecture-rag session cookie", hashlib.sha256).digest())

    def new_code(self, ttl: float | None = LOGIN_CODE_TTL_S) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            while len(self._codes) >= self.max_codes:
                self._codes.pop(next(iter(self._codes)))
            self._codes[code] = None if ttl is None else self.clock() + ttl
        return code

    def redeem(self, code: str) -> str | None:
        """A new session for a live ``code`` (which dies now), or None."""
        with self._lock:
            if code not in self._codes:
                return None
            expiry = self._codes.pop(code)
            if expiry is not None and self.clock() > expiry:
                return None
        return self.open()

    def open(self) -> str:
        body = f"{int(self.clock())}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._mac(body)}"

    def valid(self, session: str | None) -> bool:
        if not session or session.count(".") != 2:
            return False
        body, mac = session.rsplit(".", 1)
        if not secrets.compare_digest(mac.encode(), self._mac(body).encode()):
            return False
        opened = body.split(".", 1)[0]
        if not opened.isdigit() or not 0 <= self.clock() - int(opened) <= self.max_age:
            return False
        with self._lock:
            return session not in self._revoked

    def close(self, session: str | None) -> None:
        if not session:
            return
        with self._lock:
            while len(self._revoked) >= self.max_revoked:
                self._revoked.pop(next(iter(self._revoked)))
            self._revoked[session] = None

    def _mac(self, body: str) -> str:
        digest = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class LoginThrottle:
    """Failed logins per client address: after ``free`` of them, each next try waits twice as long.

    ``/login`` (a typed token or a login code) answers 429 with
    ``Retry-After`` while an address waits; a success forgets its failures.
    The wait doubles from one second up to :data:`LOGIN_MAX_WAIT_S`, so a
    guesser gets a handful of tries a minute, not hundreds a second. The
    address is the client's as the server sees it (behind a trusted proxy,
    the one it forwards: ``[web] trusted_proxies``); at most ``max_clients``
    addresses are remembered, the oldest forgotten first.
    """

    free: int = 5
    max_clients: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # address → (failures, locked until)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str) -> int:
        """Seconds ``client`` must still wait before its next try (0: it may try now)."""
        with self._lock:
            _, until = self._failures.get(client, (0, 0.0))
        return max(0, math.ceil(until - self.clock()))

    def failed(self, client: str) -> None:
        with self._lock:
            count, _ = self._failures.pop(client, (0, 0.0))
            count += 1
            while len(self._failures) >= self.max_clients:
                self._failures.pop(next(iter(self._failures)))
            extra = count - self.free
            delay = 0.0 if extra < 0 else min(LOGIN_MAX_WAIT_S, 2.0**extra)
            self._failures[client] = (count, self.clock() + delay)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def check_token_strength(token: str, where: str) -> None:
    """Refuse a given token too short to withstand guessing (a generated one has 32 characters)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"O token de {where} é curto demais ({len(token)} caracteres): use ao menos {MIN_TOKEN_CHARS}, "
            "por exemplo um gerado com: python -c 'import secrets; print(secrets.token_urlsafe(24))'."
        )


def token_matches(given: str, expected: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle (set by ``create_app``)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def client_address(request: Request) -> str:
    """The client's address (behind a trusted proxy: the one it forwards)."""
    return request.client.host if request.client is not None else ""


def has_session(request: Request) -> bool:
    sessions: Sessions = request.app.state.resources.sessions
    return sessions.valid(request.cookies.get(SESSION_COOKIE))


def can_read(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request may read runs and annotations: always on this machine only, else token or session."""
    resources = request.app.state.resources
    if not resources.access.read_needs_token:
        return True
    given = credentials.credentials if credentials is not None else ""
    return token_matches(given, resources.token) or has_session(request)


def check_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 401 unless the request carries the server's token."""
    expected: str = request.app.state.resources.token
    given = credentials.credentials if credentials is not None else ""
    if not token_matches(given, expected):
        raise HTTPException(
            status_code=401,
            detail=(
                "Token ausente ou inválido. Abra o link de login impresso ao iniciar 'lecture-rag serve' "
                "(ou informe o token em /login), ou envie o cabeçalho 'Authorization: Bearer TOKEN'."
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )


def check_reader(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 401 unless the request may read runs (see :func:`can_read`)."""
    if not can_read(request, credentials):
        raise HTTPException(
            status_code=401,
            detail=(
                "Este servidor exige login para ler rodadas e anotações. Abra o link de login impresso ao "
                "iniciar 'lecture-rag serve' (ou informe o token em /login), ou envie 'Authorization: Bearer TOKEN'."
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another site, a scheme) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


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
