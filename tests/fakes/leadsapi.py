"""A fake of the REST leads API (``/leads``), from the request and response samples of seed 002.

It checks what it receives the way the seed documents it, and answers with the
seed's messages where it has them:

- ``POST /leads``: every field marked Required must be there, and a string must
  not be empty; ``email`` must look like an address; ``business`` a non-empty array
  of known business ids; ``phoneNumber`` an array of non-empty strings; a
  ``statusId`` that is not a lead status is 404 "No lead status found"; an email
  some lead has already (any case) is 400 "Email already exists".
- ``PUT /leads/{id}``: every field but ``email`` must be there (each may be null);
  whatever is not null is checked as for a new lead (400 "Invalid lead data").
- ``GET /leads/{id}`` and the other ``/{id}`` routes: an id that is not a number is
  400 "Invalid lead ID", an unknown one 404 "Lead not found".
- ``PUT /leads/change-status`` (``ids``, ``statusId``): an unknown status is 400
  "Invalid status ID", an unknown lead 404 "Lead not found".
- ``PATCH /leads/archive`` and ``/restore``: an unknown id is 400 "One or more leads
  not found".
- A missing or wrong token is 403 "Access denied" (the seed documents no scheme;
  Leadbot sends ``Authorization: Bearer TOKEN``).

Replies have exactly the fields of the seed's samples: a lead is ``id, firstName,
lastName, email, phoneNumber, status, business`` (no ``source`` or ``company``).

Choices where the seed is silent:
- A request the validation refuses gets 400 ``{"message": "Invalid lead data: <each
  problem>", "errors": [<each problem>]}``; "Invalid lead data" is the seed's message
  for a refused update, and the seed gives no message for a refused create other
  than the duplicate email. Checks run in this order: the fields, the status (404),
  the duplicate email.
- A field the seed does not list (it lists ``socialMedia`` only in the example, as an
  object of strings) is refused, as a strict validator would.
- ``state`` is documented as an enum whose values the seed leaves empty: any non-empty
  string is taken.
- A business id not in ``BUSINESSES`` is refused like any invalid field.
- Archived state: the seed's lead shape has no field for it, so ``GET /leads/{id}``
  answers an archived lead as any other; archived leads are left out of ``GET /leads``
  and ``GET /leads/search``, and tests can read ``fake.archived``.
- A comment's ``content`` is optional (as the seed says); when sent it must be a string.

Standalone, for ``leadbot console``::

    python -m tests.fakes.leadsapi --port 8702 [--state leadsapi.json]
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from bot.loopback import Answer, FakeServer, Received, int_keys, serve

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
STRING_FIELDS = tuple(f for f in CREATE_FIELDS if f not in ("business", "statusId", "phoneNumber"))
OPTIONAL_FIELDS = ("socialMedia",)
STATUSES = [
    {"id": 1, "name": "New", "primaryColor": "blue", "secondaryColor": "lightblue"},
    {"id": 2, "name": "Contacted", "primaryColor": "yellow", "secondaryColor": "lightyellow"},
    {"id": 3, "name": "Won", "primaryColor": "green", "secondaryColor": "lightgreen"},
    {"id": 4, "name": "Lost", "primaryColor": "red", "secondaryColor": "pink"},
]
BUSINESSES = {1: "Business Name", 2: "Second Business", 3: "Third Business"}
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _message(status: int, message: str) -> Answer:
    return Answer(status, {"message": message})


def _invalid(problems: list[str]) -> Answer:
    return Answer(400, {"message": "Invalid lead data: " + "; ".join(problems), "errors": problems})


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _problems(body: dict[str, Any], *, nullable: bool) -> list[str]:
    """What is wrong with these fields (absent ones are the caller's business)."""
    problems = []
    for name in sorted(set(body) - set(CREATE_FIELDS) - set(OPTIONAL_FIELDS)):
        problems.append(f"property {name} should not exist")
    for name in STRING_FIELDS:
        value = body.get(name)
        if name not in body or (value is None and nullable):
            continue
        if not isinstance(value, str):
            problems.append(f"{name} must be a string")
        elif not value.strip():
            problems.append(f"{name} should not be empty")
    if isinstance(body.get("email"), str) and body["email"].strip() and not EMAIL.fullmatch(body["email"]):
        problems.append("email must be an email")
    if "business" in body:
        business = body["business"]
        if not isinstance(business, list) or not business:
            problems.append("business must be a non-empty array of business ids")
        elif not all(_is_id(b) for b in business):
            problems.append("business must be an array of numbers")
        else:
            problems += [f"business {b} not found" for b in business if b not in BUSINESSES]
    phones = body.get("phoneNumber")
    if (
        "phoneNumber" in body
        and not (phones is None and nullable)
        and (not isinstance(phones, list) or not all(isinstance(p, str) and p.strip() for p in phones))
    ):
        problems.append("phoneNumber must be an array of non-empty strings")
    status = body.get("statusId")
    if "statusId" in body and not (status is None and nullable) and not _is_id(status):
        problems.append("statusId must be a number")
    social = body.get("socialMedia")
    if social is not None and (not isinstance(social, dict) or not all(isinstance(v, str) for v in social.values())):
        problems.append("socialMedia must be an object of strings")
    return problems


class FakeLeadsApi(FakeServer):
    def __init__(self, port: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(port, clock=clock)
        self.leads: dict[int, dict[str, Any]] = {}
        self.archived: set[int] = set()
        self.history: dict[int, list[dict[str, Any]]] = {}
        self._next_id, self._next_log_id = 1, 1
        self.route("GET", "/leads/statuses", self.get_statuses)
        self.route("GET", "/leads/search", self.search)
        self.route("GET", "/leads/logs-and-comments/{lead_id}", self.logs_and_comments)
        self.route("GET", "/leads/logs/{lead_id}", self.logs)
        self.route("GET", "/leads/{lead_id}", self.get_lead)
        self.route("GET", "/leads", self.list_leads)
        self.route("POST", "/leads", self.create)
        self.route("POST", "/leads/comments/{lead_id}", self.comment)
        self.route("PATCH", "/leads/archive", self.archive)
        self.route("PATCH", "/leads/restore", self.restore_leads)
        self.route("PUT", "/leads/change-status", self.change_status)
        self.route("PUT", "/leads/{lead_id}", self.update)

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "archived": sorted(self.archived),
            "history": self.history,
            "next_id": self._next_id,
            "next_log_id": self._next_log_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.leads.clear()
        self.leads.update(int_keys(state.get("leads", {})))
        self.archived.clear()
        self.archived.update(state.get("archived", []))
        self.history.clear()
        self.history.update(int_keys(state.get("history", {})))
        self._next_id = state.get("next_id", 1)
        self._next_log_id = state.get("next_log_id", 1)

    def _new_id(self) -> int:
        lead_id = max([self._next_id, *(i + 1 for i in self.leads)])
        self._next_id = lead_id + 1
        return lead_id

    def _now(self) -> str:
        return self.now().isoformat(timespec="seconds").replace("+00:00", "Z")

    # -- checks --------------------------------------------------------------------------------

    def check_auth(self, request: Received) -> Answer | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return _message(403, "Access denied")
        return None

    def shown(self, lead: dict[str, Any]) -> dict[str, Any]:
        """A lead as the seed's samples show one."""
        status = next(s["name"] for s in STATUSES if s["id"] == lead["statusId"])
        business = [{"id": b, "name": BUSINESSES.get(b, f"Business {b}")} for b in lead["business"]]
        keep = ("id", "firstName", "lastName", "email", "phoneNumber")
        return {**{k: lead.get(k) for k in keep}, "status": status, "business": business}

    def _log(self, lead_id: int, action: str, content: str | None = None) -> dict[str, Any]:
        entry = {
            "id": self._next_log_id,
            "action": action,
            "entityType": "Lead",
            "user": {"id": ACTOR["id"], "email": ACTOR["email"]},
            "createdAt": self._now(),
        }
        self._next_log_id += 1
        if content is not None:
            entry["content"] = content
        self.history.setdefault(lead_id, []).append(entry)
        return entry

    def _lead(self, lead_id: str) -> tuple[dict[str, Any] | None, Answer | None]:
        if not lead_id.isdigit():
            return None, _message(400, "Invalid lead ID")
        lead = self.leads.get(int(lead_id))
        return (lead, None) if lead else (None, _message(404, "Lead not found"))

    def _duplicate(self, email: Any, lead_id: int | None = None) -> bool:
        return isinstance(email, str) and any(
            i != lead_id and str(lead.get("email") or "").casefold() == email.casefold()
            for i, lead in self.leads.items()
        )

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
        if not isinstance(request.body, dict):
            return _invalid(["the body must be a JSON object"])
        body = request.body
        missing = [f for f in CREATE_FIELDS if body.get(f) is None]
        problems = [f"{f} should not be empty" for f in missing]
        problems += _problems({k: v for k, v in body.items() if k not in missing}, nullable=False)
        if problems:
            return _invalid(problems)
        if body["statusId"] not in {s["id"] for s in STATUSES}:
            return _message(404, "No lead status found")
        if self._duplicate(body["email"]):
            return _message(400, "Email already exists")
        lead_id = self._new_id()
        self.leads[lead_id] = {"id": lead_id, **{f: body[f] for f in (*CREATE_FIELDS, *OPTIONAL_FIELDS) if f in body}}
        self._log(lead_id, "CreateLead")
        return Answer(201, self.shown(self.leads[lead_id]))

    def update(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        body = request.body if isinstance(request.body, dict) else {}
        problems = [f"{f} is required (it may be null)" for f in CREATE_FIELDS if f != "email" and f not in body]
        problems += _problems(body, nullable=True)
        status = body.get("statusId")
        if status is not None and _is_id(status) and status not in {s["id"] for s in STATUSES}:
            problems.append(f"statusId {status} is not a lead status")
        if problems:
            return _invalid(problems)
        if body.get("email") is not None and self._duplicate(body["email"], lead["id"]):
            return _message(400, "Email already exists")
        lead.update({f: body[f] for f in (*CREATE_FIELDS, *OPTIONAL_FIELDS) if f in body and body[f] is not None})
        self._log(lead["id"], "UpdateLead")
        return Answer(200, self.shown(lead))

    def comment(self, request: Received, lead_id: str) -> Answer:
        lead, error = self._lead(lead_id)
        if error:
            return error
        content = request.body.get("content") if isinstance(request.body, dict) else None
        if content is not None and not isinstance(content, str):
            return _message(400, "content must be a string")
        entry = self._log(lead["id"], "AddComment", content or "")
        return Answer(
            201, {"id": entry["id"], "content": entry["content"], "user": ACTOR, "createdAt": entry["createdAt"]}
        )

    def _bulk(self, request: Received) -> tuple[list[int], Answer | None]:
        ids = request.body.get("ids") if isinstance(request.body, dict) else None
        if not isinstance(ids, list) or any(not _is_id(i) or i not in self.leads for i in ids):
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

    def restore_leads(self, request: Received) -> Answer:
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
        if not _is_id(body.get("statusId")) or body["statusId"] not in {s["id"] for s in STATUSES}:
            return _message(400, "Invalid status ID")
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or any(not _is_id(i) or i not in self.leads for i in ids):
            return _message(404, "Lead not found")
        for i in ids:
            self.leads[i]["statusId"] = body["statusId"]
            self._log(i, "ChangeStatus")
        return Answer(200, [{"id": i, "status": self.shown(self.leads[i])["status"]} for i in ids])


def _banner(fake: FakeLeadsApi) -> str:
    businesses = ", ".join(f"{i} {name}" for i, name in BUSINESSES.items())
    return (
        f"Fake REST leads API on {fake.url} — token {TOKEN} (Authorization: Bearer); businesses: {businesses};"
        " Ctrl-C stops it"
    )


def main() -> None:
    serve(FakeLeadsApi, __doc__.split("\n\n")[0], 8702, _banner)


if __name__ == "__main__":
    main()
