"""The held-out bench's store: the four NURC lectures (human AND ASR) among FaQuAD and SQuAD-pt paragraphs.

Built once through the project's own code (``lecture-rag ingest`` for the
NURC CSVs, :func:`~lecture_rag.evaluate.questions.ensure_squad_corpus` for
the SQuAD-format paragraphs, :func:`~lecture_rag.index.build.build_indexes`
for the vectors, BM25 and passages) under ``~/.cache/lecture-rag/bench/heldout``;
the store's embedding cache makes a rerun cheap.

Human and ASR transcripts of one recording would share a video id
(``SP_EF_124``), so the bench ingests them through links named
``SP_EF_124-human.csv`` / ``SP_EF_124-asr.csv`` (two videos). FaQuAD and
SQuAD-pt paragraphs become one-window pseudo-videos ``faquad-NNNNN`` and
``squadpt-NNNNN`` (their files number paragraphs from 0 each, so they are
renamed).

A second store (:data:`ARTICLES_HOME`, built by every ``bench_heldout`` run) takes
each article's paragraphs as the windows of one recording (:func:`article_set`):
a store of many multi-window recordings, as a university's is, where the
neighbour and lecture features meet recordings everywhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.progress import Progress

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.evaluate.questions import Paragraph, ensure_squad_corpus, load_squad
from lecture_rag.index.build import build_indexes
from lecture_rag.records import Evidence, Question, Video
from lecture_rag.store import Store
from lecture_rag.store.corpus import SegmentDraft

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO.parent / "shared" / "data").resolve()
CACHE = Path(os.environ.get("LECTURE_RAG_BENCH_CACHE", Path.home() / ".cache" / "lecture-rag" / "bench"))
HOME = CACHE / "heldout"
ARTICLES_HOME = CACHE / "heldout-articles"
#: Seconds between the paragraphs of an article taken as one recording (:func:`article_set`).
ARTICLE_STEP = 60.0
LECTURES = ("SP_EF_124", "SP_EF_153", "SP_EF_377", "SP_EF_405")
KINDS = ("human", "asr")
SQUAD_SETS = {"faquad": DATA / "faquad" / "train.json", "squadpt": DATA / "squad-pt-sample" / "sample-v1.1-pt.json"}
#: Paragraphs kept per set, whole articles first to last: SQuAD-pt's 506 would triple the embedding time
#: on 2 cores; 211 + ~200 paragraphs with the other NURC transcript give ~500 distractor windows per search.
MAX_PARAGRAPHS = {"faquad": 10_000, "squadpt": 200}


def nurc_sources(root: Path) -> Path:
    """A folder of links to the NURC CSVs, named so human and ASR versions get their own video ids."""
    folder = root / "nurc-links"
    folder.mkdir(parents=True, exist_ok=True)
    for lecture in LECTURES:
        files = {
            "human": DATA / "nurc-sp" / "transcripts" / f"sentences_{lecture}.csv",
            "asr": DATA / "nurc-sp" / "asr" / f"{lecture}_asr_wav2vec2-xls-r-1b.csv",
        }
        for kind, target in files.items():
            link = folder / f"{lecture}-{kind}.csv"
            if not link.exists():
                link.symlink_to(target)
    return folder


def squad_set(name: str) -> tuple[list[Paragraph], list[Question]]:
    """A SQuAD-format file's paragraphs and questions, with video ids prefixed by the set's name."""
    paragraphs, questions = load_squad(SQUAD_SETS[name])
    titles: list[str] = []
    for p in paragraphs:
        if p.title not in titles:
            titles.append(p.title)
    kept: set[str] = set()
    for title in titles:
        if len(kept) >= MAX_PARAGRAPHS[name]:
            break
        kept |= {p.video_id for p in paragraphs if p.title == title}
    paragraphs = [p for p in paragraphs if p.video_id in kept]
    questions = [q for q in questions if q.evidence[0].video_id in kept]
    rename = {p.video_id: f"{name}-{p.video_id.split('-')[-1]}" for p in paragraphs}
    paragraphs = [replace(p, video_id=rename[p.video_id]) for p in paragraphs]
    questions = [
        replace(q, evidence=[Evidence(rename[e.video_id], e.start, e.end) for e in q.evidence]) for q in questions
    ]
    return paragraphs, questions


def article_places(name: str, paragraphs: Sequence[Paragraph]) -> dict[str, tuple[str, float, float]]:
    """Each of the set's ``paragraphs`` (:func:`squad_set`): its recording (``NAME-artNNN``, one per article in
    file order) and its seconds there."""
    titles: dict[str, int] = {}
    count: dict[str, int] = {}
    places = {}
    for p in paragraphs:
        video = f"{name}-art{titles.setdefault(p.title, len(titles)):03d}"
        i = count[video] = count.get(video, -1) + 1
        places[p.video_id] = (video, i * ARTICLE_STEP, (i + 1) * ARTICLE_STEP - 1)
    return places


def article_set(name: str) -> tuple[list[Paragraph], list[Question]]:
    """:func:`squad_set` with each article one recording: a paragraph's video id is its article's, and each
    question's evidence the seconds of its paragraph there."""
    paragraphs, questions = squad_set(name)
    where = article_places(name, paragraphs)
    return (
        [replace(p, video_id=where[p.video_id][0]) for p in paragraphs],
        [replace(q, evidence=[Evidence(*where[q.evidence[0].video_id])]) for q in questions],
    )


def ensure_articles(store: Store, name: str) -> set[str]:
    """Write the set's article recordings (:func:`article_places`) that changed; their video ids."""
    paragraphs, _ = squad_set(name)
    where = article_places(name, paragraphs)
    drafts: dict[str, list[SegmentDraft]] = {}
    titles: dict[str, str] = {}
    for p in paragraphs:
        video, start, end = where[p.video_id]
        drafts.setdefault(video, []).append(SegmentDraft(start, end, p.text))
        titles[video] = p.title
    for video, windows in drafts.items():
        digest = hashlib.sha256("|".join([titles[video], *(w.text for w in windows)]).encode()).hexdigest()
        if store.source_hash(video) != digest:
            source = str(SQUAD_SETS[name])
            meta = Video(video, title=titles[video], course="squad", source_path=source, source_hash=digest)
            store.replace_video(replace(meta, duration=windows[-1].end), windows)
    return set(drafts)


def ensure_store(home: Path = HOME, articles: bool = False) -> Path:
    """Ingest and index the bench corpus into ``home`` (a no-op when it is up to date).

    ``articles``: the SQuAD-format paragraphs as article recordings (:func:`article_set`); a new store of
    this kind starts as a copy of the default one, whose embedding cache holds every window's vector.
    """
    if articles and not home.exists() and (HOME / "lecture-rag.sqlite3").exists():
        shutil.copytree(HOME, home, ignore=shutil.ignore_patterns("locks"))
    home.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "lecture-rag"
    subprocess.run([str(exe), "ingest", str(nurc_sources(CACHE)), "--store", str(home), "--no-index"], check=True)
    settings = load_settings(home)
    with Store(home) as store:
        for name in SQUAD_SETS:
            if articles:
                wanted = ensure_articles(store, name)
            else:
                paragraphs, _ = squad_set(name)
                ensure_squad_corpus(store, paragraphs, str(SQUAD_SETS[name]))
                wanted = {p.video_id for p in paragraphs}
            for video in store.list_videos():
                if video.video_id.startswith(f"{name}-") and video.video_id not in wanted:
                    store.remove_video(video.video_id)
        with Progress() as bar:
            task = bar.add_task("Indexando o acervo do bench", total=None)
            build_indexes(
                store,
                make_embedder(settings.embedder, indexing=True),
                settings,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    return home


if __name__ == "__main__":
    print(ensure_store())
