"""The web server's guards, piece by piece: repeated-log throttling, one-time login codes, the access
policy, the answer slots and the descriptor budget. No sockets here (tests/e2e/test_hostile_web.py has them)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from lecture_rag.config import WebSettings
from lecture_rag.errors import ConfigError
from lecture_rag.web.resources import AnswerSlots
from lecture_rag.web.security import LOOPBACK_HOSTS, SESSION_MAX_AGE_S, Sessions, access_for, safe_next
from lecture_rag.web.server import RepeatedLogFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _logger(name: str, interval: float, clock: Clock) -> tuple[logging.Logger, Collect]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = Collect()
    handler.addFilter(RepeatedLogFilter(interval, clock))
    logger.handlers = [handler]
    return logger, handler


def test_a_repeated_error_is_logged_once_with_its_traceback_then_once_per_interval_with_a_count() -> None:
    clock = Clock()
    logger, out = _logger("lecture_rag.test.repeat", 10.0, clock)
    for second in range(30):  # the probe's failing accept, ten times a second for 30 s
        clock.now = float(second)
        for _ in range(10):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.exception("socket.accept() out of system resource\nsocket: <fd=%d>", 7)
    logger.info("uma linha comum")
    logger.info("uma linha comum")
    assert sum("Traceback" in line for line in out.lines) == 1
    errors = [line for line in out.lines if line.startswith("socket.accept()")]
    assert len(errors) == 3  # second 0 (with the traceback), 10 and 20
    assert "[repetido: mais 100 vez(es) em 10 s]" in errors[1] and "Traceback" not in errors[1]
    assert out.lines[-2:] == ["uma linha comum", "uma linha comum"]  # below WARNING: untouched


def test_different_errors_are_counted_apart_and_arguments_do_not_split_them() -> None:
    clock = Clock()
    logger, out = _logger("lecture_rag.test.apart", 10.0, clock)
    for client in range(5):
        logger.warning("Invalid HTTP request received from %s", f"10.0.0.{client}")
        logger.warning("Limite de %d conexões atingido", 100)
    assert out.lines == ["Invalid HTTP request received from 10.0.0.0", "Limite de 100 conexões atingido"]


def test_a_login_code_works_once_and_expires() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    code = sessions.new_code(ttl=60)
    session = sessions.redeem(code)
    assert session is not None and sessions.valid(session)
    assert sessions.redeem(code) is None  # dead after its first use
    late = sessions.new_code(ttl=60)
    clock.now = 61
    assert sessions.redeem(late) is None
    forever = sessions.new_code(ttl=None)  # the start-up link: until used
    clock.now = 10**6
    assert sessions.redeem(forever) is not None
    assert not sessions.valid("inventada") and not sessions.valid(None) and sessions.redeem("") is None


def test_codes_are_bounded() -> None:
    sessions = Sessions(max_codes=2)
    codes = [sessions.new_code() for _ in range(3)]
    assert sessions.redeem(codes[0]) is None and sessions.redeem(codes[2]) is not None


def test_a_session_is_good_on_every_replica_with_the_same_token_and_nowhere_else() -> None:
    clock = Clock()
    clock.now = 1_000_000
    one, two = Sessions.for_token("segredo"), Sessions.for_token("segredo")
    one.clock = two.clock = clock
    session = one.open()
    assert two.valid(session)  # opened by one replica, accepted by another: nothing shared but the token
    assert not Sessions.for_token("outro").valid(session)
    body, mac = session.rsplit(".", 1)
    forged = f"{int(body.split('.')[0]) + 3600}.{body.split('.', 1)[1]}.{mac}"
    assert not two.valid(forged) and not two.valid(session + "x") and not two.valid("a.b")
    clock.now += SESSION_MAX_AGE_S + 1
    assert not two.valid(session)  # a working day, then log in again


def test_logging_out_revokes_the_session_here() -> None:
    sessions = Sessions(max_revoked=2)
    opened = [sessions.open() for _ in range(3)]
    for session in opened:
        sessions.close(session)
    assert [sessions.valid(s) for s in opened] == [True, False, False]  # the oldest revocation was dropped


def test_this_machine_only_needs_nothing_and_reads_freely() -> None:
    access = access_for("127.0.0.1", WebSettings())
    assert access.allowed_hosts == LOOPBACK_HOSTS and access.read_needs_token is False
    assert access_for("localhost", WebSettings(read_needs_token=True)).read_needs_token is True


def test_beyond_this_machine_the_names_are_required_and_reading_needs_the_token() -> None:
    with pytest.raises(ConfigError, match="--allowed-host"):
        access_for("0.0.0.0", WebSettings())
    access = access_for("0.0.0.0", WebSettings(allowed_hosts=["Aulas.LAN", "192.168.0.10", "fe80::1", "*.ufsc.br"]))
    assert access.allowed_hosts == (*LOOPBACK_HOSTS, "aulas.lan", "192.168.0.10", "[fe80::1]", "*.ufsc.br")
    assert access.read_needs_token is True
    opened = access_for("::", WebSettings(allowed_hosts=["aulas.lan"], read_needs_token=False))
    assert opened.read_needs_token is False


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("*", "qualquer site"),
        ("*ufsc.br", "qualquer site"),
        ("a.*.br", "qualquer site"),
        ("aulas.lan:8000", "sem porta"),
        ("http://aulas.lan/", "sem porta"),
        ("  ", "vazio"),
    ],
)
def test_host_names_that_would_open_the_door_are_refused(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        access_for("0.0.0.0", WebSettings(allowed_hosts=[name]))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/runs", "/runs"),
        ("/runs/a/annotate?x=1", "/runs/a/annotate?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_after_login_only_local_addresses(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_answer_slots_admit_up_to_the_limit_and_release_once() -> None:
    slots = AnswerSlots(limit=2)
    first, second = slots.take(), slots.take()
    assert first is not None and second is not None and slots.take() is None
    first.release()
    first.release()  # twice is once
    assert slots.taken == 1
    third = slots.take()
    assert third is not None and slots.take() is None


BUDGET = """
import json, resource, sys
from lecture_rag.config import WebSettings
from lecture_rag.web.server import connection_budget, fd_reserve
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
budget = connection_budget(WebSettings())
print(json.dumps({"connections": budget.max_connections, "backlog": budget.backlog, "fd_limit": budget.fd_limit,
                  "reserve": fd_reserve(8)}))
"""


@pytest.mark.parametrize("limit", [400, 1024, 8192])
def test_connections_and_backlog_fit_the_descriptor_limit(limit: int) -> None:
    """In a child process: the limit is lowered for good there (soft = hard, so it cannot be raised)."""
    out = subprocess.run([sys.executable, "-c", BUDGET, str(limit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    budget = json.loads(out.stdout)
    assert budget["fd_limit"] == limit
    assert budget["connections"] + budget["backlog"] + budget["reserve"] <= limit
    if limit >= 1000 + 2048 + budget["reserve"]:
        assert (budget["connections"], budget["backlog"]) == (1000, 2048)
    else:
        assert budget["connections"] >= 8 and budget["backlog"] >= 16
