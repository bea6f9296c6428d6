"""Sending the daily follow-up digest DMs, once per owner and local day, and redrawing them after a button.

A digest's (owner, day) is claimed in the store before it is sent. If
``chat.postMessage`` fails in a way that may hide a delivery (a timeout, a
5xx), the row is marked ``unknown``; before sending again, the DM's history
is searched for the digest by its message metadata, so a delivered digest is
recorded, not repeated.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from handlers.blocks import DigestData, digest_message
from handlers.cards import status_option
from handlers.context import Deps
from services.ports import DigestRecord
from services.reminders import Digest, Reminders, local_day, zone

log = logging.getLogger("leadbot.digests")

EVENT_TYPE = "leadbot_digest"
# Slack's answers that mean the DM was not and will not be delivered.
UNDELIVERABLE = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "account_inactive",
        "user_disabled",
        "cannot_dm_bot",
        "messages_tab_disabled",
        "not_authed",
        "invalid_auth",
        "is_archived",
    }
)


def digest_blocks(deps: Deps, digest: Digest, tz: str | None, notice: str | None = None) -> list[dict[str, Any]]:
    day_label = datetime.combine(digest.day, datetime.min.time(), tzinfo=zone(tz)).strftime("%a %-d %b")
    data = DigestData(
        day_label=day_label,
        leads=digest.leads,
        statuses={lead.ref: status_option(deps.service, lead) for lead in digest.leads},
        total=digest.total,
        overdue=digest.overdue,
        due_today=digest.due_today,
        per_backend=digest.per_backend,
        now=digest.now,
        unreadable=digest.unreadable,
        notice=notice,
    )
    return digest_message(data)


def digest_text(digest: Digest) -> str:
    return f"Follow-ups: {digest.overdue} overdue, {digest.due_today} due today"


class DigestSender:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.reminders: Reminders = deps.reminders

    def tz(self, slack_user: str) -> str | None:
        return self.deps.timezones.of(slack_user)

    def send_today(self, slack_user: str, now: datetime) -> str:
        """Send (owner, today)'s digest if nobody has; returns what happened: sent, empty, taken, failed, unknown."""
        tz = self.tz(slack_user)
        day = local_day(now, tz)
        if not self.reminders.claim(slack_user, day, now):
            return "taken"
        return self._build_and_send(slack_user, day, now, tz)

    def _build_and_send(self, slack_user: str, day: date, now: datetime, tz: str | None) -> str:
        digest = self.reminders.digest(slack_user, now, tz)
        if digest.empty and not digest.unreadable:
            self.reminders.record(slack_user, day, "empty")
            return "empty"
        # Built outside the try: a bug in the blocks is a bug, not a send whose outcome is unknown.
        message = {
            "channel": slack_user,
            "text": digest_text(digest),
            "blocks": digest_blocks(self.deps, digest, tz),
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"day": day.isoformat()}},
            "unfurl_links": False,
        }
        try:
            answer = self.deps.poster.post(**message)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in UNDELIVERABLE:
                log.warning("digest for %s not sent: %s", slack_user, error)
                self.reminders.record(slack_user, day, "failed")
                return "failed"
            log.warning("digest for %s: outcome unknown (%s); will check before sending again", slack_user, error)
            self.reminders.record(slack_user, day, "unknown")
            return "unknown"
        except Exception:
            log.exception("digest for %s: outcome unknown; will check before sending again", slack_user)
            self.reminders.record(slack_user, day, "unknown")
            return "unknown"
        self.reminders.record(
            slack_user,
            day,
            "sent",
            channel=answer.get("channel"),
            ts=answer.get("ts"),
            sent_at=now,
            leads=digest.total,
        )
        return "sent"

    def settle(self, row: DigestRecord, now: datetime) -> str:
        """A digest whose send may have reached Slack: find it in the DM, else send it (the same day only)."""
        slack_user, day = row.slack_user, row.day
        tz = self.reminders.settings(slack_user).tz
        found = self._find_delivered(slack_user, day, row.claimed_at)
        if found is not None:
            channel, ts = found
            self.reminders.record(slack_user, day, "sent", channel=channel, ts=ts, sent_at=now)
            return "found"
        if local_day(now, tz) != day:
            self.reminders.record(slack_user, day, "failed")  # a stale day's digest is not worth sending now
            return "failed"
        self.reminders.record(slack_user, day, "claimed", claimed_at=row.claimed_at)
        return self._build_and_send(slack_user, day, now, tz)

    def _find_delivered(self, slack_user: str, day: date, claimed_at: datetime) -> tuple[str, str] | None:
        client = self.deps.client
        try:
            channel = client.conversations_open(users=slack_user)["channel"]["id"]
            oldest = claimed_at.timestamp() - 60
            history = client.conversations_history(
                channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=100
            )
        except SlackApiError as exc:
            log.warning("could not check %s's DM for a digest: %s", slack_user, exc.response.get("error"))
            raise
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == EVENT_TYPE
                and (metadata.get("event_payload") or {}).get("day") == day.isoformat()
            ):
                return channel, message["ts"]
        return None


def send_now(deps: Deps, slack_user: str) -> str:
    """``/lead remind now``: today's digest at once, as today's; "empty" when nothing is due (nothing is claimed)."""
    now = deps.service.clock()
    tz = deps.timezones.of(slack_user)
    if deps.reminders.digest(slack_user, now, tz).empty:
        return "empty"
    return DigestSender(deps).send_today(slack_user, now)


def redraw_digest(deps: Deps, slack_user: str, notice: str | None) -> list[dict[str, Any]]:
    """Today's digest as it stands now, for a button pressed on it."""
    tz = deps.reminders.settings(slack_user).tz
    digest = deps.reminders.digest(slack_user, deps.service.clock(), tz)
    return digest_blocks(deps, digest, tz, notice)
