"""Daily follow-up digests: who is due one, what it holds, and the once-a-day bookkeeping.

Everything that decides whether a digest is due is in the store (settings,
time zones, one ``digests`` row per owner and local day), so a restart or a
second bot process on the same database never sends a day's digest twice,
and a digest missed while the bot was down goes out when it is back, the
same local day only.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.store import Store, from_db_time, to_db_time
from services.errors import LeadError
from services.leads import Actor, LeadService
from services.models import Lead

DEFAULT_AT = time(9, 0)
SHOWN = 10  # leads per digest; the rest are counted and pointed to
READ_AT_MOST = 100  # per backend and digest
CLAIM_LEASE = timedelta(minutes=5)  # a claim not sent by then was cut off (a crash): its outcome is unknown
TZ_FRESH = timedelta(days=1)
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
    def __init__(self, service: LeadService) -> None:
        self.service = service
        self.store: Store = service.store

    # -- settings ---------------------------------------------------------------------------

    def settings(self, slack_user: str) -> ReminderSettings:
        row = self.store.db.execute(
            "select reminders, remind_at, tz from user_settings where slack_user = ?", [slack_user]
        ).fetchone()
        on, at, tz = row if row else (None, None, None)
        return ReminderSettings(on=on is None or bool(on), at=_parse_at(at) or DEFAULT_AT, tz=tz)

    def set_on(self, actor: Actor, on: bool) -> None:
        with self.service._audited(actor, "remind", None, "on" if on else "off"):
            self.store.set_user_setting(actor.slack_user, "reminders", int(on))

    def set_at(self, actor: Actor, text: str) -> time:
        with self.service._audited(actor, "remind", None, f"at {text}"):
            at = _parse_at(text)
            if at is None:
                raise LeadError(f"`{text}` is not a time of day: use 24-hour HH:MM, e.g. `08:30`")
            self.store.set_user_setting(actor.slack_user, "remind_at", f"{at:%H:%M}")
            self.store.set_user_setting(actor.slack_user, "reminders", 1)
            return at

    def needs_tz(self, slack_user: str, now: datetime) -> bool:
        checked = self.store.user_setting(slack_user, "tz_checked_at", None)
        return checked is None or now - from_db_time(checked) >= TZ_FRESH

    def set_tz(self, slack_user: str, tz: str, now: datetime) -> None:
        self.store.set_user_setting(slack_user, "tz", tz)
        self.store.set_user_setting(slack_user, "tz_checked_at", to_db_time(now))

    # -- who is due -------------------------------------------------------------------------

    def owners(self) -> list[str]:
        """Everyone linked on at least one backend (only they can own leads)."""
        rows = self.store.db.execute("select distinct slack_user from staff_links order by slack_user").fetchall()
        return [r[0] for r in rows]

    def due(self, now: datetime) -> list[tuple[str, date]]:
        """(owner, local day) pairs whose digest time has passed today with no digest claimed yet."""
        rows = self.store.db.execute(
            """
            select l.slack_user, s.reminders, s.remind_at, s.tz
              from (select distinct slack_user from staff_links) l
              left join user_settings s on s.slack_user = l.slack_user
             order by l.slack_user
            """
        ).fetchall()
        done = {
            (u, d)
            for u, d in self.store.db.execute(
                "select slack_user, day from digests where day >= ?", [(now.date() - timedelta(days=2)).isoformat()]
            ).fetchall()
        }
        found = []
        for user, on, at, tz in rows:
            if on is not None and not on:
                continue
            day = local_day(now, tz)
            if (user, day.isoformat()) in done:
                continue
            if now >= remind_instant(day, _parse_at(at) or DEFAULT_AT, tz):
                found.append((user, day))
        return found

    # -- once a day -------------------------------------------------------------------------

    def claim(self, slack_user: str, day: date, now: datetime) -> bool:
        """Take (owner, day) for sending; False if it is taken (sent, being sent, or sent by another process)."""
        try:
            with self.store.transaction() as db:
                db["digests"].insert(
                    {
                        "slack_user": slack_user,
                        "day": day.isoformat(),
                        "state": "claimed",
                        "claimed_at": to_db_time(now),
                    }
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def record(self, slack_user: str, day: date, state: str, **values: object) -> None:
        with self.store.transaction() as db:
            db["digests"].update((slack_user, day.isoformat()), {"state": state, **values})

    def row(self, slack_user: str, day: date) -> dict | None:
        rows = list(self.store.db["digests"].rows_where("slack_user = ? and day = ?", [slack_user, day.isoformat()]))
        return rows[0] if rows else None

    def unsettled(self, now: datetime) -> list[dict]:
        """Digests whose send may or may not have reached Slack: a timeout, or a claim cut off by a crash."""
        stale = to_db_time(now - CLAIM_LEASE)
        return list(
            self.store.db["digests"].rows_where(
                "state = 'unknown' or (state = 'claimed' and claimed_at <= ?)", [stale], order_by="claimed_at"
            )
        )

    # -- what a digest holds ----------------------------------------------------------------

    def digest(self, slack_user: str, now: datetime, tz: str | None) -> Digest:
        day = local_day(now, tz)
        end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(tz))
        leads: list[Lead] = []
        total = 0
        per_backend: Counter[str] = Counter()
        unreadable = []
        for link in self.service.links(slack_user):
            try:
                page = self.service.search(
                    backend=link.backend, owner_user=slack_user, due_before=end_of_day, limit=READ_AT_MOST
                )
            except LeadError as exc:
                unreadable.append(f"{link.backend}: {exc.message}")
                continue
            except Exception as exc:  # one backend down must not cost the owner the others' digest
                unreadable.append(f"{link.backend}: {type(exc).__name__}")
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


def _parse_at(text: str | None) -> time | None:
    match = HHMM.match((text or "").strip())
    return time(int(match[1]), int(match[2])) if match else None
