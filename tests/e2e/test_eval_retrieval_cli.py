"""`lecture-rag eval retrieval` and `search` through the CLI on the indexed NURC lectures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS


def test_eval_reproduces_its_numbers_and_reports_every_mode(nurc_indexed: Path) -> None:
    first = run_cli("eval", "retrieval", str(QUESTIONS), "--json", store=nurc_indexed)
    second = run_cli("eval", "retrieval", str(QUESTIONS), "--json", store=nurc_indexed)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    report = json.loads(first.stdout)
    # every mode, without reranking and with the configured reranker (learned, the default since issue 22)
    assert set(report["modes"]) == {"dense", "bm25", "hybrid", "dense+learned", "bm25+learned", "hybrid+learned"}
    for mode in report["modes"].values():
        assert mode["n"] == 62
        assert 0.6 < mode["recall@10"] <= 1.0
        assert "explanation" in mode["by_type"]
    table = run_cli("eval", "retrieval", str(QUESTIONS), "--mode", "hybrid", store=nurc_indexed)
    assert "recall@10" in table.stdout and "por tipo" in table.stdout


def test_search_returns_ten_hits_with_cosines_in_every_mode(nurc_indexed: Path) -> None:
    for mode in ("dense", "hybrid"):
        hits = json.loads(
            run_cli(
                "search", "como os homens do paleolítico viviam", "--mode", mode, "--json", store=nurc_indexed
            ).stdout
        )
        assert len(hits) == 10
        assert all(0.7 < h["score"] <= 1.0 for h in hits)
    english = json.loads(run_cli("search", "how long did the Palaeolithic last?", "--json", store=nurc_indexed).stdout)
    assert english[0]["video_id"] == "SP_EF_405"


def test_bad_queries_and_empty_store(nurc_indexed: Path, tmp_path: Path) -> None:
    empty = run_cli("search", "  ", store=nurc_indexed)
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    long = run_cli("search", "arte rupestre " * 800, "--json", store=nurc_indexed)
    assert long.returncode == 0 and len(json.loads(long.stdout)) == 10
    none = run_cli("search", "arte", store=tmp_path / "nada")
    assert none.returncode == 2 and "lecture-rag ingest" in none.stderr


def test_corrupt_index_says_to_rebuild(nurc_indexed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(nurc_indexed, copy)
    for npy in (copy / "index").rglob("*.npy"):
        npy.write_bytes(b"corrompido")
    result = run_cli("search", "arte", store=copy)
    assert result.returncode == 2
    assert "--rebuild" in result.stderr and "Traceback" not in result.stderr
    rebuilt = run_cli("index", "--rebuild", store=copy)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert run_cli("search", "arte", store=copy).returncode == 0
