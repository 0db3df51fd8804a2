"""Deep links into videos at a given second."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{6,}$")


def youtube_id(url: str) -> str | None:
    """Return the YouTube video id of a watch, youtu.be, embed or shorts URL, else None."""
    parsed = urlparse(url.strip())
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
    An empty URL stays empty: the caller decides how to show "no link".
    """
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
