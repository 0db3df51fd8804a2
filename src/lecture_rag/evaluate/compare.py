"""Two runs side by side: what changed per metric, which questions flipped label."""

from __future__ import annotations

from typing import Any

from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.evaluate.summary import auto_label, manual_label, run_summary
from lecture_rag.records import RunItem


def _metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for kind, j in summary["judges"].items():
        out[f"{kind} (média)"] = j["mean"]
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        out[key] = (summary.get("retrieval") or {}).get(key)
    agreement = summary.get("agreement") or {}
    out["acurácia manual×auto"] = agreement.get("accuracy")
    out["κ manual×auto"] = agreement.get("kappa")
    n = summary["questions"] or 1
    out["abstenções (fração)"] = summary["answers"]["abstained"] / n
    out["sem citação (fração)"] = summary["answers"]["no_citations"] / n
    for label, count in sorted(summary["manual_labels"].items()):
        out[f"manual {label} (fração)"] = count / n
    return out


def compare_runs(
    a: list[RunItem],
    b: list[RunItem],
    scheme_a: LabelScheme = DEFAULT_SCHEME,
    scheme_b: LabelScheme = DEFAULT_SCHEME,
) -> dict[str, Any]:
    """Metrics of both runs and the questions (matched by id) whose labels differ."""
    ma, mb = _metrics(run_summary(a, scheme_a)), _metrics(run_summary(b, scheme_b))
    metrics = [{"name": k, "a": ma.get(k), "b": mb.get(k)} for k in dict.fromkeys([*ma, *mb])]
    by_id = {i.qid: i for i in b}
    flips = []
    for item in a:
        other = by_id.get(item.qid)
        if other is None:
            continue
        for which, fn in (("manual", manual_label), ("automatizada", auto_label)):
            la, lb = fn(item), fn(other)
            if la != lb and (la or lb):
                flips.append({"qid": item.qid, "question": item.question, "which": which, "a": la, "b": lb})
    shared = len({i.qid for i in a} & set(by_id))
    return {"metrics": metrics, "flips": flips, "shared_questions": shared}
