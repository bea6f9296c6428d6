"""Store implementations of ``services.ports``; ``open_store`` picks one from ``LEADBOT_DB``."""

from __future__ import annotations

from pathlib import Path

from services.ports import Store, StoreUnavailable


def open_store(location: str | Path, *, create: bool = True, lock_wait: float | None = None) -> Store:
    """``memory:`` for a throwaway store; a file path or ``sqlite:///PATH`` for SQLite;
    ``postgresql://…`` for PostgreSQL (several replicas on one database).

    ``create=False``: a file that does not exist is ``StoreUnavailable``, not a new empty database.
    ``lock_wait``: how long another process's lock may hold the opening up (see ``SqliteStore``).
    """
    text = str(location)
    if text == "memory:":
        from bot.stores.memory import MemoryStore

        return MemoryStore()
    scheme, sep, _ = text.partition("://")
    if scheme in ("postgresql", "postgres") and sep:
        from bot.stores.postgres import PostgresStore

        return PostgresStore(text)
    if sep and scheme != "sqlite":
        # Not a path: said plainly, rather than "its directory mysql:/… does not exist".
        raise StoreUnavailable(
            f"cannot open the database {scheme}://…: LEADBOT_DB is a SQLite file path or a postgresql:// URL"
        )
    from bot.stores.sqlite import SqliteStore

    path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text
    return SqliteStore(path, create=create, **({} if lock_wait is None else {"lock_wait": lock_wait}))
