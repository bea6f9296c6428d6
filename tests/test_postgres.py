"""Several replicas on one PostgreSQL database: what happens once happens once, whichever replica Slack reaches.

The ports themselves are the store contract's (tests/test_store_contract.py runs it on
PostgreSQL too); here the whole bot runs twice on one database, and the migrations are
shown to be applied once, by one process, all or nothing.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from bot.app import build_app, build_runtime
from bot.executor import InlineExecutor
from bot.stores import open_store
from bot.stores.postgres import MIGRATIONS, PostgresStore
from services.audit import Actor
from services.ports import StoreUnavailable
from tests.conftest import ADMIN, REP, audited, leads
from tests.slack import DispatchTransport, SlackDriver


@pytest.fixture
def replicas(postgres, settings, fake_slack, clock):
    """Two Leadbots, each with its own store and app, on one database (LEADBOT_DB=postgresql://…)."""
    on_postgres = settings.model_copy(update={"leadbot_db": postgres})
    built = [
        build_runtime(on_postgres, background=InlineExecutor(), clock=clock, sleep=lambda seconds: None)
        for _ in range(2)
    ]
    drivers = [SlackDriver(DispatchTransport(build_app(r)), fake_slack, lambda timeout=10: True) for r in built]
    yield built, drivers
    for runtime in built:
        runtime.close()


def test_leadbot_db_names_a_postgresql_store(postgres):
    store = open_store(postgres)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


def test_a_slack_retry_that_reaches_another_replica_does_nothing_twice(replicas):
    (first, second), (to_first, to_second) = replicas
    admin = Actor(slack_user=ADMIN, is_admin=True)
    first.service.people.link(admin, ADMIN, "ada")
    first.service.people.link(admin, REP, "ana")
    to_first.command("new Ada ada@example.com", user=ADMIN, trigger_id="71.1.retry")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    answer = to_second.command("new Ada ada@example.com", user=ADMIN, trigger_id="71.1.retry", headers=retry)
    assert answer.status_code == 200
    assert [lead.name for lead in leads(second.service)] == ["Ada"]  # one lead, seen from both
    assert len(to_first.replies()) == 1 and len(audited(first.service, action="create")) == 1
    to_second.command("new Bob bob@example.com", user=REP, trigger_id="72.1")
    assert sorted(lead.name for lead in leads(first.service)) == ["Ada", "Bob"]


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_replicas_starting_together_migrate_once(postgres, worker_id):
    dsn = fresh_database(postgres, f"leadbot_migrate_{worker_id}")
    opened, failed = [], []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresStore(dsn))
        except Exception as exc:  # a second replica creating the same tables would fail here
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in opened:
        store.close()
    assert failed == [] and len(opened) == 4
    with psycopg.connect(dsn) as conn:
        names = [r[0] for r in conn.execute("select name from leadbot_migrations").fetchall()]
    assert names == [name for name, _ in MIGRATIONS]


def test_a_migration_that_fails_is_not_half_applied(postgres, worker_id, monkeypatch):
    dsn = fresh_database(postgres, f"leadbot_halfway_{worker_id}")
    PostgresStore(dsn).close()
    before = tables(dsn)
    broken = "create table half_done (id int); alter table outbox add column doomed text; select 1 / 0;"
    monkeypatch.setattr("bot.stores.postgres.MIGRATIONS", [*MIGRATIONS, ("m999_broken", broken)])
    with pytest.raises(StoreUnavailable) as refused:
        PostgresStore(dsn)
    assert "cannot migrate the database" in str(refused.value) and "division by zero" in str(refused.value)
    assert tables(dsn) == before  # neither the new table nor the new column
    with psycopg.connect(dsn) as conn:
        columns = conn.execute("select column_name from information_schema.columns where table_name = 'outbox'")
        assert "doomed" not in {r[0] for r in columns.fetchall()}
        assert "m999_broken" not in {r[0] for r in conn.execute("select name from leadbot_migrations").fetchall()}
    monkeypatch.undo()
    store = PostgresStore(dsn)  # the code that knows only the good migrations still opens it
    store.close()


def test_a_database_from_before_link_history_and_search_gets_both_from_what_it_holds(postgres, worker_id, monkeypatch):
    from datetime import UTC, datetime

    from services.models import NewLead, StaffLink
    from services.search import terms

    dsn = fresh_database(postgres, f"leadbot_upgrade_{worker_id}")
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    monkeypatch.setattr("bot.stores.postgres.MIGRATIONS", MIGRATIONS[:1])  # as the first PostgreSQL release left it
    old = PostgresStore(dsn)
    with old.connection() as conn:
        conn.execute(
            "insert into staff_links (slack_user, backend, staff_id, linked_by, linked_at)"
            " values ('UA', 'local', 'ada', 'UA', now())"
        )
        conn.execute(
            "insert into local_leads (id, name, email, phone, status, created_at)"
            " values (1, 'José Pérez', 'jp@acme.example', '+14155550123', 'new', now())"
        )
        conn.execute("insert into counters (name, value) values ('local_leads', 1)")
    old.close()
    monkeypatch.undo()
    store = PostgresStore(dsn)
    try:
        assert store.links.held_by("local", "ada") == ["UA"]  # today's links are the history so far
        assert [lead.id for lead in store.local.find(terms("jose per"), statuses=["new"], offset=0, limit=5).leads] == [
            "1"
        ]
        assert store.local.find(terms("555-0123"), statuses=["new"], offset=0, limit=5).total == 1
        store.links.delete("UA", "local")
        store.links.put(StaffLink(slack_user="UB", backend="local", staff_id="ada"), by="UB", at=at)
        assert store.links.held_by("local", "ada") == ["UA", "UB"]
        store.local.insert(NewLead(name="Acme Buyer"), status="new", owner=None, by="UA", at=at)
        found = store.local.find(terms("acme"), statuses=["new"], offset=0, limit=5)
        assert [lead.name for lead in found.leads] == ["Acme Buyer", "José Pérez"]  # a name match ranks first
    finally:
        store.close()
