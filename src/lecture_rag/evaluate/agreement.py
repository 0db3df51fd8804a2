"""Agreement statistics between annotators, and between people and the LLM judge.

The product labels every answer twice: a person (manual annotation) and an
LLM predicting the person's label (automated annotation, see
``judges.auto_label``). Whether the automated labels can stand in for the
manual ones is a statistical question, answered here with plain functions over
plain lists (no I/O), so that reports, the CLI and tests share one
implementation:

* :func:`agreement` — one manual vs one automated annotation: accuracy,
  Cohen's κ with a bootstrap 95% CI, weighted κ (linear and quadratic) over the
  ordinal labels, confusion matrix and per-label precision/recall/F1;
* :func:`inter_annotator` — several people: pairwise Cohen's κ, their mean,
  and Fleiss' κ over the items everyone labelled (:func:`fleiss_kappa`);
* :func:`score_distribution` — the Answer Relevance score (0-3, normalised to
  0-1) per manual label, to see whether the score separates good answers from
  bad ones.

Decisions (tested in ``tests/test_agreement.py``):

* a pair where either side is missing (None) is skipped and counted, never
  guessed; a label outside the label set is an error (a typo in an annotation
  file must not silently vanish from the statistics);
* the default scheme is C (correta) > P (parcialmente correta) > I
  (incorreta/irrelevante), plus N (não respondeu). N is *nominal*: an
  abstention is not "between" a correct and a wrong answer, so pairs with N on
  either side count for accuracy, unweighted κ and the confusion matrix but are
  excluded from the weighted κ, and the excluded pairs are counted;
* a statistic that is undefined (κ when both sides use one single label, so
  chance agreement is 1) is reported as None with a note saying why — sklearn
  would return NaN, which serialises badly and reads like a number;
* the bootstrap resamples pairs with a fixed seed, so the same data always
  gives the same interval; resamples where κ is undefined are dropped and
  counted.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from statistics import mean, median
from typing import Literal

import numpy as np

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME

DEFAULT_LABELS: tuple[str, ...] = DEFAULT_SCHEME.codes
DEFAULT_ORDINAL: tuple[str, ...] = DEFAULT_SCHEME.ordinal_codes
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20230711
# Normalised 0-3 judge scores: 0, 1/3, 2/3, 1.
SCORE_LEVELS: tuple[tuple[str, float], ...] = (("0", 0.0), ("1/3", 1 / 3), ("2/3", 2 / 3), ("1", 1.0))
_LEVEL_EDGES = (1 / 6, 1 / 2, 5 / 6)  # midpoints between the levels


class AgreementError(LectureRagError, ValueError):
    """The annotations cannot be compared (different lengths, unknown labels, bad scores)."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class LabelStats:
    """Precision/recall/F1 of the automated labels for one label, manual labels as truth."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class WeightedKappa:
    """Weighted κ over the ordinal labels only (pairs with a nominal label excluded)."""

    ordinal_labels: list[str]
    n: int
    excluded_pairs: int
    linear: float | None
    quadratic: float | None


@dataclass(slots=True)
class AgreementReport:
    """Agreement of automated labels with manual ones; ``None`` means undefined (see ``notes``)."""

    labels: list[str]
    n: int
    skipped_missing: int
    accuracy: float | None
    kappa: float | None
    kappa_ci95: tuple[float, float] | None
    bootstrap_resamples: int
    bootstrap_seed: int
    weighted: WeightedKappa
    confusion: list[list[int]]
    per_label: list[LabelStats]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PairKappa:
    """Cohen's κ between two annotators over the items both labelled."""

    a: str
    b: str
    n: int
    observed_agreement: float | None
    kappa: float | None


@dataclass(slots=True)
class InterAnnotatorReport:
    """Agreement among people: pairwise Cohen's κ and Fleiss' κ over the fully labelled items."""

    annotators: list[str]
    labels: list[str]
    n_items: int
    pairs: list[PairKappa]
    mean_pairwise_kappa: float | None
    fleiss_n_items: int
    fleiss_kappa: float | None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ScoreSummary:
    """Distribution of normalised judge scores for one manual label."""

    n: int
    mean: float
    median: float
    min: float
    max: float
    histogram: dict[str, int]


# --------------------------------------------------------------------------- Cohen's κ


def _kappa_or_none(
    y1: Sequence[str], y2: Sequence[str], labels: Sequence[str], weights: Literal["linear", "quadratic"] | None = None
) -> float | None:
    """sklearn's Cohen's κ, with NaN (chance agreement of 1) turned into None."""
    if not y1:
        return None
    from sklearn.exceptions import UndefinedMetricWarning  # scikit-learn costs ~1 s to import: only when used
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # the undefined case is reported in ``notes``
        value = float(cohen_kappa_score(y1, y2, labels=list(labels), weights=weights))
    return None if math.isnan(value) else value


def _kappas_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Unweighted κ of a stack of confusion matrices (B, k, k); NaN where undefined.

    Used for the bootstrap: 1000 calls to sklearn cost seconds, this costs
    milliseconds. ``tests/unit/evaluate/test_agreement.py`` checks it against sklearn.
    """
    totals = confusions.sum(axis=(1, 2)).astype(float)
    observed = np.trace(confusions, axis1=1, axis2=2) / totals
    rows = confusions.sum(axis=2) / totals[:, None]
    cols = confusions.sum(axis=1) / totals[:, None]
    expected = (rows * cols).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((observed - expected) / (1.0 - expected))


def _bootstrap_kappa_ci(
    manual: Sequence[str], automated: Sequence[str], labels: Sequence[str], resamples: int, seed: int
) -> tuple[tuple[float, float] | None, int]:
    """Percentile 95% CI of κ over pair resamples, and how many resamples were undefined."""
    n, k = len(manual), len(labels)
    if n == 0 or resamples <= 0:
        return None, 0
    index = {label: i for i, label in enumerate(labels)}
    codes = np.array([index[m] * k + index[a] for m, a in zip(manual, automated, strict=True)])
    rng = np.random.default_rng(seed)
    picks = codes[rng.integers(0, n, size=(resamples, n))]
    offsets = np.arange(resamples)[:, None] * (k * k)
    confusions = np.bincount((picks + offsets).ravel(), minlength=resamples * k * k).reshape(resamples, k, k)
    kappas = _kappas_from_confusions(confusions)
    defined = kappas[~np.isnan(kappas)]
    if defined.size == 0:
        return None, resamples
    low, high = np.percentile(defined, [2.5, 97.5])
    return (float(low), float(high)), int(resamples - defined.size)


# --------------------------------------------------------------------------- agreement()


def _check_labels(values: Sequence[str], labels: Sequence[str], where: str) -> None:
    unknown = sorted({v for v in values if v not in set(labels)})
    if unknown:
        raise AgreementError(
            f"Rótulos desconhecidos {where}: {', '.join(map(repr, unknown))}. "
            f"Os rótulos válidos são {', '.join(labels)}; corrija a anotação ou informe o esquema de rótulos certo."
        )


def _paired(
    manual: Sequence[str | None], automated: Sequence[str | None], labels: Sequence[str]
) -> tuple[list[str], list[str], int]:
    """Pairs with both sides present, and how many were skipped for a missing side."""
    if len(manual) != len(automated):
        raise AgreementError(
            f"As anotações têm tamanhos diferentes ({len(manual)} manuais, {len(automated)} automáticas); "
            "elas devem estar alinhadas item a item."
        )
    if len(set(labels)) != len(labels) or not labels:
        raise AgreementError("A lista de rótulos deve ser não vazia e sem repetições.")
    kept = [(m, a) for m, a in zip(manual, automated, strict=True) if m is not None and a is not None]
    man, aut = [m for m, _ in kept], [a for _, a in kept]
    _check_labels(man, labels, "na anotação manual")
    _check_labels(aut, labels, "na anotação automática")
    return man, aut, len(manual) - len(kept)


def _weighted(man: list[str], aut: list[str], ordinal: Sequence[str], notes: list[str]) -> WeightedKappa:
    """Linear and quadratic κ over pairs whose both labels are on the ordinal scale."""
    scale = set(ordinal)
    pairs = [(m, a) for m, a in zip(man, aut, strict=True) if m in scale and a in scale]
    ys1, ys2 = [m for m, _ in pairs], [a for _, a in pairs]
    excluded = len(man) - len(pairs)
    if len(ordinal) < 2:
        notes.append("κ ponderado não calculado: a escala ordinal precisa de pelo menos dois rótulos.")
        return WeightedKappa(list(ordinal), len(pairs), excluded, None, None)
    linear = _kappa_or_none(ys1, ys2, ordinal, "linear")
    quadratic = _kappa_or_none(ys1, ys2, ordinal, "quadratic")
    if pairs and linear is None:
        notes.append("κ ponderado indefinido: nos pares ordinais as duas anotações usam um único e mesmo rótulo.")
    if excluded:
        notes.append(f"{excluded} par(es) com rótulo fora da escala ordinal ficaram fora do κ ponderado.")
    return WeightedKappa(list(ordinal), len(pairs), excluded, linear, quadratic)


def _per_label(man: list[str], aut: list[str], labels: Sequence[str]) -> list[LabelStats]:
    if not man:
        return [LabelStats(label, 0.0, 0.0, 0.0, 0) for label in labels]
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(man, aut, labels=list(labels), zero_division=0)
    return [
        LabelStats(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]


def agreement(
    manual: Sequence[str | None],
    automated: Sequence[str | None],
    labels: Sequence[str] = DEFAULT_LABELS,
    ordinal: Sequence[str] | None = None,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> AgreementReport:
    """Agreement of ``automated`` labels with ``manual`` ones (item-aligned lists).

    ``labels`` fixes the order of the confusion matrix and per-label rows.
    ``ordinal`` is the ordered scale for the weighted κ (best first); by default
    the labels of :data:`DEFAULT_ORDINAL` present in ``labels``. Pass ``()`` to
    skip the weighted κ, or e.g. ``("Yes", "No")`` for a binary scheme (where
    every weighting equals the unweighted κ).
    """
    labels = list(labels)
    scale = [x for x in DEFAULT_ORDINAL if x in labels] if ordinal is None else list(ordinal)
    _check_labels(scale, labels, "na escala ordinal")
    man, aut, skipped = _paired(manual, automated, labels)
    notes: list[str] = []
    if skipped:
        notes.append(f"{skipped} par(es) ignorado(s) por falta de rótulo manual ou automático.")
    kappa = _kappa_or_none(man, aut, labels)
    if man and kappa is None:
        notes.append(
            "κ de Cohen indefinido: as duas anotações usam um único e mesmo rótulo, "
            "então a concordância esperada ao acaso é 1."
        )
    ci, undefined = _bootstrap_kappa_ci(man, aut, labels, resamples, seed) if kappa is not None else (None, 0)
    if undefined:
        notes.append(f"{undefined} de {resamples} reamostragens do bootstrap tinham κ indefinido e foram descartadas.")
    if not man:
        notes.append("Nenhum par completo: não há o que comparar.")
    accuracy = sum(m == a for m, a in zip(man, aut, strict=True)) / len(man) if man else None
    from sklearn.metrics import confusion_matrix

    confusion = confusion_matrix(man, aut, labels=labels).tolist() if man else [[0] * len(labels) for _ in labels]
    return AgreementReport(
        labels=labels,
        n=len(man),
        skipped_missing=skipped,
        accuracy=accuracy,
        kappa=kappa,
        kappa_ci95=ci,
        bootstrap_resamples=resamples,
        bootstrap_seed=seed,
        weighted=_weighted(man, aut, scale, notes),
        confusion=[[int(x) for x in row] for row in confusion],
        per_label=_per_label(man, aut, labels),
        notes=notes,
    )


# --------------------------------------------------------------------------- inter-annotator


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' κ from an items × categories table of rater counts (Fleiss 1971).

    Every item must have the same number of raters (at least two). Returns None
    when chance agreement is 1 (every rating in one category).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        raise AgreementError("A tabela do κ de Fleiss deve ter uma linha por item e uma coluna por rótulo.")
    raters = table.sum(axis=1)
    if np.any(raters != raters[0]) or raters[0] < 2:
        raise AgreementError("O κ de Fleiss exige o mesmo número de anotadores (pelo menos dois) em todos os itens.")
    n = raters[0]
    p_item = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_cat = table.sum(axis=0) / table.sum()
    p_bar, p_e = float(p_item.mean()), float((p_cat**2).sum())
    return None if math.isclose(p_e, 1.0) else (p_bar - p_e) / (1.0 - p_e)


def _pair_kappa(a: str, b: str, items: Mapping[str, Mapping[str, str | None]], labels: list[str]) -> PairKappa:
    shared = [(v[a], v[b]) for v in items.values() if v.get(a) is not None and v.get(b) is not None]
    ys1, ys2 = [str(x) for x, _ in shared], [str(y) for _, y in shared]
    observed = sum(x == y for x, y in shared) / len(shared) if shared else None
    return PairKappa(a, b, len(shared), observed, _kappa_or_none(ys1, ys2, labels))


def inter_annotator(
    labels_by_item: Mapping[str, Mapping[str, str | None]], labels: Sequence[str] | None = None
) -> InterAnnotatorReport:
    """Agreement among annotators: ``{item: {annotator: label}}`` (None or absent = not labelled).

    Pairwise Cohen's κ uses each pair's shared items; Fleiss' κ uses only the
    items every annotator labelled. Both can be biased when who labels an item
    depends on the item (e.g. a third annotator called only on disagreements):
    that is a property of the data, flagged by the caller, not corrected here.
    """
    annotators = sorted({name for votes in labels_by_item.values() for name, v in votes.items() if v is not None})
    seen = sorted({v for votes in labels_by_item.values() for v in votes.values() if v is not None})
    cats = list(labels) if labels is not None else seen
    _check_labels(seen, cats, "nas anotações")
    notes: list[str] = []
    pairs = [_pair_kappa(a, b, labels_by_item, cats) for a, b in combinations(annotators, 2)]
    for pair in pairs:
        if pair.kappa is None:
            reason = "nenhum item em comum" if pair.n == 0 else "os dois usam um único e mesmo rótulo"
            notes.append(f"κ entre {pair.a} e {pair.b} indefinido: {reason}.")
    defined = [p.kappa for p in pairs if p.kappa is not None]
    full = [v for v in labels_by_item.values() if all(v.get(name) is not None for name in annotators)]
    fleiss = None
    if len(annotators) >= 2 and full:
        fleiss = fleiss_kappa([[sum(v[name] == c for name in annotators) for c in cats] for v in full])
        if fleiss is None:
            notes.append("κ de Fleiss indefinido: todos os rótulos dos itens completos são iguais.")
    elif len(annotators) >= 2:
        notes.append("κ de Fleiss não calculado: nenhum item foi rotulado por todos os anotadores.")
    return InterAnnotatorReport(
        annotators=annotators,
        labels=cats,
        n_items=len(labels_by_item),
        pairs=pairs,
        mean_pairwise_kappa=mean(defined) if defined else None,
        fleiss_n_items=len(full),
        fleiss_kappa=fleiss,
        notes=notes,
    )


# --------------------------------------------------------------------------- score distribution


def _level(score: float) -> str:
    """The 0-3 level a normalised score is nearest to (a score exactly halfway goes up)."""
    return SCORE_LEVELS[bisect_right(_LEVEL_EDGES, score)][0]


def score_distribution(scores: Sequence[float | None], labels: Sequence[str | None]) -> dict[str, ScoreSummary]:
    """Normalised judge scores (0-1) summarised per manual label; pairs missing either side are skipped.

    The histogram counts scores per judge level ("0", "1/3", "2/3", "1"): the
    judge scores 0-3 in whole steps, so one bin per step shows exactly what it said.
    """
    if len(scores) != len(labels):
        raise AgreementError(
            f"Notas e rótulos têm tamanhos diferentes ({len(scores)} e {len(labels)}); alinhe-os item a item."
        )
    grouped: dict[str, list[float]] = {}
    for score, label in zip(scores, labels, strict=True):
        if score is None or label is None or math.isnan(score):
            continue
        if not 0.0 <= score <= 1.0:
            raise AgreementError(f"Nota fora do intervalo 0-1: {score}. As notas do juiz devem estar normalizadas.")
        grouped.setdefault(label, []).append(float(score))
    out: dict[str, ScoreSummary] = {}
    for label, values in grouped.items():
        histogram = {name: 0 for name, _ in SCORE_LEVELS}
        for value in values:
            histogram[_level(value)] += 1
        out[label] = ScoreSummary(
            n=len(values),
            mean=mean(values),
            median=median(values),
            min=min(values),
            max=max(values),
            histogram=histogram,
        )
    return out
