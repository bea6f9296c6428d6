"""What only the SQLite store does: its schema, migrations and WAL (the rest is the store contract)."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import threading
from pathlib import Path

from bot.stores.sqlite import IDLE_CONNECTIONS, SqliteStore, migrations


def test_the_schema_is_created_once_in_order_and_in_wal_mode(tmp_path: Path):
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    with store.leased() as db:
        assert db.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert {
        "staff_links",
        "local_leads",
        "local_follow_ups",
        "local_notes",
        "local_status_log",
        "processed_requests",
        "audit",
        "outbox",
        "digests",
        "remote_leads",
        "rate_budget",
        "journal",
        "request_writes",
    } <= set(store.table_names())
    again = SqliteStore(path)  # re-opening applies nothing twice
    with again.leased() as db:
        applied, pending = [m.name for m in migrations.applied(db)], migrations.pending(db)
    assert applied == [
        "m001_initial",
        "m002_user_settings",
        "m003_home_opened",
        "m004_channel_settings",
        "m005_remote_leads_and_outbox",
        "m006_reminders",
        "m007_request_claims",
        "m008_remote_extra",
        "m009_outbox_unknown_since",
        "m010_rate_budget",
        "m011_journal_and_request_writes",
        "m013_staff_link_history",
        "m015_local_search",
    ]
    assert pending == []


def _open_connections() -> int:
    """SQLite connections open in this process (a closed one refuses even ``total_changes``)."""
    gc.collect()
    found = 0
    for thing in gc.get_objects():
        if isinstance(thing, sqlite3.Connection):
            with contextlib.suppress(sqlite3.ProgrammingError):
                thing.total_changes  # noqa: B018 - raises once closed
                found += 1
    return found


def test_many_threads_at_once_leave_only_a_few_connections_open(tmp_path: Path):
    before = _open_connections()
    store = SqliteStore(tmp_path / "s.db")
    inside = threading.Barrier(24)

    def hold_one() -> None:
        with store.leased():  # each thread in the store at the same moment: 24 connections
            store.remote.recall("leadsapi", "1")
            inside.wait(timeout=10)
        store.remote.remember("leadsapi", str(threading.get_ident()), owner="U1")

    threads = [threading.Thread(target=hold_one) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _open_connections() - before <= IDLE_CONNECTIONS  # not one per thread that ever used it
    assert len(store.remote.recall_all("leadsapi")) == 24  # every write in
    store.close()
    assert _open_connections() == before


def test_what_runs_inside_a_transaction_uses_its_connection(tmp_path: Path):
    store = SqliteStore(tmp_path / "s.db")
    with store.atomic():
        store.remote.remember("leadsapi", "7", owner="U1")
        assert store.remote.recall("leadsapi", "7").owner == "U1"  # its own uncommitted write
        seen_elsewhere = []
        other = threading.Thread(target=lambda: seen_elsewhere.append(store.remote.recall("leadsapi", "7")))
        other.start()
        other.join()
        assert seen_elsewhere == [None]  # another connection: not yet committed
        try:
            with store.atomic():  # nested: a savepoint on the same connection, rolled back alone
                store.remote.remember("leadsapi", "8", owner="U2")
                raise RuntimeError
        except RuntimeError:
            pass
    assert store.remote.recall("leadsapi", "7").owner == "U1"
    assert store.remote.recall("leadsapi", "8") is None


def test_an_in_memory_store_is_one_database_for_every_thread():
    store = SqliteStore(":memory:")
    store.remote.remember("leadsapi", "7", owner="U1")
    seen, started = [], threading.Event()

    def recall() -> None:
        started.set()
        seen.append(store.remote.recall("leadsapi", "7"))  # while the first thread may still hold the connection

    with store.leased():
        other = threading.Thread(target=recall)
        other.start()
        started.wait(timeout=10)
    other.join()
    assert seen[0] is not None and seen[0].owner == "U1"
