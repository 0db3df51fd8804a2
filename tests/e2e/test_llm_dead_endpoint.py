"""A dead LLM endpoint is given up on within the connect timeout, not the long generation timeout (issue 21).

``ask`` and ``llm check`` run as a user runs them, against real local sockets
that are dead in each way an endpoint dies (:func:`tests.support.servers.dead_endpoint`),
with ``[llm] timeout`` at 300 s and many retries: before the connect timeout
bounded the first request, a server that accepted and never answered kept the
terminal waiting for the whole 300 s, and a refused or unreachable one was
retried for a minute or more.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.servers import DEAD_KINDS, dead_endpoint

QUESTION = "Quanto tempo durou o período paleolítico, segundo o professor?"
CONNECT_TIMEOUT_S = 2
#: Far above the connect timeout plus a loaded machine's start-up, far below LLM_TIMEOUT_S.
GIVE_UP_WITHIN_S = 60
LLM_TIMEOUT_S = 300
#: What each kind of dead endpoint is reported as (one line, in Portuguese).
SAID = {"refused": "não consegui conectar", "handshake": "não atendeu em 2 s", "silent": "não atendeu em 2 s"}


def dead_env(base_url: str) -> dict[str, str]:
    return {
        "LECTURE_RAG_LLM_BASE_URL": base_url,
        "LECTURE_RAG_LLM_MODEL": "x",
        "LECTURE_RAG_LLM_TIMEOUT": str(LLM_TIMEOUT_S),
        "LECTURE_RAG_LLM_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
        "LECTURE_RAG_LLM_RETRIES": "10",
    }


@pytest.mark.parametrize("kind", DEAD_KINDS)
def test_ask_gives_up_within_the_connect_timeout_and_answers_extractively(nurc_indexed: Path, kind: str) -> None:
    with dead_endpoint(kind) as url:
        started = time.monotonic()
        result = run_cli("ask", QUESTION, "--llm", "openai", store=nurc_indexed, env=dead_env(url), timeout=150)
        took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < GIVE_UP_WITHIN_S, f"{kind}: {took:.0f} s"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Erro do LLM:")]
    assert len(errors) == 1 and SAID[kind] in errors[0] and url in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "Resposta extrativa, no lugar da do LLM" in result.stderr and "«" in result.stderr
    assert "Segmentos recuperados" in result.stdout


@pytest.mark.parametrize("kind", DEAD_KINDS)
def test_llm_check_gives_up_within_the_connect_timeout(store_dir: Path, kind: str) -> None:
    with dead_endpoint(kind) as url:
        started = time.monotonic()
        result = run_cli("llm", "check", "--json", "--llm", "openai", store=store_dir, env=dead_env(url), timeout=150)
        took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert took < GIVE_UP_WITHIN_S, f"{kind}: {took:.0f} s"
    data = json.loads(result.stdout)
    assert data["answers"] is False and SAID[kind] in data["error"] and "\n" not in data["error"]
    assert data["advice"]
