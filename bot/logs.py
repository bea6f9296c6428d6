"""Leadbot's log: readable lines by default, one JSON object a line with ``LEADBOT_LOG_FORMAT=json``.

Every line carries what the request it was written for is about (``services/trace.py``):
the request id (and the journal entry, when the request was journalled), the Slack
user and team, the kind of request, the lead's reference and the backend; the
lines that end a request add its outcome and latency. No line carries a secret:
the final text of every line (message, arguments and traceback) goes through
``Redactor``, which hides every configured secret value, Slack tokens, the URL
secrets backends register (``hide_in_logs``), and what ``bot/redact.py`` takes
out of every record (response URLs, webhooks, emails) once more in tracebacks.
Nothing logs a request body (``bot/server.py``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.redact import redact
from services.backends.http import hidden_in_logs
from services.trace import current

TRACE_FIELDS = ("request", "entry", "kind", "user", "team", "ref", "backend")
RESULT_FIELDS = ("outcome", "latency_ms", "status")
# Slack tokens, wherever they are pasted (response URLs and emails are bot/redact.py's).
SLACK_TOKEN = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{6,}")


class Redactor:
    """Hides secrets in finished log text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in [*self.secrets, *sorted(hidden_in_logs(), key=len, reverse=True)]:
            if secret in text:
                text = text.replace(secret, "***")
        return redact(SLACK_TOKEN.sub("x***", text))


class TraceFilter(logging.Filter):
    """Puts the current trace's fields on each record (left alone when the record brings its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current().items():
            if key in TRACE_FIELDS and not hasattr(record, key):
                setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in (*TRACE_FIELDS, *RESULT_FIELDS) if hasattr(record, key)
        )
        return self.redact(f"{line} [{context}]" if context else line)


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key in (*TRACE_FIELDS, *RESULT_FIELDS):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value if isinstance(value, int | float) else self.redact(str(value))
        if record.exc_info:
            entry["traceback"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", form: str = "text", secrets: Iterable[str] = (), stream: Any = None) -> None:
    """The process's one log handler (on the root logger), replacing any earlier one."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if form == "json" else TextFormatter(redact))
    handler.addFilter(TraceFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
