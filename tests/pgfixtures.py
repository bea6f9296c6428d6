"""PostgreSQL for the tests: a server from ``LEADBOT_TEST_POSTGRES``, or one started here.

With ``LEADBOT_TEST_POSTGRES=postgresql://…`` (what ``.ci/run`` sets) the tests use that
server. Without it, the first test that needs PostgreSQL starts a throwaway server
(tests/pgserver.py) that every xdist worker then shares, and the run stops it at the end.
No server and no binaries to start one: those tests fail, they never skip.

Each worker gets a database of its own; each test gets it emptied.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import pgserver

ENV = "LEADBOT_TEST_POSTGRES"


def _shared(config: pytest.Config) -> Path:
    """A directory every worker of this run sees (the controller's basetemp)."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if hasattr(config, "workerinput") else base


def _server(config: pytest.Config) -> str:
    if os.environ.get(ENV):
        return os.environ[ENV]
    shared = _shared(config)
    with open(shared / "pg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (shared / "pg.dsn").exists():
            return (shared / "pg.dsn").read_text()
        # Not under basetemp: as root the server runs as postgres, who cannot enter /tmp/pytest-of-root.
        directory = Path(tempfile.mkdtemp(prefix="leadbot-pg-"))
        (shared / "pg.dir").write_text(str(directory))
        try:
            dsn = pgserver.start(directory)
        except Exception as exc:
            pytest.fail(f"no PostgreSQL for the tests: set {ENV}, or install PostgreSQL (initdb, pg_ctl): {exc}")
        (shared / "pg.dsn").write_text(dsn)
        return dsn


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not hasattr(config, "_tmp_path_factory"):
        return
    try:
        marker = config._tmp_path_factory.getbasetemp() / "pg.dir"  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return
    if marker.exists():
        directory = Path(marker.read_text())
        pgserver.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)
        marker.unlink()


def _with_database(dsn: str, name: str) -> str:
    base, _, query = dsn.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def postgres_dsn(request, worker_id: str) -> Iterator[str]:
    """A database of this worker's own on the tests' server, migrated once."""
    server = _server(request.config)
    name = f"leadbot_test_{worker_id}_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name}")
        admin.execute(f"create database {name}")
    dsn = _with_database(server, name)
    from bot.stores.postgres import PostgresStore

    PostgresStore(dsn).close()  # the migrations, once
    yield dsn
    from bot.stores.postgres import _Liveness

    _Liveness.release(dsn)  # this process's "I am alive" connection, before its database goes
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")


def empty_postgres(dsn: str) -> None:
    """Every table of the store emptied, its numbering restarted (the migrations stay)."""
    from bot.stores.postgres import TABLES

    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        # delete, not truncate: on tables this small it is ten times faster
        for table in (*reversed(TABLES), "counters"):
            conn.execute(f"delete from {table}")
        sequences = conn.execute("select sequencename from pg_sequences where schemaname = current_schema()")
        for (sequence,) in sequences.fetchall():
            conn.execute("select setval(%s, 1, false)", [sequence])


@pytest.fixture
def postgres(postgres_dsn: str) -> str:
    """This worker's database, empty."""
    empty_postgres(postgres_dsn)
    return postgres_dsn
