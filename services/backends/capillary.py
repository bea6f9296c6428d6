"""Capillary LMS (``/v2/leads``), built against seeds 000 and 001 and ../shared/backends.md.

How Capillary's model maps onto Leadbot's:

- **Staff IDs** are ``USERNAME`` or ``USERNAME/ENTITY_ID``. Capillary names a
  lead's owner by staff username (``owner`` on create and update) but
  attributes writes to a numeric entity id (``createdBy``, ``followedUpBy``).
  Link people as ``ana.s/28812689`` so that the CRM shows who did what; with a
  username alone, writes are attributed to the till (``till_id``).
- **Leads have no name or contact fields**: a lead is for a customer
  (``userId``, or ``idType`` + ``identifier`` when creating). Leadbot keeps the
  name, email and phone a lead was created with (the ``remote_leads`` table)
  and shows ``leadFor · customer USERID`` for leads made elsewhere.
- **Owner** is not in the documented lead reply. Leadbot reads ``owner`` when
  the reply has it, else the owner it last set through Leadbot.
- **Statuses** are OPEN, ON_HOLD, WON, LOST, DELETED. Every status change
  needs a ``reasonId`` (``GET /v2/leads/reasons``) and may take a sub-status
  (``GET /v2/leads/substatuses``); both lists are cached for five minutes.
- **Notes**: the seed documents no note endpoint. A note is saved as a
  follow-up (``POST /v2/leads/{id}/followup``) whose ``notes`` start with
  ``Note:`` and which carries the lead's current ``nextFollowUp`` so the
  schedule is unchanged. Leadbot shows such follow-ups as notes.
- **Errors**: every reply's ``errors`` array is read (a 200 or 201 can carry
  errors); ``warnings`` are logged and shown on the card.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from bot.store import Store, utcnow
from services.backends.base import Backend
from services.backends.http import ApiClient, HttpSettings, Rejected, TtlCache, Unreachable, json_body
from services.backends.memory import LeadMemory
from services.errors import LeadError, LeadGone, NotFound, Unsupported
from services.models import (
    Activity,
    Capabilities,
    Choice,
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

log = logging.getLogger("leadbot.backends")

STATUSES = [
    StatusOption(value="OPEN", label="Open", emoji=":large_green_circle:"),
    StatusOption(value="ON_HOLD", label="On hold", emoji=":double_vertical_bar:"),
    StatusOption(value="WON", label="Won", emoji=":trophy:", open=False),
    StatusOption(value="LOST", label="Lost", emoji=":x:", open=False),
    StatusOption(value="DELETED", label="Deleted", emoji=":wastebasket:", open=False),
]
LEAD_TYPES = ("SKU", "CATEGORY", "BRAND", "CUSTOM")
NOTE_PREFIX = "Note: "
SNOOZE_PREFIX = "Snoozed to "
PAGE = 100  # rows per GET when Leadbot has to filter what Capillary cannot
MAX_PAGES = 10
CACHE_SECONDS = 300
# Leads error codes (docs.capillarytech.com/reference/leads) that mean "no such lead".
LEAD_NOT_FOUND = {92001}


def basic_auth(username: str, password: str) -> str:
    """``Basic base64(username:md5hex(password))``, as Capillary's till authentication asks."""
    digest = hashlib.md5(password.encode()).hexdigest()  # noqa: S324 - Capillary's scheme, not our choice
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


def split_staff(staff_id: str) -> tuple[str, int | None]:
    """``ana.s/28812689`` → (``ana.s``, 28812689); ``ana.s`` → (``ana.s``, None)."""
    username, _, entity = staff_id.partition("/")
    return username, int(entity) if entity.isdigit() else None


def to_api_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def from_api_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class CapillaryBackend(Backend):
    name = "capillary"
    title = "Capillary"
    capabilities = Capabilities(
        status_model=StatusModel.WITH_REASONS,
        notes_how="saved as a follow-up whose notes start with “Note:” (Capillary has no note endpoint)",
        staff_ids="USERNAME or USERNAME/ENTITY_ID (the entity id attributes writes to the person)",
        queues_writes=True,
        customer_ids=True,
    )

    def __init__(
        self,
        store: Store,
        http: HttpSettings,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        token: SecretStr | None = None,
        lead_type: str = "SKU",
        org_source_id: int = -1,
        till_id: int | None = None,
        extended_fields: dict[str, Any] | None = None,
        transport: Any = None,
        sleep: Any = time.sleep,
    ) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["X-CAP-API-OAUTH-TOKEN"] = token.get_secret_value()
        elif username and password is not None:
            headers["Authorization"] = basic_auth(username, password.get_secret_value())
        self.api = ApiClient(self.title, http, headers=headers, transport=transport, sleep=sleep)
        self.store = store
        self.memory = LeadMemory(store, self.name)
        self.lead_type = lead_type
        self.org_source_id = org_source_id
        self.till_id = till_id
        self.extended_fields = extended_fields or {}  # sent with every new lead (the org's own fields)
        self._cache = TtlCache(CACHE_SECONDS)

    # -- replies ------------------------------------------------------------------------------

    def _check(self, response: Any, *, lead_id: str | None = None) -> dict[str, Any]:
        """The reply's body, after reading its ``errors`` and ``warnings`` (on every call)."""
        body = json_body(response, self.title) if response.content else {}
        if not isinstance(body, dict):
            raise Unreachable(f"{self.title} sent a reply Leadbot could not read")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        for warning in body.get("warnings") or []:
            log.warning("capillary warning: %s", _error_text(warning))
        gone = response.status_code == 404 or any(e.get("code") in LEAD_NOT_FOUND for e in errors)
        if gone and lead_id is not None:
            raise LeadGone(f"there is no lead `capillary:{lead_id}`")
        if errors or response.status_code >= 400:
            said = "; ".join(_error_text(e) for e in errors) or f"HTTP {response.status_code}"
            if response.status_code == 401:
                said = "Leadbot's Capillary credentials were refused (HTTP 401); an admin must fix them"
            raise Rejected(f"Capillary refused this: {said}")
        return body

    def _warnings(self, body: dict[str, Any]) -> list[str]:
        return [_error_text(w) for w in body.get("warnings") or []]

    # -- reading ------------------------------------------------------------------------------

    def statuses(self) -> list[StatusOption]:
        return STATUSES

    def get(self, lead_id: str) -> Lead:
        return self._lead(self._raw(lead_id))

    def search(self, query: LeadQuery) -> LeadPage:
        params: dict[str, Any] = {"sortBy": "lastUpdatedOn", "sortOrder": "DESC"}
        if query.owner:
            username, entity = split_staff(query.owner)
            params["owner"] = entity if entity is not None else username
        if query.status:
            params["status"] = self.status_option(query.status).value
        if query.sub_status:
            params["substatus"] = query.sub_status
        open_values = {s.value for s in STATUSES if s.open}

        def wanted(lead: Lead) -> bool:
            if not query.status and lead.status not in open_values:
                return False
            return not (query.due_before and (not lead.next_follow_up or lead.next_follow_up > query.due_before))

        needs_filter = not query.status or query.due_before is not None
        if not needs_filter:
            params |= {"limit": query.limit, "offset": query.offset}
            body = self._check(self.api.read("GET", "/v2/leads", params=params))
            leads = [self._lead(r) for r in body.get("data") or []]
            more = len(leads) == query.limit
            return LeadPage(leads=leads, total=query.offset + len(leads) + more, offset=query.offset, more=more)
        # Capillary filters one status at a time and not by due date: page through and filter here.
        kept: list[Lead] = []
        exhausted = False
        for page in range(MAX_PAGES):
            body = self._check(
                self.api.read("GET", "/v2/leads", params={**params, "limit": PAGE, "offset": page * PAGE})
            )
            rows = body.get("data") or []
            kept += [lead for lead in (self._lead(r) for r in rows) if wanted(lead)]
            if len(rows) < PAGE:
                exhausted = True
                break
            if query.due_before is None and len(kept) > query.offset + query.limit:
                break  # due leads are shown most overdue first, which needs every page
        if query.due_before:
            kept.sort(key=lambda lead: lead.next_follow_up or query.due_before)
        shown = kept[query.offset : query.offset + query.limit]
        more = len(kept) > query.offset + query.limit or not exhausted
        return LeadPage(leads=shown, total=len(kept) + (0 if exhausted else 1), offset=query.offset, more=more)

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        return self._activity(self._raw(lead_id))[:limit]

    def reasons(self) -> list[Choice]:
        body = self._cache.get("reasons", lambda: self._check(self.api.read("GET", "/v2/leads/reasons")))
        return [Choice(value=str(r["id"]), label=str(r.get("reason") or r["id"])) for r in body.get("data") or []]

    def sub_statuses(self, status: str) -> list[Choice]:
        body = self._cache.get("substatuses", lambda: self._check(self.api.read("GET", "/v2/leads/substatuses")))
        wanted = self.status_option(status).value
        return [
            Choice(value=s["subStatus"], label=s["subStatus"])
            for s in body.get("data") or []
            if s.get("status") == wanted and s.get("subStatus")
        ]

    def reachable(self) -> str | None:
        try:
            self._check(self.api.write("GET", "/v2/leads/reasons"))
        except LeadError as exc:
            return exc.message
        return None

    # -- writing ------------------------------------------------------------------------------

    def create(self, lead: NewLead, *, by: str) -> Lead:
        if not lead.lead_for:
            raise Unsupported(
                "Capillary needs to know what the lead is for: give `for=PRODUCT` (an item, brand or category)"
            )
        lead_type = (lead.type or self.lead_type).upper()
        if lead_type not in LEAD_TYPES:
            raise Unsupported(f"`{lead.type}` is not a Capillary lead type; use one of: {', '.join(LEAD_TYPES)}")
        if lead.customer:
            if not lead.customer.isdigit():
                raise Unsupported(f"`{lead.customer}` is not a Capillary customer id (a number, their userId)")
            customer = {"userId": int(lead.customer)}
        elif lead.email:
            customer = {"idType": "EMAIL", "identifier": lead.email}
        elif lead.phone:
            customer = {"idType": "MOBILE", "identifier": lead.phone.lstrip("+")}
        else:
            raise Unsupported("Capillary needs the customer's email or mobile number")
        status = self.status_option(lead.status).value if lead.status else "OPEN"
        body: dict[str, Any] = {
            "type": lead_type,
            "leadFor": lead.lead_for,
            **customer,
            "status": status,
            "orgSourceId": self.org_source_id,
        }
        if lead.sub_status:
            known = [c.value for c in self.sub_statuses(status)]
            if lead.sub_status not in known:
                choices = ", ".join(known) or "none are set up"
                raise Unsupported(f"`{lead.sub_status}` is not a sub-status of {status} in Capillary ({choices})")
            body["subStatus"] = lead.sub_status
        if self.extended_fields:
            body["extendedFields"] = dict(self.extended_fields)
        owner = lead.owner or by
        body["owner"] = split_staff(owner)[0]
        entity = split_staff(by)[1]
        if entity is not None:
            body["createdBy"] = entity
        if lead.next_follow_up:
            body["nextFollowUp"] = to_api_time(lead.next_follow_up)
        if lead.note:
            body["followUpDetails"] = [
                {"followedUpOn": to_api_time(utcnow()), "notes": NOTE_PREFIX + lead.note, **_by(entity)}
            ]
        reply = self._check(self.api.write("POST", "/v2/leads", json=body))
        lead_id = str(reply["id"])
        customer = str(reply["userId"]) if reply.get("userId") is not None else None
        self.memory.remember(
            lead_id, name=lead.name, email=lead.email, phone=lead.phone, owner=owner, customer=customer
        )
        return self._lead(reply)

    def assign(self, lead_id: str, owner: str, *, by: str) -> Lead:
        _check_id(lead_id)
        reply = self._check(
            self.api.write("PUT", f"/v2/leads/{lead_id}", json={"owner": split_staff(owner)[0]}), lead_id=lead_id
        )
        self.memory.remember(lead_id, owner=owner)
        return self._lead(reply)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        _check_id(lead_id)
        body = self._follow_up_body(follow_up.done_at, follow_up.by, follow_up.notes)
        if follow_up.next_follow_up:
            body["nextFollowUp"] = to_api_time(follow_up.next_follow_up)
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        current = self._raw(lead_id)
        body = self._follow_up_body(note.at, note.by, NOTE_PREFIX + note.text)
        if current.get("nextFollowUp"):
            body["nextFollowUp"] = current["nextFollowUp"]  # a note must not move the schedule
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def reschedule(self, lead_id: str, when: datetime, *, by: str) -> Lead:
        """Capillary's follow-up endpoint is also how the next follow-up date is updated (seed 001)."""
        _check_id(lead_id)
        body = self._follow_up_body(utcnow(), by, f"{SNOOZE_PREFIX}{to_api_time(when)}")
        body["nextFollowUp"] = to_api_time(when)
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        _check_id(lead_id)
        status = self.status_option(change.status).value
        reason = self._reason_id(change.reason)
        body: dict[str, Any] = {"status": status, "reasonId": reason}
        if change.sub_status:
            known = [c.value for c in self.sub_statuses(status)]
            if change.sub_status not in known:
                choices = ", ".join(known) or "none are set up"
                raise Unsupported(f"`{change.sub_status}` is not a sub-status of {status} in Capillary ({choices})")
            body["subStatus"] = change.sub_status
        entity = split_staff(change.by)[1]
        if entity is not None:
            body["createdBy"] = entity
        reply = self._check(self.api.write("PUT", f"/v2/leads/{lead_id}/status", json=body), lead_id=lead_id)
        return self._lead(reply)

    # -- did a write that timed out land after all? (the outbox asks before sending it again) -

    def applied(self, op: str, args: dict[str, Any]) -> Lead | None:
        if op == "create":
            return None  # Capillary has no idempotency key or lookup by identifier: see the outbox note
        raw = self._raw(args["lead_id"])
        if op == "assign":
            return self._lead(raw) if self._lead(raw).owner == args["owner"] else None
        if op == "change_status":
            wanted = self.status_option(args["change"]["status"]).value
            return self._lead(raw) if raw.get("status") == wanted else None
        if op in ("log_follow_up", "add_note"):
            item = args.get("follow_up") or args.get("note") or {}
            when = from_api_time(item.get("done_at") or item.get("at"))
            for done in raw.get("followUpDetails") or []:
                if when and from_api_time(done.get("followedUpOn")) == when.replace(microsecond=0):
                    return self._lead(raw)
        return None

    # -- helpers ------------------------------------------------------------------------------

    def _follow_up_body(self, done_at: datetime, by: str, notes: str | None) -> dict[str, Any]:
        entity = split_staff(by)[1]
        created_by = self.till_id if self.till_id is not None else entity
        if created_by is None:
            raise Unsupported(
                "Capillary needs a till id for follow-ups: set `till_id` under [backends.capillary] in"
                " LEADBOT_CONFIG, or link people as USERNAME/ENTITY_ID"
            )
        body: dict[str, Any] = {"followedUpOn": to_api_time(done_at), "createdBy": created_by, **_by(entity)}
        if notes:
            body["notes"] = notes
        return body

    def _reason_id(self, reason: str | None) -> int:
        reasons = self.reasons()
        listed = "; ".join(f"{r.value} {r.label}" for r in reasons[:10]) or "none are set up in Capillary"
        if not reason:
            raise Unsupported(f"Capillary needs a reason for a status change: add `reason=ID` ({listed})")
        wanted = reason.strip().casefold()
        for choice in reasons:
            if wanted in (choice.value, choice.label.casefold()):
                return int(choice.value)
        raise Unsupported(f"`{reason}` is not a Capillary reason ({listed})")

    def _raw(self, lead_id: str) -> dict[str, Any]:
        """One lead. The seed documents no GET by id, only the search: narrow it to the lead's
        customer when Leadbot knows them (it created the lead), else page through recent leads."""
        _check_id(lead_id)
        customer = self.memory.recall(lead_id).get("customer")
        params: dict[str, Any] = {"sortBy": "lastUpdatedOn", "sortOrder": "DESC", "limit": PAGE}
        if customer:
            params["userId"] = customer
        for page in range(1 if customer else MAX_PAGES):
            body = self._check(self.api.read("GET", "/v2/leads", params={**params, "offset": page * PAGE}))
            rows = body.get("data") or []
            for row in rows:
                if str(row.get("id")) == lead_id:
                    return row
            if len(rows) < PAGE:
                break
        raise LeadGone(f"there is no lead `capillary:{lead_id}`")

    def _lead(self, raw: dict[str, Any]) -> Lead:
        lead_id = str(raw.get("id"))
        known = self.memory.recall(lead_id)
        name = known.get("name") or " · ".join(
            p for p in (raw.get("leadFor"), f"customer {raw['userId']}" if raw.get("userId") else None) if p
        )
        times = [from_api_time(raw.get(k)) for k in ("lastUpdatedOn", "lastFollowUp", "createdOn")]
        return Lead(
            backend=self.name,
            id=lead_id,
            name=name or f"lead {lead_id}",
            email=known.get("email"),
            phone=known.get("phone"),
            lead_for=raw.get("leadFor"),
            type=raw.get("type"),
            status=raw.get("status") or "OPEN",
            sub_status=raw.get("subStatus"),
            owner=raw.get("owner") or known.get("owner"),
            next_follow_up=from_api_time(raw.get("nextFollowUp")),
            last_activity=max((t for t in times if t), default=None),
            created_at=from_api_time(raw.get("createdOn")),
            notices=self._warnings(raw),
        )

    def _staff(self, entity: Any) -> str | None:
        """The linked staff ID (``ana.s/28812689``) behind an entity id in a reply, else the bare id."""
        if entity in (None, -1):
            return None
        return self.memory.staff_for(str(entity)) or str(entity)

    def _activity(self, raw: dict[str, Any]) -> list[Activity]:
        found: list[Activity] = []
        for done in raw.get("followUpDetails") or []:
            at = from_api_time(done.get("followedUpOn") or done.get("createdOn"))
            if at is None:
                continue
            notes = done.get("notes") or ""
            by = self._staff(done.get("followedUpBy"))
            if notes.startswith(SNOOZE_PREFIX):
                found.append(Activity(kind="log", at=at, by=by, text="follow-up snoozed"))
            elif notes.startswith(NOTE_PREFIX):
                found.append(Activity(kind="note", at=at, by=by, text=notes.removeprefix(NOTE_PREFIX)))
            else:
                found.append(
                    Activity(kind="follow_up", at=at, by=by, text="follow-up" + (f": {notes}" if notes else ""))
                )
        for change in raw.get("statusLogDetails") or []:
            at = from_api_time(change.get("createdOn"))
            if at is None:
                continue
            reason = f" ({change['reason']})" if change.get("reason") else ""
            sub = f" · {change['subStatus']}" if change.get("subStatus") else ""
            by = self._staff(change.get("createdBy"))
            found.append(Activity(kind="status", at=at, by=by, text=f"status → {change.get('status')}{sub}{reason}"))
        found.sort(key=lambda a: a.at, reverse=True)
        return found


def _by(entity: int | None) -> dict[str, Any]:
    return {"followedUpBy": entity} if entity is not None else {}


def _check_id(lead_id: str) -> None:
    if not lead_id.isdigit():
        raise NotFound(
            f"`capillary:{lead_id}` is not a lead reference: Capillary leads are numbered, e.g. `capillary:19`"
        )


def _error_text(item: Any) -> str:
    if isinstance(item, dict):
        code = item.get("code")
        message = str(item.get("message") or "no message")[:300]
        return f"{message} (code {code})" if code is not None else message
    return str(item)[:300]
