"""Plumbing every backend shares, with no network in it: times, ids, filtering a page, Retry-After."""

from __future__ import annotations

import contextvars
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from services.errors import Code, NotFound
from services.models import Lead, LeadPage, LeadQuery, StatusOption
from services.search import ranked, terms

T = TypeVar("T")

CARD_HISTORY = 3  # the history lines a card shows
_SIDE_THREADS = 16
_side_pool: ThreadPoolExecutor | None = None
_side_pool_made = threading.Lock()


def alongside(call: Callable[[], T]) -> Future[T]:
    """``call`` on a thread of its own (made at first use), in this context: its trace, its request.

    For a second read that need not wait for the first: on an API answering in 200 ms, a card's
    lead and history one after the other held the request (and its thread) twice as long.
    """
    global _side_pool
    with _side_pool_made:
        if _side_pool is None:
            _side_pool = ThreadPoolExecutor(max_workers=_SIDE_THREADS, thread_name_prefix="leadbot-read")
    return _side_pool.submit(contextvars.copy_context().run, call)


def parse_api_time(value: Any) -> datetime | None:
    """An API's timestamp (``2018-10-05T08:00:00+05:30``, ``…Z``, ``2020-09-16 05:43:00``) as aware UTC.

    A time without an offset is read as UTC, as the APIs Leadbot speaks to document
    (LeadSquared's dates are UTC strings). Anything unreadable is None.
    """
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def to_api_time(when: datetime) -> str:
    """ISO 8601 in UTC, to the second."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def numeric_id(backend: str, lead_id: str) -> int:
    """A backend whose leads are numbered: the number, or "not a lead reference"."""
    if not (lead_id.isascii() and lead_id.isdigit()):
        raise NotFound(
            "{ref} is not a lead reference: {backend} leads are numbered, e.g. {example}",
            ref=Code(f"{backend}:{lead_id}"),
            backend=backend,
            example=Code(f"{backend}:7"),
        )
    return int(lead_id)


def match_query(leads: Iterable[Lead], query: LeadQuery, statuses: list[StatusOption]) -> LeadPage:
    """Filter and page leads read in bulk, for APIs that cannot filter as Leadbot asks.

    Without a status, only open leads are kept; due leads come first (soonest
    first), then undated ones, newest (highest id) first, as on the local backend.
    A search by text (``query.text``) keeps leads of every status, best match first.
    """
    if query.text is not None:
        status = query.status.casefold() if query.status else None
        found = ranked(
            [lead for lead in leads if status is None or lead.status.casefold() == status], terms(query.text)
        )
        return LeadPage(leads=found[query.offset : query.offset + query.limit], total=len(found), offset=query.offset)
    wanted = query.status.casefold() if query.status else None
    open_values = {s.value.casefold() for s in statuses if s.open}
    kept = []
    for lead in leads:
        status = lead.status.casefold()
        if query.owner and lead.owner != query.owner:
            continue
        if query.unassigned and lead.owner is not None:
            continue
        if wanted is not None and status != wanted:
            continue
        if wanted is None and status not in open_values:
            continue
        if query.sub_status and lead.sub_status != query.sub_status:
            continue
        if query.due_before and (lead.next_follow_up is None or lead.next_follow_up > query.due_before):
            continue
        kept.append(lead)
    far = datetime.max.replace(tzinfo=UTC)
    kept.sort(key=lambda lead: (lead.next_follow_up or far, -int(lead.id) if lead.id.isdigit() else 0))
    return LeadPage(leads=kept[query.offset : query.offset + query.limit], total=len(kept), offset=query.offset)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP ``Retry-After`` (seconds, or an HTTP-date) as seconds from ``now``; None when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# -- receipts: Leadbot's mark on a write, so a retry can tell whether the write landed -----------

RECEIPT_RE = re.compile(r"\s*\(lb:([0-9a-f]{8})\)\s*$")


def new_receipt() -> str:
    return uuid.uuid4().hex[:8]


def marked(text: str | None, receipt: str | None) -> str:
    """``text`` with Leadbot's receipt at its end: ``called back (lb:1a2b3c4d)``."""
    if not receipt:
        return text or ""
    return f"{text} (lb:{receipt})" if text else f"(lb:{receipt})"


def unmarked(text: str) -> str:
    """``text`` as the person wrote it, without Leadbot's receipt."""
    return RECEIPT_RE.sub("", text)


def receipt_of(text: str | None) -> str | None:
    match = RECEIPT_RE.search(text or "")
    return match.group(1) if match else None
