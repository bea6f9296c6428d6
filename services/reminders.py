"""Daily follow-up digests: who is due one, what it holds, and the once-a-day bookkeeping.

Everything that decides whether a digest is due is in the store (settings,
time zones, one ``digests`` row per owner and local day), so a restart or a
second bot process on the same database never sends a day's digest twice,
and a digest missed while the bot was down goes out when it is back, the
same local day only.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.audit import Actor
from services.errors import Code, Invalid, LeadError
from services.leads import LeadService
from services.models import Lead
from services.ports import DigestLedger, DigestRecord, Preferences

log = logging.getLogger("leadbot.digests")

DEFAULT_AT = time(9, 0)
SHOWN = 10  # leads per digest; the rest are counted and pointed to
READ_AT_MOST = 100  # per backend and digest
CLAIM_LEASE = timedelta(minutes=5)  # a claim not sent by then was cut off (a crash): its outcome is unknown
HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ReminderSettings:
    on: bool
    at: time
    tz: str | None

    def describe(self) -> str:
        if not self.on:
            return "off"
        zone = f" ({self.tz})" if self.tz else ""
        return f"on at {self.at:%H:%M}{zone}"


@dataclass
class Digest:
    slack_user: str
    day: date
    now: datetime
    leads: list[Lead]  # most overdue first, at most SHOWN
    total: int
    overdue: int
    due_today: int
    per_backend: dict[str, int]
    unreadable: list[str] = field(default_factory=list)  # "backend: why"

    @property
    def empty(self) -> bool:
        return self.total == 0


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def remind_instant(day: date, at: time, tz: str | None) -> datetime:
    """When ``day``'s digest is due: ``at`` on that local day; a time skipped by a DST change moves forward."""
    local = datetime.combine(day, at, tzinfo=zone(tz))
    # Round-trip through UTC: a wall time that does not exist (spring forward) lands after the gap.
    return local.astimezone(ZoneInfo("UTC"))


def local_day(now: datetime, tz: str | None) -> date:
    return now.astimezone(zone(tz)).date()


class Reminders:
    def __init__(self, service: LeadService, prefs: Preferences, digests: DigestLedger) -> None:
        self.service = service
        self.prefs = prefs
        self.ledger = digests

    # -- settings ---------------------------------------------------------------------------

    def settings(self, slack_user: str) -> ReminderSettings:
        prefs = self.prefs.user(slack_user)
        return ReminderSettings(on=prefs.reminders, at=_parse_at(prefs.remind_at) or DEFAULT_AT, tz=prefs.tz)

    def set_on(self, actor: Actor, on: bool) -> None:
        with self.service.audit.action(actor, "remind", None, "on" if on else "off"):
            self.prefs.set_user(actor.slack_user, reminders=on)

    def set_at(self, actor: Actor, text: str) -> time:
        with self.service.audit.action(actor, "remind", None, f"at {text}"):
            at = _parse_at(text)
            if at is None:
                raise Invalid(
                    "{value} is not a time of day: say e.g. {example} or {twelve}",
                    field="remind_at",
                    value=Code(text),
                    example=Code("08:30"),
                    twelve=Code("7pm"),
                )
            self.prefs.set_user(actor.slack_user, remind_at=f"{at:%H:%M}", reminders=True)
            return at

    # -- who is due -------------------------------------------------------------------------

    def owners(self) -> list[str]:
        """Everyone linked on at least one backend (only they can own leads)."""
        return self.service.people.linked_users()

    def due(self, now: datetime) -> list[tuple[str, date]]:
        """(owner, local day) pairs whose digest time has passed today with no digest claimed yet."""
        owners = self.owners()
        prefs = self.prefs.users(owners)
        taken = self.ledger.taken_since(now.date() - timedelta(days=2))
        found = []
        for user in owners:
            setting = prefs[user]
            if not setting.reminders:
                continue
            day = local_day(now, setting.tz)
            if (user, day) in taken:
                continue
            if now >= remind_instant(day, _parse_at(setting.remind_at) or DEFAULT_AT, setting.tz):
                found.append((user, day))
        return found

    # -- once a day -------------------------------------------------------------------------

    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        """Take (owner, day) for sending; False if it is taken (sent, being sent, or sent by another process)."""
        return self.ledger.claim(slack_user, day, now)

    def record(self, slack_user: str, day: date, state: str, **values: object) -> None:
        self.ledger.record(slack_user, day, state, **values)

    def row(self, slack_user: str, day: date) -> DigestRecord | None:
        return self.ledger.get(slack_user, day)

    def unsettled(self, now: datetime) -> list[DigestRecord]:
        """Digests whose send may or may not have reached Slack: a timeout, or a claim cut off by a crash."""
        return self.ledger.unsettled(now - CLAIM_LEASE)

    # -- what a digest holds ----------------------------------------------------------------

    def digest(self, slack_user: str, now: datetime, tz: str | None) -> Digest:
        day = local_day(now, tz)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(tz))
        leads: list[Lead] = []
        total = 0
        per_backend: Counter[str] = Counter()
        unreadable = []
        for link in self.service.people.links(slack_user):
            try:
                page = self.service.search(
                    backend=link.backend, owner_user=slack_user, due_before=end_of_day, limit=READ_AT_MOST
                )
            except LeadError as exc:
                unreadable.append(f"{link.backend}: {exc.message}")
                continue
            except Exception:  # one backend's bug must not cost the owner the others' digest
                log.exception("digest for %s: reading %s failed", slack_user, link.backend)
                unreadable.append(f"{link.backend}: Leadbot could not read it (see the log)")
                continue
            leads += page.leads
            total += page.total
            if page.total:
                per_backend[link.backend] += page.total
        leads.sort(key=lambda lead: lead.next_follow_up or now)
        overdue = sum(1 for lead in leads if lead.next_follow_up and lead.next_follow_up < now)
        return Digest(
            slack_user=slack_user,
            day=day,
            now=now,
            leads=leads[:SHOWN],
            total=total,
            overdue=overdue,  # of the leads read (READ_AT_MOST per backend)
            due_today=len(leads) - overdue,
            per_backend=dict(per_backend),
            unreadable=unreadable,
        )

    def tomorrow_at(self, slack_user: str, now: datetime) -> datetime:
        """Snooze: tomorrow at the owner's reminder time, in their time zone."""
        settings = self.settings(slack_user)
        return remind_instant(local_day(now, settings.tz) + timedelta(days=1), settings.at, settings.tz)


CLOCK_12H = re.compile(r"^(1[0-2]|0?[1-9])(?::([0-5]\d))?\s*(am|pm)$", re.I)
NAMED_TIMES = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}


def _parse_at(text: str | None) -> time | None:
    """A time of day as WHEN takes one: ``08:30``, ``7pm``, ``7:30 am``, ``noon``."""
    cleaned = (text or "").strip()
    match = HHMM.match(cleaned)
    if match:
        return time(int(match[1]), int(match[2]))
    twelve = CLOCK_12H.match(cleaned)
    if twelve:
        hour = int(twelve[1]) % 12 + (12 if twelve[3].lower() == "pm" else 0)
        return time(hour, int(twelve[2] or 0))
    return NAMED_TIMES.get(cleaned.lower())
