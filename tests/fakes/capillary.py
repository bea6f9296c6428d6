"""A fake Capillary LMS (``/v2/leads``), from the request and response samples of seeds 000 and 001.

It checks what it receives the way Capillary documents it (seed 001, and
``backends.md`` Part 2): till (Basic) or OAuth authentication, the
``Content-Type`` and ``Accept`` headers, required fields (``leadFor``, the
customer, ``reasonId``, ``followedUpOn`` and ``createdBy``), types, enum values,
known owners, reasons and sub-statuses, and no status change on a closed lead.
Replies carry ``warnings`` (and ``errors`` where the seed shows them) as
Capillary's do, with times in +05:30 like the samples, and the lead's ``owner``
(the staff username).

Authentication, any one of:
- ``Authorization: Basic base64(USERNAME:md5hex(PASSWORD))`` (the till scheme);
- ``X-CAP-API-OAUTH-TOKEN: TOKEN``, a static token that never expires;
- ``X-CAP-API-OAUTH-TOKEN: <token>`` from ``POST /v3/oauth/token/generate`` with
  ``{"key": CLIENT_KEY, "secret": CLIENT_SECRET}``; it expires ``token_ttl`` seconds
  (default 300, as in the doc's sample reply) later on the fake's clock.
  ``tokens_issued`` counts the tokens generated.

Choices where the documents are silent (each can be checked against a real cluster):
- A wrong credential, an unknown token and an expired token all get 401 in the v2
  error envelope, ``{"warnings": [], "errors": [{"status": false, "code": 401,
  "message": ...}]}``; the expired one says so in its message.
- A bad key or secret on the token endpoint gets 401 ``{"data": null, "errors":
  [{"code": 401, "message": ...}]}`` (the v3 envelope of its success reply); a body
  without them 400 in the same envelope; a body that is not JSON 415.
- Rate limit: backends.md says demo clusters allow 100 requests per minute per API
  key and gives no status or headers. The fake allows ``rate_limit`` (default 100;
  None turns it off) calls in any ``rate_window`` (60) seconds per credential (the
  till user, the OAuth client key, or the static token), a sliding window on the
  fake's clock, and answers the rest 429 with the v2 error envelope (code 429) and
  no ``Retry-After``. Token generation and calls refused for auth are not counted.
  ``throttled`` counts the 429s.
- A 201 "one or more requests have failed due to errors": tests set ``errors`` (like
  ``warnings``); while it is non-empty, every write that succeeds answers 201 with
  those errors in the reply next to the lead.
- An unknown field in a new lead, or anything but ``extendedFields``/``owner`` in an
  update, is refused (400); so are malformed date-times, ids that are not integers,
  an ``idType`` other than EMAIL/MOBILE, an EMAIL identifier without ``@`` and a
  MOBILE identifier that is not 8-15 digits.
- ``createdOn`` of a new lead is kept as sent (the sample echoes it); without it, now.
- ``statusLogDetails`` of a new lead become its status log (each needs a known
  ``status`` and ``reasonId``), as in the sample reply.
- Follow-up ``notes`` are kept exactly as sent.

Standalone, for ``leadbot console``::

    python -m tests.fakes.capillary --port 8701 [--state capillary.json]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.loopback import Answer, FakeServer, Received, SlidingWindow, int_keys, serve

USERNAME, PASSWORD, TOKEN = "leadbot.till", "till-password", "cap-oauth-token"
CLIENT_KEY, CLIENT_SECRET = "leadbot-client-key", "leadbot-client-secret"
TOKEN_PATH = "/v3/oauth/token/generate"
RATE_LIMIT = 100  # calls per minute per credential (demo clusters)
IST = timezone(timedelta(hours=5, minutes=30))
STATUSES = ("OPEN", "WON", "LOST", "ON_HOLD", "DELETED")
CLOSED = ("WON", "LOST", "DELETED")
TYPES = ("SKU", "CATEGORY", "BRAND", "CUSTOM")
REASONS = [
    {"id": 1, "reason": "Item not available in store"},
    {"id": 2, "reason": "Best price availabe at another store"},
    {"id": 3, "reason": "Interested in our brand products"},
]
SUBSTATUSES = [{"status": "LOST", "subStatus": "InvalidPhoneNumber"}, {"status": "ON_HOLD", "subStatus": "YetToDecide"}]
STAFF = {"ana.s": 28812689, "bob.k": 28812690, "ada.l": 28812691}  # username -> entity id
ADD_FIELDS = {
    "type",
    "leadFor",
    "userId",
    "idType",
    "identifier",
    "status",
    "nextFollowUp",
    "createdOn",
    "createdBy",
    "lastUpdatedOn",
    "lastUpdatedBy",
    "extendedFields",
    "orgSourceId",
    "lastFollowUp",
    "owner",
    "subStatus",
    "followUpDetails",
    "statusLogDetails",
}
DEFAULT_ENTITY = 15002926  # "the id of the entity from which the request has come", as in the samples
_SIGNING_KEY = b"fake-capillary-signing-key"


class _Invalid(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _time(value: Any, name: str = "date-time") -> datetime | None:
    """A documented ``YYYY-MM-DDThh:mm:ssTZD``; None when absent; refused when malformed or without a zone."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(400, f"{name} must be a date-time string as YYYY-MM-DDThh:mm:ssTZD")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(400, f"{name} must be a date-time as YYYY-MM-DDThh:mm:ssTZD, not {value!r}") from None
    if parsed.tzinfo is None:
        raise _Invalid(400, f"{name} needs a time zone (YYYY-MM-DDThh:mm:ssTZD): {value!r}")
    return parsed


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(400, f"{name} must be an integer")
    return value


def _show(value: datetime | None) -> str | None:
    return value.astimezone(IST).isoformat(timespec="seconds") if value else None


def _error(code: int, message: str, status: int = 400) -> Answer:
    return Answer(status, {"warnings": [], "errors": [{"status": False, "code": code, "message": message}]})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def basic(username: str = USERNAME, password: str = PASSWORD) -> str:
    """The till ``Authorization`` header: ``Basic base64(user:md5hex(password))``."""
    digest = hashlib.md5(password.encode()).hexdigest()  # noqa: S324 - Capillary's till scheme
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


class FakeCapillary(FakeServer):
    def __init__(
        self,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        rate_limit: int | None = RATE_LIMIT,
        rate_window: float = 60.0,
        token_ttl: int = 300,
    ) -> None:
        super().__init__(port, clock=clock)
        self.leads: dict[int, dict[str, Any]] = {}
        self.customers: dict[str, int] = {}
        self.warnings: list[dict[str, Any]] = []  # added to the next replies (tests set them)
        self.errors: list[dict[str, Any]] = []  # while set, successful writes answer 201 carrying these
        self.tokens: dict[str, dict[str, Any]] = {}  # OAuth token -> {"key", "expires"}
        self.tokens_issued = 0
        self.token_ttl = token_ttl
        self.rate_limit = rate_limit
        if rate_limit is not None:
            self.limiter = SlidingWindow(rate_limit, rate_window, clock)
        self._next_id, self._next_user_id, self._next_log_id = 1, 368754334, 1
        self.route("POST", TOKEN_PATH, self.generate_token)
        self.route("GET", "/v2/leads/reasons", self.get_reasons)
        self.route("GET", "/v2/leads/substatuses", self.get_substatuses)
        self.route("GET", "/v2/leads", self.search)
        self.route("POST", "/v2/leads", self.add)
        self.route("PUT", "/v2/leads/{lead_id}", self.update)
        self.route("PUT", "/v2/leads/{lead_id}/status", self.set_status)
        self.route("POST", "/v2/leads/{lead_id}/followup", self.follow_up)

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "customers": self.customers,
            "tokens": self.tokens,
            "tokens_issued": self.tokens_issued,
            "next_id": self._next_id,
            "next_user_id": self._next_user_id,
            "next_log_id": self._next_log_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.leads.clear()
        self.leads.update(int_keys(state.get("leads", {})))
        self.customers.clear()
        self.customers.update(state.get("customers", {}))
        self.tokens.clear()
        self.tokens.update(state.get("tokens", {}))
        self.tokens_issued = state.get("tokens_issued", 0)
        self._next_id = state.get("next_id", 1)
        self._next_user_id = state.get("next_user_id", 368754334)
        self._next_log_id = state.get("next_log_id", 1)

    def _new_id(self) -> int:
        lead_id = max([self._next_id, *(i + 1 for i in self.leads)])
        self._next_id = lead_id + 1
        return lead_id

    def _new_log_id(self) -> int:
        self._next_log_id += 1
        return self._next_log_id - 1

    # -- the documented checks ----------------------------------------------------------------

    def _identity(self, request: Received) -> tuple[str | None, str]:
        """Whose call this is (a rate-limit key), or None and why it is refused."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        token = headers.get("x-cap-api-oauth-token")
        if token is not None:
            if token == TOKEN:
                return "oauth:static", ""
            known = self.tokens.get(token)
            if known is None:
                return None, "Authentication failed"
            if self.now() >= known["expires"]:
                return None, "Authentication failed: the OAuth token has expired"
            return f"oauth:{known['key']}", ""
        if headers.get("authorization") == basic():
            return f"till:{USERNAME}", ""
        return None, "Authentication failed"

    def check_auth(self, request: Received) -> Answer | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.path == TOKEN_PATH:
            return None  # the token call needs no auth; it checks its own body
        who, why = self._identity(request)
        if who is None:
            return _error(401, why, 401)
        if request.method in ("POST", "PUT") and "application/json" not in headers.get("content-type", ""):
            return _error(415, "Unsupported media type", 415)
        if "application/json" not in headers.get("accept", ""):
            return _error(415, "Accept must be application/json", 415)
        return None

    def rate_key(self, request: Received) -> str | None:
        return None if request.path == TOKEN_PATH else self._identity(request)[0]

    def too_many(self, request: Received) -> Answer:
        return _error(429, f"Rate limit exceeded: {self.rate_limit} requests per minute", 429)

    def _reply(self, body: dict[str, Any]) -> Answer:
        if self.errors:
            return Answer(201, {**body, "warnings": list(self.warnings), "errors": list(self.errors)})
        return Answer(200, {**body, "warnings": list(self.warnings)})

    def _lead(self, lead_id: str) -> dict[str, Any] | None:
        return self.leads.get(int(lead_id)) if lead_id.isdigit() else None

    def shown(self, lead: dict[str, Any]) -> dict[str, Any]:
        """A lead as Capillary shows one: times in +05:30, ``owner`` as the staff username when set."""
        out = dict(lead)
        for key in ("nextFollowUp", "createdOn", "lastUpdatedOn", "lastFollowUp"):
            out[key] = _show(lead.get(key))
        out["followUpDetails"] = [
            {
                **f,
                **{k: _show(f.get(k)) for k in ("createdOn", "followedUpOn", "scheduledFollowUp", "nextFollowUp")},
            }
            for f in lead["followUpDetails"]
        ]
        out["followUpDetails"] = [{k: v for k, v in f.items() if v is not None} for f in out["followUpDetails"]]
        out["statusLogDetails"] = [{**s, "createdOn": _show(s["createdOn"])} for s in lead["statusLogDetails"]]
        return {k: v for k, v in out.items() if v is not None}

    # -- OAuth ----------------------------------------------------------------------------------

    def generate_token(self, request: Received) -> Answer:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "application/json" not in headers.get("content-type", ""):
            return Answer(415, {"data": None, "errors": [{"code": 415, "message": "Unsupported media type"}]})
        body = request.body if isinstance(request.body, dict) else {}
        key, secret = body.get("key"), body.get("secret")
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            return Answer(400, {"data": None, "errors": [{"code": 400, "message": "key and secret are required"}]})
        if (key, secret) != (CLIENT_KEY, CLIENT_SECRET):
            return Answer(401, {"data": None, "errors": [{"code": 401, "message": "Invalid client key or secret"}]})
        self.tokens_issued += 1
        issued = self.now()
        claims = {
            "iss": "fake-capillary",
            "sub": key,
            "iat": int(issued.timestamp()),
            "exp": int(issued.timestamp()) + self.token_ttl,
            "jti": self.tokens_issued,
        }
        signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(_SIGNING_KEY, signing_input.encode(), hashlib.sha256).digest())
        token = f"{signing_input}.{signature}"
        self.tokens[token] = {"key": key, "expires": issued + timedelta(seconds=self.token_ttl)}
        return Answer(200, {"data": {"accessToken": token, "ttlSeconds": self.token_ttl}, "errors": None})

    # -- routes -------------------------------------------------------------------------------

    def get_reasons(self, request: Received) -> Answer:
        return Answer(200, {"data": REASONS, "warnings": [], "errors": []})

    def get_substatuses(self, request: Received) -> Answer:
        return Answer(200, {"data": SUBSTATUSES, "warnings": [], "errors": []})

    def search(self, request: Received) -> Answer:
        q = request.query
        rows = list(self.leads.values())
        if "status" in q:
            if q["status"] not in STATUSES:
                return _error(92003, "Invalid Lead Status")
            rows = [r for r in rows if r["status"] == q["status"]]
        if "type" in q and q["type"] != "ALL":
            if q["type"] not in TYPES:
                return _error(400, f"Invalid lead type {q['type']}")
            rows = [r for r in rows if r["type"] == q["type"]]
        if "substatus" in q:
            rows = [r for r in rows if r.get("subStatus") == q["substatus"]]
        if "userId" in q:
            rows = [r for r in rows if str(r["userId"]) == q["userId"]]
        if "orgSourceId" in q:
            rows = [r for r in rows if str(r["orgSourceId"]) == q["orgSourceId"]]
        if "owner" in q:  # the staff username or its entity id
            rows = [r for r in rows if q["owner"] in (r.get("owner"), str(STAFF.get(r.get("owner") or "")))]
        key = {"createdon": "createdOn", "lastUpdatedOn": "lastUpdatedOn"}.get(q.get("sortBy", "createdon"))
        if key is None:
            return _error(400, "sortBy must be createdon or lastUpdatedOn")
        order = q.get("sortOrder", "ASC")
        if order not in ("ASC", "DESC"):
            return _error(400, "sortOrder must be ASC or DESC")
        try:
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
        except ValueError:
            return _error(400, "limit and offset must be integers")
        if offset < 0 or limit < 0:
            return _error(400, "limit and offset must not be negative")
        rows.sort(key=lambda r: (r[key], r["id"]), reverse=order == "DESC")
        data = [self.shown(r) for r in rows[offset : offset + limit]]
        return Answer(200, {"data": data, "warnings": list(self.warnings), "errors": []})

    def add(self, request: Received) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        try:
            return self._add(body)
        except _Invalid as e:
            return _error(e.code, e.message)

    def _add(self, body: dict[str, Any]) -> Answer:
        unknown = set(body) - ADD_FIELDS
        if unknown:
            raise _Invalid(400, f"Unknown fields: {', '.join(sorted(unknown))}")
        if not isinstance(body.get("leadFor"), str) or not body["leadFor"]:
            raise _Invalid(92010, "leadFor is mandatory")
        lead_type = body.get("type", "SKU")
        if lead_type not in TYPES:
            raise _Invalid(92011, f"Invalid lead type {lead_type}")
        user_id = _int(body.get("userId"), "userId")
        if user_id is None:
            id_type, identifier = body.get("idType"), body.get("identifier")
            if id_type is None or not identifier:
                raise _Invalid(92008, "No user found: pass userId, or idType (EMAIL or MOBILE) and identifier")
            if id_type not in ("EMAIL", "MOBILE"):
                raise _Invalid(400, "idType must be EMAIL or MOBILE")
            if not isinstance(identifier, str):
                raise _Invalid(400, "identifier must be a string")
            if id_type == "EMAIL" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", identifier):
                raise _Invalid(400, f"identifier is not an email address: {identifier!r}")
            if id_type == "MOBILE" and not re.fullmatch(r"\d{8,15}", identifier):
                raise _Invalid(400, f"identifier is not a mobile number (8-15 digits): {identifier!r}")
        status = body.get("status", "OPEN")
        if status not in STATUSES:
            raise _Invalid(92003, "Invalid Lead Status")
        if body.get("owner") is not None and body["owner"] not in STAFF:
            raise _Invalid(92019, "Invalid lead owner")
        sub = body.get("subStatus")
        if sub is not None and {"status": status, "subStatus": sub} not in SUBSTATUSES:
            raise _Invalid(92015, f"Invalid sub-status {sub} for {status}")
        created_by = _int(body.get("createdBy"), "createdBy") or DEFAULT_ENTITY
        updated_by = _int(body.get("lastUpdatedBy"), "lastUpdatedBy") or created_by
        org_source = body.get("orgSourceId", -1)
        _int(org_source, "orgSourceId")
        extended = body.get("extendedFields") or {}
        if not isinstance(extended, dict):
            raise _Invalid(400, "extendedFields must be an object")
        follow_ups = body.get("followUpDetails") or []
        logs = body.get("statusLogDetails") or []
        if not isinstance(follow_ups, list) or not all(isinstance(f, dict) for f in follow_ups):
            raise _Invalid(400, "followUpDetails must be a list of objects")
        if not isinstance(logs, list) or not all(isinstance(s, dict) for s in logs):
            raise _Invalid(400, "statusLogDetails must be a list of objects")
        for entry in logs:
            if entry.get("status") not in STATUSES:
                raise _Invalid(92003, "Invalid Lead Status")
            if _int(entry.get("reasonId"), "reasonId") not in {r["id"] for r in REASONS}:
                raise _Invalid(92014, "reasonId is mandatory and must be a configured reason")
            _int(entry.get("createdBy"), "createdBy")
        now = self.now()
        times = {k: _time(body.get(k), k) for k in ("nextFollowUp", "createdOn", "lastUpdatedOn", "lastFollowUp")}
        rows = [self._check_follow_up(f) for f in follow_ups]
        if user_id is None:
            if body["identifier"] not in self.customers:
                self.customers[body["identifier"]] = self._next_user_id
                self._next_user_id += 1
            user_id = self.customers[body["identifier"]]
        lead_id = self._new_id()
        lead = {
            "id": lead_id,
            "userId": user_id,
            "type": lead_type,
            "leadFor": body["leadFor"],
            "status": status,
            "nextFollowUp": times["nextFollowUp"],
            "createdOn": times["createdOn"] or now,
            "createdBy": created_by,
            "lastUpdatedOn": times["lastUpdatedOn"] or now,
            "lastUpdatedBy": updated_by,
            "lastFollowUp": times["lastFollowUp"],
            "followUpDetails": [],
            "statusLogDetails": [],
            "orgSourceId": org_source,
            "extendedFields": extended,
            "owner": body.get("owner"),
        }
        if sub:
            lead["subStatus"] = sub
        for row in rows:
            lead["followUpDetails"].append(self._follow_up_row(lead, row, DEFAULT_ENTITY, now))
        for entry in logs:
            lead["statusLogDetails"].append(self._log_row(lead, entry, now))
        self.leads[lead_id] = lead
        return self._reply(self.shown(lead))

    def update(self, request: Received, lead_id: str) -> Answer:
        lead = self._lead(lead_id)
        if lead is None:
            return _error(92001, "Lead not found")
        body = request.body if isinstance(request.body, dict) else {}
        unknown = set(body) - {"extendedFields", "owner"}
        if unknown:
            return _error(400, f"Unknown fields: {', '.join(sorted(unknown))}")
        if "extendedFields" in body and not isinstance(body["extendedFields"], dict):
            return _error(400, "extendedFields must be an object")
        if "owner" in body:
            if body["owner"] not in STAFF:
                return _error(92019, "Invalid lead owner")
            lead["owner"] = body["owner"]
        lead["extendedFields"].update(body.get("extendedFields") or {})
        lead["lastUpdatedOn"] = self.now()
        return self._reply(self.shown(lead))

    def set_status(self, request: Received, lead_id: str) -> Answer:
        lead = self._lead(lead_id)
        if lead is None:
            return _error(92001, "Lead not found")
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("status") not in STATUSES:
            return _error(92003, "Invalid Lead Status")
        reason = body.get("reasonId")
        if isinstance(reason, bool) or not isinstance(reason, int) or reason not in {r["id"] for r in REASONS}:
            return _error(92014, "reasonId is mandatory and must be a configured reason")
        sub = body.get("subStatus")
        if sub is not None and {"status": body["status"], "subStatus": sub} not in SUBSTATUSES:
            return _error(92015, f"Invalid sub-status {sub} for {body['status']}")
        try:
            _int(body.get("createdBy"), "createdBy")
            _time(body.get("createdOn"), "createdOn")
        except _Invalid as e:
            return _error(e.code, e.message)
        if lead["status"] in CLOSED:
            return _error(92024, "Status change not allowed on closed leads")
        now = self.now()
        lead["status"] = body["status"]
        lead["subStatus"] = sub
        lead["statusLogDetails"].append(self._log_row(lead, body, now))
        lead["lastUpdatedOn"] = now
        return self._reply(self.shown(lead))

    def follow_up(self, request: Received, lead_id: str) -> Answer:
        lead = self._lead(lead_id)
        if lead is None:
            return _error(92001, "Lead not found")
        body = request.body if isinstance(request.body, dict) else {}
        try:
            if body.get("followedUpOn") is None or _time(body["followedUpOn"], "followedUpOn") is None:
                raise _Invalid(92016, "followedUpOn is mandatory, as YYYY-MM-DDTHH:MM:SS+TZD")
            if body.get("createdBy") is None:
                raise _Invalid(92017, "createdBy is mandatory")
            if _int(body.get("createdBy"), "createdBy") is None:
                raise _Invalid(92017, "createdBy is mandatory")
            row = self._check_follow_up(body)
        except _Invalid as e:
            return _error(e.code, e.message)
        now = self.now()
        lead["followUpDetails"].append(self._follow_up_row(lead, row, body["createdBy"], now))
        if row.get("nextFollowUp"):
            lead["nextFollowUp"] = row["nextFollowUp"]
        lead["lastFollowUp"] = row["followedUpOn"]
        lead["lastUpdatedOn"] = now
        return self._reply(self.shown(lead))

    def _check_follow_up(self, item: dict[str, Any]) -> dict[str, Any]:
        row = {k: _time(item.get(k), k) for k in ("followedUpOn", "scheduledFollowUp", "nextFollowUp")}
        row["followedUpBy"] = _int(item.get("followedUpBy"), "followedUpBy")
        notes = item.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise _Invalid(400, "notes must be a string")
        row["notes"] = notes
        return row

    def _follow_up_row(self, lead: dict[str, Any], item: dict[str, Any], created_by: int, now: datetime) -> dict:
        row = {
            "id": self._new_log_id(),
            "userId": lead["userId"],
            "leadId": lead["id"],
            "createdBy": created_by,
            "createdOn": now,
            "followedUpOn": item.get("followedUpOn"),
            "scheduledFollowUp": item.get("scheduledFollowUp"),
        }
        for key in ("notes", "followedUpBy"):
            if item.get(key) is not None:
                row[key] = item[key]
        return row

    def _log_row(self, lead: dict[str, Any], item: dict[str, Any], now: datetime) -> dict[str, Any]:
        entry = {
            "id": self._new_log_id(),
            "userId": lead["userId"],
            "leadId": lead["id"],
            "status": item["status"],
            "createdBy": item.get("createdBy") or DEFAULT_ENTITY,
            "createdOn": now,
            "reasonId": item["reasonId"],
            "reason": next(r["reason"] for r in REASONS if r["id"] == item["reasonId"]),
        }
        if item.get("subStatus"):
            entry["subStatus"] = item["subStatus"]
        return entry


def _banner(fake: FakeCapillary) -> str:
    return "\n".join(
        [
            f"Fake Capillary on {fake.url} — till {USERNAME} / {PASSWORD}, or OAuth token {TOKEN},",
            f"or OAuth client {CLIENT_KEY} / {CLIENT_SECRET} at POST {TOKEN_PATH}",
            f"Staff usernames: {', '.join(f'{u}/{e}' for u, e in STAFF.items())}; Ctrl-C stops it",
        ]
    )


def main() -> None:
    serve(FakeCapillary, __doc__.split("\n\n")[0], 8701, _banner)


if __name__ == "__main__":
    main()
