"""Serving one NURC lecture with a real ``lecture-rag serve`` and asking it many questions at once.

Shared by the web tests that probe the server under load, slow clients and outages.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.paths import shared
from tests.support.servers import free_port
from tests.support.web import WebServer

TOKEN = "token-hostil-9d2e6b41c7"
LECTURE = "sentences_SP_EF_405.csv"
QUESTIONS = [
    "Quanto tempo durou o paleolítico?",
    "Onde ficam as cavernas mais conhecidas com pinturas paleolíticas?",
    "Em que período da pré-história começam a surgir as manifestações de arte?",
    "What did the paleolithic people paint on the cave walls?",
    "¿Qué animales pintaban en las cuevas del paleolítico?",
    "Como os homens do paleolítico faziam as tintas das pinturas?",
    "Por que as pinturas ficavam no fundo das cavernas escuras?",
    "Qual a diferença entre o paleolítico e o neolítico na arte?",
]


def one_lecture_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One NURC lecture, ingested and indexed (a test module's fixture calls it once)."""
    root = tmp_path_factory.mktemp("hostile-web")
    src = root / "aulas"
    src.mkdir()
    (src / LECTURE).symlink_to(shared("nurc-sp", "transcripts", LECTURE))
    ingest = run_cli("ingest", str(src), store=root / "store")
    assert ingest.returncode == 0, ingest.stderr + ingest.stdout
    return root / "store"


@dataclass
class Served(WebServer):
    """A running ``lecture-rag serve`` process."""

    port: int = 0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(
    store: Path,
    tmp_path: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    fd_limit: int | None = None,
    split_stderr: bool = False,
) -> Iterator[Served]:
    """``lecture-rag serve`` on a free port of 127.0.0.1 until the block ends; ``fd_limit`` caps its descriptors.

    Its output goes to ``log``; with ``split_stderr`` its stderr goes to ``log`` with the suffix ``.err``.
    """
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LECTURE_RAG_")}
    full_env.update({"LECTURE_RAG_HOME": str(store), **(env or {})})
    exe = Path(sys.executable).parent / "lecture-rag"

    def limit_fds() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        proc = subprocess.Popen(
            [str(exe), "serve", "--port", str(port), *flags],
            stdout=out,
            stderr=err if split_stderr else subprocess.STDOUT,
            env=full_env,
            preexec_fn=limit_fds,
        )
    served = Served(f"http://127.0.0.1:{port}", "", store, proc, log, port)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"o servidor saiu: {served.log_text()}"
            assert time.monotonic() < deadline, f"o servidor não respondeu em 120 s: {served.log_text()}"
            try:
                if httpx.get(served.base_url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield served
    finally:
        served.stop()


def ask_all(base_url: str, questions: list[str]) -> list[tuple[int, dict[str, str], str, float]]:
    """All ``questions`` posted at once on their own connections: (status, headers, body, seconds) each."""

    async def one(client: httpx.AsyncClient, question: str) -> tuple[int, dict[str, str], str, float]:
        started = time.monotonic()
        response = await client.post("/api/ask", json={"question": question, "k": 3})
        return response.status_code, dict(response.headers), response.text, time.monotonic() - started

    async def everything() -> list[tuple[int, dict[str, str], str, float]]:
        limits = httpx.Limits(max_connections=len(questions), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
            return list(await asyncio.gather(*(one(client, q) for q in questions)))

    return asyncio.run(everything())
