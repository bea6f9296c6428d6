"""Who may import whom, checked on every import in every module (lazy ones inside functions too).

- ``services`` (the domain) imports nothing of ``bot``, ``handlers``, ``slack_bolt`` or
  ``slack_sdk``, and no SQL engine (``sqlite3``, ``sqlite_utils``, ``psycopg``).
- ``handlers`` (Slack) imports ``services`` but never ``bot`` and never a backend module.
- ``bot`` (the composition root and infrastructure) may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "services": ("bot", "handlers", "slack_bolt", "slack_sdk", "sqlite3", "sqlite_utils", "psycopg", "psycopg_pool"),
    "handlers": ("bot", "sqlite3", "sqlite_utils", "psycopg"),
}
BACKEND_MODULES = "services.backends."
HANDLERS_MAY_USE_FROM_BACKENDS = ("services.backends.base",)  # the interface, never an implementation


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            found += [(node.lineno, arg.value) for arg in node.args if isinstance(arg, ast.Constant)]
    return found


def violations(package: str) -> list[str]:
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in imports_of(path):
            top = name.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            if top in FORBIDDEN[package]:
                problems.append(where)
            if (
                package == "handlers"
                and name.startswith(BACKEND_MODULES)
                and not name.startswith(HANDLERS_MAY_USE_FROM_BACKENDS)
            ):
                problems.append(where + " (a backend module)")
    return problems


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_the_layers_import_only_what_they_may(package):
    assert violations(package) == []


def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The walk finds imports at the top, inside functions, relative-free ``from`` forms and importlib calls."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import bot.app\n"
        "from slack_sdk import WebClient\n"
        "def later():\n"
        "    import sqlite3\n"
        "    from services.backends.capillary import CapillaryBackend\n"
        "    importlib.import_module('handlers.home')\n"
    )
    names = [name for _, name in imports_of(sample)]
    for expected in ("bot.app", "slack_sdk", "sqlite3", "services.backends.capillary", "handlers.home"):
        assert expected in names
