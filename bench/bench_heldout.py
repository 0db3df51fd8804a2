"""Held-out quality of ranking, answers and abstention: leave-one-lecture-out CV with distractors in the store.

    python -m bench.bench_heldout --quick     # ~5 min on 2 busy cores after the store is built
    python -m bench.bench_heldout             # every NURC question, 300 FaQuAD + 300 SQuAD-pt questions
    python -m bench.bench_heldout --fit       # also fit on every fold and write the shipped models
    python -m bench.bench_heldout --fit-sentences   # ... only the extractive sentence model

The store (:mod:`bench.heldout_store`): the four NURC-SP lectures, human AND ASR
transcripts, among 211 FaQuAD and 506 SQuAD-pt paragraphs. A question about
transcript kind K is searched among K's lectures and every paragraph (the other
kind holds the same speech, so it is left out of that search).

Folds: one per NURC lecture (its questions on both kinds) and two per SQuAD-format
set (by article). Every weight and threshold is fitted on the other folds and
scored on the held-out one (the inner choice of the regularisation by
``LogisticRegressionCV`` over the training folds' own groups).

Unanswerable questions: the 9 of the NURC file, plus every NURC question asked
with its lecture removed from the search, and SQuAD-format questions with their
whole article removed.

A course's own store, for the abstention only (:func:`course_items`): every
NURC item asked again of its kind's lectures alone, and 30 FaQuAD + 30 SQuAD-pt
questions per kind asked there as off-topic ones.

Reported per data set and transcript kind, mean with a bootstrap 95% interval:
hit@1, hit@10, MRR@10, link offset median (seconds; NURC only), and the
extractive answer's content-word recall, words (median), and abstentions
(answerable lost, unanswerable caught). BEFORE = today's defaults (dense,
``passages`` reranker, extractive abstention at cosine 0.84); AFTER = the
cross-validated choice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score

from bench.bench_extractive import score as answer_score
from bench.heldout_store import ARTICLES_HOME, HOME, KINDS, LECTURES, SQUAD_SETS, article_set, ensure_store, squad_set
from lecture_rag.config import RetrievalMode, load_settings
from lecture_rag.embed import Embedder, make_embedder
from lecture_rag.evaluate.questions import Paragraph, load_questions
from lecture_rag.evaluate.retrieval import judge_hits
from lecture_rag.generate.abstain import MODEL_PATH as ABSTAIN_PATH
from lecture_rag.generate.abstain import SIGNALS, AbstainModel, signals
from lecture_rag.generate.extractive import Candidate, candidates, extract
from lecture_rag.records import Evidence, Hit, Question
from lecture_rag.retrieve import Retriever, SearchRequest, SearchResult
from lecture_rag.retrieve.cite import cite_hits, piece_signals
from lecture_rag.retrieve.learned import FEATURES, MODEL_PATH, LearnedModel, LearnedReranker, depth_scores, features
from lecture_rag.retrieve.rerank import PassageReranker, Query, rerank_or_keep
from lecture_rag.retrieve.sentence_model import FEATURES as SENTENCE_FEATURES
from lecture_rag.retrieve.sentence_model import MODEL_PATH as SENTENCE_PATH
from lecture_rag.retrieve.sentence_model import SentenceModel, span_features
from lecture_rag.store import Store

QUESTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "nurc_questions.jsonl"
CANDIDATES = 50
K = 10
DEPTHS = (10, 50)
MODES = (RetrievalMode.DENSE, RetrievalMode.HYBRID)
CS = (0.01, 0.1, 1.0, 10.0)
#: The abstention's signals before issue 22's second round (its first model).
BEFORE_SIGNALS = ("top_cosine", "margin", "top_coverage", "agreement", "top_passage")
#: Share of answerable questions the abstention may lose on the training folds when its threshold is chosen.
ABSTAIN_LOSS = 0.08
SEED = 22
#: The data set name of the items searched in a course's own store (see :func:`course_items`).
COURSE = "course"
#: General-knowledge questions per SQuAD-format set and kind asked of a course's own store.
OFF_TOPIC = 30
#: Items whose abstention threshold is set on their answerable questions (lecture questions).
#: The NURC items asked again in the store of article recordings (:func:`article_items`): the abstention's
#: third setting.
ARTICLES = "nurc-articles"
LECTURE_SETS = ("nurc", COURSE, ARTICLES)


@dataclass(slots=True)
class Item:
    """One question as searched: data set, transcript kind, fold, and what is left out of the search."""

    dataset: str
    kind: str
    fold: str
    question: Question
    answerable: bool
    removed: frozenset[str] = frozenset()
    runs: dict[str, Any] = field(default_factory=dict)


def nurc_items() -> list[Item]:
    items: list[Item] = []
    for n, q in enumerate(load_questions(QUESTIONS)):
        for kind in KINDS:
            ev = [Evidence(f"{e.video_id}-{kind}", e.start, e.end) for e in q.evidence]
            asked = Question(q.id, q.question, q.answer, ev, q.type)
            if not q.answerable:
                items.append(Item("nurc", kind, LECTURES[n % 4], asked, False))
                continue
            lecture = q.evidence[0].video_id
            items.append(Item("nurc", kind, lecture, asked, True))
            items.append(Item("nurc", kind, lecture, asked, False, frozenset(e.video_id for e in ev)))
    return items


def bench_items(
    per_set: int, source: Callable[[str], tuple[list[Paragraph], list[Question]]] = squad_set
) -> list[Item]:
    """Every item the bench asks: NURC among the distractors, ``per_set`` questions of each SQuAD-format set,
    and the course's-own-store items (:func:`course_items`). ``source``: the sets' paragraphs and questions
    (:func:`~bench.heldout_store.article_set` for the store of article recordings)."""
    squad = [it for name in SQUAD_SETS for it in squad_items(name, per_set, source)]
    return nurc_items() + squad + course_items(squad)


def course_items(squad: Sequence[Item]) -> list[Item]:
    """The abstention's second setting: a course's own store, its lectures and no other text.

    Every NURC item asked again of its kind's lectures alone, plus :data:`OFF_TOPIC` general-knowledge
    questions per SQuAD-format set and kind (unanswerable there). Why: among the paragraphs, a question
    no lecture answers still spreads its hits over many pseudo-videos; in a course's store all its hits
    come from a few lectures, so the lecture share and the margins read differently, and an abstention
    fitted on the distractor store alone answered «Quem ganhou a Copa de 2002?» there. These items train
    and measure only the abstention (the ranker and the answers keep the distractor store).
    """
    items = [replace(it, dataset=COURSE, runs={}) for it in nurc_items()]
    rng = random.Random(SEED)
    for kind in KINDS:
        for name in SQUAD_SETS:
            pool = [it for it in squad if it.dataset == name and it.answerable]
            for it in rng.sample(pool, min(OFF_TOPIC, len(pool))):
                items.append(Item(COURSE, kind, it.fold, it.question, False))
    return items


def squad_items(
    name: str, count: int, source: Callable[[str], tuple[list[Paragraph], list[Question]]] = squad_set
) -> list[Item]:
    paragraphs, questions = source(name)
    title = {p.video_id: p.title for p in paragraphs}
    titles = sorted(set(title.values()))
    rng = random.Random(SEED)
    chosen = rng.sample(questions, min(count, len(questions)))
    items = []
    for q in chosen:
        t = title[q.evidence[0].video_id]
        fold = f"{name}-{titles.index(t) % 2}"
        article = frozenset(v for v, tt in title.items() if tt == t)
        items.append(Item(name, "text", fold, q, True))
        if rng.random() < 0.25:
            items.append(Item(name, "text", fold, q, False, article))
    return items


class Bench:
    """The store, its retriever, and each kind's allowed corpus ids."""

    def __init__(self, home: Path) -> None:
        self.settings = load_settings(home)
        self.store = Store(home, create=False)
        self.embedder = make_embedder(self.settings.embedder)
        self.retriever = Retriever.open(self.store, self.embedder, self.settings)
        self.indexes = self.retriever.index.current()
        videos = [v.video_id for v in self.store.list_videos()]
        self.ids = {v: self.store.corpus_ids([v]) for v in videos}
        self.span_cache: dict[str, np.ndarray] = {}

    def allowed(self, item: Item) -> np.ndarray:
        other = {k for k in KINDS if k != item.kind}
        ids = [
            i
            for v, vids in self.ids.items()
            if v not in item.removed
            and not any(v.endswith(f"-{o}") for o in other)
            and (v.endswith(f"-{item.kind}") or item.dataset != COURSE)  # a course's store: its lectures alone
            for i in vids
        ]
        return np.asarray(sorted(ids), dtype=np.int64)

    def first_stage(self, query: Query, mode: RetrievalMode, allowed: np.ndarray) -> list[Hit]:
        pool = self.settings.retrieval.passage_pool
        return self.retriever._first_stage(query, mode, CANDIDATES, allowed, True, pool)


def query_vectors(bench: Bench, texts: list[str]) -> dict[str, np.ndarray]:
    """E5 query vectors, cached on disk by text (a rerun embeds nothing)."""
    path = HOME.parent / "heldout-queries.npz"
    cached: dict[str, np.ndarray] = dict(np.load(path)) if path.exists() else {}
    keyed = {hashlib.sha1(t.encode()).hexdigest(): t for t in texts}
    missing = [k for k in keyed if k not in cached]
    for start in track(range(0, len(missing), 64), description="Perguntas (E5)"):
        chunk = missing[start : start + 64]
        for key, vec in zip(chunk, bench.embedder.embed_queries([keyed[k] for k in chunk]), strict=True):
            cached[key] = vec
    if missing:
        np.savez(path, **cached)  # type: ignore[arg-type]
    return {t: cached[k] for k, t in keyed.items()}


def prepare(bench: Bench, items: list[Item]) -> None:
    """Each item's first-stage candidates in both modes, their labels and features at each depth."""
    vectors = query_vectors(bench, sorted({it.question.question for it in items}))
    for it in track(items, description="Primeiro estágio e atributos"):
        text = SearchRequest(it.question.question).question
        query = Query(text, vectors[it.question.question], bench.indexes)
        allowed = bench.allowed(it)
        it.runs["query"] = query
        for mode in MODES:
            hits = bench.first_stage(query, mode, allowed)
            labels = np.asarray([judge_hits(it.question, [h]).ranks == [1] for h in hits], dtype=float)
            run: dict[Any, Any] = {"hits": hits, "labels": labels}
            for depth in DEPTHS:
                run[depth] = features(query, hits[:depth]) if hits else np.zeros((0, len(FEATURES)))
            if mode is RetrievalMode.DENSE:
                run["passages"] = PassageReranker().scores(query, hits) if len(hits) > 1 else [1.0] * len(hits)
            it.runs[mode] = run


def ordered(hits: list[Hit], scores: Sequence[float]) -> list[Hit]:
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    return [replace(hits[i]) for i in order]


def finish(it: Item, hits: list[Hit]) -> SearchResult:
    """The top K as the search returns them: ranked, each cited at its best sentence."""
    top = hits[:K]
    for rank, hit in enumerate(top, start=1):
        hit.rank = rank
    query = it.runs["query"]
    signals = piece_signals(query, top)
    cite_hits(top, signals)
    return SearchResult(SearchRequest(it.question.question), query, tuple(top), tuple(signals))


def retrieval_row(it: Item, found: SearchResult) -> dict[str, float | None]:
    r = judge_hits(it.question, list(found.hits))
    return {"hit1": r.hit(1), "hit10": r.hit(10), "mrr": r.mrr(10), "offset": r.offset}


# ---------------------------------------------------------------------- fitting


def training_rows(items: Sequence[Item], mode: RetrievalMode, depth: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    xs, ys, groups = [], [], []
    for it in items:
        run = it.runs[mode]
        x = run[depth]
        if not it.answerable or len(x) == 0 or it.dataset == COURSE:
            continue
        y = run["labels"][: len(x)]
        if y.sum() == 0:
            continue  # nothing relevant among the candidates: no ordering to learn
        xs.append(x)
        ys.append(y)
        groups += [it.fold] * len(x)
    return np.vstack(xs), np.concatenate(ys), groups


def fit_ranker(items: Sequence[Item], mode: RetrievalMode, depth: int, about: str = "") -> LearnedModel:
    """Logistic regression on the candidates of ``items``; C chosen by inner CV over their folds."""
    x, y, groups = training_rows(items, mode, depth)
    return LearnedModel(FEATURES, *fit_logistic(x, y, np.asarray(groups)), depth, about)


Fitted = tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], float]


def fit_logistic(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Fitted:
    """(mean, scale, coef, intercept) of a logistic regression on standardised ``x``: C chosen by inner CV
    over ``groups`` (a fold per group, log loss), or C = 1 without groups; the fields of a FittedLogistic."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    c = 1.0
    if groups is not None:
        splits = [(np.flatnonzero(groups != f), np.flatnonzero(groups == f)) for f in sorted(set(groups))]
        cv = LogisticRegressionCV(Cs=list(CS), cv=splits, scoring="neg_log_loss", max_iter=2000)
        c = float(cv.fit(z, y).C_[0])
    clf = LogisticRegression(C=c, max_iter=2000).fit(z, y)
    return (
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in clf.coef_[0]),
        float(clf.intercept_[0]),
    )


def learned_hits(it: Item, model: LearnedModel, mode: RetrievalMode) -> list[Hit]:
    run = it.runs[mode]
    hits = run["hits"]
    if len(hits) < 2:
        return [replace(h) for h in hits]
    return ordered(hits, depth_scores(model.score(run[model.depth]), len(hits)))


def cross_validate(
    items: list[Item], mode: RetrievalMode, depth: int, train: Sequence[Item] | None = None
) -> dict[int, list[Hit]]:
    """Each item's hits reranked by a model fitted without its fold (on ``train``, ``items`` by default)."""
    out: dict[int, list[Hit]] = {}
    fitted_on = items if train is None else train
    for fold in sorted({it.fold for it in items}):
        model = fit_ranker([it for it in fitted_on if it.fold != fold], mode, depth)
        for n, it in enumerate(items):
            if it.fold == fold:
                out[n] = learned_hits(it, model, mode)
    return out


def learned_results(
    items: list[Item], mode: RetrievalMode, depth: int, train: Sequence[Item] | None = None
) -> dict[int, SearchResult]:
    """:func:`cross_validate` through the product's :class:`LearnedReranker`: each result carries the
    candidates' signals (``query.candidates``) that the abstention reads, as a search on ``ask`` does.
    ``train``: the items the ranker is fitted on (without the fold), ``items`` themselves by default."""
    out: dict[int, SearchResult] = {}
    fitted_on = items if train is None else train
    for fold in sorted({it.fold for it in items}):
        reranker = LearnedReranker(fit_ranker([it for it in fitted_on if it.fold != fold], mode, depth))
        for n, it in enumerate(items):
            if it.fold == fold:
                query = replace(it.runs["query"], candidates=None)
                hits = rerank_or_keep(reranker, query, [replace(h) for h in it.runs[mode]["hits"]])
                out[n] = replace(finish(it, hits), query=query)
    return out


# ------------------------------------------------------------------ abstention


def abstention_results(
    items: list[Item], articles: Sequence[Item], best: str, found: dict[int, SearchResult]
) -> tuple[list[Item], dict[int, SearchResult]]:
    """The items the abstention is fitted and measured on, with their results under the chosen search
    (``best``; ``found``: its results for ``items`` when it is not a learned ranker): ``items`` first, then
    its third setting, the NURC items asked in the store of article recordings (``articles``, from
    :func:`article_items`), searched by the ranker fitted on ``items`` as it ships."""
    asked = [replace(it, dataset=ARTICLES) for it in articles if it.dataset == "nurc"]
    if "learned" in best:
        mode, depth = best_mode_depth(best)
        results = learned_results(items, mode, depth)
        results |= {len(items) + n: r for n, r in learned_results(asked, mode, depth, train=items).items()}
    else:
        results = dict(found) | {
            len(items) + n: finish(it, it.runs[RetrievalMode.DENSE]["hits"]) for n, it in enumerate(asked)
        }
    return items + asked, results


def fit_abstention(x: np.ndarray, y: np.ndarray, lectures: np.ndarray, about: str = "") -> AbstainModel:
    """Logistic P(answerable) over :data:`SIGNALS`; the threshold loses at most :data:`ABSTAIN_LOSS` of these
    answerable lecture questions (``lectures``: a mask; SQuAD-format questions are easier, so their
    probabilities would set a threshold that loses more on lectures)."""
    model = AbstainModel(SIGNALS, *fit_logistic(x, y), 0.5, about)
    p = np.asarray([model.probability(row) for row in x])
    answerable = (y == 1) & lectures
    threshold = float(np.quantile(p[answerable], ABSTAIN_LOSS)) if answerable.any() else 0.5
    return replace(model, threshold=threshold)


def fit_abstention_cv(
    x: np.ndarray, y: np.ndarray, lectures: np.ndarray, folds: np.ndarray, about: str = ""
) -> AbstainModel:
    """:func:`fit_abstention` with the threshold taken from out-of-fold probabilities: each training fold
    scored by a model fitted on the others. In-sample probabilities of the answerable questions are
    higher than unseen ones', so a threshold read from them lost more than :data:`ABSTAIN_LOSS` held out."""
    held = np.zeros(len(y))
    for fold in sorted(set(folds)):
        inner = fit_abstention(x[folds != fold], y[folds != fold], lectures[folds != fold])
        held[folds == fold] = [inner.probability(row) for row in x[folds == fold]]
    model = fit_abstention(x, y, lectures, about)
    answerable = (y == 1) & lectures
    return replace(model, threshold=float(np.quantile(held[answerable], ABSTAIN_LOSS)))


def cross_validated_abstention(items: list[Item], x: np.ndarray, fit: Callable[..., AbstainModel]) -> np.ndarray:
    """Each item's P(answerable) from a model fitted without its fold, shifted so that 0.5 is that model's threshold."""
    y = np.asarray([it.answerable for it in items], dtype=int)
    lectures = np.asarray([it.dataset in LECTURE_SETS for it in items])
    folds = np.asarray([it.fold for it in items])
    prob = np.zeros(len(items))
    for fold in sorted(set(folds)):
        train = folds != fold
        args = (x[train], y[train], lectures[train]) + ((folds[train],) if fit is fit_abstention_cv else ())
        model = fit(*args)
        prob[~train] = [model.probability(row) - model.threshold + 0.5 for row in x[~train]]
    return prob


def abstention_groups(items: Sequence[Item]) -> dict[str, list[int]]:
    """The item sets the abstention is reported on: NURC among the distractors per kind and both, and a
    course's own store (NURC questions and, as the only unanswerable ones, the off-topic questions)."""
    groups = {
        kind: [n for n, it in enumerate(items) if it.dataset == "nurc" and kind in (it.kind, "both")]
        for kind in (*KINDS, "both")
    }
    course = [n for n, it in enumerate(items) if it.dataset == COURSE]
    groups["course store, both"] = course
    groups["course store, off-topic only"] = [n for n in course if items[n].answerable or items[n].fold not in LECTURES]
    groups["NURC among article recordings, both"] = [n for n, it in enumerate(items) if it.dataset == ARTICLES]
    return groups


def print_abstention(items: list[Item], probs: dict[str, np.ndarray]) -> None:
    """Answerable lost and unanswerable caught at each config's own threshold, per group, with intervals."""
    print("\n## Abstention at the CV-chosen threshold (share lost / caught, bootstrap 95% CI)")
    print("| group | config | answerable lost | unanswerable caught | AUC |")
    print("|---|---|---|---|---|")
    for group, idx in abstention_groups(items).items():
        pos = [n for n in idx if items[n].answerable]
        neg = [n for n in idx if not items[n].answerable]
        for name, prob in probs.items():
            lost = [float(prob[n] < 0.5) for n in pos]
            caught = [float(prob[n] < 0.5) for n in neg]
            auc = roc_auc_score([items[n].answerable for n in idx], prob[idx])
            print(
                f"| {group} | {name} | {int(sum(lost))}/{len(pos)} {bootstrap(lost)} | "
                f"{int(sum(caught))}/{len(neg)} {bootstrap(caught)} | {auc:.3f} |"
            )


# --------------------------------------------------------------------- answers


class CachedEmbedder:
    """The bench's embedder with a per-run cache of passage vectors (before and after quote many same spans)."""

    def __init__(self, inner: Embedder, path: Path = HOME.parent / "heldout-spans.npz") -> None:
        self.inner = inner
        self.path = path
        self.cache: dict[str, np.ndarray] = dict(np.load(path)) if path.exists() else {}
        self.name = inner.name

    def save(self) -> None:
        np.savez(self.path, **self.cache)  # type: ignore[arg-type]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}
        if missing:
            for k, v in zip(missing, self.inner.embed_passages(list(missing.values())), strict=True):
                self.cache[k] = v
        return np.vstack([self.cache[k] for k in keys])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


#: The extractive answer's options before issue 22 (75 words, fragments allowed, any lecture, rank fusion).
BEFORE_ANSWER: dict[str, Any] = {
    "max_words": 75,
    "min_words": 0,
    "one_lecture": False,
    "fitted": False,
    "follow": 0,
    "span_words": 30,
}
#: The answer rules of the first issue-22 pass (60 words, whole clauses, one lecture) on the rank fusion.
FUSION_ANSWER: dict[str, Any] = {"fitted": False, "follow": 0, "span_words": 30}
#: Variants of the fitted answer measured beside the default (what CV keeps becomes the default).
ANSWER_VARIANTS: dict[str, dict[str, Any]] = {
    "sentence model, best span alone first (follow 0)": {"follow": 0},
    "sentence model, follow 1": {"follow": 1},
    "sentence model, spans of 30 words": {"span_words": 30},
    "sentence model, spans of 20 words": {"span_words": 20},
    "sentence model, any lecture": {"one_lecture": False},
    "sentence model, fluent text (no hesitations, no repeats)": {"clean": True},
}


def answer_row(it: Item, found: SearchResult, embedder: CachedEmbedder, options: dict[str, Any]) -> dict[str, Any]:
    ex = extract(found, embedder, calibrated=False, **options)
    quoted = " ".join(q.text for q in ex.quotes)
    recall, _ = answer_score(quoted, it.question.answer or "") if it.answerable else (0.0, 0.0)
    return {"recall": recall, "words": len(quoted.split()), "best_cosine": ex.best_cosine, "abstains": ex.abstains}


def sentence_rows(
    items: Sequence[Item], found: dict[int, SearchResult], **options: Any
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each answerable NURC item's candidate spans as the answer sees them (``options``: of
    :func:`candidates`): features, and label 1 where the span overlaps the question's evidence
    (the seconds where the answer is said)."""
    out = {}
    for n, it in enumerate(items):
        if it.dataset != "nurc" or not it.answerable or n not in found:
            continue
        result = found[n]
        cands = candidates(result.hits, result.signals, **options)
        if not cands:
            continue
        ev = it.question.evidence
        y = [any(e.video_id == c.video_id and c.start < e.end and c.end > e.start for e in ev) for c in cands]
        out[n] = (span_features(result.query, result.hits, cands), np.asarray(y, dtype=float))
    return out


def fit_sentences(
    rows: dict[int, tuple[np.ndarray, np.ndarray]], items: Sequence[Item], about: str = ""
) -> SentenceModel:
    """Logistic regression on the spans of ``rows``; C chosen by inner CV over their lectures (folds)."""
    keys = sorted(rows)
    x = np.vstack([rows[n][0] for n in keys])
    y = np.concatenate([rows[n][1] for n in keys])
    groups = np.concatenate([[items[n].fold] * len(rows[n][1]) for n in keys])
    return SentenceModel(SENTENCE_FEATURES, *fit_logistic(x, y, groups), about)


def fold_sentence_models(
    items: Sequence[Item], found: dict[int, SearchResult], **options: Any
) -> dict[str, SentenceModel]:
    """Per NURC lecture (fold), the sentence model fitted on the other lectures' questions (``options``:
    the candidates', as in :func:`sentence_rows`)."""
    rows = sentence_rows(items, found, **options)
    folds = sorted({items[n].fold for n in rows})
    return {f: fit_sentences({n: r for n, r in rows.items() if items[n].fold != f}, items) for f in folds}


def model_cited(result: SearchResult, model: SentenceModel) -> list[Hit]:
    """``result``'s hits, each cited at the start of its piece that the sentence model scores best."""
    hits = [replace(h) for h in result.hits]
    for number, (hit, sig) in enumerate(zip(hits, result.signals, strict=True), start=1):
        spans = [
            Candidate(number, hit.video_id, i, p.start, p.end, p.text, float(sig.semantic[i]), float(sig.lexical[i]))
            for i, p in enumerate(sig.pieces)
        ]
        if spans:
            best = int(np.argmax(model.score(span_features(result.query, result.hits, spans))))
            hit.cite_start = spans[best].start
    return hits


def print_cite_check(items: Sequence[Item], found: dict[int, SearchResult], models: dict[str, SentenceModel]) -> None:
    """Link offset of today's cited second beside the sentence model's best piece (fold models), NURC answerable."""
    print("\n## Cited second: today's rule (passage cosine + half lexical share) vs the sentence model's best piece")
    print("| kind | n | today: link offset median s | sentence model: link offset median s |")
    print("|---|---|---|---|")
    for kind in KINDS:
        idx = [
            n
            for n, it in enumerate(items)
            if it.dataset == "nurc" and it.answerable and it.kind == kind and it.fold in models
        ]
        today = [judge_hits(items[n].question, list(found[n].hits)).offset for n in idx]
        fitted = [judge_hits(items[n].question, model_cited(found[n], models[items[n].fold])).offset for n in idx]
        print(f"| {kind} | {len(idx)} | {bootstrap(today, np.median)} | {bootstrap(fitted, np.median)} |")


# ---------------------------------------------------------------------- report


def bootstrap(values: Sequence[float], stat: Callable[[Any], float] = np.mean, n: int = 1000) -> str:
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return "n/d"
    rng = np.random.default_rng(SEED)
    boots = [float(stat(vals[rng.integers(0, vals.size, vals.size)])) for _ in range(n)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    fmt = "{:.1f}" if stat is np.median and vals.max() > 1.5 else "{:.3f}"
    return f"{fmt.format(float(stat(vals)))} [{fmt.format(lo)}, {fmt.format(hi)}]"


def print_retrieval(items: list[Item], rows: dict[str, list[dict[str, Any]]]) -> None:
    groups = sorted({(it.dataset, it.kind) for it in items})
    print("\n## Retrieval (answerable questions; mean [bootstrap 95% CI])")
    print("| data set | kind | n | config | hit@1 | hit@10 | MRR@10 | link offset median s |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset, kind in groups:
        idx = [n for n, it in enumerate(items) if it.answerable and (it.dataset, it.kind) == (dataset, kind)]
        for name, per in rows.items():
            cells = [
                bootstrap([per[n]["hit1"] for n in idx]),
                bootstrap([per[n]["hit10"] for n in idx]),
                bootstrap([per[n]["mrr"] for n in idx]),
                bootstrap([per[n]["offset"] for n in idx], np.median) if dataset == "nurc" else "–",
            ]
            print(f"| {dataset} | {kind} | {len(idx)} | {name} | " + " | ".join(cells) + " |")


def article_items(per_set: int, build: bool) -> list[Item]:
    """Every bench item asked in the store of article recordings (:func:`~bench.heldout_store.article_set`),
    prepared like the default store's (``build``: ingest and index it first, a no-op when up to date).

    Why: the held-out store is 21 recordings, not two lectures among hundreds of one-paragraph documents;
    the neighbour and lecture features, and the abstention's lecture share, read differently when every
    distractor is a recording.
    """
    bench = Bench(ensure_store(ARTICLES_HOME, articles=True) if build or not ARTICLES_HOME.exists() else ARTICLES_HOME)
    articles = bench_items(per_set, article_set)
    prepare(bench, articles)
    return articles


def print_articles(items: list[Item], articles: list[Item], mode: RetrievalMode, depth: int) -> None:
    """The ranker fitted per fold as above (on the default store's items) and measured in the store of
    article recordings (:func:`article_items`), beside the same ranker fitted there."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, train in (("fitted on the default store", items), ("fitted on this store", articles)):
        found = cross_validate(articles, mode, depth, train)
        rows[f"{mode.value}+learned@{depth}, {name}"] = [
            retrieval_row(articles[n], finish(articles[n], found[n])) for n in range(len(articles))
        ]
    print("\n## The store of article recordings (each FaQuAD/SQuAD-pt article one recording)")
    print_retrieval(articles, rows)


def first_relevant(labels: np.ndarray) -> int | None:
    """Rank (from 1) of the first relevant candidate of a first stage, None when none of its candidates is."""
    found = np.flatnonzero(labels)
    return int(found[0]) + 1 if found.size else None


def print_misses(items: Sequence[Item], name: str, ranked: dict[int, list[Hit]]) -> None:
    """Where each answerable NURC question that ``name`` misses at hit@10 has its relevant window: its rank in
    each first stage's candidates (``–``: not among them, so no reranker over that pool can recover it) and
    in ``name``'s own order of those candidates (``ranked``: every candidate, not only the top 10)."""
    print(
        f"\n## Misses at hit@10 of {name} (NURC): first relevant rank among each first stage's {CANDIDATES} candidates"
    )
    print("| kind | question | " + " | ".join(m.value for m in MODES) + f" | {name} |")
    print("|---|---|" + "---|" * (len(MODES) + 1))
    for n, it in enumerate(items):
        if it.dataset != "nurc" or not it.answerable or judge_hits(it.question, ranked[n][:K]).hit(K):
            continue
        ranks = [first_relevant(it.runs[m]["labels"]) for m in MODES]
        ranks.append(judge_hits(it.question, ranked[n]).first_rank)
        print(f"| {it.kind} | {it.question.id} | " + " | ".join("–" if r is None else str(r) for r in ranks) + " |")


def print_answers(items: list[Item], rows: dict[str, list[dict[str, Any] | None]], abst: dict[str, list[bool]]) -> None:
    print("\n## Extractive answer (NURC; recall over answerable; abstentions answerable lost / unanswerable caught)")
    print("| kind | config | recall | words median | answerable lost | unanswerable caught |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        idx = [n for n, it in enumerate(items) if it.dataset == "nurc" and it.kind == kind]
        pos = [n for n in idx if items[n].answerable]
        for name, per in rows.items():
            neg = [n for n in idx if not items[n].answerable and per[n] is not None]
            got = [per[n] for n in pos]
            recall = [0.0 if abst[name][n] else r["recall"] for n, r in zip(pos, got, strict=True) if r]
            words = [r["words"] for n, r in zip(pos, got, strict=True) if r and not abst[name][n]]
            lost = sum(abst[name][n] for n in pos)
            caught = sum(abst[name][n] for n in neg)
            print(
                f"| {kind} | {name} | {bootstrap(recall)} | {bootstrap(words, np.median)} | "
                f"{lost}/{len(pos)} | {caught}/{len(neg)} |"
            )


def print_tradeoff(items: list[Item], prob: np.ndarray) -> None:
    print("\n## Abstention trade-off (cross-validated P(answerable), shifted so that 0.5 is each fold's threshold")
    print(
        "## chosen on its training folds; unanswerable: NURC 9 file ones + lecture removed; course store: + off-topic)"
    )
    print("| threshold | NURC answerable lost | NURC unanswerable caught | course store lost | course store caught |")
    print("|---|---|---|---|---|")
    groups = abstention_groups(items)
    for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        cells = []
        for idx in (groups["both"], groups["course store, both"]):
            pos = [n for n in idx if items[n].answerable]
            lost = sum(prob[n] < t for n in pos)
            caught = sum(prob[n] < t for n in idx if not items[n].answerable)
            cells += [f"{lost}/{len(pos)}", f"{caught}/{len(idx) - len(pos)}"]
        print(f"| {t:.1f} | " + " | ".join(cells) + " |")


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer FaQuAD/SQuAD-pt questions, NURC answers on ASR")
    parser.add_argument("--fit", action="store_true", help="fit on every fold and write the shipped model")
    parser.add_argument(
        "--fit-sentences", action="store_true", help="fit the extractive sentence model on every lecture and write it"
    )
    parser.add_argument("--squad", type=int, default=None, help="questions per SQuAD-format set")
    parser.add_argument("--no-build", action="store_true", help="search the store as it is (no ingest/index)")
    parser.add_argument("--no-answers", action="store_true", help="ranking and abstention only")
    parser.add_argument("--out", type=Path, default=None, help="write per-item rows here (JSON)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    home = HOME if args.no_build else ensure_store()
    bench = Bench(home)
    per_set = args.squad if args.squad is not None else (60 if args.quick else 300)
    items = bench_items(per_set)
    print(
        f"{len(items)} items ({sum(it.answerable for it in items)} answerable), folds: "
        f"{', '.join(sorted({it.fold for it in items}))}",
        file=sys.stderr,
    )
    prepare(bench, items)

    # Retrieval: before (dense + passages), first stages alone, and the learned reranker per mode and depth.
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    found: dict[str, dict[int, SearchResult]] = defaultdict(dict)
    ranked: dict[str, dict[int, list[Hit]]] = defaultdict(dict)  # each learned config's whole reranked list
    for n, it in enumerate(items):
        dense = it.runs[RetrievalMode.DENSE]
        configs = {
            "before: dense+passages": ordered(dense["hits"], dense["passages"]),
            "dense, no reranker": [replace(h) for h in dense["hits"]],
            "hybrid, no reranker": [replace(h) for h in it.runs[RetrievalMode.HYBRID]["hits"]],
        }
        for name, hits in configs.items():
            found[name][n] = finish(it, hits)
    for mode in MODES:
        for depth in DEPTHS:
            name = f"{mode.value}+learned@{depth}"
            for n, hits in cross_validate(items, mode, depth).items():
                found[name][n] = finish(items[n], hits)
                ranked[name][n] = hits
    for name, results in found.items():
        rows[name] = [retrieval_row(items[n], results[n]) for n in range(len(items))]
    best = choose(items, rows)
    print_retrieval(items, {k: v for k, v in rows.items()})
    print(f"\nchosen by CV (MRR on both NURC kinds, no hit@10 loss): {best}")
    if best in ranked:
        print_misses(items, best, ranked[best])
    articles = article_items(per_set, build=not args.no_build)
    if "learned" in best:
        print_articles(items, articles, *best_mode_depth(best))

    # Abstention, before (5 signals, in-sample threshold) and after (the reranker's candidate signals and
    # the lecture share, threshold from out-of-fold probabilities), over the chosen search's results.
    pool, results = abstention_results(items, articles, best, found[best])
    x = np.vstack([signals(results[n]) for n in range(len(pool))])
    x_before = np.vstack([signals(results[n], BEFORE_SIGNALS) for n in range(len(pool))])
    prob = cross_validated_abstention(pool, x, fit_abstention_cv)
    print_abstention(
        pool, {"before: 5 signals": cross_validated_abstention(pool, x_before, fit_abstention), "after": prob}
    )
    print_tradeoff(pool, prob)
    if args.fit:
        write_models(items, best, pool, x)
    if args.fit or args.fit_sentences:
        write_sentence_model(
            items, found[best], RetrievalMode.DENSE if "learned" not in best else best_mode_depth(best)[0]
        )

    if args.no_answers:
        return
    # Extractive answers on NURC (quick: ASR only, and the lecture-removed questions left out).
    embedder = CachedEmbedder(bench.embedder)
    kinds = ("asr",) if args.quick else KINDS
    answers: dict[str, list[dict[str, Any] | None]] = {}
    abstains: dict[str, list[bool]] = {}
    plans = answer_plans(best)
    sentence_models = fold_sentence_models(items, found[best])
    print_cite_check(items, found[best], sentence_models)
    for label, (name, options, fitted) in plans.items():
        per: list[dict[str, Any] | None] = [None] * len(items)
        for n in track(range(len(items)), description=f"Respostas ({label})"):
            it = items[n]
            if it.dataset == "nurc" and it.kind in kinds and not (args.quick and it.removed):
                fold_options = with_fold_model(options, sentence_models, it.fold)
                per[n] = answer_row(it, found[name][n], embedder, fold_options)
        answers[label] = per
        embedder.save()
        if fitted:
            abstains[label] = [bool(prob[n] < 0.5) for n in range(len(items))]
        else:
            abstains[label] = [bool(r and r["abstains"]) for r in per]
    print_answers([it for it in items], answers, abstains)
    if args.out:
        args.out.write_text(json.dumps({k: v for k, v in rows.items()}, indent=1), encoding="utf-8")
    print(f"\n{len(items)} items in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def write_models(items: list[Item], best: str, pool: list[Item], x: np.ndarray) -> None:
    """Fit the ranker (on ``items``) and the abstention (on ``pool``, whose signals are ``x``) on every fold
    and write the shipped model files."""
    mode, depth = best_mode_depth(best) if "learned" in best else (RetrievalMode.DENSE, DEPTHS[0])
    model = fit_ranker(items, mode, depth, about=ABOUT.format(what="reranker", mode=mode.value, how=RANKER_HOW))
    MODEL_PATH.write_text(model.to_json() + "\n", encoding="utf-8")
    y = np.asarray([it.answerable for it in pool], dtype=int)
    lectures = np.asarray([it.dataset in LECTURE_SETS for it in pool])
    folds = np.asarray([it.fold for it in pool])
    about = ABOUT.format(what="abstention", mode=mode.value, how=ABSTAIN_HOW)
    ABSTAIN_PATH.write_text(fit_abstention_cv(x, y, lectures, folds, about).to_json() + "\n", encoding="utf-8")
    print(f"\nmodels written to {MODEL_PATH} (depth {depth}, {mode.value}) and {ABSTAIN_PATH}")


ABOUT = (
    "Logistic regression ({what}, {mode} first stage), fitted by "
    "'python -m bench.bench_heldout --fit' on NURC-SP (4 lectures, human and ASR) + FaQuAD + SQuAD-pt "
    "questions, searched among all of them (distractors in the store); {how}."
)


RANKER_HOW = "C chosen by CV over those folds"
ABSTAIN_HOW = (
    "also asked of the lectures alone (a course's own store), with FaQuAD/SQuAD-pt questions as off-topic "
    "unanswerable ones, and of the lectures among FaQuAD/SQuAD-pt articles taken as recordings; threshold: "
    "the probability below which 8% of the answerable NURC questions fall, each scored by a model fitted "
    "without its fold"
)


SENTENCE_ABOUT = (
    "Logistic regression (extractive sentence scorer, spans of the {mode} search's top windows reranked by "
    "'learned'), fitted by 'python -m bench.bench_heldout --fit-sentences' on the NURC-SP questions (4 lectures, "
    "human and ASR) searched among FaQuAD and SQuAD-pt distractors; label: the span overlaps the question's "
    "evidence seconds; C chosen by CV over the lectures."
)


def answer_plans(best: str) -> dict[str, tuple[str, dict[str, Any], bool]]:
    """The extractive configurations measured: (search config, extract options, calibrated abstention)."""
    plans = {
        "before": ("before: dense+passages", BEFORE_ANSWER, False),
        f"{best}, old sentence rules": (best, BEFORE_ANSWER, True),
        f"{best}, rank fusion, 60 words, clauses, one lecture": (best, FUSION_ANSWER, True),
    }
    plans.update({f"{best}, {name}": (best, options, True) for name, options in ANSWER_VARIANTS.items()})
    plans[f"after: {best}, sentence model"] = (best, {}, True)
    return plans


def with_fold_model(options: dict[str, Any], models: dict[str, SentenceModel], fold: str) -> dict[str, Any]:
    """``options`` with the sentence model fitted without ``fold`` (where the options use the model)."""
    if options.get("fitted", True) is False or fold not in models:
        return options
    return {**options, "model": models[fold]}


def write_sentence_model(items: Sequence[Item], found: dict[int, SearchResult], mode: RetrievalMode) -> None:
    """Fit the sentence model on every NURC lecture and write the shipped JSON."""
    about = SENTENCE_ABOUT.format(mode=mode.value)
    model = fit_sentences(sentence_rows(items, found), items, about=about)
    SENTENCE_PATH.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"sentence model written to {SENTENCE_PATH}")


def best_mode_depth(name: str) -> tuple[RetrievalMode, int]:
    mode, depth = name.split("+learned@")
    return RetrievalMode(mode), int(depth)


def choose(items: list[Item], rows: dict[str, list[dict[str, Any]]]) -> str:
    """The learned config with the best NURC MRR averaged over kinds that loses no hit@10 on either kind.

    Falls back to the before config when none beats it on MRR on both kinds.
    """

    def mean(name: str, kind: str, metric: str) -> float:
        vals = [
            rows[name][n][metric]
            for n, it in enumerate(items)
            if it.answerable and it.dataset == "nurc" and it.kind == kind
        ]
        return statistics.mean(vals)

    before = "before: dense+passages"
    best, best_mrr = before, -1.0
    for name in rows:
        if "learned" not in name:
            continue
        wins = all(
            mean(name, k, "mrr") > mean(before, k, "mrr") and mean(name, k, "hit10") >= mean(before, k, "hit10")
            for k in KINDS
        )
        mrr = statistics.mean(mean(name, k, "mrr") for k in KINDS)
        if wins and mrr > best_mrr:
            best, best_mrr = name, mrr
    return best


if __name__ == "__main__":
    main()
