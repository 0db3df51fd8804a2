"""Lectures from the web: a video, playlist or channel URL → the store, through yt-dlp (the library).

Captions beat speech-to-text: the author's uploaded Portuguese captions
first, then the site's automatic ones (``pt``, ``pt-BR``, then the
``--language``), and only when there are none the audio is downloaded and
transcribed with Whisper. Each video records which of these it got
(``transcript_source``), because users judge a transcript's quality by it.

Every video is its own unit, as files are: one transaction each, so a
playlist ingests what it can, reports each failure by video and reason,
and a rerun resumes (videos whose captions, metadata and settings did not
change are no-ops). yt-dlp is an optional extra, imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lecture_rag.errors import IngestError, LectureRagError
from lecture_rag.ingest.fetch import FetchLimits, check_address, fetch_bytes
from lecture_rag.ingest.pipeline import (
    FileResult,
    IngestOptions,
    IngestReport,
    VideoMeta,
    manifest_entry,
    metadata_text,
    safe_video_id,
    settle,
    store_cues,
    unchanged_result,
    whisper_source,
)
from lecture_rag.ingest.readers import read_cues
from lecture_rag.ingest.transcribe import transcribe, whisper_language
from lecture_rag.records import Video
from lecture_rag.store import StorageError, Store

__all__ = ["Captions", "caption_languages", "choose_captions", "ingest_urls", "is_url"]

#: Caption formats the readers parse, best first.
CAPTION_FORMATS = ("vtt", "json3", "srt")
MAX_CAPTION_BYTES = 50 * 1024 * 1024
_INSTALL_HINT = "pip install 'lecture-rag[youtube]'"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_MAX_NESTING = 3  # a channel is a playlist of tabs, each a playlist of videos

StepFn = Callable[[str, float, float], None]  # (what, done, total)


def is_url(text: str) -> bool:
    """Whether a command-line argument is a URL (``scheme://...``) rather than a path."""
    return _URL.match(text.strip()) is not None


@dataclass(frozen=True, slots=True)
class Captions:
    """The caption track chosen for a video."""

    language: str
    kind: str  # "uploaded" | "automatic"
    url: str
    ext: str


def caption_languages(language: str) -> list[str]:
    """Caption languages to look for, in order: ``pt``, ``pt-BR``, then ``language``.

    A lecture in another language (``--language en``) looks for its own
    language first: a Portuguese translation stored as an English lecture
    would be wrong twice.
    """
    wanted = ["pt", "pt-BR"]
    if language.lower().split("-")[0].split("_")[0] == "pt":
        wanted.append(language)
    else:
        wanted.insert(0, language)
    return list(dict.fromkeys(wanted))


def _pick_format(tracks: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The track in the best readable format, never a machine translation (YouTube marks them ``tlang=``)."""
    usable = [t for t in tracks if t.get("url") and "tlang=" not in str(t["url"])]
    for ext in CAPTION_FORMATS:
        for track in usable:
            if str(track.get("ext", "")).lower() == ext:
                return track
    return None


def choose_captions(info: Mapping[str, Any], language: str) -> Captions | None:
    """Uploaded captions in the first wanted language that has them, then automatic ones; None if neither."""
    wanted = caption_languages(language)
    for kind, key in (("uploaded", "subtitles"), ("automatic", "automatic_captions")):
        by_name = {str(name).lower(): (str(name), tracks) for name, tracks in (info.get(key) or {}).items()}
        for lang in wanted:
            # YouTube names the original-language speech recognition "<lang>-orig".
            for name in (f"{lang}-orig", lang) if kind == "automatic" else (lang,):
                found = by_name.get(name.lower())
                track = _pick_format(found[1]) if found else None
                if track and found:
                    return Captions(found[0].removesuffix("-orig"), kind, str(track["url"]), str(track["ext"]).lower())
    return None


class _Log:
    """yt-dlp's messages go nowhere (its errors come back as exceptions, reported per video)."""

    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


def _yt_dlp() -> Any:
    try:
        import yt_dlp
    except ImportError as exc:
        raise IngestError(
            f"Ingerir vídeos por URL precisa do pacote yt-dlp, que não está instalado. Instale com: {_INSTALL_HINT}"
        ) from exc
    return yt_dlp


#: Words in yt-dlp's (English) messages → the cause in Portuguese, first match wins.
_CAUSES = (
    (("http error 404", "404: not found"), "o site diz que o vídeo não existe (HTTP 404)"),
    (("http error 403", "403: forbidden"), "o site recusou o acesso (HTTP 403): vídeo privado ou restrito"),
    (("http error 429", "too many requests"), "o site limitou os pedidos (HTTP 429): espere alguns minutos"),
    (
        ("private video", "video unavailable", "has been removed", "not available"),
        "vídeo indisponível (privado ou removido)",
    ),
    (("sign in", "login", "confirm your age"), "o site pede login para este vídeo (restrição de idade ou de acesso)"),
    (
        ("getaddrinfo", "name or service not known", "timed out", "connection", "network is unreachable"),
        "sem conexão com o site",
    ),
)


def _reason(exc: BaseException) -> tuple[str, str]:
    """A yt-dlp failure in one Portuguese line (what went wrong, what to do) and yt-dlp's own text.

    The own text is English and long ("caused by <HTTPError …>"); it is shown only with --verbose.
    """
    yt_dlp = _yt_dlp()
    cause = getattr(exc, "exc_info", None)
    inner = cause[1] if cause else exc
    detail = " ".join(str(exc).replace("ERROR: ", "").split())
    if isinstance(inner, yt_dlp.utils.UnsupportedError):
        return (
            "endereço não suportado: o yt-dlp não encontrou vídeo nem áudio nessa página. Confira o link "
            "(um vídeo, uma playlist ou um canal)",
            detail,
        )
    lowered = detail.lower()
    what = next((text for words, text in _CAUSES if any(w in lowered for w in words)), "o vídeo não pôde ser obtido")
    return f"{what}. Confira o link e a conexão e rode de novo: o que já entrou fica (detalhes: --verbose)", detail


def _label(item: Mapping[str, Any]) -> str:
    url = item.get("webpage_url") or item.get("url") or item.get("original_url") or ""
    ident = item.get("id") or ""
    return str(url or ident or "vídeo sem endereço")


def _iso_date(value: Any) -> str:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else ""


class _Session:
    """One yt-dlp instance, its download folder and the store, for a whole ``ingest`` call."""

    def __init__(self, store: Store, options: IngestOptions, folder: Path, step: StepFn | None) -> None:
        self.store, self.options, self.folder, self.step = store, options, folder, step
        yt_dlp = _yt_dlp()
        self.ydl = yt_dlp.YoutubeDL(
            {
                "logger": _Log(),
                "quiet": True,
                "no_warnings": True,
                "noprogress": True,
                "cachedir": False,
                "extract_flat": "in_playlist",
                "format": "bestaudio/best",
                "outtmpl": {"default": str(folder / "%(id)s.%(ext)s")},
                "restrictfilenames": True,
                "postprocessors": [],
                "progress_hooks": [self._hook],
                "socket_timeout": 30,
                "retries": 3,
                "max_filesize": options.limits.max_download_mb * 2**20,  # when the server says the size
            }
        )
        self._current = ""
        self._too_big = False
        self.given = VideoMeta(course=options.meta.course)  # what a person entered for every video of the call

    def _hook(self, status: Mapping[str, Any]) -> None:
        cap = self.options.limits.max_download_mb * 2**20
        if float(status.get("downloaded_bytes") or 0) > cap:  # an endless stream announces no size
            self._too_big = True
            raise IngestError(f"o download passou de {self.options.limits.max_download_mb} MB")
        total = status.get("total_bytes") or status.get("total_bytes_estimate") or 0
        if self.step and total:
            self.step(f"Baixando o áudio de {self._current}", float(status.get("downloaded_bytes") or 0), float(total))

    def close(self) -> None:
        self.ydl.close()

    def resolve(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """A flat playlist entry (or a URL) as yt-dlp's full information about it."""
        if item.get("_type") in ("url", "url_transparent") or "_url_only" in item:
            check_address(str(item["url"]), allow_private=self.options.limits.allow_private_urls)
            return dict(self.ydl.extract_info(str(item["url"]), download=False))
        return dict(item)

    def video(self, info: Mapping[str, Any]) -> FileResult:
        """Ingest one video: captions if there are any, else its audio through Whisper."""
        if info.get("is_live"):
            raise IngestError("é uma transmissão ao vivo; ingira o vídeo depois que a transmissão terminar")
        video_id = safe_video_id(str(info.get("id") or "")) or "video"
        self._current = video_id
        language = self.options.meta.language or self.options.transcription.language
        captions = choose_captions(info, language)
        url = str(info.get("webpage_url") or info.get("original_url") or "")
        channel = metadata_text(str(info.get("channel") or info.get("uploader") or "")) or ""
        course = self.options.meta.course or channel
        video = Video(
            video_id=video_id,
            title=metadata_text(str(info.get("title") or "")) or video_id,
            course=course,
            url=url,
            duration=float(info.get("duration") or 0.0),
            source_path=url,
            channel=channel,
            upload_date=_iso_date(info.get("upload_date")),
        )
        listed = manifest_entry(self.options.manifest, url, str(info.get("original_url") or ""), video_id)
        given = self.given.merged(listed) if listed else self.given
        stored = self.store.get_video(video_id)
        origins = self.store.origins(video_id) if stored else {}
        video = settle(video, given, stored, origins)  # an edited title or course stays
        metadata = json.dumps([video.title, video.course, video.url, video.channel, video.upload_date, video.duration])
        if captions:
            return self._from_captions(video, captions, metadata, given)
        return self._from_audio(video, info, whisper_language(language), metadata, given)

    def _digest(self, *parts: str | bytes) -> str:
        digest = hashlib.sha256()
        for part in (*parts, self.options.segmentation_key()):
            digest.update(part if isinstance(part, bytes) else part.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def _from_captions(self, video: Video, captions: Captions, metadata: str, given: VideoMeta) -> FileResult:
        data = self._download_captions(captions)
        digest = self._digest(data, f"captions:{captions.kind}:{captions.language}", metadata)
        unchanged = unchanged_result(self.store, video.url or video.video_id, video.video_id, digest)
        if unchanged:
            return unchanged
        path = self.folder / f"{video.video_id}.{captions.language}.{captions.ext}"
        path.write_bytes(data)
        try:
            video.language, video.source_hash = captions.language, digest
            video.transcript_source = f"captions:{captions.kind}"
            return store_cues(self.store, video, read_cues(path), self.options, video.url or video.video_id, given)
        finally:
            path.unlink(missing_ok=True)

    def _download_captions(self, captions: Captions) -> bytes:
        limits = self.options.limits
        what = f"legendas ({captions.language}, {captions.kind})"
        bounds = FetchLimits(MAX_CAPTION_BYTES, limits.fetch_deadline_seconds, limits.allow_private_urls)
        try:
            return fetch_bytes(captions.url, bounds, self.ydl.params.get("http_headers") or {}, what)
        except IngestError as exc:
            raise IngestError(f"não foi possível baixar as {what}: {exc}") from exc
        except Exception as exc:  # network and HTTP errors alike
            raise IngestError(
                f"não foi possível baixar as {what}: {exc}. Rode de novo mais tarde: o que já entrou fica"
            ) from exc

    def _from_audio(
        self, video: Video, info: Mapping[str, Any], language: str, metadata: str, given: VideoMeta
    ) -> FileResult:
        fingerprint = json.dumps(
            [info.get(k) for k in ("extractor_key", "id", "timestamp", "format_id", "filesize", "filesize_approx")],
            default=str,
        )
        digest = self._digest(fingerprint, self.options.whisper_key(language), metadata)
        unchanged = unchanged_result(self.store, video.url or video.video_id, video.video_id, digest)
        if unchanged:
            return unchanged
        self._check_media_addresses(info)
        before = set(self.folder.iterdir())
        self._too_big = False
        try:
            done = self._download(info)
            files = [Path(d["filepath"]) for d in done.get("requested_downloads") or [] if d.get("filepath")]
            files = files or sorted(set(self.folder.iterdir()) - before)
            if not files:
                raise IngestError("o yt-dlp não baixou nenhum arquivo de áudio ou vídeo")
            cues = transcribe(
                files[0],
                self.options.transcription,
                language=language,
                progress=lambda d, t: self.step(f"Transcrevendo {video.video_id}", d, t) if self.step else None,
            )
            video.language, video.source_hash = language, digest
            video.transcript_source = whisper_source(self.options)
            return store_cues(self.store, video, cues, self.options, video.url or video.video_id, given)
        finally:
            for leftover in set(self.folder.iterdir()) - before:
                leftover.unlink(missing_ok=True)

    def _check_media_addresses(self, info: Mapping[str, Any]) -> None:
        """Refuse the video when a media address it may download from is not public (unless allowed)."""
        urls = {str(f["url"]) for f in info.get("formats") or [] if f.get("url")}
        if info.get("url"):
            urls.add(str(info["url"]))
        for url in sorted(urls):
            check_address(url, allow_private=self.options.limits.allow_private_urls)

    def _download(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """yt-dlp's download, a file past ``[ingest] max_download_mb`` refused with the cap and the setting."""
        cap = self.options.limits.max_download_mb
        refusal = IngestError(
            f"o áudio/vídeo passa de {cap} MB ([ingest] max_download_mb) e não foi baixado; aumente o limite "
            "se o vídeo for mesmo tão grande"
        )
        announced = info.get("filesize") or info.get("filesize_approx") or 0
        if float(announced) > cap * 2**20:
            raise refusal
        try:
            done = dict(self.ydl.process_ie_result(dict(info), download=True))
        except Exception as exc:
            if self._too_big:
                raise refusal from exc
            raise
        if self._too_big:
            raise refusal
        return done


def ingest_urls(
    store: Store,
    urls: Iterable[str],
    options: IngestOptions,
    *,
    on_video: Callable[[str], None] | None = None,
    on_count: Callable[[int, int], None] | None = None,
    step: StepFn | None = None,
) -> IngestReport:
    """Ingest videos, playlists and channels; one bad video never stops the others.

    ``on_video`` hears each item as it starts, ``on_count(done, total)`` the videos finished
    out of those known (a playlist counts as its videos once expanded, never as one more), and
    ``step`` the download and transcription of the current one.
    """
    pending: deque[tuple[dict[str, Any], int]] = deque(({"_type": "url", "url": url}, 0) for url in urls)
    report = IngestReport()
    total, done = len(pending), 0
    with tempfile.TemporaryDirectory(prefix="lecture-rag-") as tmp:
        session = _Session(store, options, Path(tmp), step)
        try:
            while pending:
                item, depth = pending.popleft()
                label = _label(item)
                if on_video:
                    on_video(label)
                entries = _ingest_one(session, item, depth, label, report)
                if entries:
                    total += len(entries) - 1  # the playlist is replaced by its videos
                    pending.extendleft(reversed([(entry, depth + 1) for entry in entries]))
                else:
                    done += 1
                if on_count:
                    on_count(done, total)
        finally:
            session.close()
    return report


def _ingest_one(
    session: _Session, item: dict[str, Any], depth: int, label: str, report: IngestReport
) -> list[dict[str, Any]]:
    """Ingest one item into ``report``; a playlist's entries are returned instead, to be ingested in turn."""
    try:
        _check_scheme(item, depth)
        info = session.resolve(item)
        label = _label(info) or label
        if info.get("_type") == "playlist":
            if depth >= _MAX_NESTING:
                raise IngestError("playlists aninhadas demais; passe o endereço de cada playlist")
            entries = list(_entries(info, report))
            if not entries:
                raise IngestError("a playlist ou o canal não tem vídeos disponíveis")
            return entries
        report.done.append(session.video(info))
    except StorageError:
        raise  # a full disk or a read-only store fails every video alike: stop, say why
    except LectureRagError as exc:
        report.failed.append((label, str(exc)))
    except Exception as exc:  # yt-dlp's DownloadError and friends; anything else is reported too
        reason, detail = _reason(exc)
        report.failed.append((label, reason))
        report.details[label] = detail
    return []


def _check_scheme(item: Mapping[str, Any], depth: int) -> None:
    url = str(item.get("url") or "")
    if depth == 0 and urlsplit(url).scheme.lower() not in ("http", "https"):
        raise IngestError("só endereços http:// ou https:// são aceitos (um vídeo, uma playlist ou um canal)")


def _entries(info: Mapping[str, Any], report: IngestReport) -> Iterator[dict[str, Any]]:
    """A playlist's entries; an unavailable one (None) is reported and skipped."""
    for number, entry in enumerate(info.get("entries") or [], 1):
        if entry is None:
            report.failed.append((f"{_label(info)} (item {number})", "vídeo indisponível (privado ou removido)"))
        else:
            yield dict(entry)
