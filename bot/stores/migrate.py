"""``leadbot migrate-store``: a SQLite store copied whole into an empty PostgreSQL database.

Every table the store holds is copied row for row in one PostgreSQL transaction, each
value turned into the column's own type (ISO times into ``timestamptz``, 0/1 into
booleans, JSON text into ``json``); the row counts are compared table by table before
it commits, so a copy is all there or not there. Lead numbers, outbox and audit ids
are kept, and the numbering goes on after the highest. The SQLite full-text index of local
leads is not copied: PostgreSQL's own (``local_lead_words``) is built from the copied leads.
A target that holds anything is refused, and so is a SQLite table this code does not know
(it would be left behind).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from psycopg.types.json import Json

from bot.stores.postgres import TABLES, PostgresStore, index_local_leads
from bot.stores.sqlite import SqliteStore

# SQLite's own bookkeeping, not the store's data (PostgreSQL keeps its migrations in leadbot_migrations).
NOT_COPIED = {"_leadbot_migrations", "_sqlite_migrations", "sqlite_sequence", "sqlite_stat1"}
# SQLite's FTS5 index for /lead find (m015) and the shadow tables FTS5 keeps it in: rebuilt, not copied.
REBUILT = {
    "local_leads_search",
    *(f"local_leads_search_{part}" for part in ("config", "content", "data", "docsize", "idx")),
}


class MigrationRefused(Exception):
    """The copy was not made (the message says why); nothing was written."""


def _converter(pg_type: str) -> Callable[[Any], Any]:
    def times(value: Any) -> datetime:
        return datetime.fromisoformat(value)

    def days(value: Any) -> date:
        return date.fromisoformat(value)

    def json_value(value: Any) -> Json:
        return Json(json.loads(value))

    def number_list(value: Any) -> list[float]:
        return [float(v) for v in json.loads(value)]

    return {
        "timestamp with time zone": times,
        "date": days,
        "boolean": lambda value: bool(int(value)),
        "json": json_value,
        "ARRAY": number_list,
        "bigint": int,
        "integer": int,
        "text": str,
    }.get(pg_type, lambda value: value)


def copy_store(source: str, target: str, *, say: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Copy the SQLite store at ``source`` into the empty PostgreSQL database ``target``; rows per table."""
    sqlite_store = SqliteStore(source, create=False)  # its own migrations first: the copy is of a current schema
    try:
        with sqlite_store.leased() as db:
            conn = db.conn
            found = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
            unknown = sorted(found - set(TABLES) - NOT_COPIED - REBUILT)
            if unknown:
                raise MigrationRefused(
                    f"{source} has tables this Leadbot cannot copy ({', '.join(unknown)}): use the Leadbot version"
                    " that made them"
                )
            pg_store = PostgresStore(target)
            try:
                held = {table: n for table, n in pg_store.counts().items() if n}
                if held:
                    listed = ", ".join(f"{table} ({n})" for table, n in held.items())
                    raise MigrationRefused(f"{pg_store.name} is not empty ({listed}): copies go into an empty one only")
                return _copy(conn, pg_store, say)
            finally:
                pg_store.close()
    finally:
        sqlite_store.close()


def _copy(conn: sqlite3.Connection, pg_store: PostgresStore, say: Callable[[str], None]) -> dict[str, int]:
    copied: dict[str, int] = {}
    with pg_store.connection() as pg, pg.transaction():
        pg.execute("lock table " + ", ".join(TABLES) + " in exclusive mode")  # no replica writes meanwhile
        for table in TABLES:
            types = dict(
                pg.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_name = %s and table_schema = current_schema()",
                    [table],
                ).fetchall()
            )
            cursor = conn.execute(f"select * from {table}")
            columns = [d[0] for d in cursor.description]
            missing = [c for c in columns if c not in types]
            if missing:
                raise MigrationRefused(f"{table}.{', '.join(missing)}: no such column on PostgreSQL")
            convert = [_converter(types[c]) for c in columns]
            rows = [
                [None if value is None else fn(value) for fn, value in zip(convert, row, strict=True)]
                for row in cursor.fetchall()
            ]
            if rows:
                names = ", ".join(f'"{c}"' for c in columns)
                with pg.cursor() as insert:
                    insert.executemany(
                        f"insert into {table} ({names}) values ({', '.join(['%s'] * len(columns))})", rows
                    )
            if "id" in types:  # numbering goes on after the highest copied id
                sequence = pg.execute("select pg_get_serial_sequence(%s, 'id')", [table]).fetchone()[0]
                if sequence:
                    pg.execute(f"select setval(%s, coalesce((select max(id) from {table}), 0) + 1, false)", [sequence])
            copied[table] = len(rows)
        pg.execute(
            "insert into counters (name, value) select 'local_leads', coalesce(max(id), 0) from local_leads"
            " on conflict (name) do update set value = excluded.value"
        )
        index_local_leads(pg)
        for table in TABLES:  # verified inside the transaction: a mismatch commits nothing
            (there,) = pg.execute(f"select count(*) from {table}").fetchone()
            (here,) = conn.execute(f"select count(*) from {table}").fetchone()
            if there != here:
                raise MigrationRefused(f"{table}: {here} rows in SQLite but {there} copied; nothing was kept")
            say(f"{table}: {there}")
    return copied
