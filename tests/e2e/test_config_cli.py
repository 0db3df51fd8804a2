"""The CLI reads its defaults from the store's configuration, the same source the web app reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli

QUESTION = "quanto tempo durou o paleolítico?"


@pytest.fixture
def own_store(nurc_indexed: Path, tmp_path: Path) -> Path:
    """A private copy of the indexed NURC store, so its config.toml touches no other test."""
    copy = tmp_path / "aulas"
    shutil.copytree(nurc_indexed, copy)
    return copy


def test_store_option_reads_the_store_config(own_store: Path) -> None:
    """``--store DIR`` used to ignore ``DIR/config.toml``; and the CLI hard-coded k=10 and dense."""
    (own_store / "config.toml").write_text('[retrieval]\nk = 3\nmode = "bm25"\n', encoding="utf-8")
    result = run_cli("search", QUESTION, "--json", "--store", str(own_store))
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    assert all(h["score"] is None and h["sources"] == ["bm25"] for h in hits)  # bm25 mode: no cosine
    flagged = run_cli("search", QUESTION, "--json", "--k", "2", "--mode", "dense", "--store", str(own_store))
    hits = json.loads(flagged.stdout)
    assert len(hits) == 2 and all(h["sources"] == ["dense"] for h in hits)  # flags still win


def test_ask_and_run_take_the_configured_defaults(own_store: Path, tmp_path: Path) -> None:
    (own_store / "config.toml").write_text("[retrieval]\nk = 4\n", encoding="utf-8")
    ask = run_cli("ask", QUESTION, "--format", "json", "--llm", "none", "--store", str(own_store))
    assert ask.returncode == 0, ask.stderr
    assert len(json.loads(ask.stdout)["hits"]) == 4
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": QUESTION}) + "\n", encoding="utf-8")
    run = run_cli(
        "run", str(questions), "--name", "padrao", "--llm", "none", "--judge-llm", "none", "--store", str(own_store)
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run_cli("report", "padrao", "--format", "json", "--store", str(own_store)).stdout)
    assert report["config"]["k"] == 4 and report["config"]["mode"] == "dense"


def test_a_bad_mode_in_the_config_stops_every_command_with_a_clear_message(own_store: Path) -> None:
    (own_store / "config.toml").write_text('[retrieval]\nmode = "bogus"\n', encoding="utf-8")
    for args in (["search", QUESTION], ["corpus", "list"]):
        result = run_cli(*args, "--store", str(own_store))
        assert result.returncode == 2, result.stdout
        assert "retrieval.mode" in result.stderr and "bogus" in result.stderr
        assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- unknown keys, bad flags (issue 23)


def _one_line(text: str) -> str:
    """stderr as one line (rich wraps long messages)."""
    return " ".join(text.split())


def test_an_unknown_key_is_named_with_its_file_and_the_valid_keys(tmp_path: Path) -> None:
    """A typo in a key (``rerank_candidate``) used to be ignored: the default applied and nobody knew."""
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text("[retrieval]\nk = 3\nrerank_candidate = 20\n", encoding="utf-8")
    result = run_cli("corpus", "list", "--store", str(store))
    message = _one_line(result.stderr)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "chave desconhecida 'rerank_candidate' em [retrieval]" in message
    assert str(store / "config.toml") in message and "rerank_candidates" in message  # the valid keys, listed


def test_an_unknown_section_is_named_with_the_valid_sections(tmp_path: Path) -> None:
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text("[retrival]\nk = 3\n", encoding="utf-8")
    result = run_cli("search", QUESTION, "--store", str(store))
    message = _one_line(result.stderr)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "seção desconhecida [retrival]" in message and str(store / "config.toml") in message
    assert "[retrieval]" in message and "[judge_llm]" in message


def test_a_bad_flag_value_is_refused_like_a_bad_config_value(tmp_path: Path) -> None:
    """``--device gpu`` used to reach the transcriber unchecked; now the settings model refuses it first."""
    caption = tmp_path / "aula.srt"
    caption.write_text("1\n00:00:01,000 --> 00:00:05,000\numa fala qualquer\n", encoding="utf-8")
    store = tmp_path / "aulas"
    result = run_cli("ingest", str(caption), "--device", "gpu", "--store", str(store))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert _one_line(result.stderr).startswith("Erro: --device gpu: use 'cpu', 'cuda' ou 'auto'")
    assert not (store / "lecture-rag.sqlite3").exists()  # refused before the store was opened
