"""Typed results keep their JSON: run configurations old and new, hidden URLs, flat report rows, index stats."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lecture_rag.evaluate.agreement import agreement
from lecture_rag.evaluate.retrieval import Summary, TopScoreGap, mode_report
from lecture_rag.evaluate.summary import run_summary
from lecture_rag.index.build import IndexStats
from lecture_rag.records import HIDDEN, JUDGES_KIND, Answer, CitedTime, Hit, Reference, RunConfig
from lecture_rag.store import RunStore, Store
from lecture_rag.wire import from_data, to_data

YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def test_a_configuration_stored_by_an_older_version_reads_and_writes_back_as_it_was() -> None:
    stored = {"embedder": "e5", "k": 5, "llm": "x", "mode": "dense", "retired_option": [1, 2]}
    config = from_data(RunConfig, stored)
    assert (config.k, config.llm, config.judge_llm, config.label_scheme) == (5, "x", "", [])  # missing: defaults
    assert to_data(config) == stored  # nothing invented, nothing lost, keys sorted as stored


def test_a_new_configuration_writes_every_key_of_its_kind_sorted() -> None:
    run = to_data(RunConfig(k=3, mode="hybrid", llm="a"))
    assert list(run) == sorted(run) and "questions_sha" in run and "dataset" not in run and "kind" not in run
    judges = to_data(RunConfig(kind=JUDGES_KIND, dataset="d", judge_file_sha=None))
    assert judges["kind"] == "judges" and judges["judge_file_sha"] is None and "questions_sha" not in judges
    assert from_data(RunConfig, judges) == from_data(RunConfig, json.loads(json.dumps(judges)))


def test_resuming_compares_the_stored_keys_only(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        runs = RunStore(store)
        assert runs.start("r", RunConfig(k=5, mode="dense")) is True
        assert runs.start("r", RunConfig(k=5, mode="dense")) is False
        assert isinstance(runs.require("r"), RunConfig) and runs.summaries()[0].config.k == 5


def _answer() -> Answer:
    hit = Hit(1, "v", 10.0, 20.0, "texto", video_url=YOUTUBE, score=0.9)
    ref = Reference("v", "Aula", YOUTUBE, [CitedTime(1, 1, 10.0, YOUTUBE + "&t=10s")])
    return Answer("q", "pt", [hit], [hit], text="r [1]", references=[ref], citations=[1])


def test_hiding_urls_is_how_an_answer_is_written_not_a_change_to_it() -> None:
    answer = _answer()
    shown, hidden = to_data(answer), to_data(answer, hide_urls=True)
    assert shown["hits"][0]["url"].startswith("https://") and shown["hits"][0]["player"]["kind"] == "youtube"
    assert hidden["hits"][0]["url"] == hidden["hits"][0]["video_url"] == hidden["context"][0]["url"] == HIDDEN
    assert hidden["hits"][0]["player"] == {"kind": "none", "src": None, "youtube_id": None}
    assert shown["hits"][0]["cite_url"].startswith("https://") and hidden["hits"][0]["cite_url"] == HIDDEN
    assert YOUTUBE.split("=")[-1] not in json.dumps(hidden)  # no deep link leaks the video
    assert hidden["references"][0]["url"] == hidden["references"][0]["times"][0]["url"] == HIDDEN
    assert hidden["references"][0]["player"]["kind"] == "none"
    assert list(hidden) == list(shown) and list(hidden["hits"][0]) == list(shown["hits"][0])  # same keys, same order
    assert answer.hits[0].video_url == YOUTUBE and to_data(answer) == shown  # the record itself is untouched


def test_report_rows_are_flat_in_json_and_grouped_in_the_record() -> None:
    summary = Summary(2, {"recall@1": 0.5}, {"offset_median": None})
    assert to_data(summary) == {"n": 2, "recall@1": 0.5, "offset_median": None}
    row = to_data(mode_report([], with_details=False))
    assert list(row)[:1] == ["n"] and "by_type" in row and "questions" not in row
    assert list(to_data(TopScoreGap(None, 0.1))) == ["answerable_top1_cosine", "unanswerable_top1_cosine"]
    assert to_data(mode_report([], with_details=True))["questions"] == []


def test_a_run_without_pairs_says_why_and_the_note_is_left_out_otherwise() -> None:
    empty = to_data(run_summary([]))
    assert empty["agreement"] is None and "lecture-rag annotate" in empty["agreement_note"]
    keys = list(empty)
    assert keys.index("agreement_note") == keys.index("agreement") + 1
    paired = to_data(replace(run_summary([]), agreement=agreement(["C", "I"], ["C", "C"]), agreement_note=None))
    assert paired["agreement"]["n"] == 2 and "agreement_note" not in paired
    assert paired["agreement"]["kappa_ci95"] is None or isinstance(paired["agreement"]["kappa_ci95"], list)


def test_index_stats_list_what_applies_in_order() -> None:
    skipped = IndexStats(3, "e5", 384, skipped=True, kind="exact")
    assert " ".join(f"{k}={v}" for k, v in skipped.items()) == "segments=3 embedder=e5 dim=384 skipped=True kind=exact"
    skipped.cache_pruned = 0
    assert skipped.items()[-1] == ("cache_pruned", 0)
