"""Capillary LMS (``/v2/leads``), built against Capillary's published v2 leads documentation
(https://github.com/Capillary/api-documentation, ``source/includes/_leads.md``) and its
authentication and error pages (https://docs.capillarytech.com/reference/authentication).

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
- **Owner**: replies carry the owner's staff username (``bob.k``), which is
  mapped back to the linked staff ID (``bob.k/28812690``) so cards, DMs and
  "nothing changed" know the person; without ``owner`` in a reply, the owner
  Leadbot last set stands.
- **Statuses** are OPEN, ON_HOLD, WON, LOST, DELETED. Every status change
  needs a ``reasonId`` (``GET /v2/leads/reasons``) and may take a sub-status
  (``GET /v2/leads/substatuses``); both lists are cached for five minutes.
- **Notes**: Capillary documents no note endpoint. A note is saved as a
  follow-up (``POST /v2/leads/{id}/followup``) whose ``notes`` start with
  ``Note:`` and which carries the lead's current ``nextFollowUp`` so the
  schedule is unchanged. Leadbot shows such follow-ups as notes. A snooze is
  a follow-up too (``Snoozed to …``): the follow-up endpoint is the only one
  that moves ``nextFollowUp``. Both appear in Capillary as follow-ups logged
  at the time they were made.
- **Receipts**: Capillary takes no idempotency key. Every follow-up, note and
  snooze Leadbot writes ends with its receipt, ``(lb:1a2b3c4d)``, and every
  new lead carries a first follow-up with one (the note given, or "Created
  through Leadbot"), so a queued write is found by its receipt before it is
  sent again (``applied``). Assignments are checked by the owner, status
  changes by a status log entry with the same status, reason and sub-status
  made since the change was asked.
- **Authentication**: till credentials (Basic, the password as its MD5), an
  OAuth client (``LEADBOT_CAPILLARY_CLIENT_KEY``/``_SECRET``: a token from
  ``POST /v3/oauth/token/generate``, renewed before it expires and once on a
  401), or a static token. Follow-ups need the till that makes them
  (``createdBy``): ``till_id`` is required.
- **Errors**: every reply's ``errors`` array is read (a 200 or 201 can carry
  errors); ``warnings`` are logged and shown on the card.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.backends.base import Backend, BackendContext, BackendSpec, EnvVar
from services.backends.common import marked, numeric_id, parse_api_time, receipt_of, to_api_time, unmarked
from services.backends.http import ApiClient, HttpSettings, TtlCache, json_body
from services.clock import Clock
from services.contact import without_extension
from services.errors import Code, Invalid, LeadError, LeadGone, Rejected, Unreachable
from services.models import (
    Activity,
    Capabilities,
    Choice,
    Colour,
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
from services.ports import RemoteLead, RemoteLeads, StaffLinks
from services.search import ranked, terms

log = logging.getLogger("leadbot.backends")

STATUSES = (
    StatusOption(value="OPEN", label="Open", colour=Colour.BLUE),
    StatusOption(value="ON_HOLD", label="On hold", colour=Colour.YELLOW),
    StatusOption(value="WON", label="Won", colour=Colour.GREEN, open=False),
    StatusOption(value="LOST", label="Lost", colour=Colour.RED, open=False),
    StatusOption(value="DELETED", label="Deleted", colour=Colour.GREY, open=False),
)
LEAD_TYPES = ("SKU", "CATEGORY", "BRAND", "CUSTOM")
NOTE_PREFIX = "Note: "
SNOOZE_PREFIX = "Snoozed to "
CREATED = "Created through Leadbot"  # the first follow-up of a lead made without a note: it carries the receipt
TOKEN_PATH = "/v3/oauth/token/generate"
CLOCK_SKEW = timedelta(minutes=5)  # a status log entry this much older than the change still counts as it
PAGE = 100  # rows per GET when Leadbot has to filter what Capillary cannot
MAX_PAGES = 10
CACHE_SECONDS = 300
# Leads error codes (docs.capillarytech.com/reference/leads) that mean "no such lead".
LEAD_NOT_FOUND = frozenset({92001})


def basic_auth(username: str, password: str) -> str:
    """``Basic base64(username:md5hex(password))``, as Capillary's till authentication asks."""
    digest = hashlib.md5(password.encode()).hexdigest()  # noqa: S324 - Capillary's scheme, not our choice
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


def staff_id_problem(staff_id: str) -> str | None:
    """Why ``staff_id`` is not ``USERNAME`` or ``USERNAME/ENTITY_ID``, if it is not."""
    username, slash, entity = staff_id.partition("/")
    if not username:
        return "a Capillary staff ID starts with the staff username, e.g. ana.s or ana.s/28812689"
    if slash and not (entity.isdigit() and len(entity) <= 18):
        return "after the / comes the staff member's numeric entity id, e.g. ana.s/28812689"
    return None


def split_staff(staff_id: str) -> tuple[str, int | None]:
    """``ana.s/28812689`` → (``ana.s``, 28812689); ``ana.s`` → (``ana.s``, None)."""
    username, _, entity = staff_id.partition("/")
    return username, int(entity) if entity.isdigit() else None


class OAuthToken:
    """An OAuth access token from Capillary's token endpoint, renewed before it expires and when refused."""

    def __init__(self, options: CapillaryOptions, context: BackendContext) -> None:
        assert options.client_key and options.client_secret is not None
        self.key, self.secret = options.client_key, options.client_secret
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.api = ApiClient(
            "Capillary",
            http,
            headers=headers,
            sleep=context.sleep,
            observe=context.observer("capillary"),
            waiting=context.waiting,
        )
        self.clock = context.clock
        self._token: str | None = None
        self._renew_at: datetime | None = None
        self._lock = threading.Lock()
        self.issued = 0

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._renew_at is None or self.clock() >= self._renew_at:
                self._generate()
            return {"X-CAP-API-OAUTH-TOKEN": self._token or ""}

    def refused(self) -> None:
        with self._lock:
            self._token = None

    def _generate(self) -> None:
        response = self.api.write("POST", TOKEN_PATH, json={"key": self.key, "secret": self.secret.get_secret_value()})
        body = json_body(response, "Capillary") if response.content else {}
        data = body.get("data") if isinstance(body, dict) else None
        if response.status_code >= 400 or not isinstance(data, dict) or not data.get("accessToken"):
            raise Rejected(
                "Leadbot's OAuth client for Capillary was refused (HTTP {status}); an admin must check"
                " LEADBOT_CAPILLARY_CLIENT_KEY and LEADBOT_CAPILLARY_CLIENT_SECRET",
                status=response.status_code,
            )
        ttl = float(data.get("ttlSeconds") or 300)
        self._token = str(data["accessToken"])
        # Renewed when four fifths of its life have passed (at least 10 s before it ends).
        self._renew_at = self.clock() + timedelta(seconds=min(ttl * 0.8, max(ttl - 10, 0)))
        self.issued += 1

    def close(self) -> None:
        self.api.close()


class CapillaryBackend(Backend):
    name = "capillary"
    title = "Capillary"
    capabilities = Capabilities(
        status_model=StatusModel.WITH_REASONS,
        notes_how="saved as a follow-up whose notes start with “Note:” (Capillary has no note endpoint)",
        snooze_how="saved as a follow-up “Snoozed to …” (only a follow-up moves Capillary's next follow-up)",
        staff_ids="USERNAME or USERNAME/ENTITY_ID (the entity id attributes writes to the person)",
        queues_writes=True,
        customer_ids=True,
        search_how="Capillary has no search by name: Leadbot reads its latest 1,000 leads and looks through them",
    )

    def check_staff_id(self, staff_id: str) -> None:
        # Capillary documents no way to look a staff member up: the shape alone is checked.
        problem = staff_id_problem(staff_id)
        if problem:
            raise Invalid(problem, field="staff_id")

    def __init__(self, options: CapillaryOptions, context: BackendContext) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.oauth: OAuthToken | None = None
        if options.client_key:
            self.oauth = OAuthToken(options, context)
            self.refused_what = "Leadbot's OAuth client for Capillary was"
            self.refused_hint = "LEADBOT_CAPILLARY_CLIENT_KEY and LEADBOT_CAPILLARY_CLIENT_SECRET"
        elif options.token is not None:
            headers["X-CAP-API-OAUTH-TOKEN"] = options.token.get_secret_value()
            self.refused_what = "Leadbot's token for Capillary was"
            self.refused_hint = "LEADBOT_CAPILLARY_TOKEN"
        else:
            assert options.username and options.password is not None
            headers["Authorization"] = basic_auth(options.username, options.password.get_secret_value())
            self.refused_what = "Leadbot's till credentials for Capillary were"
            self.refused_hint = "LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD"
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        self.api = ApiClient(
            self.title,
            http,
            headers=headers,
            sleep=context.sleep,
            auth=self.oauth,
            observe=context.observer(self.name),
            waiting=context.waiting,
        )
        self.remote: RemoteLeads = context.store.remote
        self.links: StaffLinks = context.store.links
        self.clock: Clock = context.clock
        self.lead_type = options.type
        self.org_source_id = options.org_source_id
        self.till_id = options.till_id
        self.extended_fields = dict(options.extended_fields)  # sent with every new lead (the org's own fields)
        self._cache = TtlCache(CACHE_SECONDS)

    def close(self) -> None:
        self.api.close()
        if self.oauth is not None:
            self.oauth.close()

    # -- replies ------------------------------------------------------------------------------

    def _check(self, response: Any, *, lead_id: str | None = None) -> dict[str, Any]:
        """The reply's body, after reading its ``errors`` and ``warnings`` (on every call)."""
        body = json_body(response, self.title) if response.content else {}
        if not isinstance(body, dict):
            raise Unreachable("{backend} sent a reply Leadbot could not read", backend=self.title)
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        for warning in body.get("warnings") or []:
            log.warning("capillary warning: %s", _error_text(warning))
        gone = response.status_code == 404 or any(e.get("code") in LEAD_NOT_FOUND for e in errors)
        if gone and lead_id is not None:
            raise LeadGone("there is no lead {ref}", ref=Code(f"capillary:{lead_id}"))
        if response.status_code == 401:
            raise Rejected(
                self.refused_what + " refused (HTTP 401); an admin must check {setting}", setting=self.refused_hint
            )
        if errors or response.status_code >= 400:
            said = "; ".join(_error_text(e) for e in errors) or f"HTTP {response.status_code}"
            raise Rejected("Capillary refused this: {said}", said=said)
        return body

    def _warnings(self, body: dict[str, Any]) -> list[str]:
        return [_error_text(w) for w in body.get("warnings") or []]

    # -- reading ------------------------------------------------------------------------------

    def statuses(self) -> list[StatusOption]:
        return list(STATUSES)

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
            if not query.status and query.text is None and lead.status not in open_values:
                return False
            if query.unassigned and lead.owner is not None:
                return False
            return not (query.due_before and (not lead.next_follow_up or lead.next_follow_up > query.due_before))

        needs_filter = not query.status or query.due_before is not None or query.text is not None or query.unassigned
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
            if query.due_before is None and query.text is None and len(kept) > query.offset + query.limit:
                break  # due leads are shown most overdue first, which needs every page
        if query.due_before:
            kept.sort(key=lambda lead: lead.next_follow_up or query.due_before)
        if query.text is not None:
            kept = ranked(kept, terms(query.text))
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
            raise Invalid("Capillary needs to know what the lead is for (an item, brand or category)", field="lead_for")
        lead_type = (lead.type or self.lead_type).upper()
        if lead_type not in LEAD_TYPES:
            raise Invalid(
                "{value} is not a Capillary lead type; use one of: {known}",
                field="type",
                value=Code(lead.type or ""),
                known=", ".join(LEAD_TYPES),
            )
        if lead.customer:
            if not (lead.customer.isascii() and lead.customer.isdigit()):
                raise Invalid(
                    "{value} is not a Capillary customer id (a number, their userId)",
                    field="customer",
                    value=Code(lead.customer),
                )
            customer: dict[str, Any] = {"userId": int(lead.customer)}
        elif lead.email:
            customer = {"idType": "EMAIL", "identifier": lead.email}
        elif lead.phone:
            customer = {"idType": "MOBILE", "identifier": (without_extension(lead.phone) or "").lstrip("+")}
        else:
            raise Invalid("Capillary needs the customer's email or mobile number", field="email")
        status = self.status_option(lead.status).value if lead.status else "OPEN"
        body: dict[str, Any] = {
            "type": lead_type,
            "leadFor": lead.lead_for,
            **customer,
            "status": status,
            "orgSourceId": self.org_source_id,
        }
        if lead.sub_status:
            body["subStatus"] = self._sub_status(status, lead.sub_status)
        if self.extended_fields:
            body["extendedFields"] = dict(self.extended_fields)
        owner = lead.owner or by
        body["owner"] = split_staff(owner)[0]
        entity = split_staff(by)[1]
        if entity is not None:
            body["createdBy"] = entity
        if lead.next_follow_up:
            body["nextFollowUp"] = to_api_time(lead.next_follow_up)
        # The lead's first follow-up carries the receipt, so a lead whose reply was lost is found, not made twice.
        first = NOTE_PREFIX + lead.note if lead.note else CREATED
        body["followUpDetails"] = [
            {"followedUpOn": to_api_time(self.clock()), "notes": marked(first, lead.receipt), **_by(entity)}
        ]
        reply = self._check(self.api.write("POST", "/v2/leads", json=body))
        self._remember_created(reply, lead, owner)
        return self._lead(reply)

    def _remember_created(self, reply: dict[str, Any], lead: NewLead, owner: str) -> None:
        customer_id = str(reply["userId"]) if reply.get("userId") is not None else None
        self.remote.remember(
            self.name,
            str(reply["id"]),
            name=lead.name,
            email=lead.email,
            phone=lead.phone,
            owner=owner,
            customer=customer_id,
        )

    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead:
        self._id(lead_id)
        reply = self._check(
            self.api.write("PUT", f"/v2/leads/{lead_id}", json={"owner": split_staff(owner)[0]}), lead_id=lead_id
        )
        self.remote.remember(self.name, lead_id, owner=owner)
        return self._lead(reply)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        self._id(lead_id)
        body = self._follow_up_body(follow_up.done_at, follow_up.by, marked(follow_up.notes, follow_up.receipt))
        if follow_up.next_follow_up:
            body["nextFollowUp"] = to_api_time(follow_up.next_follow_up)
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        current = self._raw(lead_id)
        body = self._follow_up_body(note.at, note.by, marked(NOTE_PREFIX + note.text, note.receipt))
        if current.get("nextFollowUp"):
            body["nextFollowUp"] = current["nextFollowUp"]  # a note must not move the schedule
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        """Capillary's follow-up endpoint is also how the next follow-up date is updated (its leads doc)."""
        self._id(lead_id)
        body = self._follow_up_body(self.clock(), by, marked(f"{SNOOZE_PREFIX}{to_api_time(when)}", receipt))
        body["nextFollowUp"] = to_api_time(when)
        reply = self._check(self.api.write("POST", f"/v2/leads/{lead_id}/followup", json=body), lead_id=lead_id)
        return self._lead(reply)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        self._id(lead_id)
        status = self.status_option(change.status).value
        reason = self._reason_id(change.reason)
        body: dict[str, Any] = {"status": status, "reasonId": reason}
        if change.sub_status:
            body["subStatus"] = self._sub_status(status, change.sub_status)
        entity = split_staff(change.by)[1]
        if entity is not None:
            body["createdBy"] = entity
        reply = self._check(self.api.write("PUT", f"/v2/leads/{lead_id}/status", json=body), lead_id=lead_id)
        return self._lead(reply)

    # -- did a write that timed out land after all? (the outbox asks before sending it again) -

    def applied(self, op: str, args: dict[str, Any]) -> Lead | None:
        if op == "create":
            return self._created(NewLead.model_validate(args["lead"]), args["by"])
        raw = self._raw(args["lead_id"])
        if op == "assign":
            lead = self._lead(raw)
            return lead if lead.owner == args["owner"] else None
        if op == "change_status":
            return self._lead(raw) if self._status_logged(raw, StatusChange.model_validate(args["change"])) else None
        item = args.get("follow_up") or args.get("note") or {}
        receipt = item.get("receipt") or args.get("receipt")
        followed = raw.get("followUpDetails") or []
        if receipt and any(receipt_of(done.get("notes")) == receipt for done in followed):
            return self._lead(raw)
        return None

    def _created(self, lead: NewLead, by: str) -> Lead | None:
        """A new lead whose reply was lost, found among the latest leads by the receipt on its first follow-up."""
        if not lead.receipt:
            return None
        params: dict[str, Any] = {"sortBy": "createdon", "sortOrder": "DESC", "limit": PAGE}
        for page in range(3):  # the latest 300 leads: a lead queued within the day is among them
            rows = (
                self._check(self.api.read("GET", "/v2/leads", params={**params, "offset": page * PAGE})).get("data")
                or []
            )
            for row in rows:
                if any(receipt_of(done.get("notes")) == lead.receipt for done in row.get("followUpDetails") or []):
                    self._remember_created(row, lead, lead.owner or by)
                    return self._lead(row)
            if len(rows) < PAGE:
                break
        return None

    def _status_logged(self, raw: dict[str, Any], change: StatusChange) -> bool:
        """Whether the status log has this change: same status, reason and sub-status, made since it was asked."""
        wanted = self.status_option(change.status).value
        reason = self._reason_id(change.reason) if change.reason else None
        for entry in raw.get("statusLogDetails") or []:
            at = parse_api_time(entry.get("createdOn"))
            if (
                entry.get("status") == wanted
                and (reason is None or entry.get("reasonId") == reason)
                and (entry.get("subStatus") or None) == (change.sub_status or None)
                and at is not None
                and at >= change.at - CLOCK_SKEW
            ):
                return True
        return False

    # -- helpers ------------------------------------------------------------------------------

    def _id(self, lead_id: str) -> int:
        return numeric_id(self.name, lead_id)

    def _sub_status(self, status: str, sub_status: str) -> str:
        known = [c.value for c in self.sub_statuses(status)]
        if sub_status not in known:
            raise Invalid(
                "{value} is not a sub-status of {status} in Capillary ({choices})",
                field="sub_status",
                value=Code(sub_status),
                status=status,
                choices=", ".join(known) or "none are set up",
            )
        return sub_status

    def _follow_up_body(self, done_at: datetime, by: str, notes: str | None) -> dict[str, Any]:
        # createdBy is "the till id that updated the follow up"; who followed up is the staff's entity id.
        entity = split_staff(by)[1]
        body: dict[str, Any] = {"followedUpOn": to_api_time(done_at), "createdBy": self.till_id, **_by(entity)}
        if notes:
            body["notes"] = notes
        return body

    def _reason_id(self, reason: str | None) -> int:
        reasons = self.reasons()
        listed = "; ".join(f"{r.value} {r.label}" for r in reasons[:10]) or "none are set up in Capillary"
        if not reason:
            raise Invalid("Capillary needs a reason for a status change ({listed})", field="reason", listed=listed)
        wanted = reason.strip().casefold()
        for choice in reasons:
            if wanted in (choice.value, choice.label.casefold()):
                return int(choice.value)
        raise Invalid("{value} is not a Capillary reason ({listed})", field="reason", value=Code(reason), listed=listed)

    def _raw(self, lead_id: str) -> dict[str, Any]:
        """One lead. Capillary documents no GET by id, only the search: narrow it to the lead's
        customer when Leadbot knows them (it created the lead), else page through recent leads."""
        self._id(lead_id)
        known = self.remote.recall(self.name, lead_id)
        customer = known.customer if known else None
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
        raise LeadGone("there is no lead {ref}", ref=Code(f"capillary:{lead_id}"))

    def _lead(self, raw: dict[str, Any]) -> Lead:
        lead_id = str(raw.get("id"))
        known = self.remote.recall(self.name, lead_id) or RemoteLead()
        name = known.name or " · ".join(
            p for p in (raw.get("leadFor"), f"customer {raw['userId']}" if raw.get("userId") else None) if p
        )
        times = [parse_api_time(raw.get(k)) for k in ("lastUpdatedOn", "lastFollowUp", "createdOn")]
        return Lead(
            backend=self.name,
            id=lead_id,
            name=name or f"lead {lead_id}",
            email=known.email,
            phone=known.phone,
            lead_for=raw.get("leadFor"),
            type=raw.get("type"),
            status=raw.get("status") or "OPEN",
            sub_status=raw.get("subStatus"),
            owner=self._owner(raw.get("owner"), known.owner),
            next_follow_up=parse_api_time(raw.get("nextFollowUp")),
            last_activity=max((t for t in times if t), default=None),
            created_at=parse_api_time(raw.get("createdOn")),
            notices=self._warnings(raw),
            history=tuple(self._activity(raw)),  # the reply carries it: a card needs no second read
        )

    def _owner(self, username: Any, remembered: str | None) -> str | None:
        """The staff ID Leadbot links people by (``bob.k/28812690``) for the username Capillary answers (``bob.k``)."""
        if not username:
            return remembered
        if remembered and split_staff(remembered)[0] == username:
            return remembered
        for link in self.links.of_backend(self.name):
            if split_staff(link.staff_id)[0] == username:
                return link.staff_id
        return str(username)

    def _staff(self, entity: Any) -> str | None:
        """The linked staff ID (``ana.s/28812689``) behind an entity id in a reply, else the bare id."""
        if entity in (None, -1):
            return None
        suffix = f"/{entity}"
        linked = next(
            (link.staff_id for link in self.links.of_backend(self.name) if link.staff_id.endswith(suffix)), None
        )
        return linked or str(entity)

    def _activity(self, raw: dict[str, Any]) -> list[Activity]:
        found: list[Activity] = []
        for done in raw.get("followUpDetails") or []:
            at = parse_api_time(done.get("followedUpOn") or done.get("createdOn"))
            if at is None:
                continue
            notes = unmarked(done.get("notes") or "")
            by = self._staff(done.get("followedUpBy"))
            if notes == CREATED:
                found.append(Activity(kind="log", at=at, by=by, text="created through Leadbot"))
            elif notes.startswith(SNOOZE_PREFIX):
                found.append(Activity(kind="log", at=at, by=by, text="follow-up snoozed"))
            elif notes.startswith(NOTE_PREFIX):
                found.append(Activity(kind="note", at=at, by=by, text=notes.removeprefix(NOTE_PREFIX)))
            else:
                found.append(
                    Activity(kind="follow_up", at=at, by=by, text="follow-up" + (f": {notes}" if notes else ""))
                )
        for change in raw.get("statusLogDetails") or []:
            at = parse_api_time(change.get("createdOn"))
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


def _error_text(item: Any) -> str:
    if isinstance(item, dict):
        code = item.get("code")
        message = str(item.get("message") or "no message")[:300]
        return f"{message} (code {code})" if code is not None else message
    return str(item)[:300]


# -- configuration ----------------------------------------------------------------------------


class CapillaryOptions(BaseModel):
    """``LEADBOT_CAPILLARY_*`` and ``[backends.capillary]`` in LEADBOT_CONFIG."""

    model_config = ConfigDict(extra="forbid")

    url: str
    username: str | None = None
    password: SecretStr | None = None
    client_key: str | None = None
    client_secret: SecretStr | None = None
    token: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    type: str = "SKU"
    org_source_id: int = -1
    till_id: int | None = None  # createdBy on follow-ups: "the till id that updated the follow up"
    extended_fields: dict[str, Any] = Field(default_factory=dict)  # sent with every new lead

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> CapillaryOptions:
        login = self.username or self.password
        oauth = self.client_key or self.client_secret
        token = self.token is not None and bool(self.token.get_secret_value())
        if not (login or oauth or token):
            raise ValueError(
                "LEADBOT_CAPILLARY_URL is set without credentials: expected LEADBOT_CAPILLARY_CLIENT_KEY and"
                " LEADBOT_CAPILLARY_CLIENT_SECRET (OAuth), LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD"
                " (till), or LEADBOT_CAPILLARY_TOKEN"
            )
        if login and not (self.username and self.password):
            raise ValueError("LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD go together: set both")
        if oauth and not (self.client_key and self.client_secret):
            raise ValueError("LEADBOT_CAPILLARY_CLIENT_KEY and LEADBOT_CAPILLARY_CLIENT_SECRET go together: set both")
        if sum(map(bool, (login, oauth, token))) > 1:
            raise ValueError(
                "set one kind of Capillary credentials: an OAuth client, till credentials, or a token (not several)"
            )
        if self.till_id is None:
            raise ValueError(
                "LEADBOT_CONFIG [backends.capillary] till_id is not set: Capillary records every follow-up as made"
                " by a till (createdBy); set till_id = YOUR_TILL_ID there"
            )
        return self


SPEC = BackendSpec(
    name="capillary",
    title=CapillaryBackend.title,
    options=CapillaryOptions,
    build=CapillaryBackend,
    env=(
        EnvVar("LEADBOT_CAPILLARY_URL", "url", "the cluster URL, e.g. https://apac.api.capillarytech.com"),
        EnvVar("LEADBOT_CAPILLARY_USERNAME", "username", "the till's username"),
        EnvVar("LEADBOT_CAPILLARY_PASSWORD", "password", "the till's password", secret=True),
        EnvVar("LEADBOT_CAPILLARY_CLIENT_KEY", "client_key", "the OAuth client key (InTouch > API client)"),
        EnvVar("LEADBOT_CAPILLARY_CLIENT_SECRET", "client_secret", "the OAuth client secret", secret=True),
        EnvVar("LEADBOT_CAPILLARY_TOKEN", "token", "an OAuth access token", secret=True),
    ),
    summary="Capillary LMS (/v2/leads): statuses with reasons and sub-statuses, follow-ups",
)
