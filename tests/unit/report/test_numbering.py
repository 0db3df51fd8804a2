"""Every report numbers a question by its place in the question file, even when a killed run left gaps."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from lecture_rag.records import Answer, QuestionMeta, RunConfig
from lecture_rag.report.run_report import csv_report, json_report, markdown_report
from lecture_rag.store import RunStore, Store
from lecture_rag.wire import from_data


def test_csv_json_and_markdown_agree_on_numbers_with_gaps(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        runs = RunStore(store)
        runs.start("r", from_data(RunConfig, {"k": 1}))
        for position in (0, 2, 5):  # questions 2, 4 and 5 were never answered (the run was killed)
            answer = Answer(f"pergunta {position}", "pt", [], [], "Não encontrei a resposta nas aulas.")
            runs.save_item("r", f"q{position}", position, f"pergunta {position}", QuestionMeta(), answer)
        items = runs.items("r")
    markdown = [int(n) for n in re.findall(r"^\*\*Pergunta (\d+)\*\*", markdown_report(items), re.M)]
    table = [int(row["n"]) for row in csv.DictReader(io.StringIO(csv_report(items)))]
    records = [r["n"] for r in json.loads(json_report("r", {}, items, {}))["records"]]
    assert markdown == table == records == [1, 3, 6]
