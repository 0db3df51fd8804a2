"""Labelled answer sets for measuring judges: the shared Kamalloo and EVOUNA files, bad rows, file judges, examples.

The counts below were read from the files with the csv/json modules (see each
test); the readers must reproduce them, and the file judge must reproduce the
agreement that ``test_kamalloo.py`` computes on its own from the same files.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from lecture_rag.evaluate.agreement import agreement
from lecture_rag.evaluate.judges import parse_label_output, parse_score_output, verdict_text
from lecture_rag.evaluate.judgesets import (
    DatasetError,
    load_dataset,
    load_examples,
    load_file_verdicts,
    refuse_problems,
    sample,
)
from lecture_rag.evaluate.labels import DEFAULT_SCHEME
from lecture_rag.evaluate.summary import fact_position
from tests.support.paths import shared

KAMALLOO = shared("answer-judgments", "kamalloo2023-nq")
EVOUNA = shared("answer-judgments", "evouna-nq")


@pytest.fixture(scope="module")
def kamalloo():  # type: ignore[no-untyped-def]
    return load_dataset(KAMALLOO, DEFAULT_SCHEME)


@pytest.fixture(scope="module")
def evouna():  # type: ignore[no-untyped-def]
    return load_dataset(EVOUNA, DEFAULT_SCHEME)


def test_kamalloo_folder_reads_the_human_file_with_yes_c_and_no_i(kamalloo) -> None:  # type: ignore[no-untyped-def]
    with (KAMALLOO / "NQ301_human.tsv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert kamalloo.path.name == "NQ301_human.tsv" and kamalloo.kind == "kamalloo" and not kamalloo.problems
    assert len(kamalloo.items) == len(rows) == 1490
    expected = Counter({"Yes": "C", "No": "I"}[r["Acceptable?"]] for r in rows)
    assert Counter(i.label for i in kamalloo.items) == expected
    first = kamalloo.items[0]
    assert (first.id, first.line, first.answer.text) == ("1@2", 2, "washington metropolitan area")
    assert len({i.id for i in kamalloo.items}) == 1490  # (id, answer) repeats in the file; the row does not


def test_evouna_items_what_is_left_out_and_the_malformed_items(evouna) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((EVOUNA / "NQ.json").read_text(encoding="utf-8"))
    proper = [e for e in data if not e["improper"]]
    judged = [
        (e, s) for e in proper for s in ("fid", "gpt35", "chatgpt", "gpt4", "newbing") if e[f"judge_{s}"] is not None
    ]
    assert evouna.left_out["pergunta marcada 'improper' pelos autores"] == 590
    # five judged answers have no text: reported by item, not silently dropped
    assert [p.split(":")[0] for p in evouna.problems] == [
        "item 538",
        "item 1987",
        "item 2948",
        "item 3278",
        "item 3560",
    ]
    assert len(evouna.items) == len(judged) - 5 == 15094
    item = next(i for i in evouna.items if i.id == "1:gpt4")
    assert item.references == ("Wilhelm Conrad Röntgen",) and item.label == "C" and item.source == "gpt4"
    with pytest.raises(
        DatasetError, match=r"5 itens malformados: item 538: judge_newbing sem answer_newbing.*--skip-bad"
    ):
        refuse_problems(evouna)


def test_malformed_tsv_rows_are_named_by_line(tmp_path: Path) -> None:
    lines = (KAMALLOO / "NQ301_human.tsv").read_text(encoding="utf-8").splitlines()[:4]
    lines += ["7\twho is it\tBob\tMaybe\tYes\tNo\t", "8\tshort row", "9\t\tanswer\tYes\tYes\tYes\t"]
    path = tmp_path / "mine_human.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_dataset(path, DEFAULT_SCHEME)
    assert len(data.items) == 3
    assert data.problems == [
        "linha 5: 'Acceptable?' deve ser Yes ou No (veio 'Maybe')",
        "linha 6: 2 colunas, o cabeçalho tem 7",
        "linha 7: pergunta ou resposta vazia",
    ]
    with pytest.raises(DatasetError, match="3 linhas malformadas: linha 5"):
        refuse_problems(data)


def test_a_folder_with_two_label_files_is_refused(tmp_path: Path) -> None:
    for name in ("a_human.tsv", "b_human.tsv"):
        (tmp_path / name).write_text("id\tQuestion\tModel answer\tAcceptable?\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="exatamente um arquivo"):
        load_dataset(tmp_path, DEFAULT_SCHEME)


def test_file_judge_gpt4_matches_the_authors_binarisation(kamalloo) -> None:  # type: ignore[no-untyped-def]
    """Same pairs and κ as test_kamalloo's authors' column (1,487 pairs, accuracy 0.8480, κ 0.6951)."""
    verdicts = load_file_verdicts(KAMALLOO / "NQ301_gpt-4.tsv", kamalloo, DEFAULT_SCHEME)
    assert "29@151" not in verdicts  # that row of the GPT-4 file judges another answer ("July 11 1901", not "558")
    unreadable = [j for j in verdicts.values() if not j.parsed]
    assert len(unreadable) == 2 and all(j.raw.startswith("I cannot determine") and j.label is None for j in unreadable)
    manual = [i.label for i in kamalloo.items]
    auto = [verdicts[i.id].label if i.id in verdicts else None for i in kamalloo.items]
    report = agreement(manual, auto, DEFAULT_SCHEME.codes, ordinal=(), resamples=0)
    assert (report.n, round(report.accuracy or 0, 4), round(report.kappa or 0, 4)) == (1487, 0.8480, 0.6951)


def test_sample_is_fixed_by_its_seed_and_grows_by_prefix(evouna) -> None:  # type: ignore[no-untyped-def]
    small, large = sample(evouna.items, 10, 7), sample(evouna.items, 30, 7)
    assert [i.id for i in small] == [i.id for i in sample(evouna.items, 10, 7)]
    assert {i.id for i in small} <= {i.id for i in large}
    assert [i.position for i in large] == sorted(i.position for i in large)
    assert {i.id for i in sample(evouna.items, 10, 8)} != {i.id for i in small}


def test_examples_must_not_come_from_the_scored_items(kamalloo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scored = kamalloo.items[:20]
    path = tmp_path / "ex.jsonl"
    leak = {"question": scored[3].question.upper(), "answer": "x", "label": "Yes"}
    path.write_text(json.dumps(leak) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=f"é a do item {scored[3].id.split('@')[0]}@"):  # question 1 has 5 answers
        load_examples(path, DEFAULT_SCHEME, scored)
    fine = {"question": "who painted the mona lisa", "answer": "Leonardo", "label": "no", "references": ["da Vinci"]}
    path.write_text(json.dumps(fine) + "\n", encoding="utf-8")
    (example,) = load_examples(path, DEFAULT_SCHEME, scored)
    assert (example.label, example.references) == ("I", ("da Vinci",))
    path.write_text(json.dumps({**fine, "label": "talvez"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="linha 1: rótulo 'talvez' fora do esquema"):
        load_examples(path, DEFAULT_SCHEME, scored)


def test_json_verdicts_read_as_the_seed_text_form() -> None:
    raw = '{"criteria": "relevance", "supporting_evidence": "it answers\\nall of it", "score": 3}'
    assert verdict_text(raw) == "Criteria: relevance\nSupporting Evidence: it answers all of it\nScore: 3"
    score, reasoning, error = parse_score_output(raw)
    assert (score, error) == (3, "") and reasoning.startswith("Criteria: relevance")
    assert parse_score_output('{"criteria": "c", "supporting_evidence": "e", "score": 2.5}')[0] is None  # not rounded
    label, reasoning, _ = parse_label_output('{"justification": "matches the reference", "label": "C"}')
    assert label == "C" and reasoning == "Justification: matches the reference\nLabel: C"
    assert parse_label_output('{"justification": "cut off')[0] is None  # unparseable JSON stays unparsed
    assert verdict_text("Label: C") == "Label: C"


def test_fact_position() -> None:
    assert fact_position("Röntgen won it in 1901.", ["Wilhelm Röntgen", "Röntgen"]) == "início"
    assert fact_position("In 1901 the prize went to Wilhelm Conrad Röntgen", ["Röntgen"]) == "fim"
    assert fact_position("Marie Curie", ["Röntgen"]) == "ausente"


def test_a_run_exported_as_json_is_a_data_set(tmp_path: Path) -> None:
    """``lecture-rag report RUN --format json`` output: labelled records become items, with excerpts and references."""
    from lecture_rag.records import Annotation, Answer, Hit, QuestionMeta, RunItem
    from lecture_rag.report.run_report import json_report

    hit = Hit(7, "SP_EF_405", 10.0, 130.0, "o paleolítico durou cerca de dois milhões de anos", score=0.9)
    answer = Answer("quanto durou?", "pt", [hit], [hit], "Cerca de dois milhões de anos [1].")
    items = [
        RunItem("q1", 0, "quanto durou?", QuestionMeta("dois milhões de anos"), answer,
                annotations={"ana": Annotation("C"), "bia": Annotation("correta")}),
        RunItem("q2", 1, "e depois?", QuestionMeta(), answer),  # no manual label: left out, counted
        RunItem("q3", 2, "onde?", QuestionMeta(), answer, annotations={"ana": Annotation("talvez")}),
    ]  # fmt: skip
    path = tmp_path / "rodada.json"
    path.write_text(json_report("base", {}, items, {}), encoding="utf-8")
    data = load_dataset(path, DEFAULT_SCHEME)
    assert (data.kind, data.name, data.left_out) == ("run", "base", {"registro sem anotação manual": 1})
    (item,) = data.items
    assert (item.id, item.label, item.references) == ("q1", "C", ("dois milhões de anos",))
    assert item.answer.context[0].corpus_id == 7  # the judge sees the excerpts the answer was written from
    assert data.problems == ["registro 3: rótulo 'talvez' fora do esquema (C, P, I, N)"]
