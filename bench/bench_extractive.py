"""Quality of the no-LLM (extractive) answer against the NURC reference answers, and its abstention trade-off.

    python -m bench.bench_extractive --store DIR --out after.json
    python -m bench.bench_extractive --store DIR --out after.json --before before.json   # side by side

For each of the 71 NURC questions (tests/data/nurc_questions.jsonl) it asks the answer engine with no
LLM (default retrieval settings) and compares the answer's content words with the reference answer's:
words are analysed like the BM25 index does (Portuguese Snowball stems, accents folded, stopwords
dropped), counted once each; the label line, citation numbers and times are not part of the answer.

* recall: share of the reference's content words the answer contains;
* precision: share of the answer's content words that are in the reference;
* words: the answer's length in words (quotes only).

Per question type, means over the answerable questions (an abstention counts as an empty answer).
``--before`` prints a JSON written by an earlier run (for instance, of the previous code:
``PYTHONPATH=/path/to/old/src python -m bench.bench_extractive --out before.json``) beside this one.
When the engine exposes the abstention signal (the best candidate's E5 cosine), the share of
answerable and unanswerable questions that would abstain at each threshold is printed too.
The store should be the four NURC-SP lectures (``lecture-rag ingest ../shared/data/nurc-sp/transcripts``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.support.paths import QUESTIONS

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.evaluate.questions import load_questions
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.index.bm25 import PortugueseAnalyzer
from lecture_rag.retrieve import Retriever, SearchRequest
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.store import Store

_QUOTED = re.compile(r"«(.*?)»", re.S)
_ANALYZER = PortugueseAnalyzer(prefixes=False)


def quoted_text(answer: str) -> str:
    """The words the answer quotes: text inside «» (both the old and the new format quote that way)."""
    return " ".join(_QUOTED.findall(answer))


def content_words(text: str) -> set[str]:
    return set(_ANALYZER(text))


def score(answer: str, reference: str) -> tuple[float, float]:
    got, ref = content_words(answer), content_words(reference)
    if not ref:
        return 0.0, 0.0
    recall = len(got & ref) / len(ref)
    precision = len(got & ref) / len(got) if got else 0.0
    return recall, precision


def run(store: Path) -> list[dict[str, Any]]:
    settings = load_settings(store)
    retriever = Retriever.open(
        Store(store), make_embedder(settings.embedder), settings, reranker=make_reranker(settings)
    )
    engine = AnswerEngine(retriever, None, settings.llm)
    rows = []
    for q in load_questions(QUESTIONS):
        answer = engine.answer(q.question, k=settings.retrieval.k, mode=settings.retrieval.mode)
        quoted = quoted_text(answer.text)
        recall, precision = score(quoted, q.answer or "")
        row = {
            "id": q.id,
            "type": q.type,
            "answerable": q.answerable,
            "recall": recall,
            "precision": precision,
            "words": len(quoted.split()),
            "abstained": answer.abstained,
        }
        found = retriever.search(SearchRequest(q.question, k=settings.retrieval.k, mode=settings.retrieval.mode))
        row["signal"] = engine.extract(found).best_cosine
        rows.append(row)
        print(f"{q.id} R={recall:.2f} P={precision:.2f} words={row['words']}", file=sys.stderr)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["answerable"]:
            groups[row["type"]].append(row)
            groups["all answerable"].append(row)
    return {
        name: {
            "n": len(items),
            "recall": statistics.mean(r["recall"] for r in items),
            "precision": statistics.mean(r["precision"] for r in items),
            "words": statistics.mean(r["words"] for r in items),
        }
        for name, items in sorted(groups.items())
    }


def print_side_by_side(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]] | None) -> None:
    head = f"{'type':<16}{'n':>4}" + ("{:>22}{:>22}{:>18}".format("recall b→a", "precision b→a", "words b→a"))
    print(head)
    print("-" * len(head))
    for name, a in after.items():
        b = (before or {}).get(name)
        if b:
            cells = [f"{b[m]:.3f}→{a[m]:.3f}" for m in ("recall", "precision")] + [f"{b['words']:.0f}→{a['words']:.0f}"]
        else:
            cells = [f"{a['recall']:.3f}", f"{a['precision']:.3f}", f"{a['words']:.0f}"]
        print(f"{name:<16}{int(a['n']):>4}{cells[0]:>22}{cells[1]:>22}{cells[2]:>18}")


def print_abstention(rows: list[dict[str, Any]]) -> None:
    signals = [(r["signal"], r["answerable"]) for r in rows if r.get("signal") is not None]
    if not signals:
        return
    pos = sorted(s for s, ok in signals if ok)
    neg = sorted(s for s, ok in signals if not ok)
    print(f"\nabstention signal (best candidate's E5 cosine): answerable {len(pos)}, unanswerable {len(neg)}")
    print(f"  answerable   min {pos[0]:.3f} p10 {pos[len(pos) // 10]:.3f} median {statistics.median(pos):.3f}")
    print(f"  unanswerable min {neg[0]:.3f} median {statistics.median(neg):.3f} max {neg[-1]:.3f}")
    print(f"{'threshold':>10}{'abstains on answerable':>26}{'abstains on unanswerable':>28}")
    for t in sorted({round(s, 3) for s, _ in signals} | {0.80, 0.82, 0.84, 0.86}):
        a = sum(s < t for s in pos)
        u = sum(s < t for s in neg)
        if u > 0 or a == 0:
            print(f"{t:>10.3f}{f'{a}/{len(pos)}':>26}{f'{u}/{len(neg)}':>28}")
        if a > len(pos) // 4:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="an indexed store of the four NURC lectures")
    parser.add_argument("--rows", type=Path, default=None, help="print the rows of an earlier run instead of running")
    parser.add_argument("--out", type=Path, default=None, help="write the per-question rows here (JSON)")
    parser.add_argument("--before", type=Path, default=None, help="rows written by an earlier run, shown beside")
    args = parser.parse_args()
    if args.rows is None and args.store is None:
        parser.error("give --store (to run) or --rows (to print an earlier run)")
    rows = json.loads(args.rows.read_text(encoding="utf-8")) if args.rows else run(args.store)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    before = summary(json.loads(args.before.read_text(encoding="utf-8"))) if args.before else None
    print_side_by_side(summary(rows), before)
    print_abstention(rows)


if __name__ == "__main__":
    main()
