"""`lecture-rag llm check`: which LLM is configured, whether it answers, and local runners on their usual ports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecture_rag.llm import USUAL_PORTS, detect_runners
from tests.support.cli import run_cli
from tests.support.servers import llama_server, port_is_free


def _check(store: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = run_cli("llm", "check", "--json", *args, store=store, env=env)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_no_llm_configured_says_extractive_and_what_to_do(store_dir: Path) -> None:
    result = run_cli("llm", "check", "--llm", "none", store=store_dir)
    assert result.returncode == 0, result.stderr
    assert "Backend configurado: none" in result.stdout
    assert "LECTURE_RAG_LLM_BACKEND=auto" in " ".join(result.stdout.split())


def test_unreachable_server_fails_with_advice(store_dir: Path) -> None:
    env = {"LECTURE_RAG_LLM_BASE_URL": "http://127.0.0.1:9/v1", "LECTURE_RAG_LLM_RETRIES": "0"}
    code, data = _check(store_dir, "--llm", "openai", env={**env, "LECTURE_RAG_LLM_MODEL": "x"})
    assert code == 1 and data["answers"] is False
    assert "127.0.0.1:9" in data["error"] and data["advice"]


@pytest.mark.slow
def test_real_server_answers_with_first_token_time(store_dir: Path, llama_server: str) -> None:
    code, data = _check(store_dir, "--llm", "openai", env={"LECTURE_RAG_LLM_BASE_URL": llama_server})
    assert code == 0, data
    assert data["answers"] is True and data["model"].startswith("openai:")
    assert 0 < data["first_token_s"] <= data["total_s"]


@pytest.mark.slow
def test_auto_uses_a_runner_on_its_usual_port_only_when_asked(store_dir: Path) -> None:
    free = [(name, port) for name, port in USUAL_PORTS if port_is_free(port)]
    assert free, f"all usual runner ports are taken here: {USUAL_PORTS}"
    name, port = free[0]
    with llama_server(threads=1, port=port) as url:
        assert [r.base_url for r in detect_runners() if r.base_url == url] == [url]
        quiet = run_cli("llm", "check", "--llm", "none", store=store_dir)
        assert quiet.returncode == 0 and url in " ".join(quiet.stdout.split())  # detected and said, not used
        code, data = _check(store_dir, "--llm", "auto")
        assert code == 0, data
        assert data["answers"] is True and data["backend"] == "auto"
        assert any(r["base_url"] == url and r["name"] == name for r in data["detected"])
