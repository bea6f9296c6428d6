"""Store implementations of ``services.ports``; ``open_store`` picks one from ``LEADBOT_DB``."""

from __future__ import annotations

from pathlib import Path

from services.ports import Store


def open_store(location: str | Path, *, create: bool = True) -> Store:
    """``memory:`` for a throwaway store; a file path or ``sqlite:///PATH`` for SQLite.

    ``create=False``: a file that does not exist is ``StoreUnavailable``, not a new empty database.
    """
    text = str(location)
    if text == "memory:":
        from bot.stores.memory import MemoryStore

        return MemoryStore()
    from bot.stores.sqlite import SqliteStore

    return SqliteStore(text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text, create=create)
