"""How long a web replica takes to answer with a lecture another process just ingested.

    python -m bench.bench_replicas                       # SQLite: the replica serves the CLI's store folder
    python -m bench.bench_replicas --repeat 5 --polls 0.5,2
    python -m bench.bench_replicas --database-url postgresql://...   # the replica in a folder of its own

One real ``lecture-rag serve`` per poll interval (``[store] index_poll_seconds``) over the four
NURC-SP lectures (human transcripts, ingested once into ``~/.cache/lecture-rag/bench/replicas-base``
and copied for each run). For each repetition a third process runs ``lecture-rag ingest`` of a
small new lecture carrying a word no other lecture has, either as users run it (it indexes too) or
with ``--no-index`` (the replica embeds the new segments itself). Measured:

* **visible**: from the ingest's commit (this process polls the store's corpus version every 5 ms)
  to the first ``/api/search`` of the replica (BM25, polled every 50 ms) that returns the new lecture;
* **refresh**: what the replica's ``/api/health`` says its last refresh took (from the poll that saw
  the change: building, or waiting for the ingesting process's build, then loading);
* every search answered while waiting (any non-200 is counted and shown).

Expected: visible ≈ half the poll interval on average + refresh. Printed as median / p90 per poll
interval and ingest mode, side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from lecture_rag.config import Settings, load_settings
from lecture_rag.store import open_store

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO.parent / "shared" / "data").resolve()
CACHE = Path(os.environ.get("LECTURE_RAG_BENCH_CACHE", Path.home() / ".cache" / "lecture-rag" / "bench"))
EXE = str(Path(sys.executable).parent / "lecture-rag")
TOKEN = "bench-replicas-token"
SYLLABLES = ("ka", "zu", "mo", "ri", "te", "vo", "lu", "pe", "xa", "ni")


def made_up_word(n: int) -> str:
    """A word no lecture says, one per repetition (BM25 finds it only in the lecture that carries it)."""
    return "quim" + "".join(SYLLABLES[int(d)] for d in f"{n:03d}")


def lecture(word: str) -> str:
    cues = [
        (5, 40, f"Nesta aula falamos do {word}, um instrumento inventado para esta medição."),
        (40, 90, f"O {word} tem três cordas e se toca com um arco de crina de cavalo."),
        (130, 170, "Na próxima aula vamos comparar os instrumentos de corda do mundo inteiro."),
    ]

    def stamp(s: float) -> str:
        return f"00:{int(s // 60):02d}:{int(s % 60):02d},000"

    return "\n".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues, start=1))


def env_for(poll: float, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LECTURE_RAG_")}
    env.update({"LECTURE_RAG_STORE__INDEX_POLL_SECONDS": str(poll), "LECTURE_RAG_TOKEN": TOKEN, "COLUMNS": "200"})
    if url:
        env["LECTURE_RAG_DATABASE_URL"] = url
    return env


def base_store() -> Path:
    """The four NURC lectures, ingested and indexed once (SQLite)."""
    base = CACHE / "replicas-base"
    if not (base / "index" / "current.json").exists():
        transcripts = DATA / "nurc-sp" / "transcripts"
        env = env_for(2.0, "")
        subprocess.run([EXE, "ingest", str(transcripts), "--store", str(base)], check=True, env=env)
    return base


def start_replica(folder: Path, poll: float, url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [EXE, "serve", "--store", str(folder), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env_for(poll, url),
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve saiu: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("serve não respondeu em 600 s")


def commit_time(settings: Settings, before: int, stop: threading.Event, out: list[float]) -> None:
    """The moment the store's corpus version moves past ``before`` (polled every 5 ms)."""
    with open_store(settings, create=False) as store:
        while not stop.is_set():
            if store.corpus_version() > before:
                out.append(time.perf_counter())
                return
            time.sleep(0.005)


def one_ingest(
    n: int, cli_folder: Path, work: Path, base: str, poll: float, url: str, no_index: bool
) -> tuple[float, float, dict[int, int]]:
    """(visible seconds after the commit, the replica's refresh seconds, search statuses) of one ingest."""
    word = made_up_word(n)
    source = work / f"bench-{n:03d}.srt"
    source.write_text(lecture(word), encoding="utf-8")
    settings = load_settings(cli_folder)
    if url:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": url})})
    with open_store(settings, create=False) as store:
        before = store.corpus_version()
    stop, committed = threading.Event(), []
    watcher = threading.Thread(target=commit_time, args=(settings, before, stop, committed))
    watcher.start()
    args = [EXE, "ingest", str(source), "--video-id", f"bench-{n:03d}", "--store", str(cli_folder)]
    ingest = subprocess.Popen(
        [*args, *(["--no-index"] if no_index else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env_for(poll, url),
    )
    statuses: dict[int, int] = {}
    visible = None
    with httpx.Client(base_url=base, timeout=120) as client:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            response = client.get("/api/search", params={"q": word, "k": 1, "mode": "bm25"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            hits = response.json().get("hits", []) if response.status_code == 200 else []
            if hits and hits[0]["video_id"] == f"bench-{n:03d}":
                visible = time.perf_counter()
                break
            time.sleep(0.05)
        refresh = float(client.get("/api/health").json()["index"]["refresh_s"])
    _, err = ingest.communicate(timeout=600)
    stop.set()
    watcher.join()
    if ingest.returncode != 0:
        raise SystemExit(f"ingest falhou: {err.decode(errors='replace')[-2000:]}")
    if visible is None or not committed:
        raise SystemExit(f"a aula bench-{n:03d} não apareceu na réplica em 300 s")
    return visible - committed[0], refresh, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--polls", default="0.5,2", help="poll intervals to compare, in seconds (comma-separated)")
    parser.add_argument("--database-url", default="", help="PostgreSQL: the replica gets a folder of its own")
    args = parser.parse_args()
    polls = [float(p) for p in args.polls.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    try:
        cli_folder = work / "store"
        if args.database_url:
            env = env_for(2.0, args.database_url)
            transcripts = DATA / "nurc-sp" / "transcripts"
            subprocess.run([EXE, "ingest", str(transcripts), "--store", str(cli_folder)], check=True, env=env)
        else:
            shutil.copytree(base_store(), cli_folder)
        rows = []
        n = 0
        for poll in polls:
            folder = work / f"replica-{poll}" if args.database_url else cli_folder
            proc, base = start_replica(folder, poll, args.database_url, work / f"replica-{poll}.log")
            try:
                for no_index in (False, True):
                    seen, refreshes, statuses = [], [], {}
                    for _ in range(args.repeat):
                        n += 1
                        visible, refresh, got = one_ingest(n, cli_folder, work, base, poll, args.database_url, no_index)
                        seen.append(visible)
                        refreshes.append(refresh)
                        for code, count in got.items():
                            statuses[code] = statuses.get(code, 0) + count
                    rows.append((poll, "ingest --no-index" if no_index else "ingest", seen, refreshes, statuses))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        store = "PostgreSQL, replica in its own folder" if args.database_url else "SQLite, replica in the store folder"
        print(f"\nstore: {store}; base corpus: 4 NURC lectures; {args.repeat} ingests per row")
        print(
            f"{'poll (s)':>8} | {'third process':<17} | {'visible median / p90 (s)':>24} | "
            f"{'refresh median / p90 (s)':>24} | searches while waiting"
        )
        for poll, mode, seen, refreshes, statuses in rows:
            v = np.percentile(seen, [50, 90])
            r = np.percentile(refreshes, [50, 90])
            codes = ", ".join(f"{count}x{code}" for code, count in sorted(statuses.items()))
            print(
                f"{poll:>8.1f} | {mode:<17} | {v[0]:>11.2f} / {v[1]:<10.2f} | {r[0]:>11.2f} / {r[1]:<10.2f} | {codes}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
