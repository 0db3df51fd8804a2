"""``lecture-rag eval judges``: judges against people, as a user runs it (file judge, a real llama.cpp server)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import EXE, cli_env, kill_when, run_cli
from tests.support.paths import shared

KAMALLOO = shared("answer-judgments", "kamalloo2023-nq")
EVOUNA = shared("answer-judgments", "evouna-nq")
GPT4 = f"file:{KAMALLOO / 'NQ301_gpt-4.tsv'}"


def _rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store / "lecture-rag.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_gpt4_file_judge_against_people_and_its_report_page(store_dir: Path, tmp_path: Path) -> None:
    first = run_cli("eval", "judges", str(KAMALLOO), "--judge-llm", GPT4, "--json", store=store_dir)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    (result,) = report["results"]
    a, v = result["agreement"], result["judge_vs_people"]
    assert (report["dataset"]["items"], report["judge"]) == (1490, "file:NQ301_gpt-4.tsv")
    assert (a["n"], a["skipped_missing"], round(a["accuracy"], 4), round(a["kappa"], 4)) == (1487, 3, 0.8480, 0.6951)
    assert a["confusion"][0][:3] == [679, 0, 137] and a["confusion"][2][:3] == [89, 0, 582]  # rows: people C, I
    assert v["unparsed"] == 3 and v["by_position"] is None  # the Kamalloo file has no reference answers
    assert (v["by_length"]["longas"]["accepted_by_judge"], v["by_length"]["longas"]["rejected_by_people"]) == (12, 48)
    assert (v["by_length"]["curtas"]["accepted_by_judge"], v["by_length"]["curtas"]["rejected_by_people"]) == (77, 623)
    # a rerun resumes: everything is already stored, nothing is judged again
    again = json.loads(run_cli("eval", "judges", str(KAMALLOO), "--judge-llm", GPT4, "--json", store=store_dir).stdout)
    assert again["results"][0]["stats"]["skipped"] == 1490 and again["results"][0]["stats"]["judged"] == 0
    assert again["results"][0]["agreement"] == a
    # the run's HTML page (a rendered file: the web app does not serve it) has the judge-vs-people section
    page = tmp_path / "juiz.html"
    written = run_cli("report", result["run"], "--format", "html", "-o", str(page), store=store_dir)
    assert written.returncode == 0, written.stderr
    html = page.read_text(encoding="utf-8")
    section = html[html.index('<section id="juiz-vs-pessoas">') : html.index("</section>")]
    assert section.count("<svg") == 2  # confusion matrix and agreement by answer length
    assert "Por tamanho da resposta" in section and "resposta longas (mais de 10 palavras)" in section
    assert "<td>12/48</td>" in section and "3 veredito(s) ilegível(is)" in section


def test_malformed_items_stop_everything_unless_skipped(store_dir: Path) -> None:
    refused = run_cli("eval", "judges", str(EVOUNA), "--judge-llm", "file:/nao/existe.tsv", store=store_dir)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "5 itens malformados: item 538" in refused.stderr and "--skip-bad" in refused.stderr
    assert not (store_dir / "lecture-rag.sqlite3").exists()  # nothing ran, nothing was stored
    no_file = run_cli(
        "eval", "judges", str(EVOUNA), "--skip-bad", "--judge-llm", "file:/nao/existe.tsv", store=store_dir
    )
    assert no_file.returncode == 2 and "/nao/existe.tsv não existe" in no_file.stderr


def test_examples_that_are_scored_items_are_refused(store_dir: Path, tmp_path: Path) -> None:
    examples = tmp_path / "exemplos.jsonl"
    examples.write_text(
        json.dumps({"question": "where are the washington redskins based out of", "answer": "DC", "label": "Yes"})
        + "\n",
        encoding="utf-8",
    )
    result = run_cli(
        "eval", "judges", str(KAMALLOO), "--judge-llm", "gguf:bundled", "--examples", str(examples), store=store_dir
    )
    assert result.returncode == 2 and "está sendo avaliado" in result.stderr


@pytest.mark.slow
def test_json_schema_judge_on_a_real_llama_cpp_server_resumes_after_a_kill(store_dir: Path, llama_server: str) -> None:
    """Structured verdicts through response_format; a killed evaluation redoes only what is missing."""
    env = {
        "LECTURE_RAG_JUDGE_LLM_BACKEND": "openai",
        "LECTURE_RAG_JUDGE_LLM_BASE_URL": llama_server,
        "LECTURE_RAG_JUDGE_LLM_CONTEXT_WINDOW": "2048",
        "LECTURE_RAG_JUDGE_LLM_STRUCTURED": "json_schema",
    }
    args = [EXE, "eval", "judges", str(EVOUNA), "--skip-bad", "--limit", "4", "--sample-seed", "3", "--repeat", "1",
            "--concurrency", "1", "--json"]  # fmt: skip
    proc = subprocess.Popen(args, env=cli_env(store_dir, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(proc, store_dir / "lecture-rag.sqlite3", "SELECT COUNT(*) FROM judgments", 2, timeout=300)
    proc.wait(timeout=30)
    before = _rows(store_dir, "SELECT qid, kind, created_at FROM judgments")
    assert 2 <= len(before) < 5
    done = run_cli(*args[1:], store=store_dir, env=env)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["stats"]["skipped"] == len(before)  # what the killed run stored was kept, not redone
    after = _rows(store_dir, "SELECT qid, kind, created_at FROM judgments")
    assert set(before) <= set(after) and len(after) == 5  # four items, one of them judged twice
    assert sum(kind == "auto_label#2" for _, kind, _ in after) == 1
    by_kind = [(kind, json.loads(d)) for kind, d in _rows(store_dir, "SELECT kind, data FROM judgments")]
    stored = [j for _, j in by_kind]
    assert all(j["transport"] == "json_schema" and j["calls"] == 1 for j in stored)
    assert all(j["raw"].lstrip().startswith("{") for j in stored)  # the server held the output to the schema
    parsed = [j for j in stored if j["parsed"]]
    assert parsed and all(j["reasoning"].startswith("Justification: ") for j in parsed)  # stored in the text form
    assert all(j["reasoning"].endswith(f"Label: {j['label']}") for j in parsed)
    # a 135M model can still run out of room inside the JSON: kept raw, counted, never guessed
    assert all(j["label"] is None and j["error"] for j in stored if not j["parsed"])
    v = result["judge_vs_people"]
    assert v["unparsed"] == sum(not j["parsed"] for kind, j in by_kind if kind == "auto_label")
    assert v["self_consistency"]["n"] == 1 and v["cost"]["calls"] == 5 and v["cost"]["prompt_tokens"] > 0
