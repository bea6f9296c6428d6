"""LeadSquared (v2 REST API), built against seed 003 (opportunities of a lead) and the facts with
sources in backends.md Part 1 ([L…]/[G…] below are its source tags).

How LeadSquared's model maps onto Leadbot's:

- **Host and keys.** ``LEADBOT_LEADSQUARED_URL`` is the account's regional API host (``/v2/``
  paths under it) [L2]; plain HTTP is refused at start-up, as LeadSquared refuses it [L1]
  (loopback hosts excepted, for the fake). The access and secret keys go only in the
  ``x-LSQ-AccessKey``/``x-LSQ-SecretKey`` headers, never in a URL [L1]. A 401 means wrong keys
  or the wrong region: Leadbot then asks ``Authentication.svc/UserByAccessKey.Get``, which
  works on any host and names the right one (``LSQCommonServiceURLs.api``) [L2][G4], and
  says either "set LEADBOT_LEADSQUARED_URL=https://HOST" or that the key was refused.
- **Staff IDs** are a user's email or ID (GUID). Both resolve to the GUID through
  ``UserManagement.svc/Users.Get`` [L19][G1], read once and kept five minutes (read again
  once a minute at most when an email is not in it). Replies name the owner by GUID
  (``OwnerId``) [L7]; it is mapped back to the staff ID the person is linked by.
- **Owner and stage** are lead fields set with ``Lead.Update`` attribute lists [L6]
  (``OwnerId``, ``ProspectStage``). backends.md found neither documented for writing: both
  are ordinary lead fields ("only the fields you pass will be updated" [L6]), and public
  client code posts ``ProspectStage`` and ``OwnerId`` that way (``Lead.Update``,
  ``Lead.CreateOrUpdate``; found with the search tool, in code that carries its keys in the
  URL, so not cited by name). A new lead gets ``OwnerId`` and ``ProspectStage`` in its
  ``Lead.Create`` list (the stage always, so that the card is right without a read).
- **Stages** are the account's own (``LeadsMetaData.Get?schemaName=ProspectStage``'s
  ``Options`` [L22], kept five minutes). Which count as closed is ``closed_stages``
  (default Customer, Lost, Not Interested, Junk: LeadSquared's won stage plus the usual
  inactive ones [L20]); closed leads drop out of lists and reminders. A reason given with a
  stage change is kept as a note ("Stage → Lost: …"), never dropped.
- **Notes** are ``LeadManagement.svc/CreateNote`` ``{RelatedProspectId, Note}`` [L14] (the
  path is the one public code posts to, backends.md), read back with ``RetrieveNote`` [L15].
- **Follow-ups are tasks**, so the owner sees them in LeadSquared's own task list and
  calendar. The lead's *next follow-up* is its earliest open task
  (``RetrieveTaskByLeadId`` [retrieve-tasks-by-leadid], read with every ``get``). Logging a
  follow-up completes that task (``Task.svc/Update`` with ``StatusCode`` 1: the Get Tasks
  page documents 0 as incomplete and 1 as complete [retrieve-tasks]; no separate
  "complete" call was found), schedules the next one (``Task.svc/Create`` with ``DueDate``,
  ``OwnerId`` = the lead's owner, ``RelatedEntity`` 1 [L16]; its reply's ``Message.Id`` is
  the task [G11]) and posts an activity with the notes (``ProspectActivity.svc/Create``
  [L12]) of the type named ``follow_up_activity`` (found with ``ActivityTypes.Get``, made
  once with ``CreateType`` if the account lacks it, as Chatwoot's setup does [G4]). A snooze
  moves the open task's ``DueDate`` (or makes one). Lists and digests cannot read every
  lead's tasks within the rate limit, so they use the next follow-up as Leadbot last saw
  it (set by Leadbot's writes, refreshed by every card); the Get Tasks API by owner
  [retrieve-tasks] would serve them directly but is not used yet.
- **Receipts** (issue 11): every text Leadbot writes carries the write's receipt,
  ``(lb:1a2b3c4d)``: a note's text, an activity's note, a task's description (a task a
  follow-up completes or a snooze moves gets ``(done, lb:…)``/``(moved, lb:…)`` added), so
  ``applied`` finds the write itself. A follow-up is three calls; the activity goes last
  and marks it done, and a resend skips the task steps whose receipt it finds, so no part
  is made twice. An assignment is found by the owner, a stage change by the stage set
  since it was asked (and its reason note's receipt). A new lead has no text field: it is
  found by its unique email or phone [L3] with every field Leadbot set, made within the
  day, and not claimed by another create whose reply came (Leadbot records each new
  lead's receipt); a resent create that meets its own lead carries on with the note and
  task it still lacks instead of reporting a duplicate.
- **Errors.** A reply whose body says ``"Status": "Error"`` is a failure whatever its HTTP
  status, read from ``ExceptionType``/``ExceptionMessage`` [L17][G6]:
  ``MXDuplicateEntryException`` [G8] becomes "a lead with this email or phone exists
  already" naming it (found by email, else phone [L7][L8]); ``MXInvalidEntityException``
  about a lead [G8] means the lead is gone; other refusals (400, a known ``MX…`` type on a
  500) are shown with LeadSquared's message; a 500 of another kind is an outage that may
  have applied (queued, and looked for before it is sent again); 404 names the setting.
- **Rate limit: 25 calls in 5 s per access key, else 429** [L6][L14]. Every call of every
  path (commands, buttons, App Home, digests, the outbox) first takes a slot from one
  budget per access key in the store (``RateBudget``, keyed by a hash of the key), shared
  by every process on the database and handed out first come, first served; the caller
  sleeps until its slot. The window is stretched by 5 %, at least 0.1 s (0.25 s of 5 s),
  so that jitter between taking a slot and the request reaching LeadSquared (processes on
  one database read one host's clock; a thread may wake late) never packs 26 calls into
  its 5 s. A 429 that still comes (another client on the same key) means the call was not
  taken: it is sent again after a window, reads and writes alike, up to three times (then
  a write is queued). The plan's limit is ``rate_limit`` per ``rate_window`` [L18]. Calls
  are saved where they can be: a write reuses the read its action made a moment ago (the
  "nothing changed" check's, 5 s at most), threads after one lead at once read it once,
  users, stages and the follow-up activity type are looked up once, and a new lead is
  not read back. ``get`` itself always reads (a card's Refresh is fresh).
- **Opportunities** (seed 003): ``POST OpportunityManagement.svc/GetOpportunitiesOfLead``
  with ``leadId`` (and ``opportunityType`` when set), ``Columns.Include_CSV`` the name, stage
  and value columns plus Status and Owner, ``Paging`` (``PageIndex`` from 1), ``Sorting`` by
  ``PACreatedOn`` with Direction 1 (most recent first); ``RecordCount`` is the total. Each
  account names its ``mx_Custom_*`` columns itself: ``opportunity_name``/``_stage``/``_value``
  (defaults ``mx_Custom_1``/``_2``/``_6``, as in the seed's sample).
- **Dates** are UTC ``YYYY-MM-DD HH:MM:SS`` both ways [L13][L16]; phones are sent as
  ``+<cc>-<number>``, LeadSquared's own form [L7][G5], and shown in E.164.
- Not used: quick search (which fields it searches is not documented), lead types (a new
  lead with ``type=`` is refused rather than the type dropped).

Sources beyond backends.md: [retrieve-tasks] https://apidocs.leadsquared.com/retrieve-tasks/
and [retrieve-tasks-by-leadid] https://apidocs.leadsquared.com/retrieve-tasks-by-leadid (both
found with the search tool; the latter also lists the reply's ``Status`` "Pending").
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.backends.base import Backend, BackendContext, BackendSpec, EnvVar
from services.backends.common import marked, match_query, parse_api_time, unmarked
from services.backends.http import ApiClient, HttpSettings, TtlCache, hide_in_logs
from services.contact import without_extension
from services.errors import Code, Duplicate, Invalid, LeadError, LeadGone, NotFound, Rejected, Unreachable, Unsupported
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
    Opportunity,
    OpportunityPage,
    StatusChange,
    StatusModel,
    StatusOption,
)
from services.ports import RateBudget, RemoteLead, RemoteLeads, StaffLinks
from services.progress import still_working

log = logging.getLogger("leadbot.backends")

LM = "/v2/LeadManagement.svc"
WHO_AM_I = "/v2/Authentication.svc/UserByAccessKey.Get"
USERS = "/v2/UserManagement.svc/Users.Get"
OPPORTUNITIES = "/v2/OpportunityManagement.svc/GetOpportunitiesOfLead"
LEAD_COLUMNS = (
    "ProspectID,ProspectAutoId,FirstName,LastName,EmailAddress,Phone,Mobile,Company,Source,ProspectStage,OwnerId,"
    "CreatedOn,ModifiedOn"
)
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
EVERY_LEAD = {"LookupName": "CreatedOn", "LookupValue": "1970-01-01 00:00:00", "SqlOperator": ">"}
CACHE_SECONDS = 300
RECENT_SECONDS = 5.0  # one action's reads share one lead read (a card, the "nothing changed" check, the write)
DIRECTORY_RELOAD = 60.0  # an email not among the users: read them again at most this often
PAGE, MAX_PAGES = 200, 5  # leads per Leads.Get call, and calls per search at most
PACE_MARGIN, LEAST_MARGIN = 0.05, 0.1  # the window is stretched by 5 %, at least 0.1 s: jitter between slot and arrival
RESENDS_429 = 3
CREATED_WITHIN = timedelta(hours=25)  # a lead Leadbot made is still "its own" this long (the outbox gives up at 24 h)
CLOCK_SKEW = timedelta(minutes=5)  # LeadSquared's clock and Leadbot's may differ this much
DONE_TASK = {"completed", "complete", "cancelled", "canceled"}
FOLLOW_UP_LOGGED = "Follow-up logged through Leadbot"  # an activity's note when the person wrote none
# Exception types that are LeadSquared's definite answer, whatever the HTTP status they come with.
REFUSALS = frozenset(
    {
        "MXDuplicateEntryException",
        "MXInvalidEntityException",
        "MXMandatoryAttributeMissingException",
        "MXInvalidInputException",
        "MXUnknownAttributeException",
        "MXInvalidActivityException",
    }
)
RATE_LIMITED = "MXAPIRateLimitExceededException"
UNAUTHORIZED = "MXUnAuthorizedAccessException"


def to_lsq_time(when: datetime) -> str:
    """LeadSquared's date form: UTC ``YYYY-MM-DD HH:MM:SS``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def lsq_phone(phone: str) -> str:
    """``+919895012345`` as LeadSquared writes it, ``+91-9895012345``; anything else as given."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return phone
    return f"+{number.country_code}-{phonenumbers.national_significant_number(number)}"


def shown_phone(value: Any) -> str | None:
    """``+91-9895012345`` (LeadSquared's form) as E.164."""
    text = str(value or "").strip()
    if re.fullmatch(r"\+\d{1,4}-\d{4,14}", text):
        return text.replace("-", "")
    return text or None


def carries(text: Any, mark: str) -> bool:
    return mark in str(text or "")


def new_mark(receipt: str | None) -> str:
    return f"(lb:{receipt})"


def done_mark(receipt: str | None) -> str:
    return f"(done, lb:{receipt})"


def moved_mark(receipt: str | None) -> str:
    return f"(moved, lb:{receipt})"


class _Refused(Rejected):
    """LeadSquared's ``{"Status": "Error", "ExceptionType", "ExceptionMessage"}``: ``kind`` and ``said``."""

    def __init__(self, kind: str, said: str) -> None:
        self.kind, self.said = kind, said
        super().__init__("LeadSquared refused this: {said}", said=said)


class _KeysRefused(Rejected):
    """A 401: wrong keys or the wrong region's host; ``LeadSquaredBackend._why_refused`` tells which."""

    def __init__(self) -> None:
        super().__init__("LeadSquared refused Leadbot's access key")


class LeadSquaredBackend(Backend):
    name = "leadsquared"
    title = "LeadSquared"
    capabilities = Capabilities(
        status_model=StatusModel.CONFIGURABLE,
        opportunities=True,
        snooze_how="moves the due date of the lead's next open task (follow-ups are LeadSquared tasks)",
        staff_ids="the user's email or ID in LeadSquared, e.g. ana.silva@example.com",
        queues_writes=True,
        editable=("name", "email", "phone", "company", "source"),
        search_how="Leadbot reads the 1,000 most recently changed leads (Leads.Get) and looks through them",
    )

    def __init__(self, options: LeadSquaredOptions, context: BackendContext) -> None:
        assert options.access_key is not None and options.secret_key is not None
        access, secret = options.access_key.get_secret_value(), options.secret_key.get_secret_value()
        for key in (access, secret):
            hide_in_logs(key)
        headers = {
            "x-LSQ-AccessKey": access,
            "x-LSQ-SecretKey": secret,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.host = urlsplit(options.url).hostname or ""
        self.sleep, self.clock = context.sleep, context.clock
        self.rates: RateBudget = context.store.rates
        self.rate_key = "leadsquared:" + hashlib.sha256(access.encode()).hexdigest()[:24]  # never the key itself
        self.limit = options.rate_limit
        self.waiting_why = (
            f"LeadSquared allows {options.rate_limit} calls in {options.rate_window:g} s and other actions are ahead"
        )
        self.window = options.rate_window + max(options.rate_window * PACE_MARGIN, LEAST_MARGIN)
        http = HttpSettings(options.url, connect_timeout=options.connect_timeout, read_timeout=options.timeout)
        self.api = ApiClient(
            self.title,
            http,
            headers=headers,
            sleep=context.sleep,
            before_call=self._take_slot,
            check_reply=self._check_reply,
            resend_429=RESENDS_429,
            wait_429=self.window,
            observe=context.observer(self.name),
            waiting=context.waiting,
        )
        self.remote: RemoteLeads = context.store.remote
        self.links: StaffLinks = context.store.links
        self.options = options
        self.closed = {stage.casefold() for stage in options.closed_stages}
        self._cache = TtlCache(CACHE_SECONDS)
        self._recent: dict[str, tuple[float, Lead, dict[str, Any], list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._reading = [threading.Lock() for _ in range(32)]  # one read at a time per lead (by hash)
        self._directory_read_at = 0.0
        self._follow_up_event: int | None = None
        self._event_lock = threading.Lock()
        self.calls = 0  # every call this backend made (the bench counts them)

    def close(self) -> None:
        self.api.close()

    # -- calls --------------------------------------------------------------------------------

    def _take_slot(self) -> None:
        """Before every request: wait for this access key's next slot in the shared budget."""
        wait = self.rates.take(self.rate_key, limit=self.limit, window=self.window, now=self.clock())
        with self._lock:
            self.calls += 1
        if wait > 0:
            still_working(wait, self.waiting_why)
            self.sleep(wait)

    def _check_reply(self, response: Any) -> None:
        """Every reply but a 429: LeadSquared's failures, whatever HTTP status they come with."""
        status = response.status_code
        body = _maybe_json(response)
        error = body if isinstance(body, dict) and str(body.get("Status", "")).casefold() == "error" else None
        kind = str(error.get("ExceptionType") or "") if error else ""
        if kind == RATE_LIMITED:
            raise Unreachable("{backend} is rate-limiting Leadbot", backend=self.title, rate_limited=True)
        if status == 401 or kind == UNAUTHORIZED:
            raise _KeysRefused()
        if status < 300:
            if error is not None:
                raise _refusal(error)
            return
        if status >= 500:
            if kind in REFUSALS:
                raise _refusal(error or {})
            return  # an outage, which may have applied: ApiClient says so
        if status == 404:
            raise Rejected(
                "LeadSquared has no such API at this host (HTTP 404): LEADBOT_LEADSQUARED_URL must be the account's"
                " API host, e.g. {example}",
                example=Code("https://api-in21.leadsquared.com"),
            )
        if error is not None and error.get("ExceptionMessage"):
            raise _refusal(error)
        raise Rejected("LeadSquared refused the request (HTTP {status})", status=status)

    def _call(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> Any:
        """One call's JSON body; a 401 is told as the wrong host or the wrong keys."""
        send = self.api.write if write else self.api.read
        try:
            response = send(method, path, **kwargs)
        except _KeysRefused:
            raise self._why_refused() from None
        try:
            return response.json()
        except ValueError:
            log.warning("LeadSquared answered %s with a body that is not JSON", response.status_code)
            raise Unreachable(
                "{backend} sent a reply Leadbot could not read", backend=self.title, maybe_applied=write
            ) from None

    def _why_refused(self) -> Rejected:
        """After a 401: UserByAccessKey.Get works on any host and names the account's own."""
        keys = Rejected(
            "LeadSquared refused Leadbot's access key — an admin must check LEADBOT_LEADSQUARED_ACCESS_KEY"
            " and LEADBOT_LEADSQUARED_SECRET_KEY"
        )
        try:
            me = self.api.read("GET", WHO_AM_I).json()
        except (_KeysRefused, LeadError, ValueError):
            return keys
        host = str(((me or {}).get("LSQCommonServiceURLs") or {}).get("api") or "").strip()
        if host and host.casefold() != self.host.casefold():
            return Rejected(
                "LeadSquared says this account's API host is {host}: set {setting}",
                host=Code(host),
                setting=Code(f"LEADBOT_LEADSQUARED_URL=https://{host}"),
            )
        return Rejected(
            "LeadSquared refused this call with Leadbot's access key (HTTP 401), although the key is valid here:"
            " an admin must check that the key's user may do this (LeadSquared recommends an admin's keys)"
        )

    def edit(self, lead_id: str, edit: LeadEdit) -> Lead:
        """``Lead.Update``: only the attributes sent change [L6]; email and phone stay unique there."""
        self._id(lead_id)
        attributes = _edit_attributes(edit)
        try:
            self._update_lead(lead_id, attributes)
        except _Refused as exc:
            if exc.kind != "MXDuplicateEntryException":
                raise
            raise Duplicate("LeadSquared has another lead with this email or phone") from None
        return self.get(lead_id)

    def _update_lead(self, lead_id: str, attributes: dict[str, str]) -> None:
        body = [{"Attribute": k, "Value": v} for k, v in attributes.items()]
        self._lead_call("POST", f"{LM}/Lead.Update", lead_id, params={"leadId": lead_id}, json=body)

    def _lead_call(self, method: str, path: str, lead_id: str, **kwargs: Any) -> Any:
        """A write about one lead: an unknown lead is gone. After any failure the lead is read afresh."""
        try:
            return self._call(method, path, write=True, **kwargs)
        except LeadError as exc:
            with self._lock:
                self._recent.pop(lead_id, None)  # a resend must see what this try did
            if isinstance(exc, _Refused) and exc.kind == "MXInvalidEntityException" and "lead" in exc.said.casefold():
                raise LeadGone("there is no lead {ref}", ref=Code(f"{self.name}:{lead_id}")) from None
            raise

    # -- directory and stages -----------------------------------------------------------------

    def _users(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        if fresh:
            self._cache.drop("users")
        return self._cache.get("users", lambda: [u for u in self._call("GET", USERS) or [] if isinstance(u, dict)])

    def check_staff_id(self, staff_id: str) -> None:
        """An active LeadSquared user by that email or ID (``Users.Get``, as every owner is resolved)."""
        try:
            self._user_id(staff_id)
        except Invalid as exc:
            exc.field = "staff_id"
            raise

    def _user_id(self, staff_id: str) -> str:
        """The user's GUID for a staff ID (their email or GUID); Invalid when no active user has it."""
        found = _find_user(self._users(), staff_id)
        if found is None and time.monotonic() - self._directory_read_at > DIRECTORY_RELOAD:
            self._directory_read_at = time.monotonic()
            found = _find_user(self._users(fresh=True), staff_id)
        if found is None:
            raise Invalid(
                "{staff} is not an active LeadSquared user (staff IDs are the user's email or ID)",
                field="owner",
                staff=Code(staff_id),
            )
        return str(found["ID"])

    def _owners(self) -> dict[str, str]:
        """GUID → the staff ID Leadbot links the person by; unlinked users by their email."""
        users = self._users()
        owners = {str(u.get("ID", "")).casefold(): str(u.get("EmailAddress") or u.get("ID")) for u in users}
        for link in self.links.of_backend(self.name):
            user = _find_user(users, link.staff_id, active=False)
            if user is not None:
                owners[str(user["ID"]).casefold()] = link.staff_id
        return owners

    def statuses(self) -> list[StatusOption]:
        def load() -> list[str]:
            rows = self._call("GET", f"{LM}/LeadsMetaData.Get", params={"schemaName": "ProspectStage"}) or []
            row = next((r for r in rows if isinstance(r, dict) and r.get("SchemaName") == "ProspectStage"), {})
            return [str(o["Value"]) for o in row.get("Options") or [] if isinstance(o, dict) and o.get("Value")]

        return [self._stage(value, first=n == 0) for n, value in enumerate(self._cache.get("stages", load))]

    def _stage(self, value: str, *, first: bool) -> StatusOption:
        folded = value.casefold()
        if folded not in self.closed:
            return StatusOption(value=value, label=value, colour=Colour.BLUE if first else Colour.YELLOW)
        won = any(word in folded for word in ("customer", "won", "converted"))
        return StatusOption(value=value, label=value, colour=Colour.GREEN if won else Colour.RED, open=False)

    # -- reading ------------------------------------------------------------------------------

    def get(self, lead_id: str) -> Lead:
        lead, _, _ = self._read(lead_id)
        return lead

    def _read(self, lead_id: str) -> tuple[Lead, dict[str, Any], list[dict[str, Any]]]:
        """The lead with its tasks (two calls), kept for ``RECENT_SECONDS`` for the action that asked."""
        self._id(lead_id)
        rows = self._call("GET", f"{LM}/Leads.GetById", params={"id": lead_id}) or []
        if not rows or not isinstance(rows[0], dict):
            raise LeadGone("there is no lead {ref}", ref=Code(f"{self.name}:{lead_id}"))
        raw, tasks = rows[0], self._tasks(lead_id)
        lead = self._lead(raw, self._owners(), next_follow_up=_next_due(tasks))
        known = self.remote.recall(self.name, lead_id)
        if known is None or known.next_follow_up != lead.next_follow_up:
            self.remote.remember(self.name, lead_id, next_follow_up=lead.next_follow_up)
        self._keep(lead, raw, tasks)
        return lead, raw, tasks

    def _fresh(self, lead_id: str) -> tuple[Lead, dict[str, Any], list[dict[str, Any]]]:
        """The lead as read a moment ago (by this action, or by another one on the same lead), else read now.

        Threads after the same lead at once read it once: the others wait for that read.
        """
        kept = self._kept(lead_id)
        if kept is not None:
            return kept
        with self._reading[hash(lead_id) % len(self._reading)]:
            return self._kept(lead_id) or self._read(lead_id)

    def _kept(self, lead_id: str) -> tuple[Lead, dict[str, Any], list[dict[str, Any]]] | None:
        with self._lock:
            kept = self._recent.get(lead_id)
        return (kept[1], kept[2], kept[3]) if kept is not None and kept[0] > time.monotonic() else None

    def _keep(self, lead: Lead, raw: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent = {k: v for k, v in self._recent.items() if v[0] > now}
            self._recent[lead.id] = (now + RECENT_SECONDS, lead, raw, tasks)

    def _tasks(self, lead_id: str) -> list[dict[str, Any]]:
        body = self._call("GET", f"{LM}/RetrieveTaskByLeadId", params={"leadId": lead_id}) or {}
        return [t for t in body.get("TaskList") or [] if isinstance(t, dict)]

    def search(self, query: LeadQuery) -> LeadPage:
        if query.owner:
            try:
                parameter = {"LookupName": "OwnerId", "LookupValue": self._user_id(query.owner), "SqlOperator": "="}
            except Invalid:
                log.warning("leadsquared: %s is linked but is no active LeadSquared user", query.owner)
                return LeadPage(leads=[], total=0, offset=query.offset)
        elif query.status:
            parameter = {"LookupName": "ProspectStage", "LookupValue": self.status_option(query.status).value}
            parameter["SqlOperator"] = "="
        else:
            parameter = dict(EVERY_LEAD)  # every lead, as the docs' own example asks (created after a date) [L9]
        rows, exhausted = self._search_rows(parameter)
        known, owners = self.remote.recall_all(self.name), self._owners()
        leads = [self._lead(row, owners, known=known.get(str(row.get("ProspectID")))) for row in rows]
        # LeadSquared filtered by owner already (by GUID: the staff ID may name the person by email or ID).
        page = match_query(leads, query.model_copy(update={"owner": None}), self.statuses())
        return page if exhausted else page.model_copy(update={"total": page.total + 1, "more": True})

    def _search_rows(self, parameter: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
        """Leads matching ``parameter``, most recently modified first; whether that was all of them."""
        rows: list[dict[str, Any]] = []
        for index in range(1, MAX_PAGES + 1):
            body = {
                "Parameter": parameter,
                "Columns": {"Include_CSV": LEAD_COLUMNS},
                "Sorting": {"ColumnName": "ModifiedOn", "Direction": "1"},
                "Paging": {"PageIndex": index, "PageSize": PAGE},
            }
            page = self._call("POST", f"{LM}/Leads.Get", json=body) or []
            rows += [r for r in page if isinstance(r, dict)]
            if len(page) < PAGE:
                return rows, True
        return rows, False

    def activity(self, lead_id: str, limit: int = 3) -> list[Activity]:
        self._id(lead_id)
        owners = self._owners()
        found = [
            Activity(
                kind="note",
                at=at,
                by=self._staff(n.get("CreatedBy"), owners),
                text=unmarked(str(n.get("Note") or "")),
            )
            for n in self._notes(lead_id, limit)
            if (at := parse_api_time(n.get("CreatedOn")))
        ]
        for item in self._activities(lead_id, limit):
            at = parse_api_time(item.get("CreatedOn"))
            if at is not None:
                found.append(self._activity_line(item, at, owners))
        found.sort(key=lambda a: a.at, reverse=True)
        return found[:limit]

    def _activity_line(self, item: dict[str, Any], at: datetime, owners: dict[str, str]) -> Activity:
        note = unmarked(str((item.get("Data") or {}).get("ActivityEvent_Note") or ""))
        by = self._staff(item.get("CreatedBy"), owners)
        name = str(item.get("EventName") or "activity")
        if name.casefold() == self.options.follow_up_activity.casefold():
            text = "follow-up" + (f": {note}" if note and note != FOLLOW_UP_LOGGED else "")
            return Activity(kind="follow_up", at=at, by=by, text=text)
        return Activity(kind="log", at=at, by=by, text=f"{name}: {note}" if note else name)

    def _notes(self, lead_id: str, count: int = 200) -> list[dict[str, Any]]:
        body = {
            "Parameter": {"RelatedId": lead_id},
            "Sorting": {"ColumnName": "CreatedOn", "Direction": "1"},
            "Paging": {"PageIndex": 1, "PageSize": max(count, 1)},
        }
        reply = self._call("POST", f"{LM}/RetrieveNote", json=body) or {}
        return [n for n in reply.get("List") or [] if isinstance(n, dict)]

    def _activities(self, lead_id: str, count: int = 50) -> list[dict[str, Any]]:
        body = {"Paging": {"Offset": 0, "RowCount": max(count, 1)}}
        reply = self._call("POST", "/v2/ProspectActivity.svc/Retrieve", params={"leadId": lead_id}, json=body) or {}
        return [a for a in reply.get("ProspectActivities") or [] if isinstance(a, dict)]

    def opportunities(self, lead_id: str, page: int = 1, size: int = 5) -> OpportunityPage:
        """Seed 003 exactly: the lead's opportunities, most recent first, one page per call."""
        self._id(lead_id)
        options = self.options
        params = {"leadId": lead_id}
        if options.opportunity_type:
            params["opportunityType"] = options.opportunity_type
        columns = dict.fromkeys(
            (options.opportunity_name, options.opportunity_stage, options.opportunity_value, "Status", "Owner")
        )
        body = {
            "Columns": {"Include_CSV": ",".join(columns)},
            "Paging": {"PageIndex": page, "PageSize": size},
            "Sorting": {"ColumnName": "PACreatedOn", "Direction": "1"},
        }
        reply = self._call("POST", OPPORTUNITIES, params=params, json=body) or {}
        owners = self._owners()
        rows = [r for r in reply.get("List") or [] if isinstance(r, dict)]
        found = [self._opportunity(row, owners) for row in rows]
        return OpportunityPage(
            opportunities=found, total=_count(reply.get("RecordCount"), len(found)), page=page, size=size
        )

    def _opportunity(self, row: dict[str, Any], owners: dict[str, str]) -> Opportunity:
        options = self.options
        return Opportunity(
            id=str(row.get("OpportunityId") or ""),
            name=str(row.get(options.opportunity_name) or "opportunity"),
            stage=_text(row.get(options.opportunity_stage)),
            status=_text(row.get("Status")),
            owner=self._staff(row.get("Owner"), owners),
            owner_name=_text(row.get("OwnerName")),
            value=_text(row.get(options.opportunity_value)),
            created_at=parse_api_time(row.get("PACreatedOn")),
        )

    def reachable(self) -> str | None:
        try:  # sent once, not retried: /lead backends says at once what is wrong
            self._call("GET", f"{LM}/LeadsMetaData.Get", write=True, params={"schemaName": "ProspectStage"})
        except LeadError as exc:
            return exc.message
        return None

    # -- writing ------------------------------------------------------------------------------

    def create(self, lead: NewLead, *, by: str) -> Lead:
        if lead.type:
            raise Unsupported("LeadSquared leads have no type: leave out type=", field="type")
        stage = self._new_stage(lead)
        owner = lead.owner or by
        owner_id = self._user_id(owner)
        attributes = _new_lead_attributes(lead, stage, owner_id, self.options.source)
        body = [{"Attribute": k, "Value": v} for k, v in attributes.items()]
        try:
            reply = self._call("POST", f"{LM}/Lead.Create", write=True, json=body)
            lead_id, resumed = str((reply.get("Message") or {})["Id"]), False
        except _Refused as exc:
            if exc.kind != "MXDuplicateEntryException":
                raise
            lead_id, resumed = self._own_duplicate(lead, attributes), True
        if lead.note:
            self._ensure_note(lead_id, lead.note, lead.receipt, check=resumed)
        if lead.next_follow_up:
            name = " ".join(p for p in (attributes.get("FirstName"), attributes.get("LastName")) if p)
            tasks = self._tasks(lead_id) if resumed else []
            if not any(carries(t.get("Description"), new_mark(lead.receipt)) for t in tasks):
                self._new_task(lead_id, name, lead.next_follow_up, owner_id, by, lead.receipt)
        # The receipt of the create that made it: a later create meeting this lead is a duplicate, not a resend.
        self.remote.remember(self.name, lead_id, next_follow_up=lead.next_follow_up, extra={"receipt": lead.receipt})
        return _created_lead(self.name, lead_id, lead, attributes, owner, self.clock())

    def _new_stage(self, lead: NewLead) -> str:
        """The stage a new lead is made in: the one asked for, else the account's first."""
        if lead.status:
            return self.status_option(lead.status).value
        stages = self.statuses()
        if not stages:
            raise Rejected("LeadSquared lists no lead stages (LeadsMetaData.Get): an admin must set some up")
        return stages[0].value

    def _own_duplicate(self, lead: NewLead, attributes: dict[str, str]) -> str:
        """After ``MXDuplicateEntryException``: the lead this very create made (a resend), else ``Duplicate``."""
        raw = self._existing(lead)
        if raw is None:
            raise Duplicate("LeadSquared already has a lead with this email or phone")
        lead_id = str(raw.get("ProspectID"))
        if _same_lead(raw, attributes, self.clock()) and self._unclaimed(lead_id, lead.receipt):
            return lead_id
        ref = f"{self.name}:{lead_id}"
        raise Duplicate("a lead with this email or phone exists already: {ref}", existing_ref=ref, ref=Code(ref))

    def _existing(self, lead: NewLead) -> dict[str, Any] | None:
        """The lead with this email, else this phone (LeadSquared keeps both unique) [L7][L8]."""
        if lead.email:
            rows = self._call("GET", f"{LM}/Leads.GetByEmailaddress", params={"emailaddress": lead.email}) or []
            if rows:
                return rows[0]
        if lead.phone:
            digits = re.sub(r"\D", "", without_extension(lead.phone) or "")
            rows = self._call("GET", f"{LM}/RetrieveLeadByPhoneNumber", params={"phone": digits}) or []
            if rows:
                return rows[0]
        return None

    def _ensure_note(self, lead_id: str, text: str, receipt: str | None, *, check: bool) -> None:
        if check and receipt and any(carries(n.get("Note"), new_mark(receipt)) for n in self._notes(lead_id)):
            return
        body = {"RelatedProspectId": lead_id, "Note": marked(text, receipt)}
        self._lead_call("POST", f"{LM}/CreateNote", lead_id, json=body)

    def _new_task(self, lead_id: str, name: str, due: datetime, owner_id: str, by: str, receipt: str | None) -> None:
        body = {
            "Name": f"Follow up with {name}" if name else "Follow up",
            "Description": marked(f"Next follow-up, scheduled through Leadbot by {by}", receipt),
            "RelatedEntity": 1,
            "RelatedEntityId": lead_id,
            "DueDate": to_lsq_time(due),
            "OwnerId": owner_id,
            "TaskType": {"Name": self.options.follow_up_task_type},
        }
        self._lead_call("POST", "/v2/Task.svc/Create", lead_id, json=body)

    def _update_task(self, lead_id: str, task: dict[str, Any], mark: str, **fields: Any) -> None:
        description = f"{task.get('Description') or ''} {mark}".strip()
        body = {"UserTaskId": task.get("TaskID") or task.get("UserTaskId"), "Description": description, **fields}
        self._lead_call("POST", "/v2/Task.svc/Update", lead_id, json=body)

    def assign(self, lead_id: str, owner: str, *, by: str, receipt: str | None = None) -> Lead:
        self._id(lead_id)
        owner_id = self._user_id(owner)
        self._update_lead(lead_id, {"OwnerId": owner_id})
        lead, raw, tasks = self._fresh(lead_id)
        changed = lead.model_copy(update={"owner": owner})
        self._keep(changed, {**raw, "OwnerId": owner_id}, tasks)
        return changed

    def change_status(self, lead_id: str, change: StatusChange) -> Lead:
        self._id(lead_id)
        if change.sub_status:
            raise Unsupported("LeadSquared stages have no sub-statuses", field="sub_status")
        stage = self.status_option(change.status).value
        self._update_lead(lead_id, {"ProspectStage": stage})
        if change.reason:  # LeadSquared stages take no reason: kept as a note rather than dropped
            self._ensure_note(lead_id, f"Stage → {stage}: {change.reason}", change.receipt, check=False)
        lead, raw, tasks = self._fresh(lead_id)
        changed = lead.model_copy(update={"status": stage, "last_activity": change.at})
        self._keep(changed, raw, tasks)
        return changed

    def add_note(self, lead_id: str, note: Note) -> Lead:
        self._id(lead_id)
        self._ensure_note(lead_id, note.text, note.receipt, check=False)
        lead, _, _ = self._fresh(lead_id)
        return lead.model_copy(update={"last_activity": note.at})

    def log_follow_up(self, lead_id: str, follow_up: FollowUp) -> Lead:
        """Complete the lead's next task, schedule the next one, then post the activity (which marks it done)."""
        lead, raw, tasks = self._fresh(lead_id)
        receipt = follow_up.receipt
        ours = [t for t in tasks if carries(t.get("Description"), new_mark(receipt))]
        pending = _pending(t for t in tasks if t not in ours)
        if pending and not any(carries(t.get("Description"), done_mark(receipt)) for t in tasks):
            self._update_task(lead_id, pending[0], done_mark(receipt), StatusCode=1)
            pending = pending[1:]
        if follow_up.next_follow_up and not ours:
            owner_id = str(raw.get("OwnerId") or self._user_id(follow_up.by))
            self._new_task(lead_id, lead.name, follow_up.next_follow_up, owner_id, follow_up.by, receipt)
        activity = {
            "RelatedProspectId": lead_id,
            "ActivityEvent": self._follow_up_code(),
            "ActivityNote": marked(follow_up.notes or FOLLOW_UP_LOGGED, receipt),
            "ActivityDateTime": to_lsq_time(follow_up.done_at),
        }
        self._lead_call("POST", "/v2/ProspectActivity.svc/Create", lead_id, json=activity)
        dues = [d for d in (_due(t) for t in pending) if d]
        if follow_up.next_follow_up:
            dues.append(follow_up.next_follow_up)
        nxt = min(dues, default=None)
        self.remote.remember(self.name, lead_id, next_follow_up=nxt)
        with self._lock:
            self._recent.pop(lead_id, None)  # its tasks changed
        return lead.model_copy(update={"next_follow_up": nxt, "last_activity": follow_up.done_at})

    def reschedule(self, lead_id: str, when: datetime, *, by: str, receipt: str | None = None) -> Lead:
        """Snooze: the lead's next open task moves to ``when`` (or a task is made for it)."""
        lead, raw, tasks = self._fresh(lead_id)
        done = any(carries(t.get("Description"), m) for t in tasks for m in (moved_mark(receipt), new_mark(receipt)))
        pending = _pending(tasks)
        if not done and pending:
            self._update_task(lead_id, pending[0], moved_mark(receipt), DueDate=to_lsq_time(when))
        elif not done:
            owner_id = str(raw.get("OwnerId") or self._user_id(by))
            self._new_task(lead_id, lead.name, when, owner_id, by, receipt)
        others = [d for d in (_due(t) for t in pending[1:]) if d]
        nxt = min([when, *others])
        self.remote.remember(self.name, lead_id, next_follow_up=nxt)
        with self._lock:
            self._recent.pop(lead_id, None)
        return lead.model_copy(update={"next_follow_up": nxt})

    def _follow_up_code(self) -> int:
        """The activity type follow-ups are posted as (``follow_up_activity``), made once if the account lacks it."""
        if self._follow_up_event is not None:
            return self._follow_up_event
        with self._event_lock:  # threads that need it together look it up once
            if self._follow_up_event is None:
                self._follow_up_event = self._find_or_make_event()
            return self._follow_up_event

    def _find_or_make_event(self) -> int:
        wanted = self.options.follow_up_activity
        code = _event_code(self._call("GET", "/v2/ProspectActivity.svc/ActivityTypes.Get") or [], wanted)
        if code is None:
            body = {"ActivityEventName": wanted, "Score": 0, "Direction": 1}
            try:
                made = self._call("POST", "/v2/ProspectActivity.svc/CreateType", write=True, json=body) or {}
                code = int((made.get("Message") or {})["Id"])
            except _Refused as exc:  # another process made it first
                if exc.kind != "MXDuplicateEntryException":
                    raise
                code = _event_code(self._call("GET", "/v2/ProspectActivity.svc/ActivityTypes.Get") or [], wanted)
        if code is None:
            raise Rejected("LeadSquared has no activity type {name} for follow-ups", name=Code(wanted))
        return code

    # -- did a write that timed out land after all? (the outbox asks before sending it again) -

    def applied(self, op: str, args: dict[str, Any]) -> Lead | None:
        if op == "create":
            return self._created(NewLead.model_validate(args["lead"]), args["by"])
        lead_id = args["lead_id"]
        if op == "assign":
            lead = self.get(lead_id)
            return lead if lead.owner == args["owner"] or self._same_user(lead.owner, args["owner"]) else None
        if op == "change_status":
            return self._status_landed(lead_id, StatusChange.model_validate(args["change"]))
        if op == "add_note":
            receipt = args["note"].get("receipt")
            found = any(carries(n.get("Note"), new_mark(receipt)) for n in self._notes(lead_id))
            return self.get(lead_id) if receipt and found else None
        if op == "log_follow_up":
            receipt = args["follow_up"].get("receipt")
            notes = [str((a.get("Data") or {}).get("ActivityEvent_Note") or "") for a in self._activities(lead_id)]
            return self.get(lead_id) if receipt and any(carries(n, new_mark(receipt)) for n in notes) else None
        if op == "reschedule":
            return self._snooze_landed(lead_id, args.get("receipt"), datetime.fromisoformat(args["when"]))
        if op == "edit":  # landed if the lead has every value the edit set
            raw = (self._call("GET", f"{LM}/Leads.GetById", params={"id": lead_id}) or [{}])[0]
            wanted = _edit_attributes(LeadEdit.model_validate(args["edit"]))
            same = all(str(raw.get(k) or "").casefold() == v.casefold() for k, v in wanted.items() if k != "Phone")
            return self.get(lead_id) if same else None
        return None

    def _created(self, lead: NewLead, by: str) -> Lead | None:
        """A new lead whose reply was lost: found by its unique email or phone, with every field as sent,
        and with its note and next follow-up (else it is sent again, and carries on where it stopped)."""
        raw = self._existing(lead)
        if raw is None:
            return None
        attributes = _new_lead_attributes(
            lead, self._new_stage(lead), self._user_id(lead.owner or by), self.options.source
        )
        lead_id = str(raw["ProspectID"])
        if not (_same_lead(raw, attributes, self.clock()) and self._unclaimed(lead_id, lead.receipt)):
            return None
        if lead.note and not any(carries(n.get("Note"), new_mark(lead.receipt)) for n in self._notes(lead_id)):
            return None
        found = self.get(lead_id)
        if lead.next_follow_up and found.next_follow_up is None:
            return None
        return found

    def _status_landed(self, lead_id: str, change: StatusChange) -> Lead | None:
        lead, raw, _ = self._read(lead_id)
        modified = parse_api_time(raw.get("ModifiedOn"))
        if lead.status.casefold() != self.status_option(change.status).value.casefold():
            return None
        if modified is None or modified < change.at - CLOCK_SKEW:
            return None  # the stage is right, but was set before this change was asked: not this write
        if change.reason and not any(carries(n.get("Note"), new_mark(change.receipt)) for n in self._notes(lead_id)):
            return None
        return lead

    def _snooze_landed(self, lead_id: str, receipt: str | None, when: datetime) -> Lead | None:
        lead, _, tasks = self._read(lead_id)
        marks = (moved_mark(receipt), new_mark(receipt))
        moved = [t for t in tasks if any(carries(t.get("Description"), m) for m in marks)]
        if receipt and any(_due(t) == when.astimezone(UTC).replace(microsecond=0) for t in moved):
            return lead
        return None

    def _unclaimed(self, lead_id: str, receipt: str | None) -> bool:
        """Whether no other create got Leadbot the reply for this lead (its receipt is this one, or none is known)."""
        known = self.remote.recall(self.name, lead_id)
        made_by = known.extra.get("receipt") if known else None
        return made_by is None or made_by == receipt

    def _same_user(self, one: str | None, other: str) -> bool:
        try:
            return one is not None and self._user_id(one) == self._user_id(other)
        except Invalid:
            return False

    # -- helpers ------------------------------------------------------------------------------

    def _id(self, lead_id: str) -> str:
        if not GUID.fullmatch(lead_id):
            raise NotFound(
                "{ref} is not a lead reference: LeadSquared leads are named by their lead ID, e.g. {example}",
                ref=Code(f"{self.name}:{lead_id}"),
                example=Code(f"{self.name}:69e1c27e-dd08-4b53-b509-f353ad1c7f4d"),
            )
        return lead_id

    def _staff(self, user_id: Any, owners: dict[str, str]) -> str | None:
        if not user_id:
            return None
        return owners.get(str(user_id).casefold(), str(user_id))

    def _lead(
        self,
        raw: dict[str, Any],
        owners: dict[str, str],
        *,
        next_follow_up: datetime | None = None,
        known: RemoteLead | None = None,
    ) -> Lead:
        """A flat LeadSquared lead; the next follow-up from its tasks when read, else as Leadbot last saw it."""
        lead_id = str(raw.get("ProspectID"))
        name = " ".join(str(p) for p in (raw.get("FirstName"), raw.get("LastName")) if p)
        name = name or raw.get("EmailAddress") or shown_phone(raw.get("Phone")) or f"lead {raw.get('ProspectAutoId')}"
        return Lead(
            backend=self.name,
            id=lead_id,
            name=str(name),
            email=_text(raw.get("EmailAddress")),
            phone=shown_phone(raw.get("Phone") or raw.get("Mobile")),
            lead_for=_text(raw.get("Company")),
            source=_text(raw.get("Source")),
            status=str(raw.get("ProspectStage") or ""),
            owner=self._staff(raw.get("OwnerId"), owners),
            next_follow_up=next_follow_up if known is None else known.next_follow_up,
            last_activity=parse_api_time(raw.get("ModifiedOn")),
            created_at=parse_api_time(raw.get("CreatedOn")),
        )


def _refusal(error: dict[str, Any]) -> _Refused:
    said = str(error.get("ExceptionMessage") or error.get("Message") or "no message")[:300]
    return _Refused(str(error.get("ExceptionType") or ""), said)


def _maybe_json(response: Any) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _count(value: Any, fallback: int) -> int:
    try:
        return int(str(value).replace(",", ""))
    except (TypeError, ValueError):
        return fallback


def _find_user(users: list[dict[str, Any]], staff_id: str, *, active: bool = True) -> dict[str, Any] | None:
    wanted = staff_id.strip().casefold()
    for user in users:
        if active and str(user.get("StatusCode", "0")) != "0":
            continue
        if wanted in (str(user.get("ID", "")).casefold(), str(user.get("EmailAddress", "")).casefold()):
            return user
    return None


def _event_code(types: list[Any], name: str) -> int | None:
    for kind in types:
        if isinstance(kind, dict) and str(kind.get("ActivityEventName", "")).casefold() == name.casefold():
            return int(kind["ActivityEvent"])
    return None


def _due(task: dict[str, Any]) -> datetime | None:
    due = parse_api_time(task.get("DueDate"))
    return due.replace(microsecond=0) if due else None


def _pending(tasks: Any) -> list[dict[str, Any]]:
    """Open tasks, soonest due first."""
    far = datetime.max.replace(tzinfo=UTC)
    found = [t for t in tasks if str(t.get("Status") or "").casefold() not in DONE_TASK]
    return sorted(found, key=lambda t: _due(t) or far)


def _next_due(tasks: list[dict[str, Any]]) -> datetime | None:
    return next((d for d in (_due(t) for t in _pending(tasks)) if d), None)


def _new_lead_attributes(lead: NewLead, stage: str, owner_id: str, source: str | None) -> dict[str, str]:
    """``Lead.Create``'s attributes, in the order the create-lead page lists them [L3]."""
    first, _, last = lead.name.strip().partition(" ")
    given = {
        "FirstName": first,
        "LastName": last.strip(),
        "EmailAddress": lead.email,
        "Phone": lsq_phone(without_extension(lead.phone)) if lead.phone else None,
        "Company": lead.lead_for,
        "Source": lead.source or source,
        "ProspectStage": stage,
        "OwnerId": owner_id,
    }
    return {k: v for k, v in given.items() if v}


def _edit_attributes(edit: LeadEdit) -> dict[str, str]:
    """``Lead.Update``'s attributes for the fields an edit sets (the name split as a new lead's is)."""
    given: dict[str, str | None] = {
        "EmailAddress": edit.email,
        "Phone": lsq_phone(without_extension(edit.phone)) if edit.phone else None,
        "Company": edit.lead_for,
        "Source": edit.source,
    }
    if edit.name is not None:
        first, _, last = edit.name.strip().partition(" ")
        given |= {"FirstName": first, "LastName": last.strip()}
    return {k: v for k, v in given.items() if v is not None}


def _same_lead(raw: dict[str, Any], attributes: dict[str, str], now: datetime) -> bool:
    """Whether ``raw`` is the lead these attributes made: every field as sent, made within the day."""
    for name, value in attributes.items():
        have = str(raw.get(name) or "")
        if name == "Phone":
            same = re.sub(r"\D", "", have) == re.sub(r"\D", "", value)
        else:
            same = have.casefold() == value.casefold()
        if not same:
            return False
    created = parse_api_time(raw.get("CreatedOn"))
    return created is not None and created >= now - CREATED_WITHIN


def _created_lead(
    backend: str, lead_id: str, lead: NewLead, attributes: dict[str, str], owner: str, now: datetime
) -> Lead:
    """The new lead as Leadbot made it, without reading it back (a call saved)."""
    history = (Activity(kind="note", at=now, by=owner, text=lead.note),) if lead.note else ()
    return Lead(
        backend=backend,
        id=lead_id,
        name=lead.name,
        email=lead.email,
        phone=lead.phone,
        lead_for=lead.lead_for,
        source=attributes.get("Source"),
        status=attributes["ProspectStage"],
        owner=owner,
        next_follow_up=lead.next_follow_up,
        last_activity=now,
        created_at=now,
        history=history,
    )


# -- configuration ----------------------------------------------------------------------------


class LeadSquaredOptions(BaseModel):
    """``LEADBOT_LEADSQUARED_*`` and ``[backends.leadsquared]`` in LEADBOT_CONFIG."""

    model_config = ConfigDict(extra="forbid")

    url: str
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    rate_limit: int = Field(25, ge=1, le=1000)  # calls per rate_window per access key (the plan's burst limit)
    rate_window: float = Field(5.0, gt=0, le=60)
    closed_stages: list[str] = Field(default_factory=lambda: ["Customer", "Lost", "Not Interested", "Junk"])
    source: str | None = None  # the Source of leads made through Leadbot when the person gives none
    follow_up_task_type: str = "Follow Up"  # the task type (TaskType.Name) of the follow-ups Leadbot schedules
    follow_up_activity: str = "Leadbot follow-up"  # the activity type a follow-up done is posted as
    opportunity_name: str = "mx_Custom_1"  # the opportunity columns this account keeps them in (seed 003)
    opportunity_stage: str = "mx_Custom_2"
    opportunity_value: str = "mx_Custom_6"
    opportunity_type: str | None = None  # an opportunity type code: only those (else all types)

    @field_validator("url")
    @classmethod
    def _https_host(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("not an https:// URL (LeadSquared refuses plain HTTP)")
        if not parts.hostname:
            raise ValueError("no host")
        return value.strip().rstrip("/").removesuffix("/v2")

    @field_validator("opportunity_name", "opportunity_stage", "opportunity_value")
    @classmethod
    def _column(cls, value: str) -> str:
        if not COLUMN.fullmatch(value):
            raise ValueError(f"{value!r} is not a column's schema name (e.g. mx_Custom_1)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _keys_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and not (data.get("access_key") and data.get("secret_key")):
            raise ValueError(
                "LEADBOT_LEADSQUARED_URL needs both LEADBOT_LEADSQUARED_ACCESS_KEY and LEADBOT_LEADSQUARED_SECRET_KEY"
                " (My Account > Settings > API and Webhooks)"
            )
        return data


SPEC = BackendSpec(
    name="leadsquared",
    title=LeadSquaredBackend.title,
    options=LeadSquaredOptions,
    build=LeadSquaredBackend,
    env=(
        EnvVar("LEADBOT_LEADSQUARED_URL", "url", "the account's API host, e.g. https://api-in21.leadsquared.com"),
        EnvVar("LEADBOT_LEADSQUARED_ACCESS_KEY", "access_key", "the API access key", secret=True),
        EnvVar("LEADBOT_LEADSQUARED_SECRET_KEY", "secret_key", "the API secret key", secret=True),
    ),
    summary="LeadSquared: stages, notes, follow-ups as tasks, opportunities; 25 calls per 5 s shared by every process",
)
