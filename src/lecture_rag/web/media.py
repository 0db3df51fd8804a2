"""The lectures' recordings: which URL a page plays, and the local recordings ``serve`` serves itself.

Why: a course with its own recordings (``ingest aula.mp4``, or ``aula.srt``
next to ``aula.mp4``) has no URL to give, and a student must still watch the
cited moment. The store remembers each lecture's local recording
(``Video.media_path``); ``GET /media/<video_id>`` serves it with HTTP Range
(Starlette's :class:`~starlette.responses.FileResponse`: 206 and
``Content-Range``), so ``#t=`` and ``currentTime`` seek without downloading
the whole file.

Only files that were ingested are served: the route takes a video id, looks
the lecture up in the store and serves the path stored for it; no part of
the request ever becomes a path. Media are as public as the lectures' text
(the ask page and ``/aulas``); the host check and security headers apply as
everywhere.

Which URL a lecture plays (:meth:`MediaLinks.url_of`), first that applies:

1. its own http(s) URL (YouTube, the course's server);
2. a relative URL (``--url aulas/aula1.mp4``) joined to ``[web] media_base_url``;
3. its local recording, served here at ``/media/<video_id>``;
4. nothing (the page says the time and that there is no link).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from lecture_rag.ingest.transcribe import MEDIA_SUFFIXES
from lecture_rag.links import deep_link, safe_url
from lecture_rag.records import Answer, Segment, Video
from lecture_rag.store import Store

router = APIRouter(include_in_schema=False)

MEDIA_PATH = "/media/"
#: Content types browsers play, by suffix (mimetypes misses some, and guesses others per machine).
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def local_media(video: Video | None) -> Path | None:
    """The lecture's local recording, if it still exists: the stored media path, or a media file it was heard from.

    A media file ingested before the store kept ``media_path`` is still
    found through ``source_path`` (the file Whisper heard).
    """
    if video is None:
        return None
    candidates = [video.media_path]
    if Path(video.source_path).suffix.lower() in MEDIA_SUFFIXES:
        candidates.append(video.source_path)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(slots=True)
class MediaLinks:
    """The URL each lecture plays, for one request (``origin``: this server's address as the browser used it)."""

    store: Store
    origin: str
    media_base_url: str = ""
    _cache: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, request: Request) -> MediaLinks:
        resources = request.app.state.resources
        return cls(resources.store, str(request.base_url), resources.settings.web.media_base_url)

    def url_of(self, video_id: str, url: str) -> str:
        """The URL a page plays for this lecture ('' when none), see the module docstring."""
        key = f"{video_id}\0{url}"
        if key not in self._cache:
            self._cache[key] = self._resolve(video_id, url)
        return self._cache[key]

    def _resolve(self, video_id: str, url: str) -> str:
        if safe_url(url, relative=False):
            return url
        if url and self.media_base_url:
            hosted = safe_url(urljoin(self.media_base_url.rstrip("/") + "/", url), relative=False)
            if hosted:
                return hosted
        if local_media(self.store.get_video(video_id)) is not None:
            return urljoin(self.origin, MEDIA_PATH.lstrip("/") + quote(video_id, safe=""))
        return url

    def segments(self, segments: Iterable[Segment]) -> None:
        """Give each segment (hit, context excerpt) its lecture's playable URL, in place."""
        for seg in segments:
            seg.video_url = self.url_of(seg.video_id, seg.video_url)

    def video(self, video: Video) -> Video:
        video.url = self.url_of(video.video_id, video.url)
        return video

    def answer(self, answer: Answer) -> Answer:
        """Hits, context and references of ``answer`` with playable URLs (cited times keep their second)."""
        self.segments(answer.hits)
        self.segments(answer.context)
        for ref in answer.references:
            ref.url = self.url_of(ref.video_id, ref.url)
            for cited in ref.times:
                cited.url = deep_link(ref.url, cited.start)
        return answer


@router.api_route("/media/{video_id}", methods=["GET", "HEAD"])
def media(request: Request, video_id: str) -> FileResponse:
    """An ingested lecture's local recording, with Range support; 404 for anything else."""
    path = local_media(request.app.state.resources.store.get_video(video_id))
    if path is None:
        raise HTTPException(404, "Esta aula não tem gravação local para tocar.")
    return FileResponse(path, media_type=content_type(path), headers={"Cache-Control": "private, max-age=3600"})
