"""Which captions a video's yt-dlp information leads to (the shapes yt-dlp gives for YouTube)."""

from __future__ import annotations

from typing import Any

from lecture_rag.ingest.remote import Captions, caption_languages, choose_captions, is_url


def _tracks(lang: str, *exts: str, translated: bool = False) -> list[dict[str, Any]]:
    tail = "&tlang=pt" if translated else ""
    return [{"ext": ext, "url": f"https://www.youtube.com/api/timedtext?lang={lang}&fmt={ext}{tail}"} for ext in exts]


def test_urls_and_paths_are_told_apart() -> None:
    assert is_url("https://www.youtube.com/watch?v=abc") and is_url("http://127.0.0.1:8000/a.mp4")
    assert is_url("ftp://host/a.mp4")  # a URL, refused later by scheme with its own message
    assert not is_url("aulas/aula01.vtt") and not is_url("C:/aulas/a.mp4") and not is_url("www.youtube.com/x")


def test_language_order() -> None:
    assert caption_languages("pt") == ["pt", "pt-BR"]
    assert caption_languages("pt-PT") == ["pt", "pt-BR", "pt-PT"]
    assert caption_languages("en") == ["en", "pt", "pt-BR"]


def test_uploaded_captions_beat_automatic_ones_and_vtt_is_preferred() -> None:
    info = {
        "subtitles": {"pt-BR": _tracks("pt-BR", "json3", "vtt"), "en": _tracks("en", "vtt")},
        "automatic_captions": {"pt": _tracks("pt", "vtt")},
    }
    chosen = choose_captions(info, "pt")
    assert chosen == Captions("pt-BR", "uploaded", info["subtitles"]["pt-BR"][1]["url"], "vtt")


def test_automatic_captions_in_the_original_language_never_a_translation() -> None:
    info = {
        "subtitles": {"en": _tracks("en", "vtt")},
        "automatic_captions": {
            "pt": _tracks("pt", "vtt", translated=True),  # YouTube's machine translation
            "pt-orig": _tracks("pt", "json3", "srv3"),
        },
    }
    chosen = choose_captions(info, "pt")
    assert chosen is not None and (chosen.language, chosen.kind, chosen.ext) == ("pt", "automatic", "json3")
    only_translated = {"automatic_captions": {"pt": _tracks("pt", "vtt", translated=True)}}
    assert choose_captions(only_translated, "pt") is None


def test_no_usable_captions_means_whisper() -> None:
    assert choose_captions({}, "pt") is None
    assert choose_captions({"subtitles": {"pt": _tracks("pt", "ttml", "srv1")}}, "pt") is None  # formats we do not read
    assert choose_captions({"subtitles": {"de": _tracks("de", "vtt")}}, "pt") is None
