"""The REST leads API (``/leads``), built against its published API reference (the endpoints,
fields and samples of its "Leads" pages).

How its model maps onto Leadbot's:

- **Statuses** are objects the CRM's admin defines (``GET /leads/statuses``:
  ``id``, ``name``, ``primaryColor``), cached for five minutes; a lead's
  ``status`` is the status *name*. A lead's status is changed with
  ``PUT /leads/change-status`` (``ids`` + ``statusId``). Statuses named in
  ``closed_statuses`` (default: won, lost, closed) count as closed.
- **Archive and restore** (``PATCH /leads/archive`` / ``/leads/restore``) are
  offered as one more status, *Archived*: choosing it archives the lead,
  choosing another status on an archived lead restores it first.
- **Notes** are comments (``POST /leads/comments/{id}``), read back with the
  activity log (``GET /leads/logs-and-comments/{id}``), which the card shows.
- **Owner and follow-ups**: the API documents neither an owner field nor a
  follow-up endpoint. Leadbot keeps the owner and the next follow-up itself
  (``remote_leads``) and records each assignment and follow-up as a comment,
  so the CRM's own log shows them.
- **Create** needs every documented field: what Leadbot does not have is
  sent empty, ``business`` and ``state`` come from the config, and an email is
  required. "Email already exists" becomes a message naming the existing lead.
- **Search**: ``GET /leads`` documents no query parameters, so Leadbot reads
  the list and filters it (owner, status, due) itself. ``/leads/search``
  documents none either and is not used.
- ``403 Access denied`` means Leadbot's one shared token was refused: the
  message says so and names ``LEADBOT_LEADSAPI_TOKEN``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.backends.base import Backend, BackendContext, BackendSpec, EnvVar
from services.backends.common import (
    CARD_HISTORY,
    alongside,
    marked,
    match_query,
    numeric_id,
    parse_api_time,
    receipt_of,
    unmarked,
)
from services.backends.http import ApiClient, HttpSettings, TtlCache, json_body
from services.errors import Code, Duplicate, Invalid, LeadError, LeadGone, Rejected, Unreachable
from services.models import (
    Activity,
    Capabilities,
    Colour,
    FollowUp,
    Lead,
    LeadEdit,
    LeadPage,
    LeadQuery,
    NewLead,
    Note,
    StatusChange,
    StatusModel,
    StatusOption,
)
from services.ports import RemoteLead, RemoteLeads

log = logging.getLogger("leadbot.backends")

ARCHIVED = StatusOption(value="archived", label="Archived", colour=Colour.BROWN, open=False)
CACHE_SECONDS = 300
NOTHING_KNOWN = RemoteLead()  # a lead Leadbot has recorded nothing of (made in the CRM itself)
# Strings the API reference marks Required on a new lead (refused empty), in the order it lists them.
# PUT /leads/{id}: every field of a new lead but the email, each null to keep it as it is.
UPDATE_FIELDS = (
    "firstName",
    "lastName",
    "business",
    "photo",
    "state",
    "statusId",
    "source",
    "phoneNumber",
    "description",
    "location",
    "position",
    "company",
)
REQUIRED_TEXT = ("firstName", "lastName", "photo", "source", "description", "location", "position", "company")
NEVER_GIVEN = ("photo", "location", "position")  # nothing a person types fills these: defaults are needed
# Where Leadbot reads a Required field from what the person gave, and how they give it.
GIVEN_AS = MappingProxyType(
    {
        "firstName": ("name", "give the lead's name"),
        "lastName": ("name", "give the lead's full name, or an admin can set a default lastName"),
        "description": ("note", "give note=…, or an admin can set a default description"),
        "company": ("lead_for", "give for=COMPANY, or an admin can set a default company"),
    }
)


class LeadsApiBackend(Backend):
    name = "leadsapi"
    title = "REST leads API"
    capabilities = Capabilities(
        status_model=StatusModel.CONFIGURABLE,
        notes_how="saved as comments; assignments and follow-ups are recorded as comments too",
        staff_ids="any name you choose: the API has no owner field, so Leadbot keeps the owner",
        queues_writes=True,
        search_how="the API has no search: Leadbot reads the leads it lists and looks through them",
        editable=("name", "email", "phone", "company", "source"),
        card_reads_at_once=True,
    )

    def __init__(self, options: LeadsApiOptions, context: BackendContext) -> None:
        value = f"{options.auth_scheme} {options.token.get_secret_value()}".strip()
        headers = {"Accept": "application/json", "Content-Type": "application/json", options.auth_header: value}
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        self.api = ApiClient(
            self.title,
            http,
            headers=headers,
            sleep=context.sleep,
            observe=context.observer(self.name),
            waiting=context.waiting,
        )
        self.remote: RemoteLeads = context.store.remote
        self.business = list(options.business)
        self.defaults = dict(options.defaults)
        self.state = options.state
        self.closed = {c.casefold() for c in options.closed_statuses}
        self._cache = TtlCache(CACHE_SECONDS)

    def close(self) -> None:
        self.api.close()

    # -- replies ------------------------------------------------------------------------------

    def _body(self, response: Any, *, lead_id: str | None = None) -> Any:
        if response.status_code in (401, 403):
            # Leadbot calls with one shared token: a refusal is about that token, not the person asking.
            raise Rejected(
                "Leadbot's token for the {backend} was refused ({status} Access denied); an admin must check"
                " LEADBOT_LEADSAPI_TOKEN",
                backend=self.title,
                status=response.status_code,
            )
        if response.status_code == 404 and lead_id is not None:
            raise LeadGone("there is no lead {ref}", ref=Code(f"leadsapi:{lead_id}"))
        body = json_body(response, self.title) if response.content else {}
        if response.status_code >= 400:
            said = _message(body) or f"HTTP {response.status_code}"
            raise Rejected("the {backend} refused this: {said}", backend=self.title, said=said)
        return body

    # -- statuses -----------------------------------------------------------------------------

    def _statuses(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            body = self._body(self.api.read("GET", "/leads/statuses"))
            return [s for s in body.get("statuses") or [] if isinstance(s, dict) and "id" in s]

        return self._cache.get("statuses", load)

    def statuses(self) -> list[StatusOption]:
        options = [
            StatusOption(
                value=str(s.get("name")),
                label=str(s.get("name")),
                colour=_colour(s.get("primaryColor")),
                open=str(s.get("name")).casefold() not in self.closed,
            )
            for s in self._statuses()
        ]
        return [*options, ARCHIVED]

    def _status_id(self, name: str) -> int:
        wanted = self.status_option(name).value.casefold()
        for status in self._statuses():
            if str(status.get("name")).casefold() == wanted:
                return int(status["id"])
        raise Invalid("{value} is not a status in the {backend}", field="status", value=Code(name), backend=self.title)

    # -- reading ------------------------------------------------------------------------------

    def get(self, lead_id: str) -> Lead:
        self._id(lead_id)
        return self._lead(self._body(self.api.read("GET", f"/leads/{lead_id}"), lead_id=lead_id))

    def search(self, query: LeadQuery) -> LeadPage:
        if query.status and self.status_option(query.status) == ARCHIVED:
            # The list leaves archived leads out: read the ones Leadbot archived, one by one.
            archived = [i for i, known in self.remote.recall_all(self.name).items() if known.archived]
            leads = [self.get(i) for i in sorted(archived, key=int)]
        else:
            body = self._body(self.api.read("GET", "/leads"))
            raw = body.get("leads") if isinstance(body, dict) else body
            rows = [r for r in raw or [] if isinstance(r, dict)]
            known = self.remote.recall_all(self.name)  # one read of what Leadbot records, not one per lead
            if query.text is None and (query.owner or query.unassigned):
                # The owner is Leadbot's record, not the API's: the others' leads are left out unbuilt.
                owner = query.owner or None
                rows = [r for r in rows if known.get(str(r.get("id")), NOTHING_KNOWN).owner == owner]
            leads = [self._lead(r, known.get(str(r.get("id")), NOTHING_KNOWN)) for r in rows]
        return match_query(leads, query, self.statuses())

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        self._id(lead_id)
        body = self._body(self.api.read("GET", f"/leads/logs-and-comments/{lead_id}"), lead_id=lead_id)
        found: list[tuple[int, Activity]] = []
        for position, item in enumerate(body.get("logsAndComments") or []):
            at = parse_api_time(item.get("createdAt"))
            if at is None:
                continue
            user = item.get("user") or {}
            by = user.get("email") or (str(user["id"]) if user.get("id") is not None else None)
            if item.get("content"):
                text = unmarked(str(item["content"]))
                found.append((position, Activity(kind="note", at=at, by=by, text=text)))
            else:
                text = _spaced(str(item.get("action") or "change"))
                found.append((position, Activity(kind="log", at=at, by=by, text=text)))
        found.sort(key=lambda pair: (pair[1].at, pair[0]), reverse=True)  # the log's order breaks ties
        return [activity for _, activity in found[:limit]]

    def reachable(self) -> str | None:
        try:
            self._body(self.api.write("GET", "/leads/statuses"))
        except LeadError as exc:
            return exc.message
        return None

    # -- writing ------------------------------------------------------------------------------

    def create(self, lead: NewLead, *, by: str) -> Lead:
        if not lead.email:
            raise Invalid("the {backend} needs an email for every lead", field="email", backend=self.title)
        first, _, last = lead.name.partition(" ")
        status = self.status_option(lead.status).value if lead.status else self._statuses()[0]["name"]
        given = {
            "firstName": first,
            "lastName": last.strip(),
            "source": lead.source or "Slack",  # where the lead came from, when the person did not say
            "description": lead.note,
            "company": lead.lead_for,
        }
        body: dict[str, Any] = {
            "business": self.business,
            "state": self.state,
            "statusId": self._status_id(status),
            "phoneNumber": [lead.phone] if lead.phone else [],
            "email": lead.email,
        }
        for field in REQUIRED_TEXT:
            value = given.get(field) or self.defaults.get(field)
            if not value:
                named, how = GIVEN_AS.get(
                    field, (field, f"an admin can set a default {field} under [backends.leadsapi]")
                )
                raise Invalid(
                    "the {backend} needs a {name} for every lead ({how})",
                    field=named,
                    backend=self.title,
                    name=field,
                    how=how,
                )
            body[field] = value
        response = self.api.write("POST", "/leads", json=body)
        if response.status_code == 400 and "already exists" in (_message(_maybe_json(response)) or "").lower():
            existing = self._find_by_email(lead.email)
            if existing:
                raise Duplicate(
                    "a lead with this email exists already in the {backend}: {ref}",
                    existing_ref=existing,
                    backend=self.title,
                    ref=Code(existing),
                )
            raise Duplicate("a lead with this email exists already in the {backend}", backend=self.title)
        created = self._body(response)
        lead_id = str(created["id"])
        self.remote.remember(
            self.name,
            lead_id,
            owner=lead.owner or by,
            next_follow_up=lead.next_follow_up,
            archived=False,
            # What the person gave (not the defaults filling the API's Required fields), for the card.
            extra={k: v for k, v in (("source", lead.source), ("company", lead.lead_for)) if v},
        )
        return self._lead(created)

    def edit(self, lead_id: str, edit: LeadEdit) -> Lead:
        """``PUT /leads/{id}``: every field but the email must be there, and null keeps what the lead has."""
        self._id(lead_id)
        body: dict[str, Any] = {f: None for f in UPDATE_FIELDS} | {"business": self.business, "state": self.state}
        if edit.name is not None:
            first, _, last = edit.name.strip().partition(" ")
            if not last.strip():
                raise Invalid("the {backend} needs a first and a last name", field="name", backend=self.title)
            body |= {"firstName": first, "lastName": last.strip()}
        if edit.email is not None:
            body["email"] = edit.email
        if edit.phone is not None:
            body["phoneNumber"] = [edit.phone]
        if edit.lead_for is not None:
            body["company"] = edit.lead_for
        if edit.source is not None:
            body["source"] = edit.source
        response = self.api.write("PUT", f"/leads/{lead_id}", json=body)
        if response.status_code == 400 and "already exists" in (_message(_maybe_json(response)) or "").lower():
            existing = self._find_by_email(edit.email or "")
            raise Duplicate(
                "another lead has this email in the {backend}: {ref}",
                existing_ref=existing,
                backend=self.title,
                ref=Code(existing or "?"),
            )
        updated = self._body(response, lead_id=lead_id)
        known = self.remote.recall(self.name, lead_id)
        extra = dict(known.extra) if known else {}
        extra |= {k: v for k, v in (("source", edit.source), ("company", edit.lead_for)) if v is not None}
        self.remote.remember(self.name, lead_id, extra=extra)
        return self._lead(updated) if isinstance(updated, dict) and "id" in updated else self.get(lead_id)

    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead:
        self._comment(lead_id, marked(f"Assigned to {owner} by {by} (via Leadbot)", receipt))
        self.remote.remember(self.name, lead_id, owner=owner)
        return self._written(lead_id)

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        parts = [f"Follow-up by {follow_up.by} at {follow_up.done_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"]
        if follow_up.notes:
            parts.append(follow_up.notes)
        if follow_up.next_follow_up:
            parts.append(f"next: {follow_up.next_follow_up.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        self._comment(lead_id, marked(" · ".join(parts), follow_up.receipt))
        self.remote.remember(self.name, lead_id, next_follow_up=follow_up.next_follow_up)
        return self._written(lead_id, last_activity=follow_up.done_at)

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        self._comment(lead_id, marked(f"Follow-up moved to {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC by {by}", receipt))
        self.remote.remember(self.name, lead_id, next_follow_up=when)
        return self._written(lead_id)

    def add_note(self, lead_id: str, note: Note) -> Lead:
        self._comment(lead_id, marked(note.text, note.receipt))
        return self._written(lead_id, last_activity=note.at)

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        number = self._id(lead_id)
        target = self.status_option(change.status)
        if target == ARCHIVED:
            self._body(self.api.write("PATCH", "/leads/archive", json={"ids": [number]}), lead_id=lead_id)
            self.remote.remember(self.name, lead_id, archived=True)
            return self._written(lead_id)
        known = self.remote.recall(self.name, lead_id)
        if known and known.archived:
            self._body(self.api.write("PATCH", "/leads/restore", json={"ids": [number]}), lead_id=lead_id)
            self.remote.remember(self.name, lead_id, archived=False)
        body = {"ids": [number], "statusId": self._status_id(target.value)}
        self._body(self.api.write("PUT", "/leads/change-status", json=body), lead_id=lead_id)
        return self._written(lead_id)

    def applied(self, op: str, args: dict[str, Any]) -> Lead | None:
        if op == "create":
            return self._created(NewLead.model_validate(args["lead"]), args["by"])
        lead_id = args["lead_id"]
        if op == "change_status":
            return self._status_shown(lead_id, self.status_option(args["change"]["status"]))
        if op == "edit":  # a PUT sets fields: it landed when the lead has them all
            lead = self.get(lead_id)
            wanted = LeadEdit.model_validate(args["edit"]).changes()
            return lead if all(getattr(lead, f) == v for f, v in wanted.items()) else None
        item = args.get("follow_up") or args.get("note") or {}
        receipt = item.get("receipt") or args.get("receipt")
        if not receipt:
            return None
        body = self._body(self.api.read("GET", f"/leads/logs-and-comments/{lead_id}"), lead_id=lead_id)
        if not any(receipt_of(str(i.get("content") or "")) == receipt for i in body.get("logsAndComments") or []):
            return None
        # The comment landed: what Leadbot keeps of the write is recorded now, as the lost reply would have.
        if op == "assign":
            self.remote.remember(self.name, lead_id, owner=args["owner"])
        elif op == "log_follow_up":
            self.remote.remember(self.name, lead_id, next_follow_up=parse_api_time(item.get("next_follow_up")))
        elif op == "reschedule":
            self.remote.remember(self.name, lead_id, next_follow_up=datetime.fromisoformat(args["when"]))
        return self.get(lead_id)

    def _created(self, lead: NewLead, by: str) -> Lead | None:
        """A new lead whose reply was lost: emails are unique in this API, so the email names it."""
        existing = self._find_by_email(lead.email or "")
        if existing is None:
            return None
        lead_id = existing.split(":", 1)[1]
        known = self.remote.recall(self.name, lead_id)
        if known is None or known.owner is None:
            self.remote.remember(
                self.name,
                lead_id,
                owner=lead.owner or by,
                next_follow_up=lead.next_follow_up,
                archived=False,
                extra={k: v for k, v in (("source", lead.source), ("company", lead.lead_for)) if v},
            )
        return self.get(lead_id)

    def _status_shown(self, lead_id: str, target: StatusOption) -> Lead | None:
        """Whether the lead is in ``target`` now; archived means: gone from the list, still there by id."""
        listed = self._body(self.api.read("GET", "/leads"))
        rows = (listed.get("leads") if isinstance(listed, dict) else listed) or []
        row = next((r for r in rows if isinstance(r, dict) and str(r.get("id")) == lead_id), None)
        if target == ARCHIVED:
            if row is not None:
                return None
            self.get(lead_id)  # there by id (else LeadGone): archived
            self.remote.remember(self.name, lead_id, archived=True)
            return self.get(lead_id)
        if row is None or str(row.get("status") or "").casefold() != target.value.casefold():
            return None
        self.remote.remember(self.name, lead_id, archived=False)
        return self._lead(row)

    # -- helpers ------------------------------------------------------------------------------

    def _id(self, lead_id: str) -> int:
        return numeric_id(self.name, lead_id)

    def _comment(self, lead_id: str, text: str) -> None:
        """A comment on the lead: a 404 says there is no such lead (no read beforehand to find out)."""
        self._id(lead_id)
        self._body(self.api.write("POST", f"/leads/comments/{lead_id}", json={"content": text}), lead_id=lead_id)

    def _written(self, lead_id: str, **changes: Any) -> Lead:
        """The lead after a write that landed, as the API shows it, with its latest history for the card.

        Both read at once (``alongside``): one wait after the write, where a read before it and
        one after it were two. The write is in: when the lead cannot be read now, that is
        ``maybe_applied``, so the outbox looks for it (by its receipt) instead of saying it failed.
        """
        history = alongside(lambda: self.activity(lead_id, CARD_HISTORY))
        try:
            lead = self.get(lead_id)
        except Unreachable as exc:
            exc.maybe_applied = True
            raise
        try:
            found: tuple[Activity, ...] | None = tuple(history.result())
        except LeadError:
            found = None  # the card reads it again, and says so if it still cannot
        return lead.model_copy(update={**changes, "history": found})

    def _find_by_email(self, email: str) -> str | None:
        try:
            body = self._body(self.api.read("GET", "/leads"))
        except LeadError:
            return None
        for row in (body.get("leads") if isinstance(body, dict) else body) or []:
            if str(row.get("email", "")).casefold() == email.casefold():
                return f"{self.name}:{row['id']}"
        return None

    def _lead(self, raw: dict[str, Any], known: RemoteLead | None = None) -> Lead:
        """The API's lead with what Leadbot records of it (``known``: already read; else read now)."""
        lead_id = str(raw.get("id"))
        known = known or self.remote.recall(self.name, lead_id) or NOTHING_KNOWN
        phones = raw.get("phoneNumber") or []
        name = " ".join(p for p in (raw.get("firstName"), raw.get("lastName")) if p) or f"lead {lead_id}"
        return Lead(
            backend=self.name,
            id=lead_id,
            name=name,
            email=raw.get("email") or None,
            phone=phones[0] if phones else None,
            lead_for=raw.get("company") or known.extra.get("company") or None,
            source=raw.get("source") or known.extra.get("source") or None,
            status=ARCHIVED.value if known.archived else str(raw.get("status") or "unknown"),
            owner=known.owner,
            next_follow_up=known.next_follow_up,
        )


def _colour(name: Any) -> Colour | None:
    text = str(name or "").lower()
    text = "grey" if text == "gray" else text
    return Colour(text) if text in Colour.__members__.values() else None


def _maybe_json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("message", "error", "description"):
            if body.get(key):
                return str(body[key])[:300]
    if isinstance(body, str) and body:
        return body[:300]
    return None


def _spaced(action: str) -> str:
    """``CreateLead`` → ``create lead``."""
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in action).strip()
    return out or action


# -- configuration ----------------------------------------------------------------------------


class LeadsApiOptions(BaseModel):
    """``LEADBOT_LEADSAPI_*`` and ``[backends.leadsapi]`` in LEADBOT_CONFIG."""

    model_config = ConfigDict(extra="forbid")

    url: str
    token: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    auth_header: str = "Authorization"  # the API documents no scheme, only "403 Access denied"
    auth_scheme: str = "Bearer"  # "" sends the token alone
    business: list[int] = Field(min_length=1)  # business ids every new lead is filed under (the API needs one)
    state: str = "Active"
    # Values for the Required fields of a new lead when the person gave none: photo, location and
    # position always (nothing typed fills them); lastName, source, description, company as fallbacks.
    defaults: dict[str, str] = Field(default_factory=dict)
    closed_statuses: list[str] = Field(default_factory=lambda: ["won", "lost", "closed"])

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _token_given(cls, data: Any) -> Any:
        # Checked before the file's options: a missing credential is the first thing to say.
        if isinstance(data, dict) and not data.get("token"):
            raise ValueError("LEADBOT_LEADSAPI_URL is set without LEADBOT_LEADSAPI_TOKEN: expected the API token")
        return data

    @field_validator("defaults")
    @classmethod
    def _defaults_cover_what_nobody_types(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(REQUIRED_TEXT))
        if unknown:
            raise ValueError(f"not fields of a new lead: {', '.join(unknown)} (known: {', '.join(REQUIRED_TEXT)})")
        missing = [f for f in NEVER_GIVEN if not str(value.get(f) or "").strip()]
        if missing:
            example = ", ".join(f'{m} = "…"' for m in missing)
            raise ValueError(
                f"the REST leads API requires {', '.join(missing)} on every new lead and nothing a person types"
                f" fills them: set defaults = {{ {example} }}"
            )
        return value


SPEC = BackendSpec(
    name="leadsapi",
    title=LeadsApiBackend.title,
    options=LeadsApiOptions,
    build=LeadsApiBackend,
    env=(
        EnvVar("LEADBOT_LEADSAPI_URL", "url", "the REST leads API's base URL, e.g. https://crm.example.com/api"),
        EnvVar("LEADBOT_LEADSAPI_TOKEN", "token", "the API token", secret=True),
    ),
    summary="a REST leads API (/leads): configurable statuses, comments, logs, archive",
)
