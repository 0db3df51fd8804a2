"""``lecture-rag run`` with an HTTP judge: the judge's own settings, real concurrency, one run at a time."""

from __future__ import annotations

import json
from pathlib import Path

from lecture_rag.store import RunStore, Store
from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS
from tests.support.servers import Reply, ScriptedServer

VERDICT = Reply(deltas=("Criteria: relevante.\nSupporting Evidence: cita o trecho.\nScore: 2",))


def _questions(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "perguntas.jsonl"
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:n]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _judge_env(base_url: str, **extra: str) -> dict[str, str]:
    env = {
        "LECTURE_RAG_JUDGE_LLM_BACKEND": "openai",
        "LECTURE_RAG_JUDGE_LLM_BASE_URL": base_url,
        "LECTURE_RAG_JUDGE_LLM_MODEL": "juiz",
        "LECTURE_RAG_JUDGE_LLM_RETRIES": "0",
    }
    return {**env, **extra}


def test_run_sends_the_judge_settings_and_records_them(nurc_indexed: Path, tmp_path: Path) -> None:
    """LECTURE_RAG_JUDGE_LLM_TEMPERATURE/SEED/MAX_TOKENS used to change nothing."""
    env = _judge_env(
        "",
        LECTURE_RAG_JUDGE_LLM_TEMPERATURE="0.3",
        LECTURE_RAG_JUDGE_LLM_SEED="7",
        LECTURE_RAG_JUDGE_LLM_MAX_TOKENS="123",
        LECTURE_RAG_JUDGE_LLM_LABEL_MAX_TOKENS="45",
    )
    with ScriptedServer([VERDICT]) as server:
        env["LECTURE_RAG_JUDGE_LLM_BASE_URL"] = server.base_url
        result = run_cli(
            "run", str(_questions(tmp_path, 2)), "--name", "juiz-config", "--llm", "none", "--judges", "ar",
            "--k", "2", store=nurc_indexed, env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bodies = [hit.body for hit in server.hits]
    assert len(bodies) == 2
    assert all((b["temperature"], b["seed"], b["max_tokens"]) == (0.3, 7, 123) for b in bodies)
    report = json.loads(run_cli("report", "juiz-config", "--format", "json", store=nurc_indexed).stdout)
    config = report["config"]
    assert (config["judge_temperature"], config["judge_seed"], config["judge_max_tokens"]) == (0.3, 7, 123)
    assert config["judge_label_max_tokens"] == 45
    assert all(r["judgments"]["answer_relevance"]["score"] == 2 / 3 for r in report["records"])


def test_extractive_answers_still_judge_concurrently(nurc_indexed: Path, tmp_path: Path) -> None:
    """``--concurrency`` used to be ignored when answers were extractive: one judge call at a time."""
    slow = Reply(delay_s=3.0, deltas=VERDICT.deltas)  # longer than an extractive answer takes
    with ScriptedServer([slow]) as server:
        result = run_cli(
            "run", str(_questions(tmp_path, 4)), "--name", "juiz-paralelo", "--llm", "none", "--judges", "ar",
            "--k", "2", "--concurrency", "4", store=nurc_indexed, env=_judge_env(server.base_url),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(server.hits) == 4
    assert server.max_in_flight > 1
    assert "4 em paralelo" in result.stdout


def test_a_second_run_of_the_same_name_is_refused_while_one_runs(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _questions(tmp_path, 1)
    with Store(nurc_indexed, create=False) as store, RunStore(store).running("ocupada"):
        busy = run_cli(
            "run", str(questions), "--name", "ocupada", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
        )
    assert busy.returncode == 2
    assert "já está sendo executada" in busy.stderr and "Traceback" not in busy.stderr
    assert "ocupada" not in run_cli("runs", store=nurc_indexed).stdout  # refused before anything was written
    after = run_cli(
        "run", str(questions), "--name", "ocupada", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert after.returncode == 0, after.stderr
