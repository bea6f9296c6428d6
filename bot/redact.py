"""Log lines without bearer URLs or customers' emails, at every level.

A response URL can post as the bot for 30 minutes, and slack_sdk logs each one it
posts to at DEBUG, with the body (the customer's email, as typed). ``redact`` is
the one function that scrubs a line; ``install`` makes every record created in
the process pass through it (a record factory, so it holds whichever handler,
format or logger a record meets, caplog's included); ``RedactingFilter`` is the
same for a handler of one's own. Secrets (tokens, the signing secret) are kept out
where they are used; this is for what arrives in Slack's requests.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

RESPONSE_URL = "[response URL]"
EMAIL = "[email]"

# Slack's bearer URLs: response URLs and incoming webhooks.
SLACK_HOOK_RE = re.compile(r"https?://hooks\.slack(?:-gov)?\.com/[^\s\"'<>,}\]]*")
# A response_url field as JSON, a form or a repr shows it: "response_url": "…", response_url=…
RESPONSE_URL_FIELD_RE = re.compile(r"""(response_url['"]?\s*[:=]\s*['"]?)[^\s'"&,}\]]+""")
# slack_sdk's webhook client names the URL it posts to: "Sending a request - url: …".
WEBHOOK_URL_RE = re.compile(r"(url: )\S+?(,|\s|$)")
# An email, plain or URL-encoded (%40); bounded parts, so a long line is scanned in linear time.
EMAIL_RE = re.compile(r"[\w.+'-]{1,64}(?:@|%40)[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")


def redact(text: str, *, webhook: bool = False) -> str:
    """``text`` with Slack's bearer URLs and emails replaced; ``webhook``: a line of slack_sdk's webhook client."""
    if webhook:
        text = WEBHOOK_URL_RE.sub(lambda m: m.group(1) + RESPONSE_URL + m.group(2), text)
    if "hooks.slack" in text:
        text = SLACK_HOOK_RE.sub(RESPONSE_URL, text)
    if "response_url" in text:
        text = RESPONSE_URL_FIELD_RE.sub(lambda m: m.group(1) + RESPONSE_URL, text)
    if "@" in text or "%40" in text:
        text = EMAIL_RE.sub(EMAIL, text)
    return text


def scrub(record: logging.LogRecord) -> None:
    """Redact ``record`` in place: its message (formatted once, here) and its traceback."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: left for logging to report
        return
    clean = redact(message, webhook=record.name.startswith("slack_sdk.webhook"))
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


_FORMATTER = logging.Formatter()
_installed = threading.Lock()
_previous: Any = None


def install() -> None:
    """Every log record made in this process from now on is redacted (once per process; idempotent)."""
    global _previous
    with _installed:
        if _previous is not None:
            return
        _previous = logging.getLogRecordFactory()
        make = _previous

        def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            scrub(record)
            return record

        logging.setLogRecordFactory(redacted_record)
