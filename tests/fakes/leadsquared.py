"""A fake LeadSquared (v2 REST API under ``/v2/``), from seed 003 and backends.md Part 1.

Authentication: the ``x-LSQ-AccessKey`` / ``x-LSQ-SecretKey`` headers, or the
``accessKey`` / ``secretKey`` query parameters (both documented; LeadSquared
recommends the headers). ``keys_in_url`` lists every request that carried a key
in its URL, so tests can assert the product never does. Two users have keys:
``ACCESS_KEY``/``SECRET_KEY`` (the admin, Lead Bot) and ``SALES_ACCESS_KEY``/
``SALES_SECRET_KEY`` (Ana Silva, a sales user). Wrong keys get 401.

What it serves (every path under ``/v2/``): ``Authentication.svc/UserByAccessKey.Get``;
``LeadManagement.svc/`` ``Lead.Create``, ``Lead.Update?leadId=``, ``Leads.GetById?id=``,
``Leads.GetByEmailaddress?emailaddress=``, ``RetrieveLeadByPhoneNumber?phone=``,
``Leads.GetByQuickSearch?key=``, ``Leads.Get``, ``LeadsMetaData.Get``, ``CreateNote``,
``RetrieveNote``, ``RetrieveTaskByLeadId?leadId=``; ``UserManagement.svc/`` ``Users.Get``,
``User/Retrieve/ByEmailAddress?emailAddress=``; ``Task.svc/`` ``Create``, ``Update``,
``Retrieve.GetById?id=``; ``ProspectActivity.svc/`` ``Create``, ``Retrieve?leadId=``,
``ActivityTypes.Get``, ``CreateType``; ``OpportunityManagement.svc/GetOpportunitiesOfLead``
exactly as seed 003.

As documented: lead fields by schema name, ``mx_`` custom fields; a new lead needs
one of FirstName, LastName, EmailAddress, Phone; EmailAddress and Phone are unique
(``MXDuplicateEntryException``, "Duplicate entry '…' for key
'UQ_Prospect_Base_EmailAddress'"); an unknown lead on update is
``MXInvalidEntityException`` "Lead does not exist in the system"; no ``leadId`` is
``MXMandatoryAttributeMissingException`` "'leadId' is mandatory for updating lead";
phones are shown as ``+<cc>-<number>``; the lookup by phone takes the number with or
without the country code, digits only, searches Phone and Mobile, and returns the
lead with the latest activity; dates are UTC ``YYYY-MM-DD HH:MM:SS``; search bodies
take ``Parameter``/``Columns.Include_CSV``/``Sorting`` (Direction "1" descending, "0"
ascending)/``Paging`` (PageIndex from 1); exceptions are ``{"Status": "Error",
"ExceptionType": …, "ExceptionMessage": …}`` on HTTP 500, or on the status given as
``exception_status`` (e.g. 200: Chatwoot treats a 2xx with ``"Status": "Error"`` as a
failure). Rate limit: ``rate_limit`` (25) calls in any ``rate_window`` (5) seconds per
access key, a sliding window on the fake's clock, safe under concurrent clients; past
it, 429 with "API calls exceeded the limit of 25 in 5 second(s)" and no
``Retry-After`` (none was found). ``throttled`` counts the 429s.

Choices where the documents are silent (each can be checked against a real account):
- Regions: ``region`` names the account's region (``REGIONS``: sg, us11, in21, in22,
  ir31, ca12; default in21); UserByAccessKey.Get reports its API host in
  ``LSQCommonServiceURLs.api`` (a bare host name) and an app host in ``.app`` (the
  docs give no app host names: ``app-<region>.leadsquared.com``, and
  ``app.leadsquared.com`` for sg, are invented). ``wrong_region=True`` makes the fake a
  host of another region: UserByAccessKey.Get still works there (documented) and every
  other call gets the same 401 as wrong keys (the keys are unknown to that region), so
  a product that gets a 401 can call UserByAccessKey.Get and, when it works, tell the
  operator which host to set.
- The 401 body is ``{"Status": "Error", "ExceptionType": "MXUnAuthorizedAccessException",
  "ExceptionMessage": "The API call was made with invalid access credentials. Check your
  AccessKey and SecretKey."}`` (the message is the docs' 401 text; the type is seen in
  public client code). The 429 body has type ``MXAPIRateLimitExceededException`` (also
  seen in public client code). Calls refused for auth are not counted by the rate limit;
  a refused call does not count either.
- 400 (not an exception, so never on ``exception_status``): a POST body that is not JSON,
  is sent without ``Content-Type: application/json``, or does not have the documented
  structure (an attribute list that is not a list of ``{"Attribute", "Value"}``); the
  body has ``ExceptionType`` ``MXInvalidInputException``. 404 for an unknown path and 405
  for a known path with another method, as JSON with ``ExceptionMessage``. Paths are
  matched exactly (case included).
- Attributes: an unknown schema name is ``MXUnknownAttributeException`` (seen in public
  client code); setting a system field (ProspectID, CreatedOn, OwnerIdName, …) is
  ``MXInvalidInputException``; so is a malformed EmailAddress, a phone that is not
  ``+<cc>-<number>``, ``+<cc><number>`` or digits (a number without country code gets the
  account's ``DefaultCountryCode``), a ProspectStage that is not one of its options
  (Prospect, Opportunity, Customer plus ``extra_stages``), and an OwnerId that is not an
  active user. Custom fields are ``custom_fields`` (default mx_City, mx_Product); custom
  field sets (``Fields`` inside an attribute) are refused. A null or empty Value clears
  the field on update. A new lead's owner is the user whose keys are sent.
- Reads never fail for an unknown lead: GetById and the email/phone lookups answer ``[]``,
  the lists of notes, tasks, activities and opportunities answer ``RecordCount`` 0. Writes
  about an unknown lead are ``MXInvalidEntityException``. A missing mandatory query
  parameter is ``MXMandatoryAttributeMissingException``.
- Leads.GetByQuickSearch: a case-insensitive substring of FirstName, LastName, "FirstName
  LastName", EmailAddress or Company, or, for a key of 3 or more digits, of the digits of
  Phone or Mobile; newest-modified first.
- Leads.Get answers a JSON array of flat leads (the reply was not found); operators ``=``,
  ``<>``, ``<``, ``>``, ``<=``, ``>=`` (numbers compared as numbers, else as text: dates
  compare right in their format), ``LIKE`` with SQL's ``%`` and ``_`` (case-insensitive;
  without a wildcard it is an exact match) and ``IN`` (comma-separated). Default paging:
  PageIndex 1, PageSize 100; default order: ProspectAutoId ascending. Include_CSV limits
  the fields (ProspectID is always there); an unknown column is MXUnknownAttributeException.
- LeadsMetaData.Get: ``[{SchemaName, DisplayName, DataType, IsMandatory, MaxLength}]`` and
  ``Options: [{"Value": …}]`` for ProspectStage; ``schemaName=`` narrows it to one field and
  ``excludeOptionSets=1`` leaves the options out (both documented).
- User/Retrieve/ByEmailAddress answers an array of one user (``[]`` when unknown or
  inactive), shaped like the documented User/Retrieve/ByUserId.
- RetrieveNote: the documented POST with ``{"Parameter": {"RelatedId", "Id"?}, "Paging",
  "Sorting"}``; ``leadId`` in the query is taken too (GET or POST). The reply is
  ``{"RecordCount", "List": [{ProspectNoteId, RelatedProspectId, Note, AttachmentName,
  CreatedBy, CreatedByName, CreatedOn, …}]}`` (RecordCount is a choice). CreateNote needs
  RelatedProspectId and a non-empty Note.
- Tasks: Create needs Name, DueDate (``YYYY-MM-DD HH:MM:SS``, optionally ``.fff``), OwnerId
  or OwnerEmailAddress of an active user, and ``TaskType: {"Name"}`` of ``TASK_TYPES``;
  RelatedEntity 0 (none), 1 (a lead: RelatedEntityId must be one) or 5 (an opportunity);
  NotifyBy "1100" or "1000"; unknown fields are refused. Update needs a known UserTaskId
  and also takes ``StatusCode`` 0/1 (open/completed; a choice). Retrieve.GetById answers
  an array (``[0]``, as Panora reads it) with the fields Panora's types list. Tasks of a
  lead: the documented ``LeadManagement.svc/RetrieveTaskByLeadId?leadId=`` (GET), answering
  ``{"RecordCount", "TaskList": [{TaskID, Name, Description, DueDate, CreatedOn, OwnerID,
  OwnerName, CreatedBy, CreatedByName, Status ("Pending"/"Completed"), Reminder}]}``.
- Activities: ActivityTypes.Get answers ``[{ActivityEvent, ActivityEventName, Score,
  Direction}]`` (the fields Chatwoot reads); CreateType needs a new ActivityEventName and
  answers ``Message.Id`` = the new code; Create needs RelatedProspectId (or EmailAddress,
  which creates the lead when none has it, as documented) and a known ActivityEvent (else
  ``MXInvalidActivityException``, seen in public client code), takes ActivityNote,
  ActivityDateTime and ``Fields`` ``[{SchemaName: mx_Custom_1..50, Value}]``. Retrieve
  answers ``{"RecordCount", "ProspectActivities": [{Id, EventCode, EventName,
  ActivityScore, CreatedOn, ActivityType, Type, Data: {ActivityEvent_Note, mx_Custom_…}}]}``
  newest first, 25 by default, ``Paging.Offset`` rows skipped, ``Paging.RowCount`` rows.
- Opportunities: with ``seed=True`` (default) the seed's lead (Manish Garg, ``SAMPLE_LEAD``)
  has 12 opportunities: the seed's two and ten more, of types 12005 and 12002, so paging
  past the first page can be tested. Each row has the seed sample's fields (Total is the
  record count, as text) plus any Include_CSV column (null when unset). Without a body all
  are returned. ``add_opportunity`` adds more. Sorting by a column a row does not have is
  MXInvalidInputException.
- HTTPS is not modelled (the fake is plain HTTP on 127.0.0.1).

Pages of apidocs.leadsquared.com behind the shapes above that backends.md does not
cite: /user-authentication/ (UserByAccessKey.Get's fields), /get-user-by-id/ (a user
array), /get-lead-field-properties (``schemaName``, ``Options``), /meta-data/
(``excludeOptionSets``), /get-all-notes-of-lead/ (RetrieveNote), /retrieve-tasks-by-leadid/
(RetrieveTaskByLeadId), /get-activities-of-a-lead/ (Retrieve's reply and the 25 default),
/get-users (Users.Get).

Standalone::

    python -m tests.fakes.leadsquared --port 8703 [--state leadsquared.json]
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from bot.loopback import Answer, FakeServer, Received, SlidingWindow, serve

REGIONS = {
    "sg": "api.leadsquared.com",
    "us11": "api-us11.leadsquared.com",
    "in21": "api-in21.leadsquared.com",
    "in22": "api-in22.leadsquared.com",
    "ir31": "api-ir31.leadsquared.com",
    "ca12": "api-ca12.leadsquared.com",
}
ACCESS_KEY, SECRET_KEY = "u$r7b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9", "9f8e7d6c5b4a39281706f5e4d3c2b1a0fedcba98"
SALES_ACCESS_KEY, SALES_SECRET_KEY = "u$r0a1b2c3d4e5f60718293a4b5c6d7e8f", "0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"
ADMIN_ID = "3b1041fb-8374-11e7-8758-0a106ee76b21"
ANA_ID = "5d2a6f10-1c3b-11ee-9c1e-02a5b4c6d7e8"
BOB_ID = "6e3b7021-1c3b-11ee-9c1e-02a5b4c6d7e8"
RAJESH_ID = "a4dfa1c5-c6d2-11ea-92ae-0a6d35d1ff1e"  # the seed's opportunity owner
ROHAN_ID = "b81c9f2e-c6d2-11ea-92ae-0a6d35d1ff1e"  # the seed lead's owner
INACTIVE_ID = "7f4c8132-1c3b-11ee-9c1e-02a5b4c6d7e8"
USERS = [
    {"ID": ADMIN_ID, "FirstName": "Lead", "LastName": "Bot", "EmailAddress": "leadbot@example.com",
     "Role": "Administrator", "StatusCode": 0},
    {"ID": ANA_ID, "FirstName": "Ana", "LastName": "Silva", "EmailAddress": "ana.silva@example.com",
     "Role": "Sales_User", "StatusCode": 0},
    {"ID": BOB_ID, "FirstName": "Bob", "LastName": "Kumar", "EmailAddress": "bob.kumar@example.com",
     "Role": "Sales_User", "StatusCode": 0},
    {"ID": RAJESH_ID, "FirstName": "Rajesh", "LastName": "Aggarwal", "EmailAddress": "rajesh@example.com",
     "Role": "Sales_Manager", "StatusCode": 0},
    {"ID": ROHAN_ID, "FirstName": "Rohan", "LastName": "Sane", "EmailAddress": "rohan@example.com",
     "Role": "Sales_User", "StatusCode": 0},
    {"ID": INACTIVE_ID, "FirstName": "Old", "LastName": "Hand", "EmailAddress": "old.hand@example.com",
     "Role": "Sales_User", "StatusCode": 1},
]  # fmt: skip
STAFF = {u["EmailAddress"]: u["ID"] for u in USERS if u["StatusCode"] == 0}  # active users: email -> ID
KEYS = {ACCESS_KEY: (SECRET_KEY, ADMIN_ID), SALES_ACCESS_KEY: (SALES_SECRET_KEY, ANA_ID)}
ORG = {"OrgId": "3b1041a3-8374-11e7-8758-0a106ee76b21", "OrgDisplayName": "Leadbot Test Org"}
ORG |= {"OrgShortCode": "22824", "OrgUniqueName": "t20240101000000"}
STAGES = ("Prospect", "Opportunity", "Customer")
TASK_TYPES = {"Follow Up": 1, "To-do": 1, "Meeting": 0, "Call": 0}  # name -> Category (0 appointment, 1 to-do)
ACTIVITY_TYPES = [
    {"ActivityEvent": 201, "ActivityEventName": "Follow-up Call", "Score": 5, "Direction": 1},
    {"ActivityEvent": 202, "ActivityEventName": "Meeting Done", "Score": 10, "Direction": 1},
]
SAMPLE_LEAD = "69e1c27e-dd08-4b53-b509-f353ad1c7f4d"
OPERATORS = ("=", "<>", "<", ">", "<=", ">=", "LIKE", "IN")
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,3})?")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
UNAUTHORIZED = "The API call was made with invalid access credentials. Check your AccessKey and SecretKey."
TASK_FIELDS = {
    "Name", "Description", "RelatedEntity", "RelatedEntityId", "DueDate", "EndDate", "Reminder",
    "ReminderBeforeDays", "ReminderTime", "NotifyBy", "OwnerId", "OwnerEmailAddress", "TaskType",
    "Location", "Priority",
}  # fmt: skip
READ_ONLY = (
    "ProspectID", "ProspectAutoId", "OwnerIdName", "OwnerIdEmailAddress", "CreatedBy", "CreatedByName", "CreatedOn",
    "ModifiedBy", "ModifiedByName", "ModifiedOn",
)  # fmt: skip
WRITABLE = ("FirstName", "LastName", "EmailAddress", "Phone", "Mobile", "Company", "Source", "ProspectStage", "OwnerId")
DISPLAY = {
    "ProspectID": ("Lead Id", "String"), "ProspectAutoId": ("Lead Number", "Number"),
    "FirstName": ("First Name", "String"), "LastName": ("Last Name", "String"),
    "EmailAddress": ("Email", "Email"), "Phone": ("Phone Number", "Phone"), "Mobile": ("Mobile Number", "Phone"),
    "Company": ("Company", "String"), "Source": ("Lead Source", "String"), "ProspectStage": ("Lead Stage", "Select"),
    "OwnerId": ("Owner", "ActiveUsers"), "OwnerIdName": ("Owner Name", "String"),
    "OwnerIdEmailAddress": ("Owner Email Address", "Email"), "CreatedBy": ("Created By", "String"),
    "CreatedByName": ("Created By Name", "String"), "CreatedOn": ("Created On", "DateTime"),
    "ModifiedBy": ("Modified By", "String"), "ModifiedByName": ("Modified By Name", "String"),
    "ModifiedOn": ("Modified On", "DateTime"),
}  # fmt: skip
OPPORTUNITY_FIELDS = (
    "ProspectId", "FirstName", "LastName", "EmailAddress", "Phone", "DoNotCall", "DoNotEmail", "LeadName", "LeadOwner",
    "OpportunityEventType", "OpportunityEvent", "OpportunityNote", "Score", "PACreatedOn", "PAModifiedOn",
    "IP_Latitude", "IP_Longitude", "PACreatedByName", "mx_Custom_1", "Status", "mx_Custom_2", "mx_Custom_6",
    "mx_Custom_8", "Owner", "OwnerName", "OpportunityId", "Total",
)  # fmt: skip


class _MX(Exception):
    """A LeadSquared exception: ``{"Status": "Error", "ExceptionType", "ExceptionMessage"}``."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


def _bad(message: str) -> _MX:
    return _MX("MXInvalidInputException", message, status=400)


def _missing(name: str, what: str = "") -> _MX:
    return _MX("MXMandatoryAttributeMissingException", f"'{name}' is mandatory{what}")


def _gone(what: str = "Lead") -> _MX:
    return _MX("MXInvalidEntityException", f"{what} does not exist in the system")


def _user(user_id: str | None) -> dict[str, Any] | None:
    return next((u for u in USERS if u["ID"] == user_id), None)


def _name(user: dict[str, Any] | None) -> str | None:
    return f"{user['FirstName']} {user['LastName']}" if user else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise _bad("An attribute's Value must be a string")


def _digits(phone: str | None) -> str:
    return re.sub(r"\D", "", phone or "")


def _int(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value) if not isinstance(value, bool) else int("x")
    except (TypeError, ValueError):
        raise _MX("MXInvalidInputException", f"{name} must be a number") from None


def _direction(sorting: Any) -> tuple[str | None, bool]:
    """(ColumnName, descending) of a ``Sorting`` object."""
    if sorting is None:
        return None, False
    if not isinstance(sorting, dict):
        raise _bad("Sorting must be an object")
    direction = str(sorting.get("Direction", "0"))
    if direction not in ("0", "1"):
        raise _MX("MXInvalidInputException", "Sorting Direction must be 1 (descending) or 0 (ascending)")
    return sorting.get("ColumnName"), direction == "1"


def _page(paging: Any, default_size: int) -> tuple[int, int]:
    """(offset, size) from ``Paging: {PageIndex (from 1), PageSize}``."""
    if paging is None:
        return 0, default_size
    if not isinstance(paging, dict):
        raise _bad("Paging must be an object")
    index, size = _int(paging.get("PageIndex"), "PageIndex", 1), _int(paging.get("PageSize"), "PageSize", default_size)
    if index < 1 or size < 1:
        raise _MX("MXInvalidInputException", "PageIndex starts at 1 and PageSize must be at least 1")
    return (index - 1) * size, size


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (0, 0.0, "")
    try:
        return (1, float(str(value).replace(",", "")), "")
    except ValueError:
        return (2, 0.0, str(value).casefold())


class FakeLeadSquared(FakeServer):
    def __init__(
        self,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        region: str = "in21",
        wrong_region: bool = False,
        exception_status: int = 500,
        rate_limit: int | None = 25,
        rate_window: float = 5.0,
        extra_stages: tuple[str, ...] = ("Qualified",),
        custom_fields: tuple[str, ...] = ("mx_City", "mx_Product"),
        country_code: str = "91",
        seed: bool = True,
    ) -> None:
        super().__init__(port, clock=clock)
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; one of {', '.join(REGIONS)}")
        self.region, self.wrong_region, self.exception_status = region, wrong_region, exception_status
        self.api_host = REGIONS[region]
        self.app_host = "app.leadsquared.com" if region == "sg" else f"app-{region}.leadsquared.com"
        self.stages = (*STAGES, *extra_stages)
        self.custom_fields = tuple(custom_fields)
        self.country_code = country_code
        self.rate_limit, self.rate_window = rate_limit, rate_window
        if rate_limit is not None:
            self.limiter = SlidingWindow(rate_limit, rate_window, clock)
        self.leads: dict[str, dict[str, Any]] = {}  # ProspectID -> {schema name: value}
        self.touched: dict[str, datetime] = {}  # ProspectID -> its latest activity (a change, note, task, activity)
        self.notes: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.activities: dict[str, dict[str, Any]] = {}
        self.activity_types: list[dict[str, Any]] = [dict(t) for t in ACTIVITY_TYPES]
        self.opportunities: dict[str, dict[str, Any]] = {}
        self._next_auto_id, self._next_task_auto_id = 1, 1
        for method, path, handler in [
            ("GET", "Authentication.svc/UserByAccessKey.Get", self.user_by_access_key),
            ("POST", "LeadManagement.svc/Lead.Create", self.create_lead),
            ("POST", "LeadManagement.svc/Lead.Update", self.update_lead),
            ("GET", "LeadManagement.svc/Leads.GetById", self.get_by_id),
            ("GET", "LeadManagement.svc/Leads.GetByEmailaddress", self.get_by_email),
            ("GET", "LeadManagement.svc/RetrieveLeadByPhoneNumber", self.get_by_phone),
            ("GET", "LeadManagement.svc/Leads.GetByQuickSearch", self.quick_search),
            ("POST", "LeadManagement.svc/Leads.Get", self.search),
            ("GET", "LeadManagement.svc/LeadsMetaData.Get", self.metadata),
            ("POST", "LeadManagement.svc/CreateNote", self.create_note),
            ("POST", "LeadManagement.svc/RetrieveNote", self.retrieve_notes),
            ("GET", "LeadManagement.svc/RetrieveNote", self.retrieve_notes),
            ("GET", "LeadManagement.svc/RetrieveTaskByLeadId", self.tasks_of_lead),
            ("GET", "UserManagement.svc/Users.Get", self.users),
            ("GET", "UserManagement.svc/User/Retrieve/ByEmailAddress", self.user_by_email),
            ("POST", "Task.svc/Create", self.create_task),
            ("POST", "Task.svc/Update", self.update_task),
            ("GET", "Task.svc/Retrieve.GetById", self.task_by_id),
            ("POST", "ProspectActivity.svc/Create", self.create_activity),
            ("POST", "ProspectActivity.svc/Retrieve", self.retrieve_activities),
            ("GET", "ProspectActivity.svc/ActivityTypes.Get", self.get_activity_types),
            ("POST", "ProspectActivity.svc/CreateType", self.create_activity_type),
            ("POST", "OpportunityManagement.svc/GetOpportunitiesOfLead", self.opportunities_of_lead),
        ]:
            self.route(method, f"/v2/{path}", self._guarded(handler))
        if seed:
            self._seed()

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "touched": self.touched,
            "notes": self.notes,
            "tasks": self.tasks,
            "activities": self.activities,
            "activity_types": self.activity_types,
            "opportunities": self.opportunities,
            "next_auto_id": self._next_auto_id,
            "next_task_auto_id": self._next_task_auto_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        for name in ("leads", "touched", "notes", "tasks", "activities", "opportunities"):
            getattr(self, name).clear()
            getattr(self, name).update(state.get(name, {}))
        self.activity_types[:] = state.get("activity_types", [dict(t) for t in ACTIVITY_TYPES])
        self._next_auto_id = state.get("next_auto_id", 1)
        self._next_task_auto_id = state.get("next_task_auto_id", 1)

    # -- the protocol --------------------------------------------------------------------------

    @property
    def keys_in_url(self) -> list[Received]:
        """Every request that carried ``accessKey`` or ``secretKey`` in its query string."""
        with self.lock:
            return [r for r in self.received if {"accesskey", "secretkey"} & {k.lower() for k in r.query}]

    def _keys(self, request: Received) -> tuple[str | None, str | None]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k.lower(): v for k, v in request.query.items()}
        access = headers.get("x-lsq-accesskey", query.get("accesskey"))
        secret = headers.get("x-lsq-secretkey", query.get("secretkey"))
        return access, secret

    def _caller(self, request: Received) -> dict[str, Any] | None:
        access, secret = self._keys(request)
        known = KEYS.get(access or "")
        user = _user(known[1]) if known and known[0] == secret else None
        return user if user and user["StatusCode"] == 0 else None

    def check_auth(self, request: Received) -> Answer | None:
        if self._caller(request) is None:
            return self._error(_MX("MXUnAuthorizedAccessException", UNAUTHORIZED, status=401))
        if self.wrong_region and request.path != "/v2/Authentication.svc/UserByAccessKey.Get":
            return self._error(_MX("MXUnAuthorizedAccessException", UNAUTHORIZED, status=401))
        return None

    def rate_key(self, request: Received) -> str | None:
        return self._keys(request)[0]

    def too_many(self, request: Received) -> Answer:
        message = f"API calls exceeded the limit of {self.rate_limit} in {self.rate_window:g} second(s)"
        return self._error(_MX("MXAPIRateLimitExceededException", message, status=429))

    def not_found(self, request: Received) -> Answer:
        message = "The API could not be found. Please check the API signature."
        return Answer(404, {"Status": "Error", "ExceptionMessage": message})

    def not_allowed(self, request: Received, allowed: list[str]) -> Answer:
        message = f"Method not allowed: use {' or '.join(sorted(set(allowed)))}"
        return Answer(405, {"Status": "Error", "ExceptionMessage": message}, {"Allow": ", ".join(allowed)})

    def _error(self, error: _MX) -> Answer:
        body = {"Status": "Error", "ExceptionType": error.kind, "ExceptionMessage": error.message}
        return Answer(error.status or self.exception_status, body)

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Answer]:
        def run(request: Received, **params: str) -> Answer:
            try:
                result = handler(request, **params)
            except _MX as error:
                return self._error(error)
            return result if isinstance(result, Answer) else Answer(200, result)

        return run

    def _body(self, request: Received, expected: type, *, required: bool = True) -> Any:
        if not request.raw.strip():
            if required:
                raise _bad("The request body is missing")
            return None
        content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        if "application/json" not in content_type:
            raise _bad("Content-Type must be application/json")
        try:
            body = json.loads(request.raw)
        except ValueError:
            raise _bad("The request body is not valid JSON") from None
        if not isinstance(body, expected):
            raise _bad(f"The request body must be a JSON {'array' if expected is list else 'object'}")
        return body

    def _query(self, request: Received, name: str, what: str = "") -> str:
        value = request.query.get(name, "").strip()
        if not value:
            raise _missing(name, what)
        return value

    def _stamp(self, at: datetime | None = None) -> str:
        return (at or self.now()).strftime("%Y-%m-%d %H:%M:%S")

    # -- leads ---------------------------------------------------------------------------------

    @property
    def fields(self) -> tuple[str, ...]:
        return (*DISPLAY, *self.custom_fields)

    def shown(self, lead: dict[str, Any], columns: list[str] | None = None) -> dict[str, Any]:
        """A flat lead: every field (null when unset), or ProspectID and ``columns``."""
        owner = _user(lead.get("OwnerId"))
        full = {name: lead.get(name) for name in self.fields}
        full |= {"OwnerIdName": _name(owner), "OwnerIdEmailAddress": owner["EmailAddress"] if owner else None}
        if columns is None:
            return full
        return {"ProspectID": full["ProspectID"], **{c: full[c] for c in columns}}

    def _phone(self, value: str) -> str:
        text = value.strip()
        if match := re.fullmatch(r"\+(\d{1,4})-(\d{6,14})", text):
            return f"+{match[1]}-{match[2]}"
        if re.fullmatch(r"\+\d{7,18}", text):
            try:
                cc = str(phonenumbers.parse(text).country_code)
            except phonenumbers.NumberParseException:
                raise _MX("MXInvalidInputException", f"Invalid phone number '{value}'") from None
            return f"+{cc}-{text[1 + len(cc) :]}"
        if re.fullmatch(r"\d{6,14}", text):
            return f"+{self.country_code}-{text}"
        raise _MX("MXInvalidInputException", f"Invalid phone number '{value}': use +<cc>-<number> or digits")

    def _attributes(self, request: Received) -> dict[str, str | None]:
        """The documented attribute list ``[{"Attribute", "Value"}]`` as {schema name: text}, checked."""
        items = self._body(request, list)
        values: dict[str, str | None] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("Attribute"), str) or "Value" not in item:
                raise _bad('Each item must be {"Attribute": "<schema name>", "Value": "<value>"}')
            if "Fields" in item:
                raise _MX("MXInvalidInputException", "Custom field sets are not supported by this fake")
            name, value = item["Attribute"], _text(item["Value"])
            if name in READ_ONLY:
                raise _MX("MXInvalidInputException", f"Attribute '{name}' cannot be set")
            if name not in WRITABLE and name not in self.custom_fields:
                raise _MX("MXUnknownAttributeException", f"Attribute '{name}' does not exist")
            values[name] = value.strip() if isinstance(value, str) and value.strip() else None
        for name in ("Phone", "Mobile"):
            if values.get(name):
                values[name] = self._phone(values[name])
        email = values.get("EmailAddress")
        if email and not EMAIL.fullmatch(email):
            raise _MX("MXInvalidInputException", f"Invalid Email Address '{email}'")
        stage = values.get("ProspectStage")
        if "ProspectStage" in values and stage not in self.stages:
            raise _MX("MXInvalidInputException", f"Invalid value '{stage}' for ProspectStage")
        if "OwnerId" in values and (_user(values["OwnerId"]) or {}).get("StatusCode") != 0:
            raise _MX("MXInvalidInputException", f"Invalid OwnerId '{values['OwnerId']}': not an active user")
        return values

    def _unique(self, values: dict[str, Any], lead_id: str | None = None) -> None:
        for name, same in (("EmailAddress", str.casefold), ("Phone", _digits)):
            value = values.get(name)
            if value and any(
                other_id != lead_id and other.get(name) and same(other[name]) == same(value)
                for other_id, other in self.leads.items()
            ):
                raise _MX("MXDuplicateEntryException", f"Duplicate entry '{value}' for key 'UQ_Prospect_Base_{name}'")

    def _new_lead(self, values: dict[str, Any], caller: dict[str, Any]) -> str:
        if not any(values.get(n) for n in ("FirstName", "LastName", "EmailAddress", "Phone")):
            raise _MX(
                "MXMandatoryAttributeMissingException", "At least one of FirstName, LastName, EmailAddress or Phone"
            )
        self._unique(values)
        lead_id, now = str(uuid.uuid4()), self._stamp()
        self.leads[lead_id] = {
            "ProspectID": lead_id,
            "ProspectAutoId": str(self._next_auto_id),
            "ProspectStage": "Prospect",
            "OwnerId": caller["ID"],
            **{k: v for k, v in values.items() if v is not None},
            "CreatedBy": caller["ID"],
            "CreatedByName": _name(caller),
            "CreatedOn": now,
            "ModifiedBy": caller["ID"],
            "ModifiedByName": _name(caller),
            "ModifiedOn": now,
        }
        self._next_auto_id += 1
        self.touched[lead_id] = self.now()
        return lead_id

    def _touch(self, lead_id: str) -> None:
        self.touched[lead_id] = self.now()

    def create_lead(self, request: Received) -> Any:
        values = self._attributes(request)
        return {"Status": "Success", "Message": {"Id": self._new_lead(values, self._caller(request))}}

    def update_lead(self, request: Received) -> Any:
        lead_id = self._query(request, "leadId", " for updating lead")
        values = self._attributes(request)
        lead = self.leads.get(lead_id)
        if lead is None:
            raise _gone()
        self._unique(values, lead_id)
        caller = self._caller(request)
        for name, value in values.items():
            if value is None:
                lead.pop(name, None)
            else:
                lead[name] = value
        lead |= {"ModifiedBy": caller["ID"], "ModifiedByName": _name(caller), "ModifiedOn": self._stamp()}
        self._touch(lead_id)
        return {"Status": "Success", "Message": {"AffectedRows": 1}}

    def get_by_id(self, request: Received) -> Any:
        lead = self.leads.get(self._query(request, "id"))
        return [self.shown(lead)] if lead else []

    def get_by_email(self, request: Received) -> Any:
        email = self._query(request, "emailaddress").casefold()
        return [
            self.shown(lead) for lead in self.leads.values() if (lead.get("EmailAddress") or "").casefold() == email
        ]

    def get_by_phone(self, request: Received) -> Any:
        phone = self._query(request, "phone")
        if not phone.isdigit():
            return []  # "no spaces, hyphens or other characters"

        def matches(value: str | None) -> bool:
            return bool(value) and phone in (value.split("-", 1)[-1], _digits(value))

        found = [lead for lead in self.leads.values() if matches(lead.get("Phone")) or matches(lead.get("Mobile"))]
        found.sort(key=lambda lead: self.touched.get(lead["ProspectID"], datetime.min.replace(tzinfo=UTC)))
        return [self.shown(found[-1])] if found else []

    def quick_search(self, request: Received) -> Any:
        key = request.query.get("key")
        if key is None:
            raise _missing("key")
        key = key.strip().casefold()
        if not key:
            return []
        digits = key.lstrip("+").replace("-", "")

        def hit(lead: dict[str, Any]) -> bool:
            texts = [lead.get(n) for n in ("FirstName", "LastName", "EmailAddress", "Company")]
            texts.append(" ".join(p for p in (lead.get("FirstName"), lead.get("LastName")) if p))
            if any(key in (t or "").casefold() for t in texts):
                return True
            return (
                digits.isdigit()
                and len(digits) >= 3
                and any(digits in _digits(lead.get(n)) for n in ("Phone", "Mobile"))
            )

        found = sorted((lead for lead in self.leads.values() if hit(lead)), key=lambda lead: lead["ModifiedOn"])
        return [self.shown(lead) for lead in reversed(found)]

    def _columns(self, columns: Any, known: tuple[str, ...]) -> list[str] | None:
        if columns is None:
            return None
        if not isinstance(columns, dict) or not isinstance(columns.get("Include_CSV", ""), str):
            raise _bad('Columns must be {"Include_CSV": "A,B,C"}')
        names = [c.strip() for c in columns.get("Include_CSV", "").split(",") if c.strip()]
        for name in names:
            if name not in known:
                raise _MX("MXUnknownAttributeException", f"Column '{name}' does not exist")
        return names or None

    def search(self, request: Received) -> Any:
        body = self._body(request, dict)
        parameter = body.get("Parameter")
        if not isinstance(parameter, dict):
            raise _missing("Parameter")
        name, value, operator = (parameter.get(k) for k in ("LookupName", "LookupValue", "SqlOperator"))
        if not name:
            raise _missing("LookupName")
        if name not in self.fields:
            raise _MX("MXUnknownAttributeException", f"Attribute '{name}' does not exist")
        if operator not in OPERATORS:
            raise _MX("MXInvalidInputException", f"SqlOperator must be one of {', '.join(OPERATORS)}")
        columns = self._columns(body.get("Columns"), self.fields)
        sort_by, descending = _direction(body.get("Sorting"))
        if sort_by is not None and sort_by not in self.fields:
            raise _MX("MXUnknownAttributeException", f"Column '{sort_by}' does not exist")
        offset, size = _page(body.get("Paging"), 100)
        rows = [self.shown(lead) for lead in self.leads.values()]
        rows = [row for row in rows if _compare(row.get(name), operator, _text(value) or "")]
        rows.sort(key=lambda row: int(row["ProspectAutoId"]))
        if sort_by is not None:
            rows.sort(key=lambda row: _sort_key(row.get(sort_by)), reverse=descending)
        picked = rows[offset : offset + size]
        return [
            row if columns is None else {"ProspectID": row["ProspectID"], **{c: row[c] for c in columns}}
            for row in picked
        ]

    def metadata(self, request: Received) -> Any:
        wanted = request.query.get("schemaName")
        rows = []
        for name in self.fields:
            if wanted is not None and name != wanted:
                continue
            display, data_type = DISPLAY.get(name, (name.removeprefix("mx_").replace("_", " "), "String"))
            row = {"SchemaName": name, "DisplayName": display, "DataType": data_type, "IsMandatory": False}
            row["MaxLength"] = "200" if data_type in ("String", "Email") else "50"
            if name == "ProspectStage" and request.query.get("excludeOptionSets") != "1":
                row["Options"] = [{"Value": stage} for stage in self.stages]
            rows.append(row)
        return rows

    # -- users ---------------------------------------------------------------------------------

    def user_by_access_key(self, request: Received) -> Any:
        caller = self._caller(request)
        return {
            "Id": caller["ID"],
            "Name": _name(caller),
            "PassPhrase": caller["EmailAddress"],
            "Role": caller["Role"],
            "EmailAddress": None,
            "TimeZone": "Asia/Kolkata",
            "Type": "ApplicationUser",
            **ORG,
            "DefaultCountryCode": self.country_code,
            "UserType": "Regular",
            "LSQCommonServiceURLs": {"api": self.api_host, "app": self.app_host},
        }

    def users(self, request: Received) -> Any:
        return [{**u, "Tag": None, "IsPhoneCallAgent": False} for u in USERS]

    def user_by_email(self, request: Received) -> Any:
        email = self._query(request, "emailAddress").casefold()
        user = next((u for u in USERS if u["EmailAddress"].casefold() == email and u["StatusCode"] == 0), None)
        if user is None:
            return []
        return [{"UserId": user["ID"], **{k: user[k] for k in ("FirstName", "LastName", "EmailAddress", "Role")}}]

    # -- notes ---------------------------------------------------------------------------------

    def create_note(self, request: Received) -> Any:
        body = self._body(request, dict)
        lead_id, note = body.get("RelatedProspectId"), body.get("Note")
        if not lead_id:
            raise _missing("RelatedProspectId")
        if not isinstance(note, str) or not note.strip():
            raise _missing("Note")
        if lead_id not in self.leads:
            raise _gone()
        caller, now, note_id = self._caller(request), self._stamp(), str(uuid.uuid4())
        self.notes[note_id] = {
            "ProspectNoteId": note_id,
            "RelatedProspectId": lead_id,
            "Note": note,
            "AttachmentName": body.get("AttachmentName"),
            "CreatedBy": caller["ID"],
            "CreatedByName": _name(caller),
            "CreatedOn": now,
            "ModifiedBy": caller["ID"],
            "ModifiedByName": _name(caller),
            "ModifiedOn": now,
        }
        self._touch(lead_id)
        return {"Status": "Success", "Message": {"Id": note_id}}

    def retrieve_notes(self, request: Received) -> Any:
        body = self._body(request, dict, required=False) or {}
        parameter = body.get("Parameter") or {}
        if not isinstance(parameter, dict):
            raise _bad("Parameter must be an object")
        lead_id = parameter.get("RelatedId") or request.query.get("leadId")
        if not lead_id:
            raise _missing("RelatedId")
        rows = [n for n in self.notes.values() if n["RelatedProspectId"] == lead_id]
        if parameter.get("Id"):
            rows = [n for n in rows if n["ProspectNoteId"] == parameter["Id"]]
        sort_by, descending = _direction(body.get("Sorting"))
        rows.sort(key=lambda n: _sort_key(n.get(sort_by or "CreatedOn")), reverse=descending)
        offset, size = _page(body.get("Paging"), 200)
        return {"RecordCount": len(rows), "List": rows[offset : offset + size]}

    # -- tasks ---------------------------------------------------------------------------------

    def _task_fields(self, body: dict[str, Any], task: dict[str, Any] | None) -> dict[str, Any]:
        unknown = set(body) - TASK_FIELDS - ({"UserTaskId", "StatusCode"} if task else set())
        if unknown:
            raise _MX("MXUnknownAttributeException", f"Attribute '{sorted(unknown)[0]}' does not exist")
        fields = dict(task or {})
        if task is None or "Name" in body:
            if not isinstance(body.get("Name"), str) or not body["Name"].strip():
                raise _missing("Name")
            fields["Name"] = body["Name"]
        for name in ("DueDate", "EndDate"):
            if name in body or (name == "DueDate" and task is None):
                value = body.get(name)
                if name == "DueDate" and not value:
                    raise _missing("DueDate")
                if value and (not isinstance(value, str) or not DATE.fullmatch(value)):
                    raise _MX("MXInvalidInputException", f"{name} must be YYYY-MM-DD HH:MM:SS (UTC)")
                fields[name] = value[:19] if value else None
        if fields.get("EndDate") and fields["EndDate"] < fields["DueDate"]:
            raise _MX("MXInvalidInputException", "EndDate must not be before DueDate")
        if task is None or "RelatedEntity" in body or "RelatedEntityId" in body:
            entity = _int(body.get("RelatedEntity", fields.get("RelatedEntity")), "RelatedEntity", 0)
            entity_id = body.get("RelatedEntityId", fields.get("RelatedEntityId"))
            if entity not in (0, 1, 5):
                raise _MX("MXInvalidInputException", "RelatedEntity must be 0 (none), 1 (lead) or 5 (opportunity)")
            if entity == 1 and entity_id not in self.leads:
                raise _gone()
            if entity == 5 and entity_id not in self.opportunities:
                raise _gone("Opportunity")
            fields["RelatedEntity"], fields["RelatedEntityId"] = entity, entity_id if entity else None
        if task is None or "OwnerId" in body or "OwnerEmailAddress" in body:
            owner_id = body.get("OwnerId") or STAFF.get(str(body.get("OwnerEmailAddress") or "").casefold())
            if not body.get("OwnerId") and not body.get("OwnerEmailAddress"):
                raise _missing("OwnerId")
            if (_user(owner_id) or {}).get("StatusCode") != 0:
                raise _MX("MXInvalidInputException", "The task owner is not an active user")
            fields["OwnerId"] = owner_id
        if task is None or "TaskType" in body:
            kind = body.get("TaskType")
            if not isinstance(kind, dict) or not kind.get("Name"):
                raise _missing("TaskType")
            if kind["Name"] not in TASK_TYPES:
                raise _MX("MXInvalidInputException", f"Invalid task type '{kind['Name']}'")
            fields["TaskType"] = kind["Name"]
        if "NotifyBy" in body and body["NotifyBy"] not in ("1100", "1000"):
            raise _MX("MXInvalidInputException", 'NotifyBy must be "1100" (email) or "1000" (none)')
        for name in ("Reminder", "ReminderBeforeDays"):
            if name in body:
                fields[name] = _int(body[name], name, 0)
        if "StatusCode" in body:
            if str(body["StatusCode"]) not in ("0", "1"):
                raise _MX("MXInvalidInputException", "StatusCode must be 0 (incomplete) or 1 (completed)")
            fields["StatusCode"] = int(body["StatusCode"])
            fields["CompletedOn"] = self._stamp() if fields["StatusCode"] == 1 else None
        for name in ("Description", "NotifyBy", "ReminderTime", "Location", "Priority"):
            if name in body:
                fields[name] = body[name]
        return fields

    def create_task(self, request: Received) -> Any:
        fields = self._task_fields(self._body(request, dict), None)
        caller, now, task_id = self._caller(request), self._stamp(), str(uuid.uuid4())
        self.tasks[task_id] = {
            "Description": "",
            "Reminder": 0,
            "ReminderBeforeDays": 0,
            "NotifyBy": "1000",
            "StatusCode": 0,
            "CompletedOn": None,
            "EndDate": None,
            **fields,
            "UserTaskId": task_id,
            "AutoId": self._next_task_auto_id,
            "CreatedBy": caller["ID"],
            "CreatedByName": _name(caller),
            "CreatedOn": now,
            "ModifiedBy": caller["ID"],
            "ModifiedByName": _name(caller),
            "ModifiedOn": now,
        }
        self._next_task_auto_id += 1
        if fields["RelatedEntity"] == 1:
            self._touch(fields["RelatedEntityId"])
        return {"Status": "Success", "Message": {"Id": task_id}}

    def update_task(self, request: Received) -> Any:
        body = self._body(request, dict)
        task = self.tasks.get(body.get("UserTaskId") or "")
        if not body.get("UserTaskId"):
            raise _missing("UserTaskId")
        if task is None:
            raise _gone("Task")
        caller = self._caller(request)
        task |= self._task_fields(body, task)
        task |= {"ModifiedBy": caller["ID"], "ModifiedByName": _name(caller), "ModifiedOn": self._stamp()}
        return {"Status": "Success", "Message": {"AffectedRows": 1, "AutoId": task["AutoId"]}}

    def shown_task(self, task: dict[str, Any]) -> dict[str, Any]:
        owner, lead = _user(task["OwnerId"]), self.leads.get(task.get("RelatedEntityId") or "")
        lead_name = " ".join(p for p in (lead.get("FirstName"), lead.get("LastName")) if p) if lead else None
        out = {k: v for k, v in task.items() if k not in ("AutoId", "TaskType")}
        for name in ("DueDate", "EndDate", "CreatedOn", "ModifiedOn", "CompletedOn"):
            out[name] = (
                f"{task[name]}.000"
                if task.get(name)
                else ("0001-01-01 00:00:00.000" if name == "CompletedOn" else None)
            )
        return {
            **out,
            "Category": TASK_TYPES[task["TaskType"]],
            "TaskType": {"Name": task["TaskType"]},
            "OwnerName": _name(owner),
            "OwnerEmailAddress": owner["EmailAddress"] if owner else None,
            "RelatedEntityIdName": lead_name,
        }

    def task_by_id(self, request: Received) -> Any:
        task = self.tasks.get(self._query(request, "id"))
        return [self.shown_task(task)] if task else []

    def tasks_of_lead(self, request: Received) -> Any:
        lead_id = self._query(request, "leadId")
        rows = [t for t in self.tasks.values() if t["RelatedEntity"] == 1 and t["RelatedEntityId"] == lead_id]
        rows.sort(key=lambda t: t["CreatedOn"])
        listed = [
            {
                "TaskID": t["UserTaskId"],
                "Name": t["Name"],
                "Description": t["Description"],
                "DueDate": t["DueDate"],
                "CreatedOn": t["CreatedOn"],
                "OwnerID": t["OwnerId"],
                "OwnerName": _name(_user(t["OwnerId"])),
                "CreatedBy": t["CreatedBy"],
                "CreatedByName": t["CreatedByName"],
                "Status": "Completed" if t["StatusCode"] == 1 else "Pending",
                "Reminder": str(t["Reminder"]),
            }
            for t in rows
        ]
        return {"RecordCount": len(listed), "TaskList": listed}

    # -- activities ----------------------------------------------------------------------------

    def get_activity_types(self, request: Received) -> Any:
        return [dict(t) for t in self.activity_types]

    def create_activity_type(self, request: Received) -> Any:
        body = self._body(request, dict)
        name = body.get("ActivityEventName")
        if not isinstance(name, str) or not name.strip():
            raise _missing("ActivityEventName")
        if any(t["ActivityEventName"].casefold() == name.casefold() for t in self.activity_types):
            raise _MX("MXDuplicateEntryException", f"Duplicate entry '{name}' for key 'ActivityEventName'")
        direction = _int(body.get("Direction"), "Direction", 0)
        if direction not in (0, 1):
            raise _MX("MXInvalidInputException", "Direction must be 0 (inbound) or 1 (outbound)")
        code = max([t["ActivityEvent"] for t in self.activity_types] + [200]) + 1
        entry = {"ActivityEventName": name, "Score": _int(body.get("Score"), "Score", 0), "Direction": direction}
        self.activity_types.append({"ActivityEvent": code, **entry})
        return {"Status": "Success", "Message": {"Id": code}}

    def create_activity(self, request: Received) -> Any:
        body = self._body(request, dict)
        caller = self._caller(request)
        lead_id = body.get("RelatedProspectId")
        if not lead_id and body.get("EmailAddress"):
            email = str(body["EmailAddress"]).casefold()
            lead_id = next(
                (i for i, lead in self.leads.items() if (lead.get("EmailAddress") or "").casefold() == email), None
            )
            if lead_id is None:  # documented: a lead is made for an unknown email
                lead = {"EmailAddress": str(body["EmailAddress"])}
                for name in ("FirstName", "LastName", "Phone"):
                    if body.get(name):
                        lead[name] = self._phone(str(body[name])) if name == "Phone" else str(body[name])
                if not EMAIL.fullmatch(lead["EmailAddress"]):
                    raise _MX("MXInvalidInputException", f"Invalid Email Address '{lead['EmailAddress']}'")
                lead_id = self._new_lead(lead, caller)
        if not lead_id:
            raise _missing("RelatedProspectId")
        if lead_id not in self.leads:
            raise _gone()
        code = body.get("ActivityEvent")
        kind = next((t for t in self.activity_types if t["ActivityEvent"] == code and not isinstance(code, bool)), None)
        if kind is None:
            raise _MX("MXInvalidActivityException", "Event Code is invalid or empty")
        when = body.get("ActivityDateTime")
        if when is not None and (not isinstance(when, str) or not DATE.fullmatch(when)):
            raise _MX("MXInvalidInputException", "ActivityDateTime must be YYYY-MM-DD HH:MM:SS (UTC)")
        note = body.get("ActivityNote")
        if note is not None and not isinstance(note, str):
            raise _MX("MXInvalidInputException", "ActivityNote must be a string")
        data: dict[str, Any] = {"ActivityEvent_Note": note}
        for field in body.get("Fields") or []:
            name = field.get("SchemaName") if isinstance(field, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"mx_Custom_([1-9]|[1-4]\d|50)", name):
                raise _MX("MXInvalidInputException", f"Invalid activity field {name!r}: mx_Custom_1 to mx_Custom_50")
            data[name] = _text(field.get("Value"))
        activity_id = str(uuid.uuid4())
        self.activities[activity_id] = {
            "Id": activity_id,
            "RelatedProspectId": lead_id,
            "EventCode": kind["ActivityEvent"],
            "EventName": kind["ActivityEventName"],
            "ActivityScore": kind["Score"],
            "CreatedOn": (when or self._stamp())[:19],
            "ActivityType": 2,
            "Type": "Outbound" if kind["Direction"] == 1 else "Inbound",
            "IsEmailType": False,
            "SessionId": activity_id,
            "CreatedBy": caller["ID"],
            "CreatedByName": _name(caller),
            "Data": data,
        }
        self._touch(lead_id)
        return {"Status": "Success", "Message": {"Id": activity_id}}

    def retrieve_activities(self, request: Received) -> Any:
        lead_id = self._query(request, "leadId")
        body = self._body(request, dict, required=False) or {}
        parameter = body.get("Parameter") or {}
        paging = body.get("Paging") or {}
        if not isinstance(parameter, dict) or not isinstance(paging, dict):
            raise _bad("Parameter and Paging must be objects")
        rows = [a for a in self.activities.values() if a["RelatedProspectId"] == lead_id]
        if parameter.get("ActivityEvent") is not None:
            code = _int(parameter["ActivityEvent"], "ActivityEvent", 0)
            rows = [a for a in rows if a["EventCode"] == code]
        rows.sort(key=lambda a: a["CreatedOn"], reverse=True)
        offset, count = _int(paging.get("Offset"), "Offset", 0), _int(paging.get("RowCount"), "RowCount", 25)
        shown = [{k: v for k, v in a.items() if k != "RelatedProspectId"} for a in rows[offset : offset + count]]
        return {"RecordCount": len(rows), "ProspectActivities": shown}

    # -- opportunities (seed 003) --------------------------------------------------------------

    def add_opportunity(
        self,
        lead_id: str,
        name: str,
        *,
        stage: str = "New",
        status: str = "Open",
        value: str = "",
        event: int = 12002,
        owner: str = RAJESH_ID,
        note: str = "",
        created: str | None = None,
        extra: dict[str, Any] | None = None,
        opportunity_id: str | None = None,
    ) -> str:
        """Give a lead an opportunity (``mx_Custom_1`` name, ``mx_Custom_2`` stage, ``mx_Custom_6`` value)."""
        if lead_id not in self.leads:
            raise KeyError(lead_id)
        opportunity_id = opportunity_id or str(uuid.uuid4())
        created = created or self._stamp()
        self.opportunities[opportunity_id] = {
            "OpportunityId": opportunity_id,
            "ProspectId": lead_id,
            "OpportunityEventType": "2",
            "OpportunityEvent": str(event),
            "OpportunityNote": note,
            "Score": "0",
            "PACreatedOn": created,
            "PAModifiedOn": created,
            "IP_Latitude": None,
            "IP_Longitude": None,
            "PACreatedByName": _name(_user(owner)),
            "mx_Custom_1": name,
            "Status": status,
            "mx_Custom_2": stage,
            "mx_Custom_6": value,
            "mx_Custom_8": created,
            "Owner": owner,
            **(extra or {}),
        }
        return opportunity_id

    def opportunities_of_lead(self, request: Received) -> Any:
        lead_id = self._query(request, "leadId")
        body = self._body(request, dict, required=False) or {}
        kind = request.query.get("opportunityType")
        rows = [o for o in self.opportunities.values() if o["ProspectId"] == lead_id]
        if kind:
            rows = [o for o in rows if o["OpportunityEvent"] == kind]
        lead = self.leads.get(lead_id)
        shown = [self._shown_opportunity(o, lead) for o in rows]
        extra = self._columns(body.get("Columns"), tuple(f"mx_Custom_{n}" for n in range(1, 51)) + OPPORTUNITY_FIELDS)
        for row, opportunity in zip(shown, rows, strict=True):
            for column in extra or []:
                row.setdefault(column, opportunity.get(column))
        sort_by, descending = _direction(body.get("Sorting"))
        shown.sort(key=lambda row: row["PACreatedOn"], reverse=True)
        if sort_by is not None:
            if shown and sort_by not in shown[0]:
                raise _MX("MXInvalidInputException", f"Cannot sort by '{sort_by}'")
            shown.sort(key=lambda row: _sort_key(row.get(sort_by)), reverse=descending)
        offset, size = _page(body.get("Paging"), max(len(shown), 1))
        return {"RecordCount": len(shown), "List": shown[offset : offset + size]}

    def _shown_opportunity(self, opportunity: dict[str, Any], lead: dict[str, Any] | None) -> dict[str, Any]:
        lead = lead or {}
        owner = _user(opportunity["Owner"])
        row = {name: opportunity.get(name) for name in OPPORTUNITY_FIELDS}
        row |= {
            "FirstName": lead.get("FirstName"),
            "LastName": lead.get("LastName"),
            "EmailAddress": lead.get("EmailAddress"),
            "Phone": lead.get("Phone"),
            "DoNotCall": "0",
            "DoNotEmail": "0",
            "LeadName": " ".join(p for p in (lead.get("FirstName"), lead.get("LastName")) if p),
            "LeadOwner": _name(_user(lead.get("OwnerId"))),
            "OwnerName": _name(owner),
            "Total": str(sum(1 for o in self.opportunities.values() if o["ProspectId"] == opportunity["ProspectId"])),
        }
        return row

    def _seed(self) -> None:
        self.leads[SAMPLE_LEAD] = {
            "ProspectID": SAMPLE_LEAD,
            "ProspectAutoId": str(self._next_auto_id),
            "FirstName": "Manish",
            "LastName": "Garg",
            "EmailAddress": "manish@mailinator.com",
            "Phone": "+91-9999999999",
            "ProspectStage": "Opportunity",
            "OwnerId": ROHAN_ID,
            "CreatedBy": ADMIN_ID,
            "CreatedByName": "Lead Bot",
            "CreatedOn": "2020-07-16 17:00:00",
            "ModifiedBy": ADMIN_ID,
            "ModifiedByName": "Lead Bot",
            "ModifiedOn": "2020-09-16 07:26:09",
        }
        self._next_auto_id += 1
        self.add_opportunity(
            SAMPLE_LEAD, "Manish Garg - Loan", stage="Prospecting", value="2500000", event=12005,
            created="2020-09-16 05:43:00", opportunity_id="4597c076-be5a-4ba2-9b08-ecd21626750f",
            extra={"PAModifiedOn": "2020-09-16 07:26:09", "mx_Custom_8": "2020-11-06 05:45:00"},
        )  # fmt: skip
        self.add_opportunity(
            SAMPLE_LEAD, "Manish Garg - Opportunity", stage="New", value="200,000", note="Update note",
            created="2020-07-16 17:15:29", opportunity_id="5ca5b042-51ea-4699-b6f0-84c40ab12770",
            extra={"PAModifiedOn": "2020-09-15 11:11:35", "PACreatedByName": "System",
                   "mx_Custom_8": "2020-09-16 12:13:44"},
        )  # fmt: skip
        for n in range(3, 13):
            self.add_opportunity(
                SAMPLE_LEAD,
                f"Manish Garg - Opportunity {n}",
                stage=("New", "Prospecting", "Negotiation")[n % 3],
                status="Won" if n % 5 == 0 else "Open",
                value=str(n * 10000),
                event=12005 if n % 2 else 12002,
                created=f"2020-08-{n:02d} 10:00:00",
            )
        self.touched[SAMPLE_LEAD] = self.now()


def _compare(actual: Any, operator: str, wanted: str) -> bool:
    if operator == "IN":
        return actual is not None and str(actual).casefold() in {w.strip().casefold() for w in wanted.split(",")}
    if operator == "LIKE":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in wanted)
        return actual is not None and re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    if actual is None:
        return operator == "<>"
    left, right = _sort_key(actual), _sort_key(wanted)
    if left[0] != right[0]:
        left, right = (2, 0.0, str(actual).casefold()), (2, 0.0, wanted.casefold())
    return {
        "=": left == right,
        "<>": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[operator]


def _banner(fake: FakeLeadSquared) -> str:
    staff = ", ".join(f"{_name(u)} <{u['EmailAddress']}> {u['ID']}" for u in USERS if u["StatusCode"] == 0)
    return "\n".join(
        [
            f"Fake LeadSquared on {fake.url}/v2/ — region {fake.region} (API host {fake.api_host})",
            f"Admin keys: x-LSQ-AccessKey {ACCESS_KEY} / x-LSQ-SecretKey {SECRET_KEY}",
            f"Sales user keys: {SALES_ACCESS_KEY} / {SALES_SECRET_KEY}",
            f"Users: {staff}",
            f"Rate limit: {fake.rate_limit} calls per {fake.rate_window:g} s per access key; Ctrl-C stops it",
        ]
    )


def main() -> None:
    serve(FakeLeadSquared, __doc__.split("\n\n")[0], 8703, _banner)


if __name__ == "__main__":
    main()
