"""The question's language decides the answer's language and the UI text."""

from __future__ import annotations

from functools import lru_cache

SUPPORTED = ("pt", "en", "es")
NAMES = {"pt": "português", "en": "English", "es": "español"}
NOT_FOUND = {
    "pt": "Não encontrei a resposta nas aulas.",
    "en": "I could not find the answer in the lectures.",
    "es": "No encontré la respuesta en las clases.",
}
DEFAULT = "pt"


@lru_cache(maxsize=1)
def _identifier() -> object:
    import py3langid

    py3langid.set_languages(list(SUPPORTED))
    return py3langid


def detect_language(text: str) -> str:
    """``pt``, ``en`` or ``es``; Portuguese when unsure (our users' first language).

    Very short questions ("deep learning?") carry too little signal, so they
    fall back to the default instead of a coin toss.
    """
    words = text.split()
    if len(words) < 3:
        return DEFAULT
    langid = _identifier()
    lang, _score = langid.classify(text)  # type: ignore[attr-defined]
    return str(lang) if lang in SUPPORTED else DEFAULT
