"""The configurable label scheme: validation, keyboard keys, and what a run keeps of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from lecture_rag.config import LabelSettings, Settings, default_labels
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, scheme_from_settings, scheme_of_run
from lecture_rag.records import RunConfig
from lecture_rag.wire import from_data
from tests.support.cli import run_cli


def _label(code: str, ordinal: bool = True) -> dict[str, object]:
    return {"code": code, "name": f"nome {code}", "description": f"rubric for {code}", "ordinal": ordinal}


def test_default_scheme_is_the_reference_systems() -> None:
    assert DEFAULT_SCHEME.codes == ("C", "P", "I", "N")
    assert DEFAULT_SCHEME.ordinal_codes == ("C", "P", "I")
    assert DEFAULT_SCHEME.keys() == {"c": "C", "p": "P", "i": "I", "n": "N"}
    guide = DEFAULT_SCHEME.labels[0].guide_text
    assert guide.startswith("a resposta responde corretamente")  # people read Portuguese
    assert DEFAULT_SCHEME.labels[0].description.startswith("the ANSWER")  # the judge reads the rubric
    assert [lab.code for lab in Settings().labels] == ["C", "P", "I", "N"]


def test_keys_avoid_the_terminal_commands_and_multi_letter_codes() -> None:
    scheme = scheme_from_settings([_label("S"), _label("Q"), _label("OK"), _label("x", ordinal=False)])
    # s skips and q quits in the terminal, OK is two letters: they get their position instead
    assert scheme.keys() == {"1": "S", "2": "Q", "3": "OK", "x": "x"}
    assert scheme.ordinal_codes == ("S", "Q", "OK")
    assert scheme.resolve("ok") == "OK" and scheme.resolve("nome Q") == "Q" and scheme.resolve("Z") is None


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([_label("A")], "pelo menos dois rótulos"),
        ([_label("A"), _label("a")], "repetidos em [[labels]]: a"),
        ([_label("A", ordinal=False), _label("B", ordinal=False)], "ordem de qualidade"),
    ],
)
def test_bad_schemes_are_refused_with_what_to_fix(labels: list[dict[str, object]], message: str) -> None:
    with pytest.raises(LectureRagError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scheme_from_settings(labels)


def test_codes_must_be_short_plain_words() -> None:
    with pytest.raises(ValidationError, match="code"):
        LabelSettings(code='C"; drop', name="x", description="y")
    with pytest.raises(ValidationError, match="name"):
        LabelSettings(code="C", name="", description="y")


def test_a_run_keeps_its_scheme_and_old_runs_read_as_default() -> None:
    custom = scheme_from_settings([_label("S"), _label("N", ordinal=False)])
    assert scheme_of_run(from_data(RunConfig, {"label_scheme": custom.to_config()})) == custom
    assert (
        scheme_of_run(from_data(RunConfig, {"labels": ["C", "P", "I", "N"]})) == DEFAULT_SCHEME
    )  # snapshot from before schemes
    assert scheme_from_settings(default_labels()) == DEFAULT_SCHEME


def test_a_bad_scheme_in_config_toml_is_a_clear_cli_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[labels]]\ncode = "C D"\nname = "x"\ndescription = "y"\n', encoding="utf-8")
    result = run_cli("runs", store=tmp_path / "store", env={"LECTURE_RAG_CONFIG": str(config)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Configuração inválida: labels.0.code" in result.stderr and str(config) in result.stderr.replace("\n", "")
    config.write_text("[labels\n", encoding="utf-8")
    broken = run_cli("runs", store=tmp_path / "store", env={"LECTURE_RAG_CONFIG": str(config)})
    assert broken.returncode == 2 and "não é TOML válido" in broken.stderr


@pytest.mark.parametrize(
    ("extra", "dead", "read_as"),
    [
        ({"C": ["P"]}, "P", "P"),  # an alias equal to another label's code
        ({"C": ["p"]}, "p", "P"),  # ignoring case
        ({"C": ["p. certa"]}, "p. certa", "P"),  # starts like a code: the code wins
        ({"C": ["parcialmente correta"]}, "parcialmente correta", "P"),  # another label's name
        ({"C": ["ok"], "P": ["ok"]}, "ok", "C"),  # an alias of two labels
    ],
)
def test_an_alias_another_label_takes_is_refused(extra: dict[str, list[str]], dead: str, read_as: str) -> None:
    """Such an alias was accepted and never reachable: it always resolved to the other label."""
    labels = [lab.model_dump() for lab in default_labels()]
    for label in labels:
        label["aliases"] = [*label["aliases"], *extra.get(str(label["code"]), [])]
    owner = next(code for code, aliases in extra.items() if code != read_as and dead in aliases)
    with pytest.raises(LectureRagError) as info:
        scheme_from_settings(labels)
    message = str(info.value)
    assert f"'{dead}'" in message
    assert re.search(rf"\b{owner}\b", message) and re.search(rf"\b{read_as}\b", message), message
    assert "lido como" in message or "dois rótulos" in message


def test_every_spelling_of_the_default_scheme_reaches_its_label() -> None:
    for label in DEFAULT_SCHEME.labels:
        for spelling in (label.code, label.name, *label.aliases):
            assert DEFAULT_SCHEME.resolve(spelling) == label.code, spelling


def test_a_stored_run_with_a_dead_alias_still_opens() -> None:
    """Runs made before the check keep their scheme readable (the alias just stays unreachable)."""
    labels = [lab.model_dump() for lab in default_labels()]
    labels[0]["aliases"] = ["P"]
    scheme = scheme_of_run(from_data(RunConfig, {"label_scheme": labels}))
    assert scheme.labels[0].aliases == ("P",) and scheme.resolve("P") == "P"


def test_an_empty_alias_is_refused() -> None:
    labels = [_label("S"), {**_label("Q"), "aliases": ["  "]}]
    with pytest.raises(LectureRagError, match="apelido vazio"):
        scheme_from_settings(labels)
