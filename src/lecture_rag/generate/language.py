"""The question's language decides the answer's language and the UI text."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED = ("pt", "en", "es")
NAMES = {"pt": "português", "en": "English", "es": "español"}
NOT_FOUND = {
    "pt": "Não encontrei a resposta nas aulas.",
    "en": "I could not find the answer in the lectures.",
    "es": "No encontré la respuesta en las clases.",
}
DEFAULT = "pt"

# py3langid keeps one module-level model and ``set_languages`` rewrites its arrays in place, so a
# thread classifying while another restricts the languages sees them half-changed (a broadcast
# error, an index out of range). The model is loaded and restricted under this lock, once, and
# only published when it is complete; after that, classification only reads it.
_lock = threading.Lock()
_detector: Any = None


def warm_up() -> Any:
    """Load the detector now (the web server calls this at start-up); safe from any number of threads.

    Returns None when it cannot be loaded: py3langid unpacks its model into a
    temporary file, which fails on a full or read-only disk. Answers then
    follow the default language (said once in the log) rather than failing.
    """
    global _detector
    detector = _detector
    if detector is None:
        with _lock:
            if _detector is None:
                try:
                    import py3langid

                    py3langid.set_languages(list(SUPPORTED))
                except OSError as exc:
                    log.warning(
                        "Não foi possível carregar o detector de idioma (%s): as respostas seguem em %s. "
                        "Libere espaço no disco temporário.",
                        exc,
                        NAMES[DEFAULT],
                    )
                    return None
                _detector = py3langid
            detector = _detector
    return detector


def detect_language(text: str) -> str:
    """``pt``, ``en`` or ``es``; Portuguese when unsure (our users' first language).

    Very short questions ("deep learning?") carry too little signal, so they
    fall back to the default instead of a coin toss.
    """
    words = text.split()
    if len(words) < 3:
        return DEFAULT
    detector = warm_up()
    if detector is None:
        return DEFAULT
    lang, _score = detector.classify(text)
    return str(lang) if lang in SUPPORTED else DEFAULT
