"""The query path's CPU, side by side with today's code: is an answer as fast as a search?

    python -m bench.bench_query                  # ~4 min on 2 idle cores (+1.5 min the first time: the store)
    python -m bench.bench_query --quick          # 20 questions
    python -m bench.bench_query --span-cost      # + what embedding every sentence at index time would cost

For the 71 NURC questions (tests/data/nurc_questions.jsonl), in one process per code version over
the same store (the four NURC-SP lectures, indexed with default settings), with the default retrieval
settings (k, mode, the ``passages`` reranker) and no LLM (the extractive answer):

* ``embed``: CPU of the question's embedding alone (``embed_queries``), the floor of a search;
* ``search``: CPU and wall time of ``Retriever.search``;
* ``ask``: CPU and wall time of ``AnswerEngine.answer`` (search + extractive answer);
* quality: the hits of every search (corpus ids, in order) compared between the versions, and the
  extractive answers' recall of the reference answers' content words (``bench.bench_extractive``).

Today's code is ``git archive REF`` (default ``main``) unpacked in a temporary folder and run in a
subprocess with that tree's ``src`` first on ``PYTHONPATH``; this bench's own module is imported from
this tree, so the worker only uses public APIs both versions have. Targets (issue 26): ``ask`` p50
<= 2x ``search`` p50 and ``search`` CPU per query <= 1.5x the query embedding alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LECTURE_RAG_BENCH_CACHE", Path.home() / ".cache" / "lecture-rag" / "bench"))
STORE = CACHE / "nurc-query"
TRANSCRIPTS = (REPO.parent / "shared" / "data" / "nurc-sp" / "transcripts").resolve()


def ensure_store(store: Path) -> Path:
    """The NURC store, ingested and indexed by this tree's CLI the first time."""
    from lecture_rag.index.build import published

    if published(store) is None:
        store.mkdir(parents=True, exist_ok=True)
        cli = [sys.executable, "-m", "lecture_rag.cli"]
        subprocess.run([*cli, "ingest", "--store", str(store), str(TRANSCRIPTS)], check=True, stdout=sys.stderr)
        subprocess.run([*cli, "index", "--store", str(store)], check=True, stdout=sys.stderr)
    return store


def measure(store: Path, limit: int | None, span_cost: bool) -> dict[str, Any]:
    """The worker: per-question CPU/wall of embed, search and ask, the hits, and the answers' recall."""
    from tests.support.paths import QUESTIONS

    from bench.bench_extractive import quoted_text, score
    from lecture_rag.config import load_settings
    from lecture_rag.embed import make_embedder
    from lecture_rag.evaluate.questions import load_questions
    from lecture_rag.generate.answer import AnswerEngine
    from lecture_rag.retrieve import Retriever, SearchRequest
    from lecture_rag.retrieve.rerank import make_reranker
    from lecture_rag.store import Store

    settings = load_settings(store)
    embedder = make_embedder(settings.embedder)
    retriever = Retriever.open(Store(store), embedder, settings, reranker=make_reranker(settings))
    engine = AnswerEngine(retriever, None, settings.llm)
    questions = load_questions(QUESTIONS)[:limit]
    k, mode = settings.retrieval.k, settings.retrieval.mode

    calls: dict[str, Callable[[str], Any]] = {
        "embed": lambda text: embedder.embed_queries([text]),
        "search": lambda text: retriever.search(SearchRequest(text, k=k, mode=mode)),
        "ask": lambda text: engine.answer(text, k=k, mode=mode),
    }
    calls["search"](questions[0].question)  # load the indexes
    rows = []
    for q in questions:
        row: dict[str, Any] = {"id": q.id, "answerable": q.answerable}
        for name, call in calls.items():
            cpu, wall = time.process_time(), time.perf_counter()
            out = call(q.question)
            row[f"{name}_cpu"], row[f"{name}_wall"] = time.process_time() - cpu, time.perf_counter() - wall
            if name == "search":
                row["hits"] = [h.corpus_id for h in out.hits]
            if name == "ask":
                row["recall"] = score(quoted_text(out.text), q.answer or "")[0] if q.answerable else None
                row["abstained"] = out.abstained
        rows.append(row)
        print(f"{q.id} ask {row['ask_wall'] * 1000:.0f} ms", file=sys.stderr)
    return {"rows": rows, "spans": span_costs(retriever, embedder) if span_cost else None}


def span_costs(retriever: Any, embedder: Any) -> dict[str, Any]:
    """CPU seconds to embed the store's windows, its passages, and (the alternative) every quotable span."""
    from lecture_rag.generate.extractive import _spans
    from lecture_rag.index.passages import split_passages

    segments = list(retriever.store.get_segments(retriever.store.corpus_ids()).values())
    seconds = retriever.index.current().passages.seconds
    texts = {
        "windows": [s.text for s in segments],
        "passages": [p.text for s in segments for p in split_passages(s, seconds)],
        "spans": [sp.text for s in segments for p in s.pieces() for sp in _spans(p)],
    }
    out: dict[str, Any] = {}
    for name, items in texts.items():
        cpu = time.process_time()
        for start in range(0, len(items), 32):
            embedder.embed_passages(items[start : start + 32])
        out[name] = {
            "texts": len(items),
            "words": sum(len(t.split()) for t in items),
            "cpu_s": time.process_time() - cpu,
        }
    return out


def run_version(src: Path, store: Path, limit: int | None, span_cost: bool) -> dict[str, Any]:
    """This bench's worker in a subprocess importing ``lecture_rag`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(REPO)])}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-m", "bench.bench_query", "--worker", "--store", str(store), "--json", out.name]
        cmd += ["--limit", str(limit)] if limit else []
        cmd += ["--span-cost"] if span_cost else []
        subprocess.run(cmd, env=env, check=True, cwd=REPO)
        return dict(json.loads(Path(out.name).read_text(encoding="utf-8")))


def old_tree(ref: str, into: Path) -> Path:
    """``ref``'s source tree, unpacked from git (the code measured as "today")."""
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def p50(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows) * 1000


def report(results: dict[str, dict[str, Any]]) -> None:
    """One table: p50s, the two ratios, and the quality checks, one column per version."""
    names = list(results)
    table = {n: r["rows"] for n, r in results.items()}
    lines = [
        ("query embedding CPU p50 (ms)", lambda rows: f"{p50(rows, 'embed_cpu'):.1f}"),
        ("search CPU p50 (ms)", lambda rows: f"{p50(rows, 'search_cpu'):.1f}"),
        ("search wall p50 (ms)", lambda rows: f"{p50(rows, 'search_wall'):.1f}"),
        ("ask CPU p50 (ms)", lambda rows: f"{p50(rows, 'ask_cpu'):.1f}"),
        ("ask wall p50 (ms)", lambda rows: f"{p50(rows, 'ask_wall'):.1f}"),
        ("ask p50 / search p50 (target <= 2)", lambda rows: f"{p50(rows, 'ask_wall') / p50(rows, 'search_wall'):.2f}x"),
        (
            "search CPU / embedding CPU (target <= 1.5)",
            lambda rows: f"{p50(rows, 'search_cpu') / p50(rows, 'embed_cpu'):.2f}x",
        ),
        ("answer recall, answerable (mean)", lambda rows: f"{_mean_recall(rows):.3f}"),
        ("abstentions answerable / unanswerable", _abstentions),
    ]
    width = max(len(label) for label, _ in lines) + 2
    print(f"{'':<{width}}" + "".join(f"{n:>16}" for n in names))
    for label, cell in lines:
        print(f"{label:<{width}}" + "".join(f"{cell(table[n]):>16}" for n in names))
    first, *others = names
    for other in others:
        same = sum(a["hits"] == b["hits"] for a, b in zip(table[first], table[other], strict=True))
        print(f"searches with identical hits ({first} vs {other}): {same}/{len(table[first])}")
    for name, result in results.items():
        if result.get("spans"):
            print(f"\nindex-time embedding CPU ({name}):")
            for kind, cost in result["spans"].items():
                print(f"  {kind:<9}{cost['texts']:>6} texts {cost['words']:>7} words {cost['cpu_s']:>8.1f} s CPU")


def _mean_recall(rows: list[dict[str, Any]]) -> float:
    return statistics.mean(r["recall"] for r in rows if r["recall"] is not None)


def _abstentions(rows: list[dict[str, Any]]) -> str:
    yes = sum(r["abstained"] for r in rows if r["answerable"])
    no = sum(r["abstained"] for r in rows if not r["answerable"])
    return f"{yes}/{sum(r['answerable'] for r in rows)} {no}/{sum(not r['answerable'] for r in rows)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=STORE, help="the indexed NURC store (built if missing)")
    parser.add_argument("--ref", default="main", help="git ref of today's code, measured beside this tree")
    parser.add_argument("--quick", action="store_true", help="20 questions")
    parser.add_argument("--span-cost", action="store_true", help="also measure index-time embedding of every span")
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = 20 if args.quick else args.limit
    if args.worker:
        args.json.write_text(json.dumps(measure(args.store, limit, args.span_cost)), encoding="utf-8")
        return
    store = ensure_store(args.store)
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        results = {
            args.ref: run_version(old_tree(args.ref, Path(tmp)), store, limit, False),
            "this tree": run_version(REPO / "src", store, limit, args.span_cost),
        }
    report(results)


if __name__ == "__main__":
    main()
