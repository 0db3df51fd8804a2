"""The annotation label scheme that people and the automated annotator share.

Configured under ``[[labels]]`` in the settings (default: C correta, P
parcialmente correta, I incorreta ou irrelevante, N não respondeu). A run
stores the scheme it was made with, so its annotations, agreement and pages
keep using that scheme even after the configuration changes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lecture_rag.config import LabelSettings, default_labels
from lecture_rag.errors import LectureRagError
from lecture_rag.records import RunConfig

# Keys the terminal annotator keeps for itself (observation, skip, back, quit).
RESERVED_KEYS = frozenset("osbq")


def fold_text(text: str) -> str:
    """Lowercase without accents, so ``Pontuação``/``pontuacao`` and ``não``/``nao`` match alike."""
    norm = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in norm if not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class LabelDef:
    """One annotation label: its code, Portuguese name, rubric text and accepted spellings."""

    code: str
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    ordinal: bool = True
    guide: str = ""

    @property
    def guide_text(self) -> str:
        """What annotators read: the guide, else the rubric description."""
        return self.guide or self.description


@dataclass(frozen=True, slots=True)
class LabelScheme:
    """Ordered labels (best first) that annotators and the auto-labeller share."""

    labels: tuple[LabelDef, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(label.code for label in self.labels)

    @property
    def ordinal_codes(self) -> tuple[str, ...]:
        """The quality order, best first, for weighted kappa (labels outside it are nominal)."""
        return tuple(label.code for label in self.labels if label.ordinal)

    def keyed(self) -> list[tuple[str, LabelDef]]:
        """Each label with its keyboard key: the code's letter, else its position (1-9)."""
        out: list[tuple[str, LabelDef]] = []
        for position, label in enumerate(self.labels, start=1):
            key = label.code.lower()
            if len(key) != 1 or key in RESERVED_KEYS or key.isdigit() or any(key == k for k, _ in out):
                key = str(position)
            out.append((key, label))
        return out

    def keys(self) -> dict[str, str]:
        """``{key: code}`` for reading key presses."""
        return {key: label.code for key, label in self.keyed()}

    def resolve(self, value: str) -> str | None:
        """The code meant by ``value`` (``C``, ``c``, ``correta``, ``Correct``), or None."""
        folded = fold_text(value)
        first = re.match(r"([a-z])(?![a-z])", folded)
        if first:
            for code in self.codes:
                if code.lower() == first.group(1):
                    return code
        names = sorted(
            (
                (fold_text(alias), label.code)
                for label in self.labels
                for alias in (label.code, label.name, *label.aliases)  # multi-letter codes too ("OK")
            ),
            key=lambda pair: -len(pair[0]),
        )
        for alias, code in names:
            if re.match(rf"{re.escape(alias)}(?![a-z])", folded):
                return code
        return None

    def to_config(self) -> list[dict[str, Any]]:
        """JSON-ready form, stored in a run's configuration snapshot (read back by :func:`scheme_of_run`)."""
        return [LabelSettings(**asdict(label)).model_dump() for label in self.labels]


def scheme_from_settings(labels: Sequence[LabelSettings | Mapping[str, Any]]) -> LabelScheme:
    """Validate a configured scheme: at least two labels, codes unique ignoring case, every spelling reachable."""
    scheme = _scheme(labels)
    _refuse_dead_spellings(scheme)
    return scheme


def _refuse_dead_spellings(scheme: LabelScheme) -> None:
    """Every name and alias must read as its own label.

    An alias equal to another label's code (``P`` on C), starting like one
    (``p. certa``), or another label's name or alias always resolves to that
    other label: accepted and never reachable, so a person's label would be
    read as something else without a word.
    """
    for label in scheme.labels:
        for spelling in (label.name, *label.aliases):
            if not fold_text(spelling):
                raise LectureRagError(
                    f"Em [[labels]], o rótulo {label.code} tem um apelido vazio. Remova-o de 'aliases'."
                )
            meant = scheme.resolve(spelling)
            if meant == label.code:
                continue
            other = next(lab for lab in scheme.labels if lab.code == meant)
            if fold_text(spelling) == fold_text(other.code):
                raise LectureRagError(
                    f"Em [[labels]], o apelido '{spelling}' do rótulo {label.code} é o código do rótulo {meant}: "
                    f"é sempre lido como {meant} e nunca chegaria a {label.code}. Remova-o de 'aliases'."
                )
            if fold_text(spelling) in {fold_text(s) for s in (other.name, *other.aliases)}:
                first, second = sorted((label.code, meant), key=scheme.codes.index)
                raise LectureRagError(
                    f"Em [[labels]], '{spelling}' é nome ou apelido de dois rótulos, {first} e {second}, "
                    "e só pode indicar um deles. Deixe-o em um só."
                )
            raise LectureRagError(
                f"Em [[labels]], o nome ou apelido '{spelling}' do rótulo {label.code} é lido como {meant} "
                f"(começa com o código {meant}), então nunca chegaria a {label.code}. Remova-o ou troque-o por outro."
            )


def _scheme(labels: Sequence[LabelSettings | Mapping[str, Any]]) -> LabelScheme:
    """A scheme from settings: at least two labels, codes unique ignoring case, something ordinal."""
    items = [lab if isinstance(lab, LabelSettings) else LabelSettings(**lab) for lab in labels]
    if len(items) < 2:
        raise LectureRagError("O esquema de rótulos ([[labels]] na configuração) precisa de pelo menos dois rótulos.")
    folded = [fold_text(lab.code) for lab in items]
    repeated = sorted({c for c in folded if folded.count(c) > 1})
    if repeated:
        raise LectureRagError(
            f"Códigos de rótulo repetidos em [[labels]]: {', '.join(repeated)}. Cada rótulo precisa de um código único."
        )
    if not any(lab.ordinal for lab in items):
        raise LectureRagError("Em [[labels]], pelo menos um rótulo precisa estar na ordem de qualidade (ordinal).")
    return LabelScheme(tuple(LabelDef(**{**lab.model_dump(), "aliases": tuple(lab.aliases)}) for lab in items))


DEFAULT_SCHEME = scheme_from_settings(default_labels())


def scheme_of_run(config: RunConfig) -> LabelScheme:
    """The scheme a run was made with; runs from before schemes were stored used the default.

    A stored scheme is not refused for an unreachable alias: it was accepted
    when the run was made, and the run must stay readable.
    """
    return _scheme(config.label_scheme) if config.label_scheme else DEFAULT_SCHEME
