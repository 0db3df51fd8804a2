"""``search``, ``eval retrieval`` with reranking and the cited second, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS


def test_search_json_gives_the_second_to_cite_and_is_reproducible(nurc_indexed: Path) -> None:
    args = ("search", "Quantos termos para gelo existem na língua dos esquimós?", "--k", "5", "--json")
    first = run_cli(*args, "--rerank", "passages", store=nurc_indexed)
    assert first.returncode == 0, first.stderr
    hits = json.loads(first.stdout)
    assert len(hits) == 5
    for hit in hits:
        assert isinstance(hit["cite_start"], float)
        assert hit["start"] <= hit["cite_start"] <= hit["end"]
        assert hit["cite_url"] == ""  # these lectures have no URL
        assert hit["rerank_score"] is not None
        assert "marks" not in hit
    # the answer to this question is said at 2018.9 s (tests/data/nurc_questions.jsonl, nurc-012)
    relevant = [h for h in hits if h["video_id"] == "SP_EF_124" and h["start"] <= 2018.9 <= h["end"]]
    assert relevant and abs(relevant[0]["cite_start"] - 2018.9) < 15
    again = run_cli(*args, "--rerank", "passages", store=nurc_indexed)
    assert again.stdout == first.stdout
    plain = run_cli(*args, "--rerank", "none", store=nurc_indexed)
    assert all(h["rerank_score"] is None for h in json.loads(plain.stdout))


def test_an_unknown_reranker_is_refused(nurc_indexed: Path) -> None:
    result = run_cli("search", "arte", "--rerank", "magico", store=nurc_indexed)
    assert result.returncode == 2
    assert "magico" in result.stderr


def test_eval_retrieval_reports_link_offsets_and_details(nurc_indexed: Path) -> None:
    result = run_cli(
        "eval", "retrieval", str(QUESTIONS), "--mode", "hybrid", "--rerank", "none", "--rerank", "passages",
        "--details", "--json", store=nurc_indexed,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["modes"]) == {"hybrid", "hybrid+passages"}
    for row in report["modes"].values():
        assert row["offset_median"] < row["window_offset_median"]
        assert row["offset_p90"] >= row["offset_median"]
        per_q = {q["id"]: q for q in row["questions"]}
        assert len(per_q) == 71
        assert per_q["nurc-069"]["answerable"] is False and per_q["nurc-069"]["offset"] is None
        found = [q for q in per_q.values() if q["first_rank"] is not None]
        assert all(q["offset"] is not None and q["offset"] >= 0 for q in found)
    ranked = report["modes"]["hybrid+passages"]
    assert ranked["hit@10"] >= report["modes"]["hybrid"]["hit@10"] - 1e-9
    text = run_cli("eval", "retrieval", str(QUESTIONS), "--mode", "bm25", "--details", store=nurc_indexed)
    assert text.returncode == 0, text.stderr
    assert "por pergunta" in text.stdout and "nurc-001" in text.stdout
