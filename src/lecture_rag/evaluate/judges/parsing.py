"""Reading a judge's verdict: the TruLens ``Criteria / Supporting Evidence / Score`` form and ``Label: X``.

Parsing decisions (documented once, tested in ``tests/unit/evaluate/test_judges.py``):

* the **last** numeric ``Score:`` line wins: small models often echo the
  template (``Score: <the score>``) or an example before their own verdict;
* a fractional score (``2.5``) is unparseable, not rounded: the rubric is
  integral and rounding either way would invent a verdict the model did not
  give (``3.0`` is accepted, it is an integer);
* a score outside 0-3 (``7``, ``-1``) or on another scale (``8/10``) is
  unparseable, never clamped;
* a bare integer as the whole output (TruLens' no-reasoning form) is accepted.

The parsers never raise: an unreadable output comes back with ``None`` and
the reason, and the caller stores the raw text.

A verdict that arrives as JSON (the ``json_schema`` transport) is first
written in the same text form (:func:`verdict_text`), so the stored chain of
thought reads the same whatever the transport, and one parser decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, fold_text

MAX_SCORE = 3

_KEY_TAIL = r"\b[*_\s]*(?:\([^)\n]{0,20}\))?[*_\s]*(?:[:=\-–]|(?:is|é)\s)[*_\s]*"
_SCORE_LINE = re.compile(rf"(?<!\w)(?:score|pontua[çc][ãa]o|nota){_KEY_TAIL}(?P<value>[^\n]*)", re.IGNORECASE)
_LABEL_LINE = re.compile(
    rf"(?<!\w)(?:label|r[óo]tulo|classifica[çc][ãa]o|classification){_KEY_TAIL}(?P<value>[^\n]*)", re.IGNORECASE
)
_NUMBER = re.compile(
    r"[\[(<\"'`]*\s*(?P<num>[-+−]?\d+(?:[.,]\d+)?)"
    r"(?:\s*(?:/|out\s+of|de|of)\s*(?P<den>\d+(?:[.,]\d+)?))?",
    re.IGNORECASE,
)
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "um": 1, "dois": 2, "tres": 3, "três": 3}
_WORD = re.compile(r"[\[(\"'`]*\s*(?P<word>[a-zà-ú]+)\b", re.IGNORECASE)
_BARE = re.compile(r"^[*_\s]*(?P<num>\d+)(?:\s*/\s*3)?[*_.\s]*$")
_CRITERIA = re.compile(r"(?<!\w)[*_#\s]*(?:criteria|crit[ée]rios?)\b", re.IGNORECASE)
_JUSTIFICATION = re.compile(r"(?<!\w)[*_#\s]*(?:justification|justificativa)\b", re.IGNORECASE)


# JSON verdict keys and the text form's line names, in the order the text form writes them.
_SCORE_FIELDS = (("criteria", "Criteria"), ("supporting_evidence", "Supporting Evidence"), ("score", "Score"))
_LABEL_FIELDS = (("justification", "Justification"), ("label", "Label"))


def _line(value: Any) -> str:
    return " ".join(str(value).split())


def verdict_text(raw: str) -> str:
    """A JSON verdict in the seed's text form (``Criteria: … Score: N``); any other output unchanged.

    Values are copied as they are (a score of ``2.5`` stays ``2.5`` and the
    text parser then refuses it), so the conversion never makes a verdict up.
    """
    stripped = raw.strip()
    if not stripped.startswith("{"):
        return raw
    try:
        data = json.loads(stripped)
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    for fields in (_SCORE_FIELDS, _LABEL_FIELDS):
        if all(key in data for key, _ in fields):
            return "\n".join(f"{title}: {_line(data[key])}" for key, title in fields)
    return raw


def _to_int(num: str, den: str | None) -> tuple[int | None, str]:
    """Validate one score token: integer, on the 0-3 scale, or say what is wrong."""
    value = float(num.replace(",", ".").replace("−", "-"))
    if den is not None and float(den.replace(",", ".")) != MAX_SCORE:
        return None, f"nota '{num}/{den}' em outra escala (esperada 0-{MAX_SCORE})"
    if value != int(value):
        return None, f"nota fracionária '{num}' (a escala é inteira, 0-{MAX_SCORE}; não arredondamos)"
    if not 0 <= value <= MAX_SCORE:
        return None, f"nota {int(value)} fora da escala 0-{MAX_SCORE}"
    return int(value), ""


def _score_value(value: str) -> tuple[str, str | None, int] | None:
    """(number, denominator, chars used) after a ``Score:`` key, or None for a placeholder/prose line."""
    number = _NUMBER.match(value)
    if number:
        return number.group("num"), number.group("den"), number.end()
    word = _WORD.match(value)
    if word and word.group("word").lower() in _WORDS:
        return str(_WORDS[word.group("word").lower()]), None, word.end()
    return None


def _reasoning_span(text: str, end: int, start_marker: re.Pattern[str]) -> str:
    """The reasoning block that ends at ``end``: from its last start marker (or the text's start)."""
    starts = [m.start() for m in start_marker.finditer(text, 0, end)]
    begin = starts[-1] if starts else 0
    return text[begin:end].strip()


def parse_score_output(text: str) -> tuple[int | None, str, str]:
    """``(score_raw, reasoning, error)`` from a judge's output; never raises.

    ``score_raw`` is None when unreadable, and ``error`` says why (in
    Portuguese, for reports). ``reasoning`` is the CoT block ending at the
    chosen score (from its last ``Criteria:``), or the whole stripped text
    when there is no score.
    """
    text = verdict_text(text)
    if not text or not text.strip():
        return None, "", "saída vazia do juiz"
    found: tuple[int, str, str | None] | None = None
    for match in _SCORE_LINE.finditer(text):
        value = _score_value(match.group("value"))
        if value is not None:
            num, den, used = value
            found = (match.start("value") + used, num, den)
    if found is None:
        bare = _BARE.match(text)
        if bare:
            score, error = _to_int(bare.group("num"), None)
            return score, text.strip(), error
        return None, text.strip(), "a saída não tem linha 'Score: N' com um número"
    end, num, den = found
    score, error = _to_int(num, den)
    return score, _reasoning_span(text, end, _CRITERIA), error


def _exact_label(text: str, scheme: LabelScheme) -> str | None:
    """A whole output that is nothing but a code or a label name (``C``, ``**correta**``)."""
    cleaned = fold_text(text.strip().strip("*_\"'`[]()<>. "))
    for label in scheme.labels:
        if cleaned in {fold_text(x) for x in (label.code, label.name, *label.aliases)}:
            return label.code
    return None


def parse_label_output(text: str, scheme: LabelScheme = DEFAULT_SCHEME) -> tuple[str | None, str, str]:
    """``(label_code, reasoning, error)`` from an auto-label output; never raises.

    The last ``Label:`` line that is not a template placeholder (``<one of …>``)
    decides; a label outside the scheme makes the output unparseable.
    """
    text = verdict_text(text)
    if not text or not text.strip():
        return None, "", "saída vazia do juiz"
    chosen: re.Match[str] | None = None
    for match in _LABEL_LINE.finditer(text):
        if not match.group("value").strip().startswith("<"):
            chosen = match
    codes = ", ".join(scheme.codes)
    if chosen is None:
        code = _exact_label(text, scheme)
        if code is not None:
            return code, text.strip(), ""
        return None, text.strip(), f"a saída não tem linha 'Label: X' (esperado um de {codes})"
    value = chosen.group("value").strip().strip("*_\"'`[]()<>. ")
    code = scheme.resolve(value)
    end = chosen.end()
    reasoning = _reasoning_span(text, end, _JUSTIFICATION)
    if code is None:
        return None, reasoning, f"rótulo desconhecido '{value[:40]}' (esperado um de {codes})"
    return code, reasoning, ""


def normalise(score_raw: int | None) -> float | None:
    """0-3 → 0-1 (3 → 1.00), as the seed displays it."""
    return None if score_raw is None else score_raw / MAX_SCORE
