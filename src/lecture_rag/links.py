"""Deep links into videos at a given second, how a page may play a video URL, and which URLs may be links.

:func:`safe_url` is the one check every output uses before a URL becomes a
link or a player source (web pages, markdown, HTML and CSV reports, deep
links): only ``http(s)`` URLs with a host, and relative media paths, pass.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qs, quote, urlencode, urlparse, urlsplit, urlunparse

from pydantic.dataclasses import dataclass

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{6,}$")
WEB_SCHEMES = frozenset({"http", "https"})
# Characters a URL keeps as they are; the others are percent-encoded, so that no quote, bracket,
# parenthesis or space can end a markdown link target or an HTML attribute early.
_URL_SAFE_CHARS = "-._~:/?#[]@!$&*+,;=%"
# A relative media path: letters, digits and a few path characters; no scheme, query or entity.
_RELATIVE_PATH = re.compile(r"^(?![/\\]{2})[\w\-.~/%+ ]+$")


def safe_url(url: str | None, *, relative: bool = True) -> str:
    """``url`` ready to be a link or a player source, or '' when it must never be one.

    Accepted: ``http``/``https`` URLs with a host, and (when ``relative``) a
    relative media path such as ``aulas/aula1.mp4``. Everything else is
    refused: ``javascript:``, ``data:``, ``vbscript:``, ``file:`` and any other
    scheme, protocol-relative ``//host`` URLs, and URLs with control
    characters (browsers drop tabs and newlines, which could hide a scheme).
    Characters that could end a markdown link target or an HTML attribute
    (quotes, parentheses, angle brackets, spaces) are percent-encoded.
    """
    text = (url or "").strip()
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return ""
    try:
        parsed = urlsplit(text)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return ""
    if parsed.scheme.lower() in WEB_SCHEMES and parsed.hostname:
        return quote(text, safe=_URL_SAFE_CHARS)
    if relative and not parsed.scheme and not parsed.netloc and _RELATIVE_PATH.match(text):
        return quote(text, safe=_URL_SAFE_CHARS)
    return ""


def youtube_id(url: str) -> str | None:
    """Return the YouTube video id of a watch, youtu.be, embed or shorts URL, else None."""
    parsed = urlparse(url.strip())
    if parsed.scheme.lower() not in WEB_SCHEMES:
        return None
    host = (parsed.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    candidate: str | None = None
    if host == "youtu.be":
        candidate = parsed.path.lstrip("/").split("/")[0]
    elif host in {"youtube.com", "music.youtube.com", "youtube-nocookie.com"}:
        if parsed.path == "/watch":
            candidate = (parse_qs(parsed.query).get("v") or [""])[0]
        else:
            parts = parsed.path.strip("/").split("/")
            if len(parts) >= 2 and parts[0] in {"embed", "shorts", "live", "v"}:
                candidate = parts[1]
    if candidate and _YT_ID.match(candidate):
        return candidate
    return None


def deep_link(url: str, seconds: float) -> str:
    """Link that starts playback at ``seconds``.

    YouTube links become ``https://www.youtube.com/watch?v=ID&t=Ns`` whatever
    form they came in; any other URL gets a media fragment ``#t=N`` (which
    HTML5 video honours), replacing a fragment it may already have.
    An empty URL, or one :func:`safe_url` refuses, gives '': the caller
    decides how to show "no link".
    """
    url = safe_url(url)
    if not url:
        return ""
    second = max(0, int(seconds))
    vid = youtube_id(url)
    if vid:
        return f"https://www.youtube.com/watch?{urlencode({'v': vid})}&t={second}s"
    parsed = urlparse(url)
    return urlunparse(parsed._replace(fragment=f"t={second}"))


def hhmmss(seconds: float) -> str:
    """Format seconds as the seed does (``00:42:50``), truncating fractions."""
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


YOUTUBE_EMBED = "https://www.youtube.com/embed/"
PlayerKind = Literal["youtube", "media", "none"]


@dataclass(frozen=True, slots=True)
class Player:
    """How a page plays a video: it appends ``?start=N&autoplay=1`` (YouTube) or ``#t=N`` (media).

    Decided here, on the server, not in the browser: only an http(s) URL may
    become a ``<video>`` source and only a validated YouTube id an embed URL,
    so no ``javascript:`` or ``file:`` URL from a transcript's metadata can
    ever reach an ``src`` attribute.
    """

    kind: PlayerKind = "none"
    src: str | None = None
    youtube_id: str | None = None


def player_for(url: str) -> Player:
    """How to play ``url``: embedded YouTube, HTML5 media (http/https only), or not at all."""
    url = safe_url(url, relative=False)
    if not url:
        return Player()
    vid = youtube_id(url)
    if vid:
        return Player(kind="youtube", src=YOUTUBE_EMBED + vid, youtube_id=vid)
    return Player(kind="media", src=urlunparse(urlparse(url)._replace(fragment="")))
