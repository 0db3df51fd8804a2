"""The language detector's first use from many threads at once (a cold web server's first questions).

Each round runs in a fresh Python process, so the detector really is cold:
sixteen threads released together by a barrier call :func:`detect_language`
before anything has initialised it. Before the fix, py3langid's
``set_languages`` ran in several threads at once and some of them raised
(``ValueError: operands could not be broadcast`` or ``IndexError``) in most rounds.
"""

from __future__ import annotations

import json
import subprocess
import sys

from lecture_rag.generate.language import detect_language

COLD_BURST = """
import json, threading
from lecture_rag.generate import language

QUESTIONS = [
    "Quando começou a Revolução Industrial na Inglaterra?",
    "When did the Industrial Revolution start in England?",
    "¿Cuándo empezó la Revolución Industrial en Inglaterra?",
]
barrier = threading.Barrier(16)
results, errors = [], []

def ask(i):
    barrier.wait()
    try:
        results.append((i % 3, language.detect_language(QUESTIONS[i % 3])))
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"errors": errors, "results": sorted(set(results))}))
"""


def test_cold_detector_used_by_sixteen_threads_at_once_never_fails() -> None:
    for _ in range(4):
        out = subprocess.run([sys.executable, "-c", COLD_BURST], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["errors"] == []
        assert report["results"] == [[0, "pt"], [1, "en"], [2, "es"]]


def test_warm_up_loads_once_and_detection_is_unchanged() -> None:
    from lecture_rag.generate.language import warm_up

    first = warm_up()
    assert warm_up() is first  # one detector per process
    assert detect_language("Quando começou a Revolução Industrial na Inglaterra?") == "pt"
    assert detect_language("deep learning?") == "pt"  # too short: the default
