from __future__ import annotations

import pytest

from lecture_rag.links import deep_link, hhmmss, player_for, safe_url, youtube_id
from lecture_rag.records import Segment


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://youtube.com/watch?v=dQw4w9WgXcQ&list=PL123&t=10s",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ?t=99",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://www.youtube.com/embed/dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
    ],
)
def test_youtube_links_normalise_to_watch_with_seconds(url: str) -> None:
    assert youtube_id(url) == "dQw4w9WgXcQ"
    assert deep_link(url, 2570.9) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s"


def test_media_links_get_fragment_replacing_old_one() -> None:
    assert deep_link("https://cdn.example.edu/aula1.mp4", 125.4) == "https://cdn.example.edu/aula1.mp4#t=125"
    assert deep_link("https://x.edu/a.mp4?k=1#t=3", 60) == "https://x.edu/a.mp4?k=1#t=60"
    assert deep_link("aulas/SP_EF_405.wav", 3.5) == "aulas/SP_EF_405.wav#t=3"  # a relative media path
    # A file: URL never becomes a link (it was kept before issue 16, item 1).
    assert deep_link("file:///srv/aulas/SP_EF_405.wav", 0) == ""


def test_not_youtube_lookalikes() -> None:
    assert youtube_id("https://notyoutube.com/watch?v=dQw4w9WgXcQ") is None
    assert youtube_id("https://www.youtube.com/watch?v=") is None


def test_empty_url_has_no_link() -> None:
    assert deep_link("", 10) == ""


def test_segment_url_at_defaults_to_start() -> None:
    seg = Segment(
        corpus_id=1, video_id="v", start=2570.2, end=2699.0, text="x", video_url="https://youtu.be/dQw4w9WgXcQ"
    )
    assert seg.url_at() == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s"
    assert seg.url_at(2600) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2600s"


def test_hhmmss_matches_seed_format() -> None:
    assert hhmmss(2570) == "00:42:50"
    assert hhmmss(5312.9) == "01:28:32"
    assert hhmmss(-3) == "00:00:00"


HOSTILE_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "javascript://www.youtube.com/watch?v=dQw4w9WgXcQ%0Aalert(1)",
    "javascript:alert(1)//https://youtu.be/dQw4w9WgXcQ",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "https:alert(1)",  # no host
    "//evil.example/x.mp4",  # protocol-relative: another host
    "\\\\evil.example\\x.mp4",
    "/\\evil.example/x.mp4",
    "javascript&colon;alert(1)",  # a markdown viewer decodes the entity in a link target
    "javascript&#58;alert(1)",
    "aulas/a:b.mp4",
    "mailto:ana@example.org",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_urls_never_become_links(url: str) -> None:
    assert safe_url(url) == ""
    assert deep_link(url, 30) == ""
    assert player_for(url).kind == "none" and player_for(url).src is None
    seg = Segment(corpus_id=1, video_id="v", start=30, end=40, text="x", video_url=url)
    assert seg.url == "" and seg.player.src is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=5s", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=5s"),
        ("  http://ufsc.br/aulas/a.mp4#t=30 ", "http://ufsc.br/aulas/a.mp4#t=30"),
        ("HTTPS://UFSC.BR/a.mp4", "HTTPS://UFSC.BR/a.mp4"),
        ("https://x.edu/aula 1.mp4", "https://x.edu/aula%201.mp4"),
        ("https://x.edu/aula%201.mp4", "https://x.edu/aula%201.mp4"),
        ("https://x.edu/Aula_(1).mp4", "https://x.edu/Aula_%281%29.mp4"),
        # What would break out of a markdown link target or an HTML attribute is percent-encoded.
        (
            "https://x.edu/a)[x](javascript:alert(1)",
            "https://x.edu/a%29[x]%28javascript:alert%281%29",
        ),
        ('https://x.edu/v.mp4?a="><script>', "https://x.edu/v.mp4?a=%22%3E%3Cscript%3E"),
        ("https://x.edu/sé.mp4", "https://x.edu/s%C3%A9.mp4"),
        ("aulas/SP_EF_405.wav", "aulas/SP_EF_405.wav"),
        ("../vídeos/aula 1.mp4", "../v%C3%ADdeos/aula%201.mp4"),
        ("/media/aula1.mp4", "/media/aula1.mp4"),
        ("", ""),
    ],
)
def test_safe_urls_are_kept(url: str, expected: str) -> None:
    assert safe_url(url) == expected


def test_relative_paths_are_links_but_not_players() -> None:
    """The web app serves no media files: a relative path is a link in a report, never a player source."""
    assert safe_url("aulas/a.mp4", relative=False) == ""
    assert player_for("aulas/a.mp4").kind == "none"
    assert deep_link("aulas/a.mp4", 12) == "aulas/a.mp4#t=12"


def test_youtube_id_needs_a_web_url() -> None:
    assert youtube_id("javascript://youtube.com/watch?v=dQw4w9WgXcQ") is None
    assert youtube_id("file://youtu.be/dQw4w9WgXcQ") is None
