"""A fake Capillary LMS (``/v2/leads``), from the request and response samples of seeds 000 and 001.

It checks what it receives the way Capillary documents it: till (Basic) or
OAuth authentication, JSON content type, required fields (``leadFor``, the
customer, ``reasonId``, ``followedUpOn`` and ``createdBy``), enum values,
known owners, reasons and sub-statuses, and no status change on a closed
lead. Replies carry ``warnings`` and ``errors`` as Capillary's do, with
times in +05:30 like the samples.

Standalone, for ``leadbot console``::

    python -m tests.fakes.capillary --port 8701
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tests.fakes.server import Answer, FakeServer, Received

USERNAME, PASSWORD, TOKEN = "leadbot.till", "till-password", "cap-oauth-token"
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


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else None


def _show(value: datetime | None) -> str | None:
    return value.astimezone(IST).isoformat(timespec="seconds") if value else None


def _error(code: int, message: str, status: int = 400) -> Answer:
    return Answer(status, {"warnings": [], "errors": [{"status": False, "code": code, "message": message}]})


class FakeCapillary(FakeServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.leads: dict[int, dict[str, Any]] = {}
        self.customers: dict[str, int] = {}
        self.warnings: list[dict[str, Any]] = []  # added to the next replies (tests set them)
        self._ids = itertools.count(1)
        self._user_ids = itertools.count(368754334)
        self._log_ids = itertools.count(1)
        self.route("GET", "/v2/leads/reasons", self.get_reasons)
        self.route("GET", "/v2/leads/substatuses", self.get_substatuses)
        self.route("GET", "/v2/leads", self.search)
        self.route("POST", "/v2/leads", self.add)
        self.route("PUT", "/v2/leads/{lead_id}", self.update)
        self.route("PUT", "/v2/leads/{lead_id}/status", self.set_status)
        self.route("POST", "/v2/leads/{lead_id}/followup", self.follow_up)

    # -- the documented checks ----------------------------------------------------------------

    def check_auth(self, request: Received) -> Answer | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        digest = hashlib.md5(PASSWORD.encode()).hexdigest()  # noqa: S324 - Capillary's till scheme
        basic = "Basic " + base64.b64encode(f"{USERNAME}:{digest}".encode()).decode()
        if headers.get("x-cap-api-oauth-token") != TOKEN and headers.get("authorization") != basic:
            return _error(401, "Authentication failed", 401)
        if request.method in ("POST", "PUT") and "application/json" not in headers.get("content-type", ""):
            return _error(415, "Unsupported media type", 415)
        if "application/json" not in headers.get("accept", ""):
            return _error(415, "Accept must be application/json", 415)
        return None

    def _reply(self, body: dict[str, Any]) -> Answer:
        return Answer(200, {**body, "warnings": list(self.warnings)})

    def _lead(self, lead_id: str) -> dict[str, Any] | None:
        return self.leads.get(int(lead_id)) if lead_id.isdigit() else None

    def shown(self, lead: dict[str, Any]) -> dict[str, Any]:
        """A lead as the samples show one: no owner field, times in +05:30."""
        out = {k: v for k, v in lead.items() if k != "owner"}
        for key in ("nextFollowUp", "createdOn", "lastUpdatedOn", "lastFollowUp"):
            out[key] = _show(lead.get(key))
        out["followUpDetails"] = [
            {**f, **{k: _show(f.get(k)) for k in ("createdOn", "followedUpOn", "scheduledFollowUp")}}
            for f in lead["followUpDetails"]
        ]
        out["statusLogDetails"] = [{**s, "createdOn": _show(s["createdOn"])} for s in lead["statusLogDetails"]]
        return {k: v for k, v in out.items() if v is not None}

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
        if "substatus" in q:
            rows = [r for r in rows if r.get("subStatus") == q["substatus"]]
        if "userId" in q:
            rows = [r for r in rows if str(r["userId"]) == q["userId"]]
        if "owner" in q:
            rows = [r for r in rows if q["owner"] in (r.get("owner"), str(STAFF.get(r.get("owner") or "")))]
        key = {"createdon": "createdOn", "lastUpdatedOn": "lastUpdatedOn"}.get(q.get("sortBy", "createdon"))
        if key is None:
            return _error(400, "sortBy must be createdon or lastUpdatedOn")
        rows.sort(key=lambda r: (r[key], r["id"]), reverse=q.get("sortOrder", "ASC") == "DESC")
        offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
        data = [self.shown(r) for r in rows[offset : offset + limit]]
        return Answer(200, {"data": data, "warnings": list(self.warnings), "errors": []})

    def add(self, request: Received) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        if not body.get("leadFor"):
            return _error(92010, "leadFor is mandatory")
        lead_type = body.get("type", "SKU")
        if lead_type not in TYPES:
            return _error(92011, f"Invalid lead type {lead_type}")
        if body.get("userId") is not None:
            user_id = int(body["userId"])
        elif body.get("idType") in ("EMAIL", "MOBILE") and body.get("identifier"):
            user_id = self.customers.setdefault(body["identifier"], next(self._user_ids))
        else:
            return _error(92008, "No user found: pass userId, or idType (EMAIL or MOBILE) and identifier")
        status = body.get("status", "OPEN")
        if status not in STATUSES:
            return _error(92003, "Invalid Lead Status")
        if body.get("owner") is not None and body["owner"] not in STAFF:
            return _error(92019, "Invalid lead owner")
        sub = body.get("subStatus")
        if sub is not None and {"status": status, "subStatus": sub} not in SUBSTATUSES:
            return _error(92015, f"Invalid sub-status {sub} for {status}")
        now = datetime.now(UTC)
        lead_id = next(self._ids)
        created_by = body.get("createdBy", 15002926)
        lead = {
            "id": lead_id,
            "userId": user_id,
            "type": lead_type,
            "leadFor": body["leadFor"],
            "status": status,
            "nextFollowUp": _time(body.get("nextFollowUp")),
            "createdOn": now,
            "createdBy": created_by,
            "lastUpdatedOn": now,
            "lastUpdatedBy": created_by,
            "followUpDetails": [],
            "statusLogDetails": [],
            "orgSourceId": body.get("orgSourceId", -1),
            "extendedFields": body.get("extendedFields") or {},
            "owner": body.get("owner"),
        }
        if sub:
            lead["subStatus"] = sub
        for item in body.get("followUpDetails") or []:
            lead["followUpDetails"].append(self._follow_up_row(lead, item, created_by, now))
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
        if "owner" in body:
            if body["owner"] not in STAFF:
                return _error(92019, "Invalid lead owner")
            lead["owner"] = body["owner"]
        lead["extendedFields"].update(body.get("extendedFields") or {})
        lead["lastUpdatedOn"] = datetime.now(UTC)
        return self._reply(self.shown(lead))

    def set_status(self, request: Received, lead_id: str) -> Answer:
        lead = self._lead(lead_id)
        if lead is None:
            return _error(92001, "Lead not found")
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("status") not in STATUSES:
            return _error(92003, "Invalid Lead Status")
        if not isinstance(body.get("reasonId"), int) or body["reasonId"] not in {r["id"] for r in REASONS}:
            return _error(92014, "reasonId is mandatory and must be a configured reason")
        sub = body.get("subStatus")
        if sub is not None and {"status": body["status"], "subStatus": sub} not in SUBSTATUSES:
            return _error(92015, f"Invalid sub-status {sub} for {body['status']}")
        if lead["status"] in CLOSED:
            return _error(92024, "Status change not allowed on closed leads")
        now = datetime.now(UTC)
        lead["status"] = body["status"]
        lead["subStatus"] = sub
        reason = next(r["reason"] for r in REASONS if r["id"] == body["reasonId"])
        entry = {
            "id": next(self._log_ids),
            "userId": lead["userId"],
            "leadId": lead["id"],
            "status": body["status"],
            "createdBy": body.get("createdBy", 15002926),
            "createdOn": now,
            "reasonId": body["reasonId"],
            "reason": reason,
        }
        if sub:
            entry["subStatus"] = sub
        lead["statusLogDetails"].append(entry)
        lead["lastUpdatedOn"] = now
        return self._reply(self.shown(lead))

    def follow_up(self, request: Received, lead_id: str) -> Answer:
        lead = self._lead(lead_id)
        if lead is None:
            return _error(92001, "Lead not found")
        body = request.body if isinstance(request.body, dict) else {}
        if not body.get("followedUpOn") or _time(body["followedUpOn"]) is None:
            return _error(92016, "followedUpOn is mandatory, as YYYY-MM-DDTHH:MM:SS+TZD")
        if not isinstance(body.get("createdBy"), int):
            return _error(92017, "createdBy is mandatory")
        now = datetime.now(UTC)
        lead["followUpDetails"].append(self._follow_up_row(lead, body, body["createdBy"], now))
        if body.get("nextFollowUp"):
            lead["nextFollowUp"] = _time(body["nextFollowUp"])
        lead["lastFollowUp"] = _time(body["followedUpOn"])
        lead["lastUpdatedOn"] = now
        return self._reply(self.shown(lead))

    def _follow_up_row(self, lead: dict[str, Any], item: dict[str, Any], created_by: int, now: datetime) -> dict:
        row = {
            "id": next(self._log_ids),
            "userId": lead["userId"],
            "leadId": lead["id"],
            "createdBy": created_by,
            "createdOn": now,
            "followedUpOn": _time(item.get("followedUpOn")),
            "scheduledFollowUp": _time(item.get("scheduledFollowUp")),
        }
        for key in ("notes", "followedUpBy"):
            if item.get(key) is not None:
                row[key] = item[key]
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8701)
    port = parser.parse_args().port
    fake = FakeCapillary(port)
    print(f"Fake Capillary on {fake.url} — till {USERNAME} / {PASSWORD}, or OAuth token {TOKEN}")
    print(f"Staff usernames: {', '.join(f'{u}/{e}' for u, e in STAFF.items())}; Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()


if __name__ == "__main__":
    main()
