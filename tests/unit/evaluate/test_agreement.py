"""Agreement statistics: hand-computed tables, degenerate inputs, Fleiss' textbook example."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from lecture_rag.evaluate.agreement import (
    DEFAULT_LABELS,
    DEFAULT_ORDINAL,
    AgreementError,
    agreement,
    fleiss_kappa,
    inter_annotator,
    score_distribution,
)
from lecture_rag.wire import to_data

YN = ("Yes", "No")


def _pairs(table: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    """Item-aligned manual/automated lists with the given (manual, automated) counts."""
    manual: list[str] = []
    automated: list[str] = []
    for (m, a), count in table.items():
        manual += [m] * count
        automated += [a] * count
    return manual, automated


# --------------------------------------------------------------------------- Cohen's κ, 2×2


def test_two_by_two_kappa_matches_hand_computation() -> None:
    # manual \ automated   Yes  No
    #   Yes                 10   2   (12)
    #   No                   3   5   ( 8)
    #                      (13) (7)   n = 20
    # p_o = 15/20 = 0.75; p_e = (12*13 + 8*7) / 400 = 212/400 = 0.53
    # κ = (0.75 - 0.53) / (1 - 0.53) = 0.22 / 0.47 = 0.468085...
    manual, automated = _pairs({("Yes", "Yes"): 10, ("Yes", "No"): 2, ("No", "Yes"): 3, ("No", "No"): 5})
    report = agreement(manual, automated, YN, ordinal=())
    assert report.n == 20
    assert report.accuracy == pytest.approx(0.75)
    assert report.kappa == pytest.approx(0.22 / 0.47)
    assert report.confusion == [[10, 2], [3, 5]]
    yes, no = report.per_label
    assert (yes.label, yes.precision, yes.recall, yes.support) == (
        "Yes",
        pytest.approx(10 / 13),
        pytest.approx(10 / 12),
        12,
    )
    assert yes.f1 == pytest.approx(2 * (10 / 13) * (10 / 12) / (10 / 13 + 10 / 12))
    assert (no.precision, no.recall, no.support) == (pytest.approx(5 / 7), pytest.approx(5 / 8), 8)
    assert report.kappa_ci95 is not None and report.kappa is not None
    low, high = report.kappa_ci95
    assert low < report.kappa < high
    assert report.weighted.linear is None and any("κ ponderado não calculado" in n for n in report.notes)


def test_bootstrap_ci_is_the_percentile_interval_of_sklearn_kappas_on_the_same_resamples() -> None:
    """The fast bootstrap (κ from stacked confusion matrices) must equal a plain sklearn loop."""
    rng = np.random.default_rng(7)
    manual = list(rng.choice(["C", "P", "I", "N"], size=60, p=[0.4, 0.2, 0.3, 0.1]))
    automated = [m if rng.random() < 0.7 else str(rng.choice(["C", "P", "I", "N"])) for m in manual]
    report = agreement(manual, automated, resamples=200, seed=11)
    idx = np.random.default_rng(11).integers(0, 60, size=(200, 60))
    kappas = []
    for row in idx:
        m, a = [manual[i] for i in row], [automated[i] for i in row]
        kappas.append(cohen_kappa_score(m, a, labels=list(DEFAULT_LABELS)))
    expected = np.percentile(kappas, [2.5, 97.5])
    assert report.kappa_ci95 == pytest.approx(tuple(expected))
    assert report.kappa == pytest.approx(cohen_kappa_score(manual, automated))


def test_bootstrap_is_deterministic_and_depends_on_the_seed() -> None:
    manual, automated = _pairs({("C", "C"): 8, ("C", "P"): 3, ("P", "P"): 5, ("I", "I"): 6, ("I", "C"): 2})
    first = agreement(manual, automated)
    second = agreement(manual, automated)
    other = agreement(manual, automated, seed=1)
    assert first.kappa_ci95 == second.kappa_ci95
    assert first.kappa_ci95 != other.kappa_ci95
    assert first.bootstrap_resamples == 1000


# --------------------------------------------------------------------------- weighted κ


def test_weighted_kappa_charges_more_for_c_to_i_than_c_to_p() -> None:
    # manual:       C C P P I I   (marginals 1/3 each)
    # near miss:    C P P P I I   one C→P;  far miss: C I P P I I   one C→I
    # Unweighted: p_o = 5/6, p_e = 1/3 for both → κ = 0.75: it cannot tell them apart.
    # Linear weights w = |i-j|/2, κ_w = 1 - Σw·O / Σw·E:
    #   near: Σw·O = 0.5/6, Σw·E = 1/3·(1/6·1.5 + 1/2·1 + 1/3·1.5) = 5/12  → κ_w = 1 - 0.2 = 0.8
    #   far:  Σw·O = 1/6,   Σw·E = 1/3·(1/6·1.5 + 1/3·1 + 1/2·1.5) = 4/9   → κ_w = 1 - 0.375 = 0.625
    # Quadratic weights w = (|i-j|/2)²:
    #   near: Σw·O = 0.25/6, Σw·E = 1/3·(1/6·1.25 + 1/2·0.5 + 1/3·1.25) = 7/24 → κ_w = 1 - 1/7 = 6/7
    #   far:  Σw·O = 1/6,    Σw·E = 1/3·(1/6·1.25 + 1/3·0.5 + 1/2·1.25) = 1/3  → κ_w = 0.5
    manual = ["C", "C", "P", "P", "I", "I"]
    near = agreement(manual, ["C", "P", "P", "P", "I", "I"])
    far = agreement(manual, ["C", "I", "P", "P", "I", "I"])
    assert near.kappa == pytest.approx(0.75) and far.kappa == pytest.approx(0.75)
    assert near.weighted.linear == pytest.approx(0.8)
    assert far.weighted.linear == pytest.approx(0.625)
    assert near.weighted.quadratic == pytest.approx(6 / 7)
    assert far.weighted.quadratic == pytest.approx(0.5)
    assert near.weighted.ordinal_labels == list(DEFAULT_ORDINAL)


def test_abstentions_count_for_kappa_but_not_for_weighted_kappa() -> None:
    manual = ["C", "C", "P", "P", "I", "I", "N", "C"]
    automated = ["C", "P", "P", "P", "I", "I", "N", "N"]
    report = agreement(manual, automated)
    assert report.n == 8
    assert report.weighted.n == 6 and report.weighted.excluded_pairs == 2
    assert report.weighted.linear == pytest.approx(0.8)  # the six ordinal pairs of the test above
    assert report.kappa == pytest.approx(cohen_kappa_score(manual, automated))
    assert report.confusion[0] == [1, 1, 0, 1]  # manual C: one C, one P, one N
    assert any("2 par(es) com rótulo fora da escala ordinal" in n for n in report.notes)


def test_binary_weighted_kappa_equals_unweighted() -> None:
    manual, automated = _pairs({("Yes", "Yes"): 7, ("Yes", "No"): 2, ("No", "Yes"): 1, ("No", "No"): 6})
    report = agreement(manual, automated, YN, ordinal=YN)
    assert report.weighted.linear == pytest.approx(report.kappa)
    assert report.weighted.quadratic == pytest.approx(report.kappa)


def test_ordinal_scale_must_use_known_labels() -> None:
    with pytest.raises(AgreementError, match="Rótulos desconhecidos"):
        agreement(["C"], ["C"], ordinal=("C", "X"))


# --------------------------------------------------------------------------- missing / bad input


def test_missing_labels_are_skipped_and_counted() -> None:
    manual = ["C", None, "P", "I", "C", None]
    automated = ["C", "C", None, "I", "P", None]
    report = agreement(manual, automated)
    assert report.n == 3 and report.skipped_missing == 3
    assert report.accuracy == pytest.approx(2 / 3)
    assert any("3 par(es) ignorado(s)" in n for n in report.notes)


def test_unknown_label_and_length_mismatch_are_errors_in_portuguese() -> None:
    with pytest.raises(AgreementError, match=r"Rótulos desconhecidos na anotação automática: 'X'.*C, P, I, N"):
        agreement(["C", "P"], ["C", "X"])
    with pytest.raises(AgreementError, match="tamanhos diferentes"):
        agreement(["C", "P"], ["C"])
    with pytest.raises(AgreementError, match="sem repetições"):
        agreement(["C"], ["C"], labels=("C", "C"))


def test_identical_single_label_gives_none_with_a_reason_and_valid_json() -> None:
    report = agreement(["C"] * 5, ["C"] * 5)
    assert report.accuracy == 1.0
    assert report.kappa is None and report.kappa_ci95 is None
    assert report.weighted.linear is None and report.weighted.quadratic is None
    assert any("κ de Cohen indefinido" in n and "acaso é 1" in n for n in report.notes)
    assert any("κ ponderado indefinido" in n for n in report.notes)
    text = json.dumps(to_data(report), allow_nan=False)  # NaN would raise here
    assert json.loads(text)["kappa"] is None


def test_no_complete_pair_reports_nothing_to_compare() -> None:
    report = agreement([None, "C"], ["P", None])
    assert report.n == 0 and report.skipped_missing == 2
    assert report.accuracy is None and report.kappa is None
    assert report.confusion == [[0] * 4 for _ in range(4)]
    assert any("Nenhum par completo" in n for n in report.notes)
    json.dumps(to_data(report), allow_nan=False)


def test_one_sided_constant_labels_give_kappa_zero_not_none() -> None:
    # manual always C: p_e = P(auto = C) = p_o, so κ = 0 — defined, unlike the all-identical case.
    report = agreement(["C", "C", "C", "C"], ["C", "P", "C", "I"])
    assert report.kappa == pytest.approx(0.0)


def test_to_dict_is_json_ready() -> None:
    manual, automated = _pairs({("C", "C"): 4, ("P", "I"): 1, ("I", "I"): 3, ("N", "N"): 2})
    data = json.loads(json.dumps(to_data(agreement(manual, automated)), allow_nan=False))
    assert data["labels"] == ["C", "P", "I", "N"]
    assert isinstance(data["kappa_ci95"], list) and len(data["kappa_ci95"]) == 2
    assert data["per_label"][0] == {"label": "C", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 4}
    assert data["weighted"]["ordinal_labels"] == ["C", "P", "I"]


def test_default_labels_come_from_the_default_scheme() -> None:
    from lecture_rag.evaluate.labels import DEFAULT_SCHEME

    assert DEFAULT_SCHEME.codes == DEFAULT_LABELS == ("C", "P", "I", "N")
    assert DEFAULT_ORDINAL == ("C", "P", "I")  # N (abstained) is outside the quality order


# --------------------------------------------------------------------------- Fleiss / inter-annotator

# Fleiss (1971) worked example as given on Wikipedia ("Fleiss' kappa"): 10 subjects,
# 14 raters each, 5 categories; P̄ = 0.378, P̄e = 0.213, κ = 0.210.
FLEISS_1971 = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_example() -> None:
    kappa = fleiss_kappa(FLEISS_1971)
    assert kappa is not None
    assert round(kappa, 3) == 0.210


def test_fleiss_kappa_rejects_uneven_raters_and_handles_unanimity() -> None:
    with pytest.raises(AgreementError, match="mesmo número de anotadores"):
        fleiss_kappa([[2, 1], [1, 1]])
    assert fleiss_kappa([[3, 0], [3, 0]]) is None
    assert fleiss_kappa([[3, 0], [0, 3]]) == pytest.approx(1.0)


def test_inter_annotator_pairs_shared_items_and_fleiss_over_complete_items() -> None:
    items: dict[str, dict[str, str | None]] = {
        "q1": {"ana": "C", "bia": "C", "caio": "C"},
        "q2": {"ana": "P", "bia": "C", "caio": "P"},
        "q3": {"ana": "I", "bia": "I", "caio": "I"},
        "q4": {"ana": "C", "bia": "P", "caio": None},
        "q5": {"ana": "I", "bia": "I"},
        "q6": {"ana": "P", "bia": "P", "caio": "P"},
    }
    report = inter_annotator(items, labels=("C", "P", "I"))
    assert report.annotators == ["ana", "bia", "caio"]
    by_pair = {(p.a, p.b): p for p in report.pairs}
    ab = by_pair[("ana", "bia")]
    assert ab.n == 6 and ab.observed_agreement == pytest.approx(4 / 6)
    assert ab.kappa == pytest.approx(
        cohen_kappa_score(["C", "P", "I", "C", "I", "P"], ["C", "C", "I", "P", "I", "P"], labels=["C", "P", "I"])
    )
    assert by_pair[("ana", "caio")].n == 4 and by_pair[("ana", "caio")].kappa == pytest.approx(1.0)
    assert report.mean_pairwise_kappa == pytest.approx(np.mean([p.kappa for p in report.pairs]))
    # Complete items q1, q2, q3, q6 → counts per (C, P, I):
    assert report.fleiss_n_items == 4
    assert report.fleiss_kappa == pytest.approx(fleiss_kappa([[3, 0, 0], [1, 2, 0], [0, 0, 3], [0, 3, 0]]))
    json.dumps(to_data(report), allow_nan=False)


def test_inter_annotator_without_shared_items() -> None:
    report = inter_annotator({"q1": {"ana": "C"}, "q2": {"bia": "P"}})
    assert report.pairs[0].n == 0 and report.pairs[0].kappa is None
    assert report.mean_pairwise_kappa is None and report.fleiss_kappa is None
    assert any("nenhum item em comum" in n for n in report.notes)
    assert any("nenhum item foi rotulado por todos" in n for n in report.notes)


# --------------------------------------------------------------------------- score distribution


def test_score_distribution_per_manual_label() -> None:
    scores = [1.0, 2 / 3, 1.0, None, 0.0, 1 / 3, 0.5, 0.9]
    labels = ["C", "C", "C", "C", "I", "I", None, "P"]
    dist = score_distribution(scores, labels)
    assert set(dist) == {"C", "I", "P"}
    c = dist["C"]
    assert c.n == 3
    assert c.mean == pytest.approx(8 / 9) and c.median == 1.0
    assert (c.min, c.max) == (pytest.approx(2 / 3), 1.0)
    assert c.histogram == {"0": 0, "1/3": 0, "2/3": 1, "1": 2}
    assert dist["I"].histogram == {"0": 1, "1/3": 1, "2/3": 0, "1": 0}
    assert dist["P"].histogram["1"] == 1  # 0.9 is nearest to the top level


def test_score_distribution_halfway_goes_up_and_rejects_unnormalised() -> None:
    assert score_distribution([0.5], ["P"])["P"].histogram["2/3"] == 1
    assert score_distribution([float("nan")], ["P"]) == {}
    with pytest.raises(AgreementError, match="normalizadas"):
        score_distribution([3.0], ["C"])
    with pytest.raises(AgreementError, match="tamanhos diferentes"):
        score_distribution([1.0], [])
