"""Getlead (a write-only API under ``/api``), built against seed 004.

How Getlead's model maps onto Leadbot's:

- **Write-only.** Getlead's API creates leads, tasks, notes, status changes, deals and
  department assignments; nothing can be read back. Leadbot keeps what it sent in its own
  store (``remote_leads``: name, email, phone, owner, next follow-up, and in ``extra`` the
  status, source, company, purpose, department, deals and a history of every write), and
  ``get``, ``search`` and ``activity`` answer from that record: cards, ``/lead list``, App
  Home and digests work, and every lead says ``as_recorded`` ("as recorded by Leadbot").
  ``applied`` cannot look (``capabilities.verifiable`` is False): a queued write whose last
  try may have reached Getlead (a timeout, a reply lost, a 500) is never sent again blindly,
  and its author is told it may have landed; one that surely did not (refused connection,
  503, 429) is sent again. A lead Leadbot never wrote to is shown as "unknown" (Getlead may
  have it: notes and status changes to it go through, and "Enquiry Not Found." says when it
  does not).
- **Lead names.** Getlead names a lead by country code and mobile number, so a reference
  is the number in E.164, ``getlead:+919895012345``. Numbers typed the way people type
  them (``098950 12345``, ``+91 98950-12345``, ``(0)98950 12345``) are read with
  phonenumbers, without ``+`` in ``default_country``, must be valid numbers, and must have
  the 8 to 14 digits (without the country code) that Getlead's create enforces ("The
  mobileno must be between 8 and 14 digits.") before anything is sent. Getlead gets
  ``countrycode`` and the national number (``mobileno``/``mobile_no``/``mobile``).
- **Create** (``gl-website-contacts``): ``countrycode``, ``mobileno``, ``source`` (the
  person's, else ``source``), ``name``, ``email``, ``staff_name`` (the owner),
  ``company_name`` (``for=``), ``purpose`` (``type=``), ``status`` (always: the one given,
  else the first of ``statuses``, so the record is right), ``feedback`` (the note given
  with a new lead: the seed's "customer feedback note") and ``extra_fields`` (the seed's
  additional fields). Getlead's create also updates a lead it has ("update value to
  existing data"), so Leadbot refuses to create a number it has a record of (the existing
  lead is named) rather than overwrite it; a number Getlead has and Leadbot does not know
  cannot be told apart and is updated.
- **Reassigning** uses that same create call on the existing number with the new
  ``staff_name``: the only owner field the seed offers, and the fake treats it as an
  update. The call requires ``source`` and would overwrite it, so Leadbot sends the source
  it recorded, and refuses (saying why) for a lead whose source it does not know.
- **Follow-ups**: the one done is a note ("Follow-up done: …"), as Getlead's API cannot
  complete a task; the next one is a task (``gl-task-creation-api``: ``name``,
  ``description``, ``scheduled_date`` as ``YYYY-MM-DD HH:MM`` in ``timezone``,
  ``assigned_to`` the owner, ``task_category_id`` 1 normal or 2 call, ``follow_up_task``).
  A snooze cannot move that task: Leadbot moves its own next follow-up (reminders follow
  it) and notes the move on the lead. A reason given with a status change is a note too.
- **Deals** (``gl-deal-creation-api``): ``mobile`` with ``countrycode``, ``status`` (the
  deal's, else ``deal_status``), ``deal name``, ``deal_amount`` (whole units: the seed types
  it integer), ``start_date`` (today in ``timezone`` unless given), ``end_date``,
  ``staff_name`` (whoever records it), ``deal_note``.
- **Departments** (``gl-department-vise-agent-assign/{token}``): ``SourceNumber`` is the
  lead's number with its country code (``919895012345``), ``department`` the name (checked
  against ``departments`` when that is set). The seed calls it "assign a source number to a
  department"; reading the source number as the lead's number is Leadbot's choice.
- **Replies** are ``{"status": "success"|"fail"|"error", "message": …}``, on HTTP 200 whatever
  happened: anything but ``success`` is a failure showing Getlead's message ("Enquiry Not
  Found." is "Getlead has no lead …", "Invalid token." names the setting). A reply that is
  not JSON may hide a success (treated as "may have landed").
- **The token** must reach Getlead in the request and nowhere else. Every parameter,
  the token included, goes in a form-encoded POST body (the seed's parameters; Laravel,
  whose messages these are, reads query and body alike), so no URL carries it except the
  department path, which must. That path is redacted in Leadbot's own log lines
  (``ApiClient(redact=…)``), in httpx's and httpcore's log records (``hide_in_logs``), and in
  any message Getlead sends back; no error, audit row, outbox row or record holds it.
- Statuses cannot be read from Getlead: ``statuses`` (in Getlead's order; the first is a new
  lead's) and ``closed_statuses`` say them. No rate limit is documented: a 429 is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.backends.base import Backend, BackendContext, BackendSpec, EnvVar
from services.backends.common import match_query, parse_api_time
from services.backends.http import ApiClient, HttpSettings, hide_in_logs
from services.clock import Clock
from services.contact import without_extension
from services.errors import Code, Duplicate, Invalid, LeadGone, NotFound, Rejected, Unreachable, Unsupported
from services.models import (
    Activity,
    Capabilities,
    Choice,
    Colour,
    Deal,
    FollowUp,
    Lead,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    StatusChange,
    StatusModel,
    StatusOption,
)
from services.ports import RemoteLead, RemoteLeads, Store

log = logging.getLogger("leadbot.backends")

DEFAULT_URL = "https://app.getlead.co.uk/api"
GONE = "Enquiry Not Found."
BAD_TOKEN = "Invalid token."
MOBILE_DIGITS = (8, 14)  # the create's rule: "The mobileno must be between 8 and 14 digits."
HISTORY_KEPT = 100  # lines of a lead's history Leadbot keeps
SENT_KEPT = 200  # the steps of multi-call writes recorded as sent
UNKNOWN = "unknown"  # the status of a lead Leadbot has no record of


@dataclass(frozen=True)
class Mobile:
    """A Getlead lead's name: its country code and national number."""

    country_code: str  # "91"
    national: str  # "9895012345"

    @property
    def e164(self) -> str:
        return f"+{self.country_code}{self.national}"

    @property
    def digits(self) -> str:
        return f"{self.country_code}{self.national}"

    @property
    def shown(self) -> str:
        return phonenumbers.format_number(phonenumbers.parse(self.e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def parse_mobile(text: str, default_country: str) -> Mobile:
    """A number typed the way people type it, checked as Getlead will check it; ``Invalid`` (field ``phone``) if not."""
    typed = (text or "").strip()
    if not typed:
        raise Invalid("Getlead names every lead by its mobile number: give one", field="phone")
    try:
        number = phonenumbers.parse(typed, default_country)
    except phonenumbers.NumberParseException:
        raise Invalid("{value} is not a phone number", field="phone", value=Code(typed)) from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(
            "{value} is not a valid phone number (one without + is read as {country}'s)",
            field="phone",
            value=Code(typed),
            country=default_country,
        )
    national = phonenumbers.national_significant_number(number)
    low, high = MOBILE_DIGITS
    if not low <= len(national) <= high:
        raise Invalid(
            "Getlead takes mobile numbers of {low} to {high} digits without the country code; {value} has {n}",
            field="phone",
            low=low,
            high=high,
            value=Code(typed),
            n=len(national),
        )
    return Mobile(str(number.country_code), national)


class _Said(Rejected):
    """Getlead answered ``fail`` or ``error``; ``said`` is its message."""

    def __init__(self, said: str) -> None:
        self.said = said
        super().__init__("Getlead refused this: {said}", said=said)


class GetleadBackend(Backend):
    name = "getlead"
    title = "Getlead"
    capabilities = Capabilities(
        read=False,
        search=False,
        status_model=StatusModel.CONFIGURABLE,
        deals=True,
        departments=True,
        queues_writes=True,
        verifiable=False,
        search_how="Getlead cannot be read: Leadbot looks through the leads it created there",
        notes_how="",
        snooze_how="kept by Leadbot and noted on the lead (Getlead's API cannot move a task)",
        staff_ids="the agent's name as Getlead knows it (staff_name), e.g. Ajay",
        limits=(
            "write-only: Getlead cannot be read, so cards, lists and reminders show what Leadbot sent, as Leadbot"
            " recorded it; leads are named by mobile number; a follow-up done is a note and the next one a task;"
            " a queued write that may have landed is never sent again"
        ),
    )

    def __init__(self, options: GetleadOptions, context: BackendContext) -> None:
        assert options.token is not None
        self.token = options.token.get_secret_value()
        hide_in_logs(self.token)
        hide_in_logs(quote(self.token, safe=""))
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        self.api = ApiClient(
            self.title,
            http,
            headers={"Accept": "application/json"},
            sleep=context.sleep,
            check_reply=self._check_reply,
            redact=self.redact,
            observe=context.observer(self.name),
            waiting=context.waiting,
        )
        self.store: Store = context.store
        self.remote: RemoteLeads = context.store.remote
        self.clock: Clock = context.clock
        self.options = options
        self.tz = ZoneInfo(options.timezone)
        self.closed = {s.casefold() for s in options.closed_statuses}

    def close(self) -> None:
        self.api.close()

    def redact(self, text: str) -> str:
        """``text`` without the token (as sent, or URL-quoted)."""
        return text.replace(quote(self.token, safe=""), "***").replace(self.token, "***")

    # -- calls --------------------------------------------------------------------------------

    def _check_reply(self, response: Any) -> None:
        """Every reply: Getlead says ``fail``/``error`` on HTTP 200; other statuses mean the URL or token is wrong."""
        status = response.status_code
        body = _maybe_json(response)
        said = self.redact(str(body.get("message") or ""))[:300] if isinstance(body, dict) else ""
        if status in (401, 403) or said == BAD_TOKEN:
            raise Rejected("Getlead refused Leadbot's token — an admin must check LEADBOT_GETLEAD_TOKEN")
        if status >= 500:
            return  # an outage: ApiClient says so (and whether it may have applied)
        if status in (404, 405):
            raise Rejected(
                "Getlead has no such API here (HTTP {status}): an admin must check LEADBOT_GETLEAD_URL ({default})",
                status=status,
                default=Code(DEFAULT_URL),
            )
        if status >= 300:
            raise Rejected("Getlead refused the request (HTTP {status})", status=status)
        if isinstance(body, dict) and str(body.get("status", "")).casefold() not in ("", "success"):
            raise _Said(said or "no message")

    def _post(self, path: str, params: dict[str, Any], mobile: Mobile | None = None) -> None:
        """One write; its parameters, the token too, in a form body (no URL carries them)."""
        form = {"token": self.token, **{k: str(v) for k, v in params.items() if v not in (None, "")}}
        try:
            response = self.api.write("POST", path, data=form)
        except _Said as exc:
            if exc.said == GONE and mobile is not None:
                raise LeadGone("Getlead has no lead {ref}", ref=Code(f"{self.name}:{mobile.e164}")) from None
            raise
        body = _maybe_json(response)
        if not isinstance(body, dict) or str(body.get("status", "")).casefold() != "success":
            log.warning("Getlead answered %s with a reply that is not its JSON", response.status_code)
            raise Unreachable("{backend} sent a reply Leadbot could not read", backend=self.title, maybe_applied=True)

    def _lead_params(self, mobile: Mobile) -> dict[str, str]:
        return {"countrycode": mobile.country_code, "mobile_no": mobile.national}

    # -- what Leadbot recorded ----------------------------------------------------------------

    def _mobile(self, lead_id: str) -> Mobile:
        try:
            return parse_mobile(lead_id, self.options.default_country)
        except Invalid:
            raise NotFound(
                "{ref} is not a lead reference: Getlead leads are named by their mobile number, e.g. {example}",
                ref=Code(f"{self.name}:{lead_id}"),
                example=Code(f"{self.name}:+919895012345"),
            ) from None

    def _record(
        self,
        mobile: Mobile,
        *,
        fields: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        line: tuple[str, str, str] | None = None,
        deal: dict[str, Any] | None = None,
        sent: str | None = None,
    ) -> RemoteLead:
        """Add what a write changed to the lead's record: fields, ``extra`` values, a history ``line``
        (kind, by, text), a deal, the step ``sent``; read and written in one transaction."""
        now = self.clock().isoformat()
        with self.store.atomic():
            known = self.remote.recall(self.name, mobile.e164) or RemoteLead()
            merged = {**known.extra, **(extra or {})}
            merged.setdefault("created_at", now)
            merged["updated_at"] = now
            if line is not None:
                kind, by, text = line
                merged["history"] = [*merged.get("history", []), {"kind": kind, "at": now, "by": by, "text": text}]
                merged["history"] = merged["history"][-HISTORY_KEPT:]
            if deal is not None:
                merged["deals"] = [*merged.get("deals", []), deal][-HISTORY_KEPT:]
            if sent is not None:
                merged["sent"] = [*merged.get("sent", []), sent][-SENT_KEPT:]
            self.remote.remember(self.name, mobile.e164, **(fields or {}), extra=merged)
            return self.remote.recall(self.name, mobile.e164) or RemoteLead()

    def _once(self, mobile: Mobile, receipt: str | None, step: str, send: Callable[[], None], **record: Any) -> None:
        """One call of a write, unless a resend of it finds that call recorded as sent; then record what it did."""
        mark = f"{receipt}:{step}" if receipt else None
        known = self.remote.recall(self.name, mobile.e164)
        if mark and known is not None and mark in known.extra.get("sent", []):
            return
        send()
        self._record(mobile, sent=mark, **record)

    def _lead(self, mobile: Mobile, known: RemoteLead | None) -> Lead:
        if known is None:  # never written to through Leadbot: Getlead may have it, Leadbot knows nothing of it
            return Lead(
                backend=self.name,
                id=mobile.e164,
                name=mobile.shown,
                phone=mobile.e164,
                status=UNKNOWN,
                history=(),
                as_recorded=True,
            )
        extra = known.extra
        return Lead(
            backend=self.name,
            id=mobile.e164,
            name=known.name or mobile.shown,
            email=known.email,
            phone=mobile.e164,
            lead_for=extra.get("company"),
            type=extra.get("purpose"),
            source=extra.get("source"),
            status=str(extra.get("status") or UNKNOWN),
            owner=known.owner,
            next_follow_up=known.next_follow_up,
            last_activity=parse_api_time(extra.get("updated_at")),
            created_at=parse_api_time(extra.get("created_at")) if extra.get("created_by_leadbot") else None,
            department=extra.get("department"),
            history=tuple(_history(extra)[:10]),
            as_recorded=True,
        )

    # -- reading (what Leadbot recorded) --------------------------------------------------------

    def statuses(self) -> list[StatusOption]:
        return [
            _status(value, first=n == 0, closed=value.casefold() in self.closed)
            for n, value in enumerate(self.options.statuses)
        ]

    def get(self, lead_id: str) -> Lead:
        mobile = self._mobile(lead_id)
        return self._lead(mobile, self.remote.recall(self.name, mobile.e164))

    def search(self, query: LeadQuery) -> LeadPage:
        if query.status:
            self.status_option(query.status)
        known = self.remote.recall_all(self.name)
        leads = []
        for lead_id, record in known.items():
            try:
                leads.append(self._lead(self._mobile(lead_id), record))
            except NotFound:
                continue
        leads.sort(key=lambda lead: lead.created_at or lead.last_activity or datetime.min.replace(tzinfo=UTC))
        return match_query(reversed(leads), query, self.statuses())  # undated leads newest first

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        known = self.remote.recall(self.name, self._mobile(lead_id).e164)
        return _history(known.extra)[:limit] if known else []

    def reachable(self) -> str | None:
        """Whether Getlead answers at all: a GET without the token (every API call is a write)."""
        import httpx

        try:
            response = self.api.http.get("/gl-website-contacts")
        except httpx.HTTPError:
            return "Getlead could not be reached"
        if response.status_code >= 500:
            return f"Getlead had an error (HTTP {response.status_code})"
        return None

    def applied(self, op: str, args: dict[str, Any]) -> Lead | None:
        """Getlead cannot be read, so it cannot be asked whether a write landed (``verifiable`` is False)."""
        return None

    # -- writing ------------------------------------------------------------------------------

    def create(self, lead: NewLead, *, by: str) -> Lead:
        if lead.customer or lead.sub_status:
            raise Unsupported("Getlead takes no customer id or sub-status", field="customer")
        mobile = parse_mobile(without_extension(lead.phone) or "", self.options.default_country)
        known = self.remote.recall(self.name, mobile.e164)
        resumed = known is not None and lead.receipt is not None and known.extra.get("receipt") == lead.receipt
        if known is not None and not resumed:
            ref = f"{self.name}:{mobile.e164}"
            raise Duplicate("a lead with this mobile number exists already: {ref}", existing_ref=ref, ref=Code(ref))
        status = self.status_option(lead.status).value if lead.status else self.statuses()[0].value
        owner = lead.owner or by
        source = lead.source or self.options.source
        params = {
            "countrycode": mobile.country_code,
            "mobileno": mobile.national,
            "source": source,
            "name": lead.name,
            "email": lead.email,
            "staff_name": owner,
            "company_name": lead.lead_for,
            "purpose": lead.type,
            "status": status,
            "feedback": lead.note,
            **self.options.extra_fields,
        }
        if not resumed:
            self._post("/gl-website-contacts", params)
            extra = {"status": status, "source": source, "company": lead.lead_for, "purpose": lead.type}
            extra |= {"receipt": lead.receipt, "created_by_leadbot": True}
            self._record(
                mobile,
                fields={"name": lead.name, "email": lead.email, "phone": mobile.e164, "owner": owner},
                extra={k: v for k, v in extra.items() if v is not None},
                line=("log", by, "created through Leadbot"),
            )
            if lead.note:
                self._record(mobile, line=("note", by, lead.note))
        if lead.next_follow_up:
            self._schedule(mobile, lead.name, lead.next_follow_up, owner, by, lead.receipt)
        return self.get(mobile.e164)

    def _schedule(self, mobile: Mobile, name: str, when: datetime, owner: str, by: str, receipt: str | None) -> None:
        """The next follow-up as a Getlead task, assigned to the lead's owner."""
        params = {
            "name": f"Follow up with {name}",
            "description": f"Next follow-up, scheduled through Leadbot by {by}",
            **self._lead_params(mobile),
            "task_category_id": self.options.follow_up_task,
            "scheduled_date": when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M"),
            "assigned_to": owner,
        }
        self._once(
            mobile,
            receipt,
            "task",
            lambda: self._post("/gl-task-creation-api", params, mobile),
            fields={"next_follow_up": when},
        )

    def _note(self, mobile: Mobile, text: str, receipt: str | None, line: tuple[str, str, str], **record: Any) -> None:
        params = {"note": text, **self._lead_params(mobile)}
        self._once(
            mobile, receipt, "note", lambda: self._post("/gl-note-creation-api", params, mobile), line=line, **record
        )

    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead:
        mobile = self._mobile(lead_id)
        known = self.remote.recall(self.name, mobile.e164)
        source = known.extra.get("source") if known else None
        if not source:
            raise Unsupported(
                "Getlead reassigns a lead only through its create call, which also overwrites the lead's source;"
                " Leadbot does not know {ref}'s source, so it will not: reassign it in Getlead",
                ref=Code(f"{self.name}:{mobile.e164}"),
            )
        params = {"countrycode": mobile.country_code, "mobileno": mobile.national, "source": source}
        self._post("/gl-website-contacts", {**params, "staff_name": owner})
        self._record(mobile, fields={"owner": owner}, line=("log", by, f"assigned to {owner}"))
        return self.get(mobile.e164)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        mobile = self._mobile(lead_id)
        self._note(mobile, note.text, note.receipt, ("note", note.by, note.text))
        return self.get(mobile.e164)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        mobile = self._mobile(lead_id)
        if change.sub_status:
            raise Unsupported("Getlead statuses have no sub-statuses", field="sub_status")
        status = self.status_option(change.status).value
        params = {"status": status, **self._lead_params(mobile)}
        text = f"status → {status}" + (f" ({change.reason})" if change.reason else "")
        self._once(
            mobile,
            change.receipt,
            "status",
            lambda: self._post("/gl-status-change-api", params, mobile),
            extra={"status": status},
            line=("status", change.by, text),
        )
        if change.reason:  # Getlead's status change takes no reason: kept as a note rather than dropped
            self._note(
                mobile, f"Status → {status}: {change.reason}", change.receipt, ("log", change.by, "reason noted")
            )
        return self.get(mobile.e164)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        """The follow-up done as a note (Getlead cannot complete a task), the next one as a task."""
        mobile = self._mobile(lead_id)
        text = "Follow-up done" + (f": {follow_up.notes}" if follow_up.notes else "")
        shown = "follow-up" + (f": {follow_up.notes}" if follow_up.notes else "")
        self._note(
            mobile,
            text,
            follow_up.receipt,
            ("follow_up", follow_up.by, shown),
            fields={"next_follow_up": follow_up.next_follow_up},
        )
        if follow_up.next_follow_up:
            known = self.remote.recall(self.name, mobile.e164)
            owner = (known.owner if known else None) or follow_up.by
            name = (known.name if known else None) or mobile.shown
            self._schedule(mobile, name, follow_up.next_follow_up, owner, follow_up.by, follow_up.receipt)
        return self.get(mobile.e164)

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        """Getlead cannot move a task: Leadbot moves its own next follow-up and notes the move on the lead."""
        mobile = self._mobile(lead_id)
        at = when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")
        self._note(
            mobile,
            f"Next follow-up moved to {at} (through Leadbot, by {by})",
            receipt,
            ("log", by, "follow-up snoozed"),
            fields={"next_follow_up": when},
        )
        return self.get(mobile.e164)

    def add_deal(self, lead_id: str, deal: Deal) -> Lead:
        mobile = self._mobile(lead_id)
        if deal.amount != deal.amount.to_integral_value():
            raise Invalid("Getlead takes deal amounts in whole units", field="amount")
        start = deal.start or self.clock().astimezone(self.tz).date()
        status = deal.status or self.options.deal_status
        params = {
            "mobile": mobile.national,
            "countrycode": mobile.country_code,
            "status": status,
            "deal name": deal.name,
            "deal_amount": int(deal.amount),
            "start_date": start.isoformat(),
            "end_date": deal.end.isoformat() if deal.end else None,
            "staff_name": deal.by,
            "deal_note": deal.note,
        }
        recorded = {"amount": str(deal.amount), "name": deal.name, "status": status, "start": start.isoformat()}
        recorded |= {"end": deal.end.isoformat() if deal.end else None, "note": deal.note, "by": deal.by}
        self._once(
            mobile,
            deal.receipt,
            "deal",
            lambda: self._post("/gl-deal-creation-api", params, mobile),
            deal=recorded,
            line=("log", deal.by, _deal_line(deal.amount, deal.name, status)),
        )
        return self.get(mobile.e164)

    def set_department(self, lead_id: str, department: str, *, by: str, receipt: str | None = None) -> Lead:
        mobile = self._mobile(lead_id)
        name = self._department(department)
        params = {"SourceNumber": mobile.digits, "department": name}
        path = f"/gl-department-vise-agent-assign/{quote(self.token, safe='')}"
        self._once(
            mobile,
            receipt,
            "department",
            lambda: self._post(path, params, mobile),
            extra={"department": name},
            line=("log", by, f"department → {name}"),
        )
        return self.get(mobile.e164)

    def departments(self) -> list[Choice]:
        return [Choice(value=name, label=name) for name in self.options.departments]

    def _department(self, department: str) -> str:
        known = self.options.departments
        if not known:
            return department
        for name in known:
            if name.casefold() == department.strip().casefold():
                return name
        raise Invalid(
            "{value} is not a Getlead department here; use one of: {known}",
            field="department",
            value=Code(department),
            known=", ".join(known),
        )


def _status(value: str, *, first: bool, closed: bool) -> StatusOption:
    if not closed:
        return StatusOption(value=value, label=value, colour=Colour.BLUE if first else Colour.YELLOW)
    won = any(word in value.casefold() for word in ("convert", "won", "customer"))
    return StatusOption(value=value, label=value, colour=Colour.GREEN if won else Colour.RED, open=False)


def _maybe_json(response: Any) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _history(extra: dict[str, Any]) -> list[Activity]:
    """The record's history, newest first."""
    found = []
    for item in reversed(extra.get("history") or []):
        at = parse_api_time(item.get("at"))
        if at is not None:
            found.append(Activity(kind=item.get("kind", "log"), at=at, by=item.get("by"), text=item.get("text", "")))
    return found


def _deal_line(amount: Decimal, name: str | None, status: str) -> str:
    return f"deal {amount:,}" + (f" “{name}”" if name else "") + f" · {status}"


# -- configuration ----------------------------------------------------------------------------


class GetleadOptions(BaseModel):
    """``LEADBOT_GETLEAD_*`` and ``[backends.getlead]`` in LEADBOT_CONFIG."""

    model_config = ConfigDict(extra="forbid")

    url: str = DEFAULT_URL
    token: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    source: str = "Slack"  # a new lead's source when the person gives none (Getlead requires one)
    default_country: str = "IN"  # how numbers typed without + are read (a region, or its calling code: 91)
    timezone: str = "Asia/Kolkata"  # the account's: task and deal dates are sent in it
    statuses: list[str] = Field(
        default_factory=lambda: ["New", "Contacted", "Interested", "Not Interested", "Converted"], min_length=1
    )
    closed_statuses: list[str] = Field(default_factory=lambda: ["Not Interested", "Converted"])
    departments: list[str] = Field(default_factory=list)  # checked before sending, when set
    deal_status: str = "Open"  # a deal's status when none is given (Getlead requires one)
    follow_up_task: int = Field(2, ge=1, le=2)  # task_category_id of follow-ups: 1 normal task, 2 call task
    extra_fields: dict[str, str] = Field(default_factory=dict)  # additional fields sent with every new lead

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str) -> str:
        text = value.strip().lstrip("+").upper()
        if text.isdigit():
            region = phonenumbers.region_code_for_country_code(int(text))
            if region == "ZZ":
                raise ValueError(f"+{text} is no country's calling code")
            return region
        if text not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a country code such as IN (or 91)")
        return text

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone such as Asia/Kolkata") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _token_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("token"):
            raise ValueError("LEADBOT_GETLEAD_URL is set without LEADBOT_GETLEAD_TOKEN: expected the API token")
        return data

    @model_validator(mode="after")
    def _closed_are_statuses(self) -> GetleadOptions:
        unknown = {s.casefold() for s in self.closed_statuses} - {s.casefold() for s in self.statuses}
        if unknown:
            raise ValueError(f"closed_statuses names statuses not in statuses: {', '.join(sorted(unknown))}")
        return self


SPEC = BackendSpec(
    name="getlead",
    title=GetleadBackend.title,
    options=GetleadOptions,
    build=GetleadBackend,
    env=(
        EnvVar("LEADBOT_GETLEAD_URL", "url", f"Getlead's API URL (default {DEFAULT_URL})"),
        EnvVar("LEADBOT_GETLEAD_TOKEN", "token", "the API token (Settings > GL Connect > API)", secret=True),
    ),
    summary="Getlead (write-only): leads by mobile number, notes, status, tasks, deals, departments; kept by Leadbot",
)
