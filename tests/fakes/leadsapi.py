"""A fake of the REST leads API (``/leads``), from the request and response samples of seed 002.

It checks what it receives the way the seed documents it: every required
field of a new lead, a known ``statusId``, a unique email ("Email already
exists"), numeric ids ("Invalid lead ID"), and a token (else "Access
denied"; the seed documents no scheme, Leadbot sends ``Bearer``).

Standalone, for ``leadbot console``::

    python -m tests.fakes.leadsapi --port 8702
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import Answer, FakeServer, Received

TOKEN = "leadsapi-token"
ACTOR = {"id": 1, "firstName": "Lead", "lastName": "Bot", "email": "leadbot@example.com"}
CREATE_FIELDS = (
    "firstName",
    "lastName",
    "business",
    "photo",
    "state",
    "statusId",
    "source",
    "phoneNumber",
    "email",
    "description",
    "location",
    "position",
    "company",
)
STATUSES = [
    {"id": 1, "name": "New", "primaryColor": "blue", "secondaryColor": "lightblue"},
    {"id": 2, "name": "Contacted", "primaryColor": "yellow", "secondaryColor": "lightyellow"},
    {"id": 3, "name": "Won", "primaryColor": "green", "secondaryColor": "lightgreen"},
    {"id": 4, "name": "Lost", "primaryColor": "red", "secondaryColor": "pink"},
]
BUSINESSES = {1: "Business Name"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _message(status: int, message: str) -> Answer:
    return Answer(status, {"message": message})


class FakeLeadsApi(FakeServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.leads: dict[int, dict[str, Any]] = {}
        self.archived: set[int] = set()
        self.history: dict[int, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._log_ids = itertools.count(1)
        self.route("GET", "/leads/statuses", self.get_statuses)
        self.route("GET", "/leads/search", self.search)
        self.route("GET", "/leads/logs-and-comments/{lead_id}", self.logs_and_comments)
        self.route("GET", "/leads/logs/{lead_id}", self.logs)
        self.route("GET", "/leads/{lead_id}", self.get_lead)
        self.route("GET", "/leads", self.list_leads)
        self.route("POST", "/leads", self.create)
        self.route("POST", "/leads/comments/{lead_id}", self.comment)
        self.route("PATCH", "/leads/archive", self.archive)
        self.route("PATCH", "/leads/restore", self.restore)
        self.route("PUT", "/leads/change-status", self.change_status)
        self.route("PUT", "/leads/{lead_id}", self.update)

    def check_auth(self, request: Received) -> Answer | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return _message(403, "Access denied")
        return None

    def shown(self, lead: dict[str, Any]) -> dict[str, Any]:
        status = next(s["name"] for s in STATUSES if s["id"] == lead["statusId"])
        business = [{"id": b, "name": BUSINESSES.get(b, f"Business {b}")} for b in lead["business"]]
        keep = ("id", "firstName", "lastName", "email", "phoneNumber", "source", "company")
        return {**{k: lead[k] for k in keep}, "status": status, "business": business}

    def _log(self, lead_id: int, action: str, content: str | None = None) -> dict[str, Any]:
        entry = {
            "id": next(self._log_ids),
            "action": action,
            "entityType": "Lead",
            "user": {"id": ACTOR["id"], "email": ACTOR["email"]},
            "createdAt": _now(),
        }
        if content is not None:
            entry["content"] = content
        self.history.setdefault(lead_id, []).append(entry)
        return entry

    def _lead(self, lead_id: str) -> tuple[dict[str, Any] | None, Answer | None]:
        if not lead_id.isdigit():
            return None, _message(400, "Invalid lead ID")
        lead = self.leads.get(int(lead_id))
        return (lead, None) if lead else (None, _message(404, "Lead not found"))

    # -- routes -------------------------------------------------------------------------------

    def get_statuses(self, request: Received) -> Answer:
        return Answer(200, {"statuses": STATUSES, "colors": sorted({s["primaryColor"] for s in STATUSES})})

    def list_leads(self, request: Received) -> Answer:
        rows = [self.shown(lead) for i, lead in sorted(self.leads.items()) if i not in self.archived]
        return Answer(200, {"count": len(rows), "leads": rows})

    def search(self, request: Received) -> Answer:
        return Answer(200, [self.shown(lead) for i, lead in sorted(self.leads.items()) if i not in self.archived])

    def get_lead(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        return error or Answer(200, self.shown(lead))

    def logs(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        rows = [e for e in self.history.get(lead["id"], []) if "content" not in e]
        return Answer(200, {"count": len(rows), "logs": rows})

    def logs_and_comments(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        rows = self.history.get(lead["id"], [])
        comments = sum(1 for e in rows if "content" in e)
        return Answer(200, {"logsAndComments": rows, "logsCount": len(rows) - comments, "commentsCount": comments})

    def create(self, request: Received) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        missing = [f for f in CREATE_FIELDS if f not in body]
        if missing:
            return _message(400, f"Missing required fields: {', '.join(missing)}")
        if not isinstance(body["phoneNumber"], list) or not isinstance(body["business"], list):
            return _message(400, "phoneNumber and business must be arrays")
        if body["statusId"] not in {s["id"] for s in STATUSES}:
            return _message(404, "No lead status found")
        if any(lead["email"].lower() == str(body["email"]).lower() for lead in self.leads.values()):
            return _message(400, "Email already exists")
        lead_id = next(self._ids)
        self.leads[lead_id] = {"id": lead_id, **{f: body[f] for f in CREATE_FIELDS}}
        self._log(lead_id, "CreateLead")
        return Answer(201, self.shown(self.leads[lead_id]))

    def update(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        body = request.body if isinstance(request.body, dict) else {}
        missing = [f for f in CREATE_FIELDS if f != "email" and f not in body]
        if missing:
            return _message(400, "Invalid lead data")
        lead.update({f: body[f] for f in CREATE_FIELDS if f in body and body[f] is not None})
        self._log(lead["id"], "UpdateLead")
        return Answer(200, self.shown(lead))

    def comment(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        content = (request.body or {}).get("content") if isinstance(request.body, dict) else None
        entry = self._log(lead["id"], "AddComment", str(content or ""))
        return Answer(
            201, {"id": entry["id"], "content": entry["content"], "user": ACTOR, "createdAt": entry["createdAt"]}
        )

    def _bulk(self, request: Received) -> tuple[list[int], Answer | None]:
        ids = (request.body or {}).get("ids") if isinstance(request.body, dict) else None
        if not isinstance(ids, list) or any(i not in self.leads for i in ids):
            return [], _message(400, "One or more leads not found")
        return ids, None

    def archive(self, request: Received) -> Answer:
        ids, error = self._bulk(request)
        if error:
            return error
        self.archived |= set(ids)
        for i in ids:
            self._log(i, "ArchiveLead")
        message = {
            "message": "Leads archived successfully",
            "description": "The leads have been archived successfully.",
        }
        return Answer(200, message)

    def restore(self, request: Received) -> Answer:
        ids, error = self._bulk(request)
        if error:
            return error
        self.archived -= set(ids)
        for i in ids:
            self._log(i, "RestoreLead")
        message = {
            "message": "Leads restored successfully",
            "description": "The leads have been restored successfully.",
        }
        return Answer(200, message)

    def change_status(self, request: Received) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("statusId") not in {s["id"] for s in STATUSES}:
            return _message(400, "Invalid status ID")
        ids = body.get("ids")
        if not isinstance(ids, list) or any(i not in self.leads for i in ids):
            return _message(404, "Lead not found")
        for i in ids:
            self.leads[i]["statusId"] = body["statusId"]
            self._log(i, "ChangeStatus")
        return Answer(200, [{"id": i, "status": self.shown(self.leads[i])["status"]} for i in ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8702)
    fake = FakeLeadsApi(parser.parse_args().port)
    print(f"Fake REST leads API on {fake.url} — token {TOKEN} (Authorization: Bearer); Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        fake.server.serve_forever()


if __name__ == "__main__":
    main()
