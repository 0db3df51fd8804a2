from __future__ import annotations

import pytest

from lecture_rag.links import deep_link, hhmmss, youtube_id
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
    assert deep_link("file:///srv/aulas/SP_EF_405.wav", 0) == "file:///srv/aulas/SP_EF_405.wav#t=0"


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
