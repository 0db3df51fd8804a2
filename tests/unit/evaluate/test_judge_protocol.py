"""One judge protocol: an LLM judge and a file of verdicts say what differs between them, and travel to workers.

Real components: the bundled SmolLM2 GGUF (only loaded, never asked) and
Kamalloo's GPT-4 verdict file matched to its data set.
"""

from __future__ import annotations

import pickle

import pytest

from lecture_rag.config import JudgeLLMSettings
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judge_eval import file_judge
from lecture_rag.evaluate.judges import DEFAULT_CONFIG, KINDS, prompt_hashes
from lecture_rag.evaluate.judges.protocol import NO_FILE_VERDICT, NO_JUDGE, Judge, llm_judge
from lecture_rag.evaluate.judgesets import load_dataset
from lecture_rag.evaluate.labels import DEFAULT_SCHEME
from tests.support.paths import shared

KAMALLOO = shared("answer-judgments", "kamalloo2023-nq")


def _in_a_worker(judge: Judge) -> Judge:
    """What a batch engine's worker builds: the judge's setup, through pickle, given its share of cores."""
    return pickle.loads(pickle.dumps(judge.setup))(1)


def test_a_file_judge_gives_its_verdicts_once_and_without_a_prompt() -> None:
    data = load_dataset(KAMALLOO, DEFAULT_SCHEME)
    judge = file_judge(KAMALLOO / "NQ301_gpt-4.tsv", data, DEFAULT_SCHEME)
    assert (judge.name, judge.kinds(KINDS)) == ("file:NQ301_gpt-4.tsv", ["auto_label"])
    assert not (judge.parallel_safe or judge.repeatable or judge.prompted)
    snapshot = judge.snapshot(KINDS, DEFAULT_SCHEME, DEFAULT_CONFIG)
    assert snapshot["judge_file_sha"] == judge.sha and len(judge.sha) == 16
    assert snapshot["judges"] == ["auto_label"] and snapshot["judge_prompts"] is None
    item = data.items[0]
    (verdict,) = judge.judge(item, ["auto_label"], DEFAULT_SCHEME, DEFAULT_CONFIG)
    assert verdict == judge.verdicts[item.id] and verdict.model == judge.name
    assert judge.judge(item, [], DEFAULT_SCHEME, DEFAULT_CONFIG) == []  # nothing missing: nothing judged
    (missing,) = judge.judge(
        type(item)("sem-veredito", 0, "q", item.answer, "C"), ["auto_label"], DEFAULT_SCHEME, DEFAULT_CONFIG
    )
    assert (missing.parsed, missing.error) == (False, NO_FILE_VERDICT)
    assert _in_a_worker(judge) == judge  # the verdicts themselves travel


def test_an_llm_judge_is_prompted_and_built_again_from_its_settings() -> None:
    settings = JudgeLLMSettings(backend="gguf:bundled", context_window=2048)
    judge = llm_judge(settings)
    assert judge.kinds(["answer_relevance", "auto_label"]) == ["answer_relevance", "auto_label"]
    assert judge.repeatable and judge.prompted and judge.parallel_safe == judge.llm.parallel_safe
    snapshot = judge.snapshot(KINDS, DEFAULT_SCHEME, DEFAULT_CONFIG)
    assert snapshot["judge_llm"] == judge.name == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert snapshot["judge_prompts"] == prompt_hashes(DEFAULT_SCHEME) and snapshot["judge_file_sha"] is None
    assert snapshot["judge_structured"] == judge.llm.structured and snapshot["judges"] == list(KINDS)
    worker = _in_a_worker(judge)  # the settings travel, not the loaded model
    assert worker is not judge and worker.snapshot(KINDS, DEFAULT_SCHEME, DEFAULT_CONFIG) == snapshot


def test_no_judge_is_an_error_that_says_how_to_give_one() -> None:
    with pytest.raises(LectureRagError) as caught:
        llm_judge(JudgeLLMSettings(backend="none"))
    assert str(caught.value) == NO_JUDGE
