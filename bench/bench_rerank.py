"""Reranking cost per query: one command, every ratio measured side by side in one run.

    python -m bench.bench_rerank            # ~4 min on 2 idle cores the first time (ingest + embeddings)
    python -m bench.bench_rerank --store DIR  # an existing indexed store instead of the NURC one

What it measures, over the 71 NURC questions (tests/data/nurc_questions.jsonl), at k=10 with
50 first-stage candidates, hybrid mode (``--mode dense``: the default a user gets),
through ``Retriever.search`` (query embedding included):
  * p50/p95 latency per query without reranking, with the ``passages`` and ``learned`` rerankers, and with a
    cross-encoder when ``--cross-encoder NAME_OR_DIR`` is given;
  * each one's ratio to search without reranking.
Each configuration runs every question once to warm up, then ``--repeat`` times measured,
interleaved per question, so machine load hits every configuration alike.

The store is the four NURC-SP ASR transcripts (``../shared/data/nurc-sp/asr``), ingested into
``~/.cache/lecture-rag/bench/rerank-store`` once (never into the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lecture_rag.config import Reranking, load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.retrieve import Retriever, SearchRequest
from lecture_rag.retrieve.rerank import Reranker, make_reranker
from lecture_rag.store import Store

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO.parent / "shared" / "data").resolve()
CACHE = Path(os.environ.get("LECTURE_RAG_BENCH_CACHE", Path.home() / ".cache" / "lecture-rag" / "bench"))


def ensure_store(store: Path | None) -> Path:
    if store is not None:
        return store
    home = CACHE / "rerank-store"
    exe = Path(sys.executable).parent / "lecture-rag"
    subprocess.run([str(exe), "ingest", str(DATA / "nurc-sp" / "asr"), "--store", str(home)], check=True)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", default="hybrid", help="first-stage mode (dense is the default a user gets)")
    parser.add_argument("--cross-encoder", default="", help="a CrossEncoder name or folder to measure too")
    args = parser.parse_args()
    home = ensure_store(args.store)
    settings = load_settings(home)
    retriever = Retriever.open(Store(home, create=False), make_embedder(settings.embedder), settings)
    questions = [
        json.loads(line)["question"]
        for line in (REPO / "tests" / "data" / "nurc_questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    configs: dict[str, Reranker | None] = {
        "none": None,
        "passages": make_reranker(settings, Reranking.PASSAGES),
        "learned": make_reranker(settings, Reranking.LEARNED),
    }
    if args.cross_encoder:
        ce = settings.retrieval.model_copy(update={"cross_encoder_model": args.cross_encoder})
        configs["cross-encoder"] = make_reranker(settings.model_copy(update={"retrieval": ce}), "cross-encoder")
    times: dict[str, list[float]] = {name: [] for name in configs}
    for q in questions:  # warm-up: indexes, passages, models
        for reranker in configs.values():
            retriever.search(SearchRequest(q, k=10, mode=args.mode, reranker=reranker))
    for _ in range(args.repeat):
        for q in questions:
            for name, reranker in configs.items():
                t0 = time.perf_counter()
                retriever.search(SearchRequest(q, k=10, mode=args.mode, reranker=reranker))
                times[name].append(time.perf_counter() - t0)
    base = float(np.percentile(times["none"], 50))
    n = settings.retrieval.rerank_candidates
    print(f"{len(questions)} questions x {args.repeat}, {args.mode}, k=10 over {n} candidates")
    print(f"{'reranker':<16}{'p50 ms':>10}{'p95 ms':>10}{'p50 ratio':>12}")
    for name, values in times.items():
        p50, p95 = np.percentile(values, 50) * 1000, np.percentile(values, 95) * 1000
        print(f"{name:<16}{p50:>10.1f}{p95:>10.1f}{p50 / 1000 / base:>12.2f}")


if __name__ == "__main__":
    main()
