"""Evaluation runs end to end through the CLI: run, kill/resume, annotate, agreement, reports, compare."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import kill_when, run_cli
from tests.support.paths import QUESTIONS


def _subset(tmp_path: Path, n: int, labels: dict[int, str] | None = None) -> Path:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    chosen = [*lines[: n - 1], lines[-1]]  # the last question is unanswerable
    out = []
    for i, line in enumerate(chosen):
        obj = json.loads(line)
        if labels and i in labels:
            obj["label"] = labels[i]
        out.append(json.dumps(obj, ensure_ascii=False))
    path = tmp_path / f"q{n}.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _rows(store: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store / "lecture-rag.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def _ensure_extractive_run(store: Path, tmp_path: Path) -> None:
    """The run of ``test_extractive_run_without_judge_reports_no_fake_scores``, made here when that test did not run."""
    if _rows(store, "SELECT COUNT(*) FROM runs WHERE name='extrativa'") == [(0,)]:
        tmp_path.mkdir()
        questions = _subset(tmp_path, 4, labels={0: "C"})
        made = run_cli(
            "run", str(questions), "--name", "extrativa", "--llm", "none", "--judge-llm", "none", store=store
        )
        assert made.returncode == 0, made.stderr


def test_extractive_run_without_judge_reports_no_fake_scores(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _subset(tmp_path, 4, labels={0: "C"})
    result = run_cli(
        "run", str(questions), "--name", "extrativa", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert result.returncode == 0, result.stderr
    assert "Nenhum juiz configurado" in result.stdout
    md = run_cli("report", "extrativa", "--hide-urls", store=nurc_indexed).stdout
    assert md.count("**Pergunta ") == 4 and md.count("\n---\n") == 4
    assert "**Answer Relevance (AR)**: n/d" in md
    assert "**Raciocínio (AR CoT)**: (nenhum juiz configurado)" in md
    assert "**Anotação manual**: C" in md  # imported from the question file's "label"
    summary = json.loads(run_cli("agreement", "extrativa", "--json", store=nurc_indexed).stdout)
    assert summary["judges"]["answer_relevance"]["mean"] is None
    assert summary["answers"]["extractive"] == 4
    assert summary["retrieval"]["n"] == 3 and summary["retrieval"]["recall@10"] > 0.5
    # rerun: nothing to do, nothing duplicated
    again = run_cli(
        "run", str(questions), "--name", "extrativa", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert "4 já prontas" in again.stdout
    assert _rows(nurc_indexed, "SELECT COUNT(*) FROM run_items WHERE run='extrativa'") == [(4,)]
    # another configuration under the same name is refused
    other = run_cli("run", str(questions), "--name", "extrativa", "--llm", "none", "--k", "5", store=nurc_indexed)
    assert other.returncode == 2 and "outra configuração" in other.stderr


def test_judges_option_runs_only_the_judges_asked_for(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _subset(tmp_path, 2)
    base = ("run", str(questions), "--name", "so-ar", "--llm", "none", "--judge-llm", "none")
    bad = run_cli(*base, "--judges", "ar,xyz", store=nurc_indexed)
    assert bad.returncode == 2 and "juiz desconhecido: xyz" in bad.stderr and "label (auto_label)" in bad.stderr
    assert "so-ar" not in run_cli("runs", store=nurc_indexed).stdout  # refused before anything started
    ok = run_cli(*base, "--judges", "label, AR", store=nurc_indexed)
    assert ok.returncode == 0, ok.stderr
    kinds = _rows(nurc_indexed, "SELECT DISTINCT kind FROM judgments WHERE run='so-ar' ORDER BY kind")
    assert kinds == [("answer_relevance",), ("auto_label",)]
    config = json.loads(_rows(nurc_indexed, "SELECT config FROM runs WHERE name='so-ar'")[0][0])
    assert config["judges"] == ["answer_relevance", "auto_label"] and config["judge_grammar"] is False
    text = run_cli("agreement", "so-ar", store=nurc_indexed).stdout
    assert "Juiz context_relevance: não pedido nesta rodada" in text
    # all four judges under the same name is another experiment: refused
    other = run_cli(*base, store=nurc_indexed)
    assert other.returncode == 2 and "outra configuração" in other.stderr


def _annotate_in_terminal(store: Path, run: str, annotator: str, keys: str) -> tuple[str, dict[str, str]]:
    """Type ``keys`` (one per line) into ``lecture-rag annotate``; its output and the labels now stored."""
    exe = Path(sys.executable).parent / "lecture-rag"
    term = subprocess.run(
        [str(exe), "annotate", run, "--annotator", annotator, "--store", str(store)],
        input=keys,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert term.returncode == 0, term.stderr
    sql = f"SELECT qid, label FROM annotations WHERE run='{run}' AND annotator='{annotator}'"
    return term.stdout, dict(_rows(store, sql))


SIM_QUASE_NAO = """
[[labels]]
code = "S"
name = "sim"
description = "the ANSWER is right."
guide = "a resposta está certa."

[[labels]]
code = "Q"
name = "quase"
description = "the ANSWER is nearly right."
guide = "a resposta está quase certa."

[[labels]]
code = "X"
name = "sem resposta"
description = "the ANSWER abstains."
ordinal = false
"""


def test_a_configured_label_scheme_drives_import_terminal_and_agreement(nurc_indexed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(SIM_QUASE_NAO, encoding="utf-8")
    env = {"LECTURE_RAG_CONFIG": str(config)}
    bad_questions = _subset(tmp_path, 3, labels={0: "C"})  # C is not in this scheme
    base = ("--name", "esquema", "--llm", "none", "--judge-llm", "none")
    refused = run_cli("run", str(bad_questions), *base, store=nurc_indexed, env=env)
    assert refused.returncode == 2 and "Rótulos fora do esquema (S, Q, X)" in refused.stderr
    assert "'C'" in refused.stderr and "esquema" not in run_cli("runs", store=nurc_indexed).stdout

    questions = _subset(tmp_path, 3, labels={0: "sim"})  # a name resolves to its code
    ran = run_cli("run", str(questions), *base, store=nurc_indexed, env=env)
    assert ran.returncode == 0, ran.stderr
    qids = [json.loads(line)["id"] for line in questions.read_text().splitlines()]
    config_snapshot = json.loads(_rows(nurc_indexed, "SELECT config FROM runs WHERE name='esquema'")[0][0])
    assert [lab["code"] for lab in config_snapshot["label_scheme"]] == ["S", "Q", "X"]

    # The run keeps its scheme when the configuration goes back to the default.
    labels_csv = tmp_path / "rotulos.csv"
    labels_csv.write_text(f"qid,label\n{qids[1]},C\n", encoding="utf-8")
    wrong = run_cli("annotate", "import", "esquema", str(labels_csv), store=nurc_indexed)
    assert wrong.returncode == 2 and "rótulo 'C' inválido (use S, Q, X)" in wrong.stderr
    labels_csv.write_text(f"qid,label,annotator\n{qids[1]},q,bruno\n{qids[2]},X,bruno\n", encoding="utf-8")
    assert run_cli("annotate", "import", "esquema", str(labels_csv), store=nurc_indexed).returncode == 0

    # Terminal keys: s (skip) and q (quit) are taken, so S and Q are typed as 1 and 2.
    out, ana = _annotate_in_terminal(nurc_indexed, "esquema", "ana", "1\n2\nx\n")
    assert "1/2/x = rótulo" in out and "a resposta está quase certa." in out
    assert ana == {qids[0]: "S", qids[1]: "Q", qids[2]: "X"}
    summary = json.loads(run_cli("agreement", "esquema", "--json", store=nurc_indexed).stdout)
    assert summary["manual_labels"] == {"S": 1, "Q": 1, "X": 1}  # each item's annotators agree
    assert summary["inter_annotator"]["annotators"] == ["ana", "arquivo-de-perguntas", "bruno"]
    assert summary["inter_annotator"]["labels"] == ["S", "Q", "X"]


def test_killed_run_resumes_without_duplicates_or_losses(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _subset(tmp_path, 8)
    exe = Path(sys.executable).parent / "lecture-rag"
    args = [
        str(exe),
        "run",
        str(questions),
        "--name",
        "morta",
        "--llm",
        "none",
        "--judge-llm",
        "none",
        "--store",
        str(nurc_indexed),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(
        proc, nurc_indexed / "lecture-rag.sqlite3", "SELECT COUNT(*) FROM run_items WHERE run='morta'", 2, timeout=300
    )
    partial = _rows(nurc_indexed, "SELECT COUNT(*) FROM run_items WHERE run='morta'")[0][0]
    assert 2 <= partial < 8
    result = run_cli(
        "run", str(questions), "--name", "morta", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert result.returncode == 0, result.stderr
    assert f"{partial} já prontas" in result.stdout or f"{partial - 1} já prontas" in result.stdout
    rows = _rows(nurc_indexed, "SELECT qid, COUNT(*) FROM run_items WHERE run='morta' GROUP BY qid")
    assert len(rows) == 8 and all(count == 1 for _, count in rows)
    judged = _rows(nurc_indexed, "SELECT COUNT(DISTINCT qid), COUNT(*) FROM judgments WHERE run='morta'")
    assert judged == [(8, 32)]


def test_annotation_import_terminal_agreement_and_reports(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _subset(tmp_path, 4)
    assert (
        run_cli(
            "run", str(questions), "--name", "anot", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
        ).returncode
        == 0
    )
    qids = [json.loads(line)["id"] for line in questions.read_text().splitlines()]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"qid,label\n{qids[0]},C\nnao-existe,P\n{qids[1]},X\n", encoding="utf-8")
    refused = run_cli("annotate", "import", "anot", str(bad), store=nurc_indexed)
    assert refused.returncode == 2 and "nada foi importado" in refused.stderr
    assert "nao-existe" in refused.stderr and "'X'" in refused.stderr
    good = tmp_path / "labels.csv"
    good.write_text(
        "qid,label,annotator,comment\n" + "".join(f"{q},{lab},bruno,ok\n" for q, lab in zip(qids, "CPIN", strict=True)),
        encoding="utf-8",
    )
    imported = run_cli("annotate", "import", "anot", str(good), store=nurc_indexed)
    assert imported.returncode == 0 and "4 anotação" in imported.stdout
    # terminal mode with piped keys: label two, skip back, quit
    out, labels = _annotate_in_terminal(nurc_indexed, "anot", "ana", "c\np\nb\ni\nq\n")
    assert "2 rótulo(s) gravado(s)" in out or "3 rótulo(s) gravado(s)" in out
    assert labels == {qids[0]: "C", qids[1]: "I"}
    summary = json.loads(run_cli("agreement", "anot", "--json", store=nurc_indexed).stdout)
    assert summary["inter_annotator"]["annotators"] == ["ana", "bruno"]
    assert summary["agreement"] is None  # no judge: no automated labels to compare
    html = tmp_path / "r.html"
    assert run_cli("report", "anot", "--format", "html", "-o", str(html), store=nurc_indexed).returncode == 0
    page = html.read_text(encoding="utf-8")
    assert "<h2>Registros</h2>" in page and page.count("<details>") == 4
    csv_out = run_cli("report", "anot", "--format", "csv", store=nurc_indexed).stdout
    assert csv_out.splitlines()[0].startswith("n,qid,question,answer")
    assert len(csv_out.strip().splitlines()) >= 5
    data = json.loads(run_cli("report", "anot", "--format", "json", "--hide-urls", store=nurc_indexed).stdout)
    assert len(data["records"]) == 4 and data["config"]["llm"] == "none (extrativa)"
    # compare with the first run: shared questions; a question annotated in one run only is no flip (issue 25):
    # the first question is C in both, the others are labelled here and not there
    _ensure_extractive_run(nurc_indexed, tmp_path / "extrativa")
    cmp = json.loads(run_cli("compare", "anot", "extrativa", "--json", store=nurc_indexed).stdout)
    assert cmp["shared_questions"] >= 3
    assert not any(f["which"] == "manual" for f in cmp["flips"])
    assert cmp["labelled_in_one"] >= 2


@pytest.mark.slow
def test_run_with_bundled_model_as_answerer_and_judge(nurc_indexed: Path, tmp_path: Path) -> None:
    """The tiny bundled model answers and drives every judge: structure is checked, not eloquence."""
    from lecture_rag.llm import bundled_gguf

    model = bundled_gguf()
    assert model is not None
    questions = _subset(tmp_path, 2)
    env = {
        "LECTURE_RAG_LLM_MAX_TOKENS": "32",
        "LECTURE_RAG_LLM_CONTEXT_WINDOW": "2048",
        "LECTURE_RAG_JUDGE_LLM_CONTEXT_WINDOW": "2048",
    }
    result = run_cli(
        "run",
        str(questions),
        "--name",
        "gguf",
        "--llm",
        f"gguf:{model}",
        "--judge-llm",
        f"gguf:{model}",
        "--k",
        "2",
        store=nurc_indexed,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(run_cli("report", "gguf", "--format", "json", store=nurc_indexed).stdout)
    assert len(data["records"]) == 2
    for record in data["records"]:
        assert record["answer"]["model"].startswith("gguf:")
        assert set(record["judgments"]) == {"answer_relevance", "context_relevance", "groundedness", "auto_label"}
        for j in record["judgments"].values():
            assert j["model"].startswith("gguf:")
            assert j["score"] is None or 0.0 <= j["score"] <= 1.0
            assert j["parsed"] or j["error"] or not j["applicable"]
    md = run_cli("report", "gguf", store=nurc_indexed).stdout
    assert md.count("**Answer Relevance (AR)**: ") == 2
