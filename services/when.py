"""Reading dates and times the way people type them (``tomorrow 10am``, ``fri``, ``tmrw``, ``eod``).

The rules, the same in every command and form:

- A day without a time (``fri``, ``tomorrow``, ``in 3 days``, ``next week``, ``in a week``)
  means 09:00 that day, the usual start of a working day. Only minutes and hours
  (``in 2 hours``) keep the clock time.
- ``tonight`` is 19:00 today, ``eod`` (end of day) 17:00 today, ``tmrw``/``tmr``/``tmw``
  tomorrow; ``noon`` 12:00.
- ``03/04/2027`` is read day first or month first as the person writes dates:
  ``LEADBOT_DATE_ORDER`` (DMY, MDY or YMD) if set, else by their Slack time zone
  (month first in the Americas' US-style zones, day first elsewhere).
- A bare number (``10``) is refused: it could be a day, an hour or a month.
- Where a date must be ahead (a next follow-up), one in the past is refused, saying
  how it was read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.errors import Code, Invalid, LeadError

# The longest date or time anyone types ("next tuesday at 3:30pm" is 22); dateparser's work grows
# with the text, so longer is refused before it is read.
MAX_WHEN = 100
WHEN_HELP = "e.g. `tomorrow 10am`, `2026-12-01 15:00`, `in 3 days`, `fri`, `tonight`, `eod`"
DATE_ORDERS = ("DMY", "MDY", "YMD")
# Zones whose people write the month first (03/04 is March 4th): the US and the places that follow it.
MONTH_FIRST_ZONES = ("America/", "US/", "Pacific/Honolulu", "Pacific/Guam", "Asia/Manila")
MONTH_FIRST_EXCEPT = ("America/Sao_Paulo", "America/Argentina", "America/Bogota", "America/Lima", "America/Santiago")
SHORTHANDS = (
    (re.compile(r"\b(?:tmrw|tmr|tmw|tomo|2moro)\b", re.I), "tomorrow"),
    (re.compile(r"\beod\b", re.I), "today 5pm"),
    (re.compile(r"\btonight\b", re.I), "today 7pm"),
    (re.compile(r"\bthis evening\b", re.I), "today 7pm"),
)
BARE_NUMBER_RE = re.compile(r"^\d{1,4}$")
CLOCK_WORDS_RE = re.compile(r"\b(?:\d{1,2}(?::\d{2})?\s*(?:am|pm)|noon|midnight|now)\b|\d:\d{2}", re.I)
SHORT_SPAN_RE = re.compile(r"\b(?:hours?|hrs?|minutes?|mins?)\b", re.I)


def zone(tz_name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def date_order(tz_name: str | None, setting: str | None = None) -> str:
    """How this person writes numeric dates: the setting, else by their time zone."""
    if setting:
        return setting
    name = tz_name or ""
    if name.startswith(MONTH_FIRST_EXCEPT):
        return "DMY"
    return "MDY" if name.startswith(MONTH_FIRST_ZONES) else "DMY"


def parse_when(
    text: str,
    tz_name: str | None,
    now: datetime | None = None,
    *,
    order: str | None = None,
    future: bool = False,
) -> datetime:
    """Parse ``text`` in the user's time zone; return an aware UTC datetime (the module's rules).

    ``order``: ``LEADBOT_DATE_ORDER`` when set. ``future``: a time not after ``now`` is refused.
    """
    if len(text) > MAX_WHEN:
        raise LeadError("{text} is too long to be a date or time ({help})", text=Code(text[:40] + "…"), help=WHEN_HELP)
    # Imported here: the serving process only acks and never reads a date, and dateparser's
    # memory would be spent there for nothing (bench/README.md).
    import dateparser

    tz = zone(tz_name)
    at = now or datetime.now(UTC)
    base = at.astimezone(tz).replace(tzinfo=None)
    cleaned = text.strip()
    if BARE_NUMBER_RE.match(cleaned):
        raise Invalid(
            "{text} alone could be a day, an hour or a month: say {day} or {hour}",
            field="when",
            text=Code(text),
            day=Code(f"{cleaned} dec" if len(cleaned) <= 2 else f"{cleaned}-01-01"),
            hour=Code(f"{cleaned}am" if len(cleaned) <= 2 else "10am"),
        )
    for pattern, meaning in SHORTHANDS:
        cleaned = pattern.sub(meaning, cleaned)
    settings = {
        "TIMEZONE": tz.key,
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": base,
        "PREFER_DAY_OF_MONTH": "first",
        "DATE_ORDER": date_order(tz_name, order),
    }
    parsed = dateparser.parse(cleaned, languages=["en"], settings=settings) if cleaned else None
    if parsed is None:
        raise LeadError("I can't read {text} as a date or time ({help})", text=Code(text), help=WHEN_HELP)
    if not _mentions_time(cleaned):
        parsed = parsed.astimezone(tz).replace(hour=9, minute=0, second=0, microsecond=0)
    result = parsed.astimezone(UTC).replace(microsecond=0)
    if future and result <= at:
        shown = result.astimezone(tz).strftime("%a %d %b %Y %H:%M")
        raise Invalid(
            "{text} reads as {shown} ({zone}), which has passed: give a time ahead",
            field="when",
            text=Code(text),
            shown=shown,
            zone=tz.key,
        )
    return result


def _mentions_time(text: str) -> bool:
    """Whether the text names a clock time or a span shorter than a day (else the day means 09:00)."""
    return bool(CLOCK_WORDS_RE.search(text) or SHORT_SPAN_RE.search(text))
