"""Reading dates and times the way people type them (``tomorrow 10am``, ``fri``)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.errors import Code, LeadError

# The longest date or time anyone types ("next tuesday at 3:30pm" is 22); dateparser's work grows
# with the text, so longer is refused before it is read.
MAX_WHEN = 100
WHEN_HELP = "e.g. `tomorrow 10am`, `2026-12-01 15:00`, `in 3 days`, `fri`"


def zone(tz_name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_when(text: str, tz_name: str | None, now: datetime | None = None) -> datetime:
    """Parse ``text`` in the user's time zone; return an aware UTC datetime.

    A bare day (``fri``, ``tomorrow``) means 09:00 that day, the usual start of
    a working day, rather than dateparser's "now's clock time on that day".
    """
    if len(text) > MAX_WHEN:
        raise LeadError("{text} is too long to be a date or time ({help})", text=Code(text[:40] + "…"), help=WHEN_HELP)
    # Imported here: the serving process only acks and never reads a date, and dateparser's
    # memory would be spent there for nothing (bench/README.md).
    import dateparser

    tz = zone(tz_name)
    base = (now or datetime.now(UTC)).astimezone(tz).replace(tzinfo=None)
    settings = {
        "TIMEZONE": tz.key,
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": base,
        "PREFER_DAY_OF_MONTH": "first",
    }
    cleaned = text.strip()
    parsed = dateparser.parse(cleaned, languages=["en"], settings=settings) if cleaned else None
    if parsed is None:
        raise LeadError("I can't read {text} as a date or time ({help})", text=Code(text), help=WHEN_HELP)
    if not _mentions_time(cleaned):
        local = parsed.astimezone(tz).replace(hour=9, minute=0, second=0, microsecond=0)
        parsed = local
    return parsed.astimezone(UTC).replace(microsecond=0)


def _mentions_time(text: str) -> bool:
    lowered = text.lower()
    if any(word in lowered for word in ("am", "pm", ":", "noon", "midnight", "hour", "minute")):
        return True
    return lowered.startswith("now") or (lowered.startswith("in ") and "day" not in lowered)
