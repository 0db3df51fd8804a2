"""The corpus store: videos and segments, in SQLite (the default) or PostgreSQL (shared by many processes).

The store directory (``--store``) always exists and holds what is local to
a process (search index builds, locks); the corpus itself lives in the
database :func:`~lecture_rag.store.open_store` picks: ``lecture-rag.sqlite3``
in that directory (:mod:`lecture_rag.store.sqlite`), or the PostgreSQL
database of ``[store] url`` (:mod:`lecture_rag.store.postgres`). Corpus ids
come from a key that is never reused (AUTOINCREMENT, IDENTITY): a report
that cites corpus id 8174 can never silently point to other text. Every
corpus write is an exclusive transaction: one writer at a time, across
processes, on both databases.

Failures of the storage itself (a read-only store, a full disk, a file-size
limit, an I/O error) become a :class:`~lecture_rag.store.failures.StorageError`
that names the cause; the transaction is rolled back whole. A store whose
files carry no write permission (``chmod a-w``) or sit on a read-only mount
is opened read-only (SQLite's ``mode=ro``): reading works, and every write
says that the store is read-only, even for root.

Superseded segments: re-ingesting or removing a lecture moves its old
segments to ``superseded_segments`` (in the same transaction) instead of
deleting them, because the published index still holds their corpus ids
until the next ``index``; search resolves its hits with
``get_segments(..., superseded=True)``, so the lecture stays searchable in
its old version until the new one is indexed. Publishing an index purges
the superseded rows it no longer references (:meth:`Store.purge_superseded`).
Everything else (corpus list/show, indexing, counts) sees only the current
version.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lecture_rag.errors import StoreError
from lecture_rag.records import Marks, Segment, Video
from lecture_rag.store.cache import EmbeddingCache, cache_path
from lecture_rag.store.database import Connection, Database, HeldLock, Row
from lecture_rag.store.failures import open_error, os_errors, read_only_error
from lecture_rag.store.schema import SCHEMA_VERSION, migrate, schema_version
from lecture_rag.store.sqlite import SqliteDatabase, file_lock

DB_NAME = "lecture-rag.sqlite3"
WHAT = "o acervo"
_OLDEST_READABLE = 2  # schema versions a read-only store may have (it cannot be upgraded)
_SUPERSEDED_SINCE = 3
_SINCE_4 = ("transcript_source", "channel", "upload_date")  # video columns of schema version 4
_SINCE_6 = ("media_path",)  # video columns of schema version 6
_MARKS_SINCE = 5
_ORIGINS_SINCE = 7
CORPUS_VERSION = "corpus_version"
SHARED_PURGE_GRACE = 3600.0  # seconds a shared store keeps superseded segments for other processes' indexes


#: Where ``index`` publishes what a build holds (``lecture_rag.index.build``'s ``index/current.json``); the
#: store reads only its segment count, to notice a database that lost the corpus that index describes.
PUBLISHED_INDEX = Path("index") / "current.json"
DAMAGED_ADVICE = (
    "Restaure o arquivo de um backup (com os comandos parados), ou mova-o para outro lugar e rode "
    "'lecture-rag ingest' de novo com as aulas (e depois 'lecture-rag index --rebuild')."
)


def _published_segments(home: Path) -> int:
    """How many segments the published index of ``home`` describes (0: none published, or unreadable)."""
    try:
        count = json.loads((home / PUBLISHED_INDEX).read_text(encoding="utf-8")).get("count", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return count if isinstance(count, int) and count > 0 else 0


class EmptyVideoError(StoreError):
    """A video with no segments is never stored (it would shadow the old version)."""


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    """A segment before it has a corpus id (``marks``: where each cue begins, as in :class:`Segment`)."""

    start: float
    end: float
    text: str
    marks: Marks = ()


@dataclass(frozen=True, slots=True)
class Origin:
    """Who set a lecture's field last, and what a manifest or sidecar last applied to it.

    Why: re-ingesting a folder must tell a manifest value that changed (apply it) from one
    unchanged since it was applied (a later ``corpus edit`` or flag is newer: keep that).
    """

    source: str  # flag | manifest | sidecar | edit; KEEP ('') when writing: the recorded one stays
    listed: str | None = None  # what a manifest or sidecar last said (None: nothing yet; when writing: keep it)


#: An origin's source when writing only what the manifest said: the field's recorded source stays.
KEEP = ""


class Store:
    """Videos and segments of one store directory."""

    def __init__(
        self, home: Path, *, create: bool = True, read_only: bool = False, database: Database | None = None
    ) -> None:
        """Open (or create) the store in ``home``; ``read_only`` opens its SQLite file read-only.

        ``database``: a server database (PostgreSQL) to hold the corpus instead
        of the SQLite file; ``home`` then holds only this process's indexes and
        locks. A store whose SQLite file or folder is write-protected is opened
        read-only whatever ``read_only`` says (see the module docstring).
        """
        self.home = Path(home)
        self.db_path = self.home / DB_NAME
        self._superseded = True  # whether the superseded_segments table exists (not in old read-only stores)
        self._marks = True  # whether segments have cue marks (not in old read-only stores)
        self._origins = True  # whether video_origins exists (not in old read-only stores)
        if database is not None:
            self._open_server(database, create=create)
        else:
            self._open_file(create=create, read_only=read_only)

    @property
    def shared(self) -> bool:
        """Whether other machines' processes may use this store at once (a server database)."""
        return self.db.dialect != "sqlite"

    @property
    def where(self) -> str:
        """What messages call this store: its directory, or its database server."""
        return str(self.home) if not self.shared else self.db.where

    def _open_server(self, database: Database, *, create: bool) -> None:
        self.db: Database = database
        self.read_only = False
        try:
            with os_errors(WHAT, self.home):
                self.home.mkdir(parents=True, exist_ok=True)
            if not create and schema_version(database) == 0:
                raise StoreError(
                    f"O banco {database.where} ainda não tem acervo: rode 'lecture-rag ingest ARQUIVOS' "
                    "(ou 'lecture-rag db upgrade') primeiro."
                )
            migrate(database, upgrade=False)
        except BaseException:
            database.close()
            raise

    def _open_file(self, *, create: bool, read_only: bool) -> None:
        exists = self.db_path.exists()
        if not exists and not create:
            raise StoreError(
                f"Nenhum acervo em {self.home}: rode 'lecture-rag ingest ARQUIVOS --store {self.home}' primeiro."
            )
        if exists and self.db_path.stat().st_size == 0:
            self._refuse_a_lost_corpus()  # before SQLite writes a header into it (opening in WAL mode does)
        self.db = SqliteDatabase.at(self.db_path, WHAT, read_only=read_only, advice=DAMAGED_ADVICE)
        self.db.where = str(self.home)
        self.read_only = self.db.read_only
        if self.read_only and not exists:
            raise read_only_error(WHAT, self.home, "não é possível criar o acervo")
        try:
            with os_errors(WHAT, self.home):
                self.home.mkdir(parents=True, exist_ok=True)
            if exists and schema_version(self.db) == 0:
                self._refuse_a_lost_corpus()
            if self.read_only:
                self._check_schema()
            else:
                migrate(self.db)
        except sqlite3.Error as exc:
            self.close()
            corrupt = (
                f"O arquivo do acervo {self.db_path} está corrompido ou não é um banco SQLite ({exc}). "
                "Mova-o para outro lugar e rode 'lecture-rag ingest' de novo."
            )
            raise open_error(exc, WHAT, self.db_path, corrupt=corrupt) from exc
        except BaseException:
            self.close()
            raise

    def _refuse_a_lost_corpus(self) -> None:
        """Called for a database file without tables (zero bytes, emptied): refuse it beside a published index.

        Why: it would read as an empty store ("acervo vazio") while search
        describes N segments, and a write would start the corpus ids again at
        1, reusing the ids the published index points to. The file was
        truncated or replaced; nothing is written to it here.
        """
        described = _published_segments(self.home)
        if not described:
            return
        raise StoreError(
            f"O arquivo do acervo {self.db_path} está vazio ({self.db_path.stat().st_size} bytes, sem tabelas), mas "
            f"o índice publicado em {self.home / PUBLISHED_INDEX} descreve {described} segmentos: o banco foi "
            "truncado ou substituído. Nada foi gravado. Restaure o arquivo de um backup; ou, para recomeçar do "
            f"zero, mova o arquivo e a pasta {self.home / PUBLISHED_INDEX.parent} para outro lugar e rode "
            "'lecture-rag ingest' de novo com as aulas."
        )

    def _check_schema(self) -> None:
        """A read-only store cannot be upgraded: one from before superseded segments (2) is read as it is.

        Older ones lack the run tables that reading needs: refuse them, and say why.
        """
        found = schema_version(self.db)
        if found < _OLDEST_READABLE:
            raise read_only_error(
                WHAT, self.home, f"ele usa o esquema {found} e esta versão precisa gravar o esquema {SCHEMA_VERSION}"
            )
        if found > SCHEMA_VERSION:
            migrate(self.db)  # refuses a newer store without writing
        self._superseded = found >= _SUPERSEDED_SINCE
        self._marks = found >= _MARKS_SINCE
        self._origins = found >= _ORIGINS_SINCE

    @property
    def _seg_select(self) -> str:
        """The segment query; an old read-only store without cue marks reads '' for them."""
        return self._SEG_SELECT.format(marks="s.marks" if self._marks else "''")

    @property
    def _superseded_select(self) -> str:
        return self._SUPERSEDED_SELECT.format(marks="marks" if self._marks else "''")

    def close(self) -> None:
        """Close the database connections (call once no thread uses the store any more)."""
        self.db.close()

    def exclusive(
        self, what: str, busy: str, *, wait: bool = False, shared: bool = False
    ) -> AbstractContextManager[HeldLock]:
        """Hold an inter-process lock named ``what`` for the block; if another process holds it, raise ``busy``.

        With ``wait=True`` the block waits for the other process instead.
        ``shared=True`` locks against every process of the store, on every
        machine (the database's lock: an advisory lock on a server); otherwise
        the lock guards this store directory only (an ``flock`` under
        ``locks/``, e.g. its index builds). Either is released when its
        process dies: a killed run never leaves a stale lock behind. Locks
        guard writers, so a read-only store refuses them.
        """
        if self.read_only:
            raise read_only_error(WHAT, self.home)
        if shared and self.shared:
            return self.db.lock(what, busy, wait=wait)
        return file_lock(self.home, what, busy, wait=wait, label=WHAT)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self, *, exclusive: bool = False) -> AbstractContextManager[Connection]:
        """One atomic unit of work: all of it lands, or none of it (``exclusive``: no other writer at once).

        A storage failure (full disk, read-only store, I/O error, a server that
        went away) in the block or at COMMIT becomes a StorageError naming the
        cause, and the transaction is rolled back whole.
        """
        return self.db.transaction(exclusive=exclusive)

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- videos -------------------------------------------------------------
    def source_hash(self, video_id: str) -> str | None:
        row = self.db.execute("SELECT source_hash FROM videos WHERE video_id=?", (video_id,)).fetchone()
        return None if row is None else str(row[0])

    def replace_video(
        self, video: Video, drafts: Iterable[SegmentDraft], origins: Mapping[str, Origin] | None = None
    ) -> list[int]:
        """Insert or replace a video and all its segments in one transaction.

        ``drafts`` may be a generator (a 200 MB transcript streams straight
        into the database). Returns the new corpus ids. Old segments of the
        video are superseded in the same transaction (see the module
        docstring), so readers see either the old or the new version; if
        reading fails half-way, or yields nothing, the old version stays
        untouched. The video's duration, when not given, is the end of its
        last segment. ``origins``: who set which field now (see :meth:`origins`).
        """
        ingested = video.ingested_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self.transaction(exclusive=True) as conn:
            _supersede(conn, video.video_id, ingested)
            conn.execute(
                """INSERT INTO videos(video_id, title, course, url, language, duration,
                                      source_path, source_hash, ingested_at,
                                      transcript_source, channel, upload_date, media_path)
                   VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(video_id) DO UPDATE SET title=excluded.title,
                     course=excluded.course, url=excluded.url, language=excluded.language,
                     duration=excluded.duration, source_path=excluded.source_path,
                     source_hash=excluded.source_hash, ingested_at=excluded.ingested_at,
                     transcript_source=excluded.transcript_source, channel=excluded.channel,
                     upload_date=excluded.upload_date, media_path=excluded.media_path""",
                (
                    video.video_id,
                    video.title,
                    video.course,
                    video.url,
                    video.language,
                    float(video.duration),
                    video.source_path,
                    video.source_hash,
                    ingested,
                    video.transcript_source,
                    video.channel,
                    video.upload_date,
                    video.media_path,
                ),
            )
            ids: list[int] = []
            last_end = 0.0
            for seq, draft in enumerate(drafts):
                row = conn.execute(
                    'INSERT INTO segments(video_id, seq, start, "end", text, marks) VALUES(?,?,?,?,?,?) '
                    "RETURNING corpus_id",
                    (video.video_id, seq, float(draft.start), float(draft.end), draft.text, encode_marks(draft.marks)),
                ).fetchone()
                ids.append(int(row[0]))
                last_end = max(last_end, draft.end)
            if not ids:
                raise EmptyVideoError(f"{video.video_id}: nenhum segmento para gravar")
            if not video.duration:
                conn.execute("UPDATE videos SET duration=? WHERE video_id=?", (last_end, video.video_id))
            _write_origins(conn, video.video_id, origins or {})
            _bump_corpus_version(conn)
        return ids

    def update_video(
        self,
        video_id: str,
        *,
        title: str | None = None,
        course: str | None = None,
        url: str | None = None,
        origins: Mapping[str, Origin] | None = None,
    ) -> bool:
        """Change a lecture's title, course or URL (None: keep) without touching its segments.

        Search results read these from the videos table, so no re-index is needed; a re-ingest
        keeps them unless a flag or a changed manifest says otherwise. ``origins``: who set each
        field (default: ``corpus edit``). False when the video is not stored.
        """
        fields = {k: v for k, v in (("title", title), ("course", course), ("url", url)) if v is not None}
        if not fields:
            return self.get_video(video_id) is not None
        assignments = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as conn:
            # the column names are fixed above, the values are parameters
            cur = conn.execute(f"UPDATE videos SET {assignments} WHERE video_id=?", (*fields.values(), video_id))
            if cur.rowcount > 0:
                _write_origins(conn, video_id, origins if origins is not None else dict.fromkeys(fields, EDITED))
        return cur.rowcount > 0

    def record_origins(self, video_id: str, origins: Mapping[str, Origin]) -> None:
        """Record who set a stored lecture's fields, or what its manifest says, without changing the fields."""
        with self.transaction() as conn:
            _write_origins(conn, video_id, origins)

    def origins(self, video_id: str) -> dict[str, Origin]:
        """Who set each field of a stored lecture last, and what a manifest or sidecar last applied to it."""
        if not self._origins:
            return {}
        rows = self.db.execute("SELECT field, source, listed FROM video_origins WHERE video_id=?", (video_id,))
        return {str(r[0]): Origin(str(r[1]), None if r[2] is None else str(r[2])) for r in rows}

    def remove_video(self, video_id: str) -> bool:
        """Remove a video; its segments stay superseded until an index without them is published."""
        with self.transaction(exclusive=True) as conn:
            _supersede(conn, video_id, datetime.now(UTC).isoformat(timespec="seconds"))
            cur = conn.execute("DELETE FROM videos WHERE video_id=?", (video_id,))
            if cur.rowcount:
                _bump_corpus_version(conn)
        return cur.rowcount > 0

    def corpus_version(self) -> int:
        """A counter that every change of the corpus (ingest, re-ingest, removal) raises, in its own transaction.

        Why: a long-lived process (a web replica) learns that its search index
        is out of date with one tiny read, instead of listing millions of ids.
        """
        value = self.get_meta(CORPUS_VERSION)
        return int(value) if value else 0

    def embedding_cache(self) -> EmbeddingCache:
        """The embedding cache that belongs to this store (the caller closes it)."""
        if self.shared:
            return EmbeddingCache(self.db, owned=False)
        return EmbeddingCache.open_file(cache_path(self.home))

    def superseded_ids(self) -> list[int]:
        """Corpus ids of superseded segments (replaced or removed, not yet purged), ascending."""
        if not self._superseded:
            return []
        rows = self.db.execute("SELECT corpus_id FROM superseded_segments ORDER BY corpus_id")
        return [int(r[0]) for r in rows]

    def purge_superseded(self, keep: Iterable[int], *, grace: float | None = None) -> int:
        """Delete superseded segments whose ids are not in ``keep`` (the published index's ids); returns how many.

        On a shared store, other processes (web replicas on other machines)
        may still serve an index that holds them: rows superseded less than
        ``grace`` seconds ago (default :data:`SHARED_PURGE_GRACE` there, 0 on
        SQLite, whose one index folder is this one) are kept for them, and go with a later build.
        """
        if not self._superseded:
            return 0
        wanted = {int(i) for i in keep}
        if grace is None:
            grace = SHARED_PURGE_GRACE if self.shared else 0.0
        cutoff = (datetime.now(UTC) - timedelta(seconds=grace)).isoformat(timespec="seconds")
        rows = self.db.execute("SELECT corpus_id, superseded_at FROM superseded_segments ORDER BY corpus_id")
        stale = [(int(r[0]),) for r in rows if int(r[0]) not in wanted and (grace <= 0 or str(r[1]) < cutoff)]
        if stale:
            with self.transaction() as conn:
                conn.executemany("DELETE FROM superseded_segments WHERE corpus_id=?", stale)
        return len(stale)

    def list_videos(self) -> list[Video]:
        rows = self.db.execute(
            """SELECT v.*, (SELECT COUNT(*) FROM segments s WHERE s.video_id=v.video_id) AS n
               FROM videos v ORDER BY v.video_id"""
        ).fetchall()
        return [_video(row) for row in rows]

    def get_video(self, video_id: str) -> Video | None:
        row = self.db.execute(
            """SELECT v.*, (SELECT COUNT(*) FROM segments s WHERE s.video_id=v.video_id) AS n
               FROM videos v WHERE v.video_id=?""",
            (video_id,),
        ).fetchone()
        return None if row is None else _video(row)

    # -- segments -----------------------------------------------------------
    _SEG_SELECT = """SELECT s.corpus_id, s.video_id, s.start, s."end", s.text, {marks} AS marks,
                            v.url, v.title, v.course
                     FROM segments s JOIN videos v ON v.video_id = s.video_id"""

    def segments(self, video_id: str | None = None) -> list[Segment]:
        """All segments (of one video if given), in corpus-id order."""
        if video_id is None:
            rows = self.db.execute(self._seg_select + " ORDER BY s.corpus_id")
        else:
            rows = self.db.execute(self._seg_select + " WHERE s.video_id=? ORDER BY s.start", (video_id,))
        return [_segment(row) for row in rows]

    _SUPERSEDED_SELECT = """SELECT corpus_id, video_id, start, "end", text, {marks} AS marks, url, title, course
                            FROM superseded_segments"""

    def get_segments(self, corpus_ids: Iterable[int], *, superseded: bool = False) -> dict[int, Segment]:
        """Segments by corpus id (missing ids are simply absent).

        ``superseded=True`` also resolves ids of replaced or removed versions
        not purged yet: what search needs while the published index still holds them.
        """
        ids = list(dict.fromkeys(int(i) for i in corpus_ids))
        out: dict[int, Segment] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(self._seg_select + f" WHERE s.corpus_id IN ({marks})", chunk):
                seg = _segment(row)
                out[seg.corpus_id] = seg
            missing = [i for i in chunk if i not in out]
            if superseded and self._superseded and missing:
                marks = ",".join("?" * len(missing))
                for row in self.db.execute(self._superseded_select + f" WHERE corpus_id IN ({marks})", missing):
                    seg = _segment(row)
                    out[seg.corpus_id] = seg
        return out

    def segment_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    def corpus_ids(self, video_ids: Sequence[str] | None = None, *, superseded: bool = False) -> list[int]:
        """Corpus ids in order, of the given videos only if ``video_ids`` is given (ids only, no text).

        ``superseded=True`` adds the ids of those videos' superseded segments (see :meth:`get_segments`).
        """
        tables = ("segments", "superseded_segments") if superseded and self._superseded else ("segments",)
        if video_ids is None:
            out = [int(r[0]) for table in tables for r in self.db.execute(f"SELECT corpus_id FROM {table}")]
            return sorted(out)
        out = []
        for start in range(0, len(video_ids), 500):
            chunk = list(video_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for table in tables:
                rows = self.db.execute(f"SELECT corpus_id FROM {table} WHERE video_id IN ({marks})", chunk)
                out.extend(int(r[0]) for r in rows)
        return sorted(out)

    def iter_texts(self, batch: int = 1000) -> Iterator[list[tuple[int, str]]]:
        """(corpus_id, text) in corpus-id order, in batches, for indexing without loading all."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT corpus_id, text FROM segments WHERE corpus_id>? ORDER BY corpus_id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(int(r[0]), str(r[1])) for r in rows]
            last = int(rows[-1][0])


#: What ``corpus edit`` records as the source of the fields it changes.
EDITED = Origin("edit")


def _write_origins(conn: Connection, video_id: str, origins: Mapping[str, Origin]) -> None:
    """Record who set each field now; an origin without a source or a listed value keeps the one recorded."""
    if not origins:
        return
    conn.executemany(
        """INSERT INTO video_origins(video_id, field, source, listed) VALUES(?,?,?,?)
           ON CONFLICT(video_id, field) DO UPDATE SET
             source=COALESCE(NULLIF(excluded.source, ''), video_origins.source),
             listed=COALESCE(excluded.listed, video_origins.listed)""",
        [(video_id, name, origin.source, origin.listed) for name, origin in origins.items()],
    )


def _bump_corpus_version(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value=CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        (CORPUS_VERSION,),
    )


def _supersede(conn: Connection, video_id: str, when: str) -> None:
    """Move a video's current segments to ``superseded_segments`` (inside the caller's transaction)."""
    conn.execute(
        """INSERT INTO superseded_segments(corpus_id, video_id, start, "end", text, marks, url, title,
                                          course, superseded_at)
           SELECT s.corpus_id, s.video_id, s.start, s."end", s.text, s.marks, v.url, v.title, v.course, ?
           FROM segments s JOIN videos v ON v.video_id = s.video_id WHERE s.video_id=?
           ON CONFLICT(corpus_id) DO UPDATE SET video_id=excluded.video_id, start=excluded.start,
             "end"=excluded."end", text=excluded.text, marks=excluded.marks, url=excluded.url,
             title=excluded.title, course=excluded.course, superseded_at=excluded.superseded_at""",
        (when, video_id),
    )
    conn.execute("DELETE FROM segments WHERE video_id=?", (video_id,))


def _video(row: Row) -> Video:
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
        **{key: row[key] for key in (*_SINCE_4, *_SINCE_6) if key in row.keys()},  # noqa: SIM118 (Row's `in` looks at values)
    )


def _segment(row: Row) -> Segment:
    return Segment(
        corpus_id=row["corpus_id"],
        video_id=row["video_id"],
        start=row["start"],
        end=row["end"],
        text=row["text"],
        video_url=row["url"],
        title=row["title"],
        course=row["course"],
        marks=decode_marks(row["marks"]),
    )


def encode_marks(marks: Marks) -> str:
    """Cue marks as compact JSON (``[[second, offset], ...]``; '' when there are none)."""
    return json.dumps([[round(float(t), 3), int(o)] for t, o in marks], separators=(",", ":")) if marks else ""


def decode_marks(text: str | None) -> Marks:
    """The marks :func:`encode_marks` wrote; anything unreadable counts as none (the pieces fall back)."""
    if not text:
        return ()
    try:
        return tuple((float(t), int(o)) for t, o in json.loads(text))
    except (ValueError, TypeError):
        return ()
