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
