"""The batch engines give the same results the same way: the local loop and Ray actors (a real local Ray, 2 workers).

The stage here is arithmetic on builtins (``1 / item``, the worker's resource
being ``max(1, cpus)``), so the test is about the engines alone: order, errors
and the resource built once per worker. The stages that matter (Whisper, the
embedder, a run's answerer) are compared end to end in ``tests/e2e/test_ray_cli.py``.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from functools import partial

import pytest

from lecture_rag.batch import LOCAL, Engine, Job, LocalOnly, Stage, open_engine
from lecture_rag.config import BatchSettings
from lecture_rag.errors import LectureRagError
from tests.support.raycluster import local_ray

ITEMS = [1.0, 2.0, 4.0, 8.0, 0.5, 16.0, 0.25, 32.0, 64.0]
DIVIDE = Stage("divide", partial(max, 1), operator.truediv)  # resource: 1; work: 1 / item


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[Engine]:
    with local_ray(2), open_engine(BatchSettings(engine="ray")) as engine:
        yield engine


@pytest.fixture(params=["local", "ray"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return LOCAL if request.param == "local" else request.getfixturevalue("ray_engine")


def test_ray_engine_has_one_worker_per_cpu(ray_engine: Engine) -> None:
    assert ray_engine.name == "ray" and ray_engine.workers == 2


def test_results_in_order_or_as_they_finish(engine: Engine) -> None:
    ordered = list(engine.map(Job(DIVIDE, ITEMS, ordered=True)))
    assert ordered == [(i, 1 / x) for i, x in enumerate(ITEMS)]
    unordered = list(engine.map(Job(DIVIDE, ITEMS)))
    assert sorted(unordered) == ordered
    assert list(engine.map(Job(DIVIDE, []))) == []


def test_a_work_error_comes_back_as_itself(engine: Engine) -> None:
    with pytest.raises(ZeroDivisionError):
        list(engine.map(Job(DIVIDE, [1.0, 0.0, 2.0], ordered=True)))
    assert list(engine.map(Job(DIVIDE, [4.0], ordered=True))) == [(0, 0.25)]  # the engine still works


def test_a_worker_that_cannot_build_its_model_says_why(ray_engine: Engine) -> None:
    broken = Stage("broken", partial(operator.getitem, {}), operator.truediv)  # setup raises KeyError(cpus)
    with pytest.raises(KeyError):
        list(ray_engine.map(Job(broken, [1.0])))
    assert list(ray_engine.map(Job(DIVIDE, [2.0]))) == [(0, 0.5)]


def test_what_differs_is_said_by_the_engine(ray_engine: Engine) -> None:
    """Callers ask the engine, not its class: where stage functions run, and how many items run at once."""
    assert LOCAL.in_process and LOCAL.at_once(4) == 4 and LOCAL.at_once(0) == 1
    assert not ray_engine.in_process and ray_engine.at_once(4) == ray_engine.workers == 2


def test_the_local_engine_runs_an_item_when_its_result_is_asked_for() -> None:
    """What lets ingest stream a file into the store in its turn: nothing runs ahead of the caller."""
    ran: list[float] = []
    stage = Stage("record", partial(max, 1), lambda resource, item: ran.append(item) or item)
    results = LOCAL.map(Job(stage, ITEMS, ordered=True))
    assert ran == []
    assert next(results) == (0, ITEMS[0]) and ran == ITEMS[:1]


def test_a_stage_only_this_process_can_build_says_why(ray_engine: Engine) -> None:
    local_only = Stage("mine", LocalOnly("só aqui"), operator.truediv)
    assert list(LOCAL.map(Job(local_only, [4.0], local=1))) == [(0, 0.25)]  # the caller's resource
    with pytest.raises(LectureRagError, match="só aqui"):
        list(ray_engine.map(Job(local_only, [4.0])))
