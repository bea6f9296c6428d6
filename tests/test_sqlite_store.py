"""What only the SQLite store does: its schema, migrations and WAL (the rest is the store contract)."""

from __future__ import annotations

from pathlib import Path

from bot.stores.sqlite import SqliteStore, migrations


def test_the_schema_is_created_once_in_order_and_in_wal_mode(tmp_path: Path):
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    assert store.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
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
    assert [m.name for m in migrations.applied(again.db)] == [
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
    assert migrations.pending(again.db) == []
