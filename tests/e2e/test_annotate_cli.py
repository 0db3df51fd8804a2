"""Annotating in the terminal and importing labels, as a person does it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS
from tests.support.terminal import Terminal


def _run(nurc_indexed: Path, tmp_path: Path, name: str) -> list[dict[str, object]]:
    questions = tmp_path / "perguntas.jsonl"
    questions.write_text("\n".join(QUESTIONS.read_text(encoding="utf-8").splitlines()[:3]) + "\n", encoding="utf-8")
    made = run_cli("run", str(questions), "--name", name, "--llm", "none", "--judge-llm", "none", "--k", "2",
                   store=nurc_indexed)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]


def _labels(nurc_indexed: Path, name: str) -> dict[str, dict[str, str]]:
    report = json.loads(run_cli("report", name, "--format", "json", store=nurc_indexed).stdout)
    return {r["qid"]: {who: a["label"] for who, a in r["annotations"].items()} for r in report["records"]}


def test_an_unknown_key_does_not_skip_the_record(nurc_indexed: Path, tmp_path: Path) -> None:
    """A typo ('x') used to count as "skip": the next key then labelled the wrong answer."""
    items = _run(nurc_indexed, tmp_path, "teclas")
    result = run_cli("annotate", "teclas", "--annotator", "ana", store=nurc_indexed, input="x\nc\nq\n")
    assert result.returncode == 0, result.stderr
    assert "Tecla desconhecida 'x'" in result.stdout
    labels = _labels(nurc_indexed, "teclas")
    assert labels[str(items[0]["id"])] == {"ana": "C"}
    assert labels[str(items[1]["id"])] == {}


def test_import_accepts_names_and_aliases(nurc_indexed: Path, tmp_path: Path) -> None:
    items = _run(nurc_indexed, tmp_path, "importa")
    rows = [{"qid": items[0]["id"], "label": "correta"}, {"qid": items[1]["id"], "label": "partially correct"}]
    path = tmp_path / "rotulos.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = run_cli("annotate", "import", "importa", str(path), "--annotator", "bia", store=nurc_indexed)
    assert result.returncode == 0, result.stderr
    labels = _labels(nurc_indexed, "importa")
    assert labels[str(items[0]["id"])] == {"bia": "C"} and labels[str(items[1]["id"])] == {"bia": "P"}


def _annotations(nurc_indexed: Path, name: str) -> dict[str, dict[str, dict[str, str]]]:
    report = json.loads(run_cli("report", name, "--format", "json", store=nurc_indexed).stdout)
    return {r["qid"]: r["annotations"] for r in report["records"]}


def test_back_shows_the_earlier_label_and_comment_and_relabelling_keeps_the_comment(
    nurc_indexed: Path, tmp_path: Path
) -> None:
    """Going back ('b') used to show the record as if unlabelled, and labelling it again wiped its comment."""
    items = _run(nurc_indexed, tmp_path, "voltar")
    first = str(items[0]["id"])
    # comment + label C on the first record, back, relabel P (comment untouched), back, then an empty
    # comment line (Enter keeps it), then 'q'.
    keys = "o\nfaltou citar o texto\nc\nb\np\nb\no\n\nq\n"
    result = run_cli("annotate", "voltar", "--annotator", "ana", store=nurc_indexed, input=keys)
    assert result.returncode == 0, result.stderr
    screens = result.stdout.split("1/3 · anotadas por você")
    # screens[1]: first view; [2]: after 'o'; [3]: after 'b' (labelled C); [4]: after the second 'b' (relabelled P)
    assert "Seu rótulo" not in screens[1]
    assert "Seu rótulo: C" in screens[3] and "faltou citar o texto" in screens[3]
    assert "Seu rótulo: P" in screens[4] and "faltou citar o texto" in screens[4]
    assert _annotations(nurc_indexed, "voltar")[first]["ana"]["label"] == "P"
    assert _annotations(nurc_indexed, "voltar")[first]["ana"]["comment"] == "faltou citar o texto"


def test_the_record_reads_question_answer_reference_then_evidence(nurc_indexed: Path, tmp_path: Path) -> None:
    """The person judges the answer: it comes after the question, then the reference answer, then the evidence."""
    items = _run(nurc_indexed, tmp_path, "ordem")
    result = run_cli("annotate", "ordem", "--annotator", "bia", store=nurc_indexed, input="q\n")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # rich wraps long lines
    reference = " ".join(str(items[0]["answer"]).split())
    marks = ["Pergunta:", "Resposta em avaliação", "Resposta de referência", reference[:40], "Evidência"]
    positions = [out.find(mark) for mark in marks]
    assert -1 not in positions and positions == sorted(positions), dict(zip(marks, positions, strict=True))


def test_in_a_terminal_the_comment_prompt_offers_the_current_comment_and_enter_keeps_it(
    nurc_indexed: Path, tmp_path: Path
) -> None:
    """With a real terminal (one key per label): back shows label and comment; Enter at the prompt keeps it."""
    items = _run(nurc_indexed, tmp_path, "terminal")
    first = str(items[0]["id"])
    with Terminal(["annotate", "terminal", "--annotator", "ana"], nurc_indexed) as term:
        term.expect("q = sair")
        assert "Observação: faltou citar o texto" in term.comment("faltou citar o texto")
        term.key("c")
        term.expect("2/3")
        term.expect("q = sair")
        term.key("b")
        back = term.expect("q = sair")
        assert "Seu rótulo: C" in back and "Observação: faltou citar o texto" in back
        term.key("o")
        assert "[faltou citar o texto]" in term.expect("apaga)")
        term.send("\r")
        term.expect("q = sair")
        term.label("p")
        term.key("q")
        assert term.close() == 0
    saved = _annotations(nurc_indexed, "terminal")[first]["ana"]
    assert saved["label"] == "P" and saved["comment"] == "faltou citar o texto"
