"""A judge whose LLM fails tells the user to fix the judge's settings, not the answer LLM's.

The judge is configured by ``LECTURE_RAG_JUDGE_LLM_*``; an error that named
``LECTURE_RAG_LLM_*`` would send the user to change the model that answers,
which is not the one that failed. Each case builds the judge as ``lecture-rag run`` does
(``make_llm`` with the judge's prefix) against a real local server that
refuses, stalls or does not know the model, or a GGUF path that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lecture_rag.config import JudgeLLMSettings
from lecture_rag.evaluate.judges import JUDGE_ENV_PREFIX, judge_answer
from lecture_rag.llm import LLM, LLMError, make_llm
from lecture_rag.records import Answer, Hit
from tests.support.servers import Reply, ScriptedServer, free_port

ANSWER_VARS = "LECTURE_RAG_LLM_"


def _answer() -> Answer:
    hit = Hit(1, "v1", 0.0, 120.0, "A falta de explicabilidade das redes neurais profundas.", score=0.9, rank=1)
    return Answer("Qual é a dificuldade?", "pt", [hit], [hit], "A explicabilidade [1].")


def _judge(**settings: object) -> LLM:
    llm = make_llm(JudgeLLMSettings(**settings), env_prefix=JUDGE_ENV_PREFIX)  # type: ignore[arg-type]
    assert llm is not None
    return llm


def _judge_error(run: Callable[[], object]) -> str:
    with pytest.raises(LLMError) as info:
        run()
    message = str(info.value)
    assert ANSWER_VARS not in message, f"a judge's error names the answer LLM's settings: {message}"
    return message


def test_refused_connection_names_the_judge_base_url() -> None:
    judge = _judge(backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=5, retries=0)
    message = _judge_error(lambda: judge_answer(judge, _answer(), ["answer_relevance"]))
    assert "não consegui conectar" in message and f"{JUDGE_ENV_PREFIX}BASE_URL" in message


def test_slow_judge_names_the_judge_timeout() -> None:
    with ScriptedServer([Reply(delay_s=3.0)]) as server:
        judge = _judge(backend="openai", base_url=server.base_url, model="m", timeout=0.5, retries=0)
        message = _judge_error(lambda: judge_answer(judge, _answer(), ["answer_relevance"]))
    assert f"{JUDGE_ENV_PREFIX}TIMEOUT" in message


def test_unknown_judge_model_names_the_judge_model() -> None:
    body = {"error": {"message": 'model "juiz9" not found'}}
    with ScriptedServer([Reply(status=404, body=body)]) as server:
        judge = _judge(backend="openai", base_url=server.base_url, model="juiz9", timeout=5, retries=0)
        message = _judge_error(lambda: judge_answer(judge, _answer(), ["answer_relevance"]))
    assert f"{JUDGE_ENV_PREFIX}MODEL" in message


def test_missing_judge_gguf_names_the_judge_backend(tmp_path: Path) -> None:
    message = _judge_error(lambda: _judge(backend=f"gguf:{tmp_path / 'juiz.gguf'}"))
    assert f"{JUDGE_ENV_PREFIX}BACKEND=gguf:" in message
