"""Two runs side by side: what changed per metric, which questions flipped label."""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.evaluate.summary import RunOverview, auto_label, manual_label, run_summary
from lecture_rag.records import RunItem

COMPARED_RETRIEVAL = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


@dataclass(slots=True)
class MetricPair:
    """One metric in run A and in run B (None where a run has no value for it)."""

    name: str
    a: float | None
    b: float | None


@dataclass(slots=True)
class Flip:
    """A question (matched by id) whose manual or automated label differs between the runs."""

    qid: str
    question: str
    which: str  # "manual" or "automatizada"
    a: str | None
    b: str | None


@dataclass(slots=True)
class Comparison:
    """What ``compare`` reports."""

    metrics: list[MetricPair]
    flips: list[Flip]
    shared_questions: int
    # Questions labelled in one run only: not a flip (nobody changed their mind), counted apart.
    labelled_in_one: int = 0


def _metrics(summary: RunOverview) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for kind, j in summary.judges.items():
        out[f"{kind} (média)"] = j.mean
    for key in COMPARED_RETRIEVAL:
        out[key] = summary.retrieval.metrics.get(key) if summary.retrieval else None
    agreement = summary.agreement
    out["acurácia manual×auto"] = agreement.accuracy if agreement else None
    out["κ manual×auto"] = agreement.kappa if agreement else None
    n = summary.questions or 1
    out["abstenções (fração)"] = summary.answers.abstained / n
    out["sem citação (fração)"] = summary.answers.no_citations / n
    for label, count in sorted(summary.manual_labels.items()):  # over the annotated answers, not all questions
        out[f"manual {label} (fração das anotadas)"] = count / summary.annotated if summary.annotated else None
    return out


def compare_runs(
    a: list[RunItem],
    b: list[RunItem],
    scheme_a: LabelScheme = DEFAULT_SCHEME,
    scheme_b: LabelScheme = DEFAULT_SCHEME,
) -> Comparison:
    """Metrics of both runs and the questions (matched by id) whose labels differ."""
    ma, mb = _metrics(run_summary(a, scheme_a)), _metrics(run_summary(b, scheme_b))
    metrics = [MetricPair(k, ma.get(k), mb.get(k)) for k in dict.fromkeys([*ma, *mb])]
    by_id = {i.qid: i for i in b}
    flips = []
    in_one = 0
    for item in a:
        other = by_id.get(item.qid)
        if other is None:
            continue
        for which, fn in (("manual", manual_label), ("automatizada", auto_label)):
            la, lb = fn(item), fn(other)
            if la and lb and la != lb:
                flips.append(Flip(item.qid, item.question, which, la, lb))
            elif bool(la) != bool(lb):
                in_one += 1
    shared = len({i.qid for i in a} & set(by_id))
    return Comparison(metrics, flips, shared, in_one)
