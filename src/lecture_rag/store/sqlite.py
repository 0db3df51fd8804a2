"""The embedded corpus store: one SQLite database (WAL mode) in the store directory.

Why SQLite: it is transactional (a killed ingest leaves the previous state
intact), needs no server, and lets several readers (CLI, web app) share one
store. Corpus ids come from an AUTOINCREMENT key, so an id is never reused:
a report that cites corpus id 8174 can never silently point to other text.

Threads: each thread gets its own connection to the database (opened on
first use), so a worker thread that reads never shares a connection, and
its transaction state, with a thread that writes; WAL lets them run side
by side, and a writer waits for the write lock (30 s) instead of failing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lecture_rag.errors import StoreError
from lecture_rag.records import Segment, Video
from lecture_rag.store.schema import migrate

DB_NAME = "lecture-rag.sqlite3"
LOCKS_DIRNAME = "locks"


class EmptyVideoError(StoreError):
    """A video with no segments is never stored (it would shadow the old version)."""


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    """A segment before it has a corpus id."""

    start: float
    end: float
    text: str


class Store:
    """Videos and segments of one store directory."""

    def __init__(self, home: Path, *, create: bool = True) -> None:
        self.home = Path(home)
        self.db_path = self.home / DB_NAME
        if not self.db_path.exists() and not create:
            raise StoreError(
                f"Nenhum acervo em {self.home}: rode 'lecture-rag ingest ARQUIVOS --store {self.home}' primeiro."
            )
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._open_lock = threading.Lock()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            migrate(self.conn, str(self.home))
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(
                f"O arquivo do acervo {self.db_path} está corrompido ou não é um banco SQLite ({exc}). "
                "Mova-o para outro lugar e rode 'lecture-rag ingest' de novo."
            ) from exc
        except BaseException:
            self.close()
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to the database (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._open_lock:
                self._open.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every thread's connection (call once no thread uses the store any more)."""
        with self._open_lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    @contextmanager
    def exclusive(self, what: str, busy: str) -> Iterator[None]:
        """Hold an inter-process lock named ``what`` for the block; if another process holds it, raise ``busy``.

        The lock is an ``flock`` on a file under the store's ``locks/`` folder,
        so the operating system releases it when its process dies: a killed
        run never leaves a stale lock behind.
        """
        folder = self.home / LOCKS_DIRNAME
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (hashlib.sha256(what.encode()).hexdigest()[:24] + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise StoreError(busy) from None
                raise
            yield
        finally:
            os.close(fd)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it lands, or none of it."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    # -- videos -------------------------------------------------------------
    def source_hash(self, video_id: str) -> str | None:
        row = self.conn.execute("SELECT source_hash FROM videos WHERE video_id=?", (video_id,)).fetchone()
        return None if row is None else str(row[0])

    def replace_video(self, video: Video, drafts: Iterable[SegmentDraft]) -> list[int]:
        """Insert or replace a video and all its segments in one transaction.

        ``drafts`` may be a generator (a 200 MB transcript streams straight
        into the database). Returns the new corpus ids. Old segments of the
        video are deleted in the same transaction, so readers see either the
        old or the new version; if reading fails half-way, or yields nothing,
        the old version stays untouched. The video's duration, when not given,
        is the end of its last segment.
        """
        ingested = video.ingested_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self.transaction() as conn:
            conn.execute("DELETE FROM segments WHERE video_id=?", (video.video_id,))
            conn.execute(
                """INSERT INTO videos(video_id, title, course, url, language, duration,
                                      source_path, source_hash, ingested_at)
                   VALUES(?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(video_id) DO UPDATE SET title=excluded.title,
                     course=excluded.course, url=excluded.url, language=excluded.language,
                     duration=excluded.duration, source_path=excluded.source_path,
                     source_hash=excluded.source_hash, ingested_at=excluded.ingested_at""",
                (
                    video.video_id,
                    video.title,
                    video.course,
                    video.url,
                    video.language,
                    video.duration,
                    video.source_path,
                    video.source_hash,
                    ingested,
                ),
            )
            ids: list[int] = []
            last_end = 0.0
            for seq, draft in enumerate(drafts):
                cur = conn.execute(
                    "INSERT INTO segments(video_id, seq, start, end, text) VALUES(?,?,?,?,?)",
                    (video.video_id, seq, draft.start, draft.end, draft.text),
                )
                ids.append(int(cur.lastrowid or 0))
                last_end = max(last_end, draft.end)
            if not ids:
                raise EmptyVideoError(f"{video.video_id}: nenhum segmento para gravar")
            if not video.duration:
                conn.execute("UPDATE videos SET duration=? WHERE video_id=?", (last_end, video.video_id))
        return ids

    def remove_video(self, video_id: str) -> bool:
        with self.transaction() as conn:
            conn.execute("DELETE FROM segments WHERE video_id=?", (video_id,))
            cur = conn.execute("DELETE FROM videos WHERE video_id=?", (video_id,))
        return cur.rowcount > 0

    def list_videos(self) -> list[Video]:
        rows = self.conn.execute(
            """SELECT v.*, (SELECT COUNT(*) FROM segments s WHERE s.video_id=v.video_id) AS n
               FROM videos v ORDER BY v.video_id"""
        ).fetchall()
        return [_video(row) for row in rows]

    def get_video(self, video_id: str) -> Video | None:
        row = self.conn.execute(
            """SELECT v.*, (SELECT COUNT(*) FROM segments s WHERE s.video_id=v.video_id) AS n
               FROM videos v WHERE v.video_id=?""",
            (video_id,),
        ).fetchone()
        return None if row is None else _video(row)

    # -- segments -----------------------------------------------------------
    _SEG_SELECT = """SELECT s.corpus_id, s.video_id, s.start, s.end, s.text,
                            v.url, v.title, v.course
                     FROM segments s JOIN videos v ON v.video_id = s.video_id"""

    def segments(self, video_id: str | None = None) -> list[Segment]:
        """All segments (of one video if given), in corpus-id order."""
        if video_id is None:
            rows = self.conn.execute(self._SEG_SELECT + " ORDER BY s.corpus_id")
        else:
            rows = self.conn.execute(self._SEG_SELECT + " WHERE s.video_id=? ORDER BY s.start", (video_id,))
        return [_segment(row) for row in rows]

    def get_segments(self, corpus_ids: Iterable[int]) -> dict[int, Segment]:
        """Segments by corpus id (missing ids are simply absent)."""
        ids = list(dict.fromkeys(int(i) for i in corpus_ids))
        out: dict[int, Segment] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(self._SEG_SELECT + f" WHERE s.corpus_id IN ({marks})", chunk):
                seg = _segment(row)
                out[seg.corpus_id] = seg
        return out

    def segment_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    def corpus_ids(self, video_ids: Sequence[str] | None = None) -> list[int]:
        """Corpus ids in order, of the given videos only if ``video_ids`` is given (ids only, no text)."""
        if video_ids is None:
            return [int(r[0]) for r in self.conn.execute("SELECT corpus_id FROM segments ORDER BY corpus_id")]
        out: list[int] = []
        for start in range(0, len(video_ids), 500):
            chunk = list(video_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(f"SELECT corpus_id FROM segments WHERE video_id IN ({marks})", chunk)
            out.extend(int(r[0]) for r in rows)
        return sorted(out)

    def iter_texts(self, batch: int = 1000) -> Iterator[list[tuple[int, str]]]:
        """(corpus_id, text) in corpus-id order, in batches, for indexing without loading all."""
        last = -1
        while True:
            rows = self.conn.execute(
                "SELECT corpus_id, text FROM segments WHERE corpus_id>? ORDER BY corpus_id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(int(r[0]), str(r[1])) for r in rows]
            last = int(rows[-1][0])


def _video(row: sqlite3.Row) -> Video:
    return Video(
        video_id=row["video_id"],
        title=row["title"],
        course=row["course"],
        url=row["url"],
        language=row["language"],
        duration=row["duration"],
        source_path=row["source_path"],
        source_hash=row["source_hash"],
        ingested_at=row["ingested_at"],
        n_segments=row["n"],
    )


def _segment(row: sqlite3.Row) -> Segment:
    return Segment(
        corpus_id=row["corpus_id"],
        video_id=row["video_id"],
        start=row["start"],
        end=row["end"],
        text=row["text"],
        video_url=row["url"],
        title=row["title"],
        course=row["course"],
    )
