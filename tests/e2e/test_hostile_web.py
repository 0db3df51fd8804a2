"""The web server against what a probe threw at it: a cold start under load, idle and half-open
connections, a flood of questions, the network, tokens in places where others can read them.

Everything is real and local: ``lecture-rag serve`` processes (or the app's own uvicorn server in a
thread) on 127.0.0.1, real sockets, a scripted OpenAI-compatible server where an LLM is needed.
Every load is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.hostile_web import QUESTIONS, TOKEN, ask_all, one_lecture_store, serving
from tests.support.servers import Reply, ScriptedServer, free_port
from tests.support.web import parse_events


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One NURC lecture, ingested and indexed once for the module."""
    return one_lecture_store(tmp_path_factory)


# --------------------------------------------------------------------------- a cold start under load


def test_a_cold_server_answers_its_first_sixteen_questions_at_once(store: Path, tmp_path: Path) -> None:
    """The probe's cold start: the first questions arrive together, before anything lazy was initialised."""
    with serving(store, tmp_path) as srv:
        results = ask_all(srv.base_url, QUESTIONS * 2)
    for status, _, body, _ in results:
        assert status == 200, body
        events = parse_events(body)
        names = [name for name, _ in events]
        assert names[0] == "hits" and names[-1] == "done", events[-1]
        assert "Erro interno" not in body
        assert events[-1][1]["error"] == "" and events[-1][1]["answer"]


# --------------------------------------------------------------------------- connections that never ask


def _closed_by_server(sock: socket.socket) -> bool:
    """Read what is there; True once the server has closed its side."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:  # reset by the server
        return True


def _wait_until_closed(socks: list[socket.socket], seconds: float, drip: socket.socket | None = None) -> int:
    """How many of ``socks`` the server closed within ``seconds``; ``drip`` keeps sending a byte now and then."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + seconds
    next_drip = time.monotonic()
    while closed < len(socks) and time.monotonic() < deadline:
        if drip is not None and time.monotonic() >= next_drip:
            next_drip += 0.3
            with suppress(OSError):
                drip.send(b"X")
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if _closed_by_server(sock):
                selector.unregister(sock)
                closed += 1
    selector.close()
    return closed


def test_idle_and_half_open_connections_cannot_starve_the_server(store: Path, tmp_path: Path) -> None:
    """600 connections that never send a request, against a server allowed 400 descriptors.

    Before: the descriptors ran out, every ``accept`` failed and logged a
    traceback, and /api/health was never answered again.
    """
    env = {"LECTURE_RAG_WEB__HEADER_TIMEOUT": "2", "LECTURE_RAG_WEB__KEEP_ALIVE_TIMEOUT": "1"}
    with serving(store, tmp_path, env=env, fd_limit=400) as srv:
        idle = []
        for _ in range(600):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            idle.append(sock)
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # a head that never ends
        try:
            for _ in range(5):
                started = time.monotonic()
                health = httpx.get(srv.base_url + "/api/health", timeout=10)
                assert health.status_code == 200 and time.monotonic() - started < 5
            # Every idle connection is closed by the server: evicted for newer ones, or at the head deadline;
            # the slow one too, although it keeps sending a byte every 0.3 s.
            assert _wait_until_closed(idle, 10) == len(idle)
            started = time.monotonic()
            assert _wait_until_closed([slow], 10, drip=slow) == 1
            assert time.monotonic() - started < 4
            # A kept-alive connection that goes quiet after its answer is closed after the keep-alive timeout.
            kept = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            kept.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert kept.recv(65536).startswith(b"HTTP/1.1 200")
            assert _wait_until_closed([kept], 6) == 1
            assert httpx.get(srv.base_url + "/api/health", timeout=5).status_code == 200
            assert srv.process.poll() is None
        finally:
            for sock in [*idle, slow]:
                sock.close()
        log = srv.log_text()
    lines = log.splitlines()
    print(f"\n{len(lines)} linhas de log com 600 conexões ociosas:\n{log}")
    # Before: one traceback per failed accept. Now the descriptors never run out (connections and the
    # listen backlog are fitted to the limit: the server said so at start) and repeats are one line per 10 s.
    assert "permite" in log and "conexões simultâneas" in log
    assert log.count("Traceback") == 0
    assert len(lines) <= 20, log


@contextmanager
def guarded(app: Any, max_connections: int, header_timeout: float) -> Iterator[int]:
    """The app's own uvicorn server (with the connection guard) in a thread on 127.0.0.1; yields its port."""
    from lecture_rag.config import WebSettings
    from lecture_rag.web.server import make_server

    port = free_port()
    web = WebSettings(header_timeout=header_timeout, keep_alive_timeout=5, max_connections=max_connections)
    server = make_server(app, "127.0.0.1", port, web, configure_logging=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "o servidor não subiu"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_when_every_connection_is_busy_a_new_one_gets_503_at_once() -> None:
    release = threading.Event()

    async def slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while not release.is_set():
            await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with guarded(slow_app, max_connections=8, header_timeout=5) as port:
        busy = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        for sock in busy:
            sock.sendall(request)
        time.sleep(0.3)  # all eight are inside the app now
        started = time.monotonic()
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra.sendall(request)
        refused = b""
        while chunk := extra.recv(65536):
            refused += chunk
        assert time.monotonic() - started < 2
        head, _, payload = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in head.lower()
        assert "limite de conexões" in json.loads(payload)["detail"]
        release.set()
        for sock in busy:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()
        extra.close()


def test_a_new_client_pushes_out_the_oldest_idle_connection() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with guarded(app, max_connections=8, header_timeout=30) as port:
        idle = []
        for _ in range(8):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.02)  # keep their order
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert answer.text == "ok"
        assert _wait_until_closed(idle[:1], 3) == 1  # the oldest went
        assert _wait_until_closed(idle[1:], 0.5) == 0  # the others stay until their own deadline
        for sock in idle:
            sock.close()


# --------------------------------------------------------------------------- a flood of questions


def test_questions_beyond_the_queue_get_503_with_retry_after(store: Path, tmp_path: Path) -> None:
    """2 workers and a queue of 2: of 12 questions at once, 4 are answered and 8 are told to come back."""
    with ScriptedServer([Reply(delay_s=2.0, deltas=("As pinturas ", "ficam em Altamira [1]."))]) as llm:
        env = {
            "LECTURE_RAG_LLM_BACKEND": "openai",
            "LECTURE_RAG_LLM_BASE_URL": llm.base_url,
            "LECTURE_RAG_LLM_MODEL": "scripted-model",
            "LECTURE_RAG_WEB__ANSWER_WORKERS": "2",
            "LECTURE_RAG_WEB__ASK_QUEUE": "2",
        }
        with serving(store, tmp_path, env=env) as srv:
            results = ask_all(srv.base_url, (QUESTIONS * 2)[:12])
            answered = [r for r in results if r[0] == 200]
            busy = [r for r in results if r[0] == 503]
            assert len(answered) == 4 and len(busy) == 8, [r[0] for r in results]
            for _, headers, body, seconds in busy:
                assert headers["retry-after"] == "5" and seconds < 1.5
                assert "Servidor ocupado" in json.loads(body)["detail"]
            for _, _, body, seconds in answered:
                assert parse_events(body)[-1][0] == "done" and seconds >= 2
            assert llm.max_in_flight <= 2
            # The places are given back: the next question is answered.
            again = ask_all(srv.base_url, QUESTIONS[:1])
            assert again[0][0] == 200 and parse_events(again[0][2])[-1][0] == "done"
    print(
        f"\nrespondidas em {sorted(round(r[3], 1) for r in answered)} s; recusadas em até {max(r[3] for r in busy):.2f} s"
    )


# --------------------------------------------------------------------------- the network and the token


def test_serving_beyond_this_machine_needs_the_allowed_host_names(store: Path) -> None:
    """Refused before anything binds: no socket is opened on 0.0.0.0 by this test."""
    missing = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), store=store, timeout=120)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "--allowed-host" in missing.stderr and "DNS rebinding" in missing.stderr
    assert "Traceback" not in missing.stderr
    star = run_cli(
        "serve", "--host", "0.0.0.0", "--allowed-host", "*", "--port", str(free_port()), store=store, timeout=120
    )
    assert star.returncode == 2 and "qualquer site" in star.stderr
    port = run_cli(
        "serve", "--host", "0.0.0.0", "--allowed-host", "aulas.lan:8000", "--port", "9", store=store, timeout=120
    )
    assert port.returncode == 2 and "sem porta" in port.stderr


def test_beyond_this_machine_only_the_listed_names_are_answered_and_runs_need_the_token(store: Path) -> None:
    from lecture_rag.config import WebSettings, load_settings
    from lecture_rag.web.app import create_app
    from lecture_rag.web.security import access_for

    settings = load_settings(store)
    access = access_for("0.0.0.0", WebSettings(allowed_hosts=["aulas.lan", "192.168.0.10"]))
    app = create_app(settings, token=TOKEN, access=access)
    code = app.state.resources.sessions.new_code()
    with guarded(app, max_connections=64, header_timeout=10) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for host, status in [
                ("aulas.lan", 200),
                ("192.168.0.10:8000", 200),
                ("127.0.0.1", 200),
                ("evil.example", 400),
            ]:
                assert client.get("/api/health", headers={"Host": host}).status_code == status, host
            # asking stays open to everyone who may reach the server
            assert client.post("/api/ask", json={"question": QUESTIONS[0], "k": 2}).status_code == 200
            # reading runs does not
            for path in ("/api/runs", "/api/runs/x/records", "/api/runs/x/agreement"):
                denied = client.get(path)
                assert denied.status_code == 401 and "exige login" in denied.json()["detail"], path
            page = client.get("/runs")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/runs"
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            assert client.get("/api/runs", headers=bearer).json() == []
            assert client.get("/api/runs/x/records", headers=bearer).status_code == 404
        # the one-time code opens a session once
        with httpx.Client(base_url=base, timeout=30) as browser:
            opened = browser.get("/login", params={"code": code, "next": "/runs"})
            assert opened.status_code == 303 and opened.headers["location"] == "/runs"
            cookie = opened.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert browser.get("/runs").status_code == 200
            assert browser.get("/api/runs").json() == []
            assert browser.get("/api/session").json() == {"token": TOKEN}
            # a session reads, but a write still needs the header
            write = browser.post("/api/runs/x/annotations", json={"qid": "q", "label": "C", "annotator": "a"})
            assert write.status_code == 401
        with httpx.Client(base_url=base, timeout=30) as other:
            reused = other.get("/login", params={"code": code})
            assert reused.status_code == 401 and "já foi usado" in reused.text
            assert "set-cookie" not in reused.headers
            assert other.get("/api/runs").status_code == 401
            assert other.get("/api/session").status_code == 401
            # an outside redirect target is ignored; the typed token opens a session too
            typed = other.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
            assert typed.status_code == 303 and typed.headers["location"] == "/"
            assert other.get("/api/runs").status_code == 200
            wrong = httpx.post(f"{base}/login", data={"token": "errado"}, timeout=30)
            assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_the_token_can_come_from_a_file_or_the_environment_and_stays_out_of_ps_and_logs(
    store: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text(TOKEN + "\n", encoding="utf-8")
    secret.chmod(0o600)
    url = "/api/runs/nao-existe/annotations"
    body = {"qid": "q", "label": "C", "annotator": "a"}
    for flags, env in [(("--token-file", str(secret)), {}), ((), {"LECTURE_RAG_TOKEN": TOKEN})]:
        with serving(store, tmp_path, *flags, env=env) as srv:
            cmdline = Path(f"/proc/{srv.process.pid}/cmdline").read_bytes().decode()
            assert TOKEN not in cmdline
            authorized = httpx.post(srv.base_url + url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
            assert authorized.status_code == 404  # past the token check: the run does not exist
            assert httpx.post(srv.base_url + url, json=body, headers={"Authorization": "Bearer x"}).status_code == 401
            log = srv.log_text()
            assert TOKEN not in log and "/login?code=" in log and "?token=" not in log
    empty = tmp_path / "vazio.txt"
    empty.write_text("\n", encoding="utf-8")
    refused = run_cli("serve", "--token-file", str(empty), "--port", str(free_port()), store=store, timeout=120)
    assert refused.returncode == 2 and "vazio" in refused.stderr
    missing = run_cli("serve", "--token-file", str(tmp_path / "nada"), "--port", str(free_port()), store=store)
    assert missing.returncode == 2 and "--token-file" in missing.stderr


# --------------------------------------------------------------------------- run names the web app can open


@pytest.mark.parametrize("name", ["a/b", ".."])
def test_the_cli_refuses_a_run_name_the_web_app_could_not_open(store: Path, tmp_path: Path, name: str) -> None:
    questions = tmp_path / "perguntas.jsonl"
    questions.write_text(
        json.dumps({"id": "q1", "question": QUESTIONS[0], "evidence": [], "label": None}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    ran = run_cli("run", str(questions), "--name", name, "--llm", "none", "--judges", "ar", store=store)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Nome de rodada inválido" in ran.stderr and "letras, números" in ran.stderr
    assert "Traceback" not in ran.stderr
    listed = run_cli("runs", store=store)
    assert name not in listed.stdout.split()
