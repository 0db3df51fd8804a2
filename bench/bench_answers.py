"""Where the extractive answer loses gold-word recall: upper bounds and answer variants, in CV.

    python -m bench.bench_answers            # searches as bench_heldout does, then the tables below
    python -m bench.bench_answers --reuse    # the searches of the last run (pickled in the bench cache)

The searches, fold models and abstention are :mod:`bench.bench_heldout`'s (the
store as it is, ``--no-build``; its CV-chosen search; sentence models fitted
without the question's lecture). For the answerable NURC questions of each
transcript kind it prints:

* how often the window holding the evidence is the top one, in the top 3,
  and among the answer's 5 candidate windows;
* upper bounds at :data:`~lecture_rag.generate.extractive.MAX_WORDS` words: the
  shipped answer led by the best of the sentence model's 3 best spans; the
  best contiguous run of words starting at a piece's second in the top window,
  in the top 3 windows, in the evidence's own windows; and the evidence text
  itself cut to the budget;
* the answer as shipped beside variants of its options, recall counted 0 when
  the cross-validated abstention abstains (as bench_heldout does).

So a loss is read as window choice (the evidence is not in the top window),
span choice (the top window holds a far better run than the one quoted) or
budget use (even the best run is short of the evidence's words).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bench.bench_extractive import score as answer_score
from bench.bench_heldout import (
    DEPTHS,
    MODES,
    Bench,
    Item,
    abstention_results,
    article_items,
    bench_items,
    bootstrap,
    choose,
    cross_validate,
    cross_validated_abstention,
    finish,
    fit_abstention_cv,
    fold_sentence_models,
    prepare,
    retrieval_row,
)
from bench.heldout_store import CACHE, HOME, KINDS
from lecture_rag.evaluate.retrieval import overlaps
from lecture_rag.generate.abstain import signals
from lecture_rag.generate.extractive import FOLLOW, MAX_WORDS, _choose, _lead, _merge, candidates, extract
from lecture_rag.generate.sentences import focus
from lecture_rag.records import Piece
from lecture_rag.retrieve import SearchResult
from lecture_rag.retrieve.sentence_model import SentenceModel, span_features

PICKLE = CACHE / "heldout-answers.pkl"


def searched(squad: int) -> tuple[list[Item], dict[int, SearchResult], dict[str, SentenceModel], np.ndarray]:
    """bench_heldout's pipeline up to the answers: NURC items, their CV-chosen search results, fold
    sentence models, and the cross-validated P(answerable) shifted so that 0.5 is the threshold."""
    bench = Bench(HOME)
    items = bench_items(squad)
    prepare(bench, items)
    found: dict[str, dict[int, SearchResult]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for mode in MODES:
        for depth in DEPTHS:
            name = f"{mode.value}+learned@{depth}"
            found[name] = {n: finish(items[n], hits) for n, hits in cross_validate(items, mode, depth).items()}
            rows[name] = [retrieval_row(items[n], found[name][n]) for n in range(len(items))]
    dense = {n: finish(it, [replace(h) for h in it.runs[MODES[0]]["hits"]]) for n, it in enumerate(items)}
    found["before: dense+passages"] = dense  # only a fallback name for choose(); not measured here
    rows["before: dense+passages"] = [retrieval_row(items[n], dense[n]) for n in range(len(items))]
    best = choose(items, rows)
    print(f"search: {best}", file=sys.stderr)
    pool, results = abstention_results(items, article_items(squad, build=False), best, found[best])
    x = np.vstack([signals(results[n]) for n in range(len(pool))])
    prob = cross_validated_abstention(pool, x, fit_abstention_cv)
    models = fold_sentence_models(items, found[best])
    keep = [n for n, it in enumerate(items) if it.dataset == "nurc" and it.answerable]
    nurc = [items[n] for n in keep]
    for it in nurc:
        it.runs = {}
    return nurc, {i: found[best][n] for i, n in enumerate(keep)}, models, prob[keep]


def best_run(pieces: Sequence[Piece], reference: str, budget: int = MAX_WORDS) -> float:
    """The best recall of ``budget`` contiguous words that start at one of ``pieces``' seconds."""
    words = [p.text.split() for p in pieces]
    best = 0.0
    for i in range(len(pieces)):
        run = [w for ws in words[i:] for w in ws][:budget]
        best = max(best, answer_score(" ".join(run), reference)[0])
    return best


def evidence_windows(it: Item, found: SearchResult) -> list[int]:
    """Indexes of ``found``'s hits that overlap the question's evidence."""
    return [i for i, h in enumerate(found.hits) if any(overlaps(h, e) for e in it.question.evidence)]


def diagnose(
    items: list[Item], found: dict[int, SearchResult], bench: Bench, models: dict[str, SentenceModel]
) -> dict[str, list[float]]:
    """Per item: evidence rank shares and the upper bounds (module docstring)."""
    names = ("top1", "top3", "top5", "best of 3 leads", "oracle@1", "oracle@3", "oracle@gold", "evidence@60")
    out: dict[str, list[float]] = {k: [] for k in names}
    for n, it in enumerate(items):
        res, ref = found[n], it.question.answer or ""
        out["best of 3 leads"].append(best_of_leads(res, models[it.fold], ref, 3))
        ev = evidence_windows(it, res)
        out["top1"].append(float(0 in ev))
        out["top3"].append(float(any(i < 3 for i in ev)))
        out["top5"].append(float(any(i < 5 for i in ev)))
        out["oracle@1"].append(best_run(res.signals[0].pieces, ref))
        out["oracle@3"].append(max(best_run(s.pieces, ref) for s in res.signals[:3]))
        video = it.question.evidence[0].video_id
        segs = [s for s in bench.store.segments(video) if any(overlaps(s, e) for e in it.question.evidence)]
        out["oracle@gold"].append(max((best_run(s.pieces(), ref) for s in segs), default=0.0))
        said = [
            p.text
            for s in bench.store.segments(video)
            for p in s.pieces()
            if any(p.start < e.end and p.end > e.start for e in it.question.evidence)
        ]
        text = " ".join(dict.fromkeys(said)).split()[:MAX_WORDS]
        out["evidence@60"].append(answer_score(" ".join(text), ref)[0])
    return out


def best_of_leads(found: SearchResult, model: SentenceModel, reference: str, k: int) -> float:
    """The best recall of the shipped answer led by one of the sentence model's ``k`` best spans (an upper
    bound of choosing the lead better among the spans the model already ranks high)."""
    cands = candidates(found.hits, found.signals)
    for cand, value in zip(cands, model.score(span_features(found.query, found.hits, cands)), strict=True):
        cand.score = float(value)
    ranked = focus(sorted(cands, key=lambda c: -c.score), found.hits[0].video_id)
    best = 0.0
    for lead in ranked[:k]:
        quotes = _merge(_choose(_lead([lead, *(c for c in ranked if c is not lead)], FOLLOW), MAX_WORDS))
        best = max(best, answer_score(" ".join(q.text for q in quotes), reference)[0])
    return best


#: Options of :func:`~lecture_rag.generate.extractive.candidates`: the sentence model is refitted on them.
CANDIDATE_OPTIONS = ("clean", "span_words")


def answers(
    items: list[Item],
    found: dict[int, SearchResult],
    prob: np.ndarray,
    bench: Bench,
    options: dict[str, Any],
) -> dict[str, list[float | None]]:
    """Per item: recall (0 where the abstention abstains), words (None there), and whether the first quote
    starts inside the evidence, of its answer with ``options`` (sentence models refitted on its candidates)."""
    cand = {k: v for k, v in options.items() if k in CANDIDATE_OPTIONS}
    models = fold_sentence_models(items, found, **cand)
    out: dict[str, list[float | None]] = {"recall": [], "words": [], "lead in evidence": []}
    for n, it in enumerate(items):
        ex = extract(found[n], bench.embedder, calibrated=False, **{"model": models[it.fold], **options})
        quoted = " ".join(q.text for q in ex.quotes)
        r = answer_score(quoted, it.question.answer or "")[0]
        out["recall"].append(0.0 if prob[n] < 0.5 else r)
        out["words"].append(float(len(quoted.split())) if prob[n] >= 0.5 else None)
        lead = ex.quotes[0] if ex.quotes else None
        inside = lead is not None and any(
            e.video_id == found[n].hits[lead.number - 1].video_id and e.start <= lead.start <= e.end
            for e in it.question.evidence
        )
        out["lead in evidence"].append(float(inside))
    return out


VARIANTS: dict[str, dict[str, Any]] = {
    "shipped: as quoted": {},
    "fluent text (no hesitations, no repeats)": {"clean": True},
    "fluent, follow 4": {"clean": True, "follow": 4},
    "as quoted, spans of 10 words": {"clean": False, "span_words": 10},
    "as quoted, spans of 12 words": {"clean": False, "span_words": 12},
    "as quoted, spans of 20 words": {"clean": False, "span_words": 20},
    "as quoted, follow 2": {"clean": False, "follow": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="the searches of the last run (bench cache)")
    parser.add_argument("--squad", type=int, default=300, help="questions per SQuAD-format set (as bench_heldout)")
    args = parser.parse_args()
    if args.reuse and PICKLE.exists():
        items, found, _, prob = pickle.loads(PICKLE.read_bytes())
    else:
        items, found, models, prob = searched(args.squad)
        bare = {n: replace(r, query=replace(r.query, indexes=None)) for n, r in found.items()}  # a stemmer won't pickle
        PICKLE.write_bytes(pickle.dumps((items, bare, models, prob)))
    bench = Bench(HOME)
    measured: dict[str, dict[str, list[float | None]]] = {}
    found = {n: replace(r, query=replace(r.query, indexes=bench.indexes)) for n, r in found.items()}
    diag = diagnose(items, found, bench, fold_sentence_models(items, found))
    print("\n## Where recall is lost (answerable NURC, CV; mean [bootstrap 95% CI]; oracles ignore abstention)")
    print("| kind | n | " + " | ".join(diag) + " |")
    print("|---|---|" + "---|" * len(diag))
    for kind in KINDS:
        idx = [n for n, it in enumerate(items) if it.kind == kind]
        print(f"| {kind} | {len(idx)} | " + " | ".join(bootstrap([v[n] for n in idx]) for v in diag.values()) + " |")
    print("\n## Answer variants (recall: 0 where the CV abstention abstains; words: median of answers given)")
    print("| kind | variant | recall | words | lead in evidence |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        idx = [n for n, it in enumerate(items) if it.kind == kind]
        for name, options in VARIANTS.items():
            got = measured.setdefault(name, answers(items, found, prob, bench, options))
            cells = [bootstrap([got["recall"][n] for n in idx]), bootstrap([got["words"][n] for n in idx], np.median)]
            cells.append(bootstrap([got["lead in evidence"][n] for n in idx]))
            print(f"| {kind} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
