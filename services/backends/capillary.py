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
  schedule is unchanged. Leadbot shows such follow-ups as notes.
- **Errors**: every reply's ``errors`` array is read (a 200 or 201 can carry
  errors); ``warnings`` are logged and shown on the card.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.backends.base import Backend, BackendContext, BackendSpec, EnvVar
from services.backends.common import numeric_id, parse_api_time, to_api_time
from services.backends.http import ApiClient, HttpSettings, TtlCache, json_body
from services.clock import Clock
from services.errors import Code, Invalid, LeadError, LeadGone, Rejected, Unreachable, Unsupported
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
PAGE = 100  # rows per GET when Leadbot has to filter what Capillary cannot
MAX_PAGES = 10
CACHE_SECONDS = 300
# Leads error codes (docs.capillarytech.com/reference/leads) that mean "no such lead".
LEAD_NOT_FOUND = frozenset({92001})


def basic_auth(username: str, password: str) -> str:
    """``Basic base64(username:md5hex(password))``, as Capillary's till authentication asks."""
    digest = hashlib.md5(password.encode()).hexdigest()  # noqa: S324 - Capillary's scheme, not our choice
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


def split_staff(staff_id: str) -> tuple[str, int | None]:
    """``ana.s/28812689`` → (``ana.s``, 28812689); ``ana.s`` → (``ana.s``, None)."""
    username, _, entity = staff_id.partition("/")
    return username, int(entity) if entity.isdigit() else None


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

    def __init__(self, options: CapillaryOptions, context: BackendContext) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if options.token is not None:
            headers["X-CAP-API-OAUTH-TOKEN"] = options.token.get_secret_value()
        elif options.username and options.password is not None:
            headers["Authorization"] = basic_auth(options.username, options.password.get_secret_value())
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        self.api = ApiClient(self.title, http, headers=headers, sleep=context.sleep)
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
            raise Rejected("Leadbot's Capillary credentials were refused (HTTP 401); an admin must fix them")
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
            customer = {"idType": "MOBILE", "identifier": lead.phone.lstrip("+")}
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
        if lead.note:
            body["followUpDetails"] = [
                {"followedUpOn": to_api_time(self.clock()), "notes": NOTE_PREFIX + lead.note, **_by(entity)}
            ]
        reply = self._check(self.api.write("POST", "/v2/leads", json=body))
        lead_id = str(reply["id"])
        customer_id = str(reply["userId"]) if reply.get("userId") is not None else None
        self.remote.remember(
            self.name, lead_id, name=lead.name, email=lead.email, phone=lead.phone, owner=owner, customer=customer_id
        )
        return self._lead(reply)

    def assign(self, lead_id: str, owner: str, *, by: str) -> Lead:
        self._id(lead_id)
        reply = self._check(
            self.api.write("PUT", f"/v2/leads/{lead_id}", json={"owner": split_staff(owner)[0]}), lead_id=lead_id
        )
        self.remote.remember(self.name, lead_id, owner=owner)
        return self._lead(reply)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        self._id(lead_id)
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
        """Capillary's follow-up endpoint is also how the next follow-up date is updated (its leads doc)."""
        self._id(lead_id)
        body = self._follow_up_body(self.clock(), by, f"{SNOOZE_PREFIX}{to_api_time(when)}")
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
            return None  # Capillary has no idempotency key or lookup by identifier: see the outbox note
        raw = self._raw(args["lead_id"])
        if op == "assign":
            return self._lead(raw) if self._lead(raw).owner == args["owner"] else None
        if op == "change_status":
            wanted = self.status_option(args["change"]["status"]).value
            return self._lead(raw) if raw.get("status") == wanted else None
        if op in ("log_follow_up", "add_note"):
            item = args.get("follow_up") or args.get("note") or {}
            when = parse_api_time(item.get("done_at") or item.get("at"))
            for done in raw.get("followUpDetails") or []:
                if when and parse_api_time(done.get("followedUpOn")) == when.replace(microsecond=0):
                    return self._lead(raw)
        return None

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
        entity = split_staff(by)[1]
        created_by = self.till_id if self.till_id is not None else entity
        if created_by is None:
            raise Unsupported(
                "Capillary needs a till id for follow-ups: an admin can set {setting} under [backends.capillary]"
                " in LEADBOT_CONFIG, or link people as USERNAME/ENTITY_ID",
                setting=Code("till_id"),
            )
        body: dict[str, Any] = {"followedUpOn": to_api_time(done_at), "createdBy": created_by, **_by(entity)}
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
    token: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    type: str = "SKU"
    org_source_id: int = -1
    till_id: int | None = None  # createdBy on follow-ups (Capillary requires one)
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
        if not (login or (self.token and self.token.get_secret_value())):
            raise ValueError(
                "LEADBOT_CAPILLARY_URL is set without credentials: expected LEADBOT_CAPILLARY_TOKEN (OAuth) or"
                " LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD (till)"
            )
        if login and not (self.username and self.password):
            raise ValueError("LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD go together: set both")
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
        EnvVar("LEADBOT_CAPILLARY_TOKEN", "token", "an OAuth access token", secret=True),
    ),
    summary="Capillary LMS (/v2/leads): statuses with reasons and sub-statuses, follow-ups",
)
