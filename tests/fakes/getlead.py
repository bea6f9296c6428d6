"""A fake Getlead (write-only API under ``/api``), from seed 004.

Endpoints, all POST, each answering HTTP 200 with ``{"status": …, "message": …}``, and
the parameters each requires:

- ``/api/gl-website-contacts`` (create a lead): token, countrycode, mobileno, source;
  a refusal has ``"status": "fail"``;
- ``/api/gl-task-creation-api``: token, name;
- ``/api/gl-note-creation-api``: token, note, countrycode, mobile_no;
- ``/api/gl-status-change-api``: token, status, countrycode, mobile_no;
- ``/api/gl-deal-creation-api``: token, mobile, status;
- ``/api/gl-department-vise-agent-assign/{token}``: SourceNumber, department (the token
  is in the path);

the others refuse with ``"status": "error"``.

The seed's messages are used as they are: "Lead Added Successfully.", "The mobileno
must be between 8 and 14 digits.", "Please check the parameters.", "Enquiry Not
Found.", "Task Added Successfully.", "Note Added Successfully.", "The source number
has been assigned to the specified department.". The seed gives the status change
the success message "Note Added Successfully." and the deal creation "Task Added
Successfully." (they look copied from the neighbouring pages, but they are all the
seed has), so the fake answers exactly those.

The real API cannot be read, so the fake keeps what it was told for tests to check:
``leads`` (keyed ``"<countrycode>-<national number>"``; ``lead(countrycode, mobile)``
finds one, the mobile with or without country code) with its fields, ``staff_name``,
``status`` and its history ``statuses``, ``notes``, ``tasks``, ``deals``, ``department``
and ``fields`` (the additional parameters); ``tasks`` (every task, linked to a lead or
not); ``source_numbers`` (SourceNumber -> department). Requests are recorded as
received (the token in their query string included); no reply of the fake contains
the token.

Choices where the seed is silent:
- Parameters are read from the query string (as the seed's examples send them) and
  from a form-encoded (``application/x-www-form-urlencoded``) or JSON-object body; a
  body value wins over the query's, as in Laravel, whose messages these are. A
  parameter sent empty counts as missing.
- The checks run in this order: required parameters ("Please check the parameters."),
  the token ("Invalid token.", with the endpoint's failure status), the mobile number
  (create only: "The mobileno must be between 8 and 14 digits.": digits only, 8 to 14),
  then the other values ("Please check the parameters."): countrycode 1-4 digits;
  email well-formed; staff_name and assigned_to one of ``staff``; a lead's status one
  of ``statuses`` (a deal's status is any text); department one of ``departments``;
  task_category_id 1 or 2; deal_amount an integer; scheduled_date ``YYYY-MM-DD`` with an optional `` HH:MM`` or
  `` HH:MM:SS``; start_date and end_date ``YYYY-MM-DD``.
- A lead is identified by country code and national number: a mobileno that starts
  with the country code and is a valid number with it (per ``phonenumbers``) loses the
  prefix. A second create for the same number updates that lead (the seed's
  "Create new additional field or update value to existing data"): every value sent
  replaces the old one, ``creates`` counts the creates, and the answer is the same
  "Lead Added Successfully.".
- Notes and status changes name their lead by countrycode + mobile_no (an unknown one is
  "Enquiry Not Found."); a task may name one the same way or by email (unknown: "Enquiry
  Not Found."; a countrycode without mobile_no, or the reverse, is "Please check the
  parameters."); a deal names it by ``mobile`` (with ``countrycode`` when given, else any
  lead whose national or full number it is; the newest if several). The deal's name is
  read from ``deal name`` (as the seed spells it) or ``deal_name``.
- The department endpoint fails with "Invalid token.", "Missing parameters: …",
  "Invalid SourceNumber." (not 6-15 digits) or "Invalid department." (the seed shows
  only "Error description (e.g., missing parameters, invalid department, etc.)").
- Another method on these paths is HTTP 405 and an unknown path 404, with Laravel's
  ``{"message": …}``. No rate limit is documented, so none is enforced.

Standalone::

    python -m tests.fakes.getlead --port 8704 [--state getlead.json]
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import phonenumbers

from bot.loopback import Answer, FakeServer, Received, serve

TOKEN = "gl_8ee3b1f0c2d94a7e8f61a5b2c3d4e5f6"
STAFF = ("Ajay", "Priya", "Rahul")  # agent names; the seed's example assigns a task to Ajay
STATUSES = ("New", "Contacted", "Interested", "Not Interested", "Converted")
DEPARTMENTS = ("Sales", "Support", "Accounts")
CREATE_FIELDS = (
    "name",
    "email",
    "countrycode",
    "mobileno",
    "feedback",
    "source",
    "company_name",
    "staff_name",
    "date_of_birth",
    "purpose",
    "status",
    "department",
)
CHECK = "Please check the parameters."
GONE = "Enquiry Not Found."
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
DAY = r"\d{4}-\d{2}-\d{2}"


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FakeGetlead(FakeServer):
    def __init__(
        self,
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        staff: tuple[str, ...] = STAFF,
        statuses: tuple[str, ...] = STATUSES,
        departments: tuple[str, ...] = DEPARTMENTS,
    ) -> None:
        super().__init__(port, clock=clock)
        self.staff, self.statuses, self.departments = staff, statuses, departments
        self.leads: dict[str, dict[str, Any]] = {}
        self.tasks: list[dict[str, Any]] = []
        self.source_numbers: dict[str, str] = {}
        self._next_id = 1
        for path, handler, failure in [
            ("/api/gl-website-contacts", self.create, "fail"),
            ("/api/gl-task-creation-api", self.task, "error"),
            ("/api/gl-note-creation-api", self.note, "error"),
            ("/api/gl-status-change-api", self.status, "error"),
            ("/api/gl-deal-creation-api", self.deal, "error"),
            ("/api/gl-department-vise-agent-assign/{token}", self.department, "error"),
        ]:
            self.route("POST", path, self._guarded(handler, failure))

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "tasks": self.tasks,
            "source_numbers": self.source_numbers,
            "next_id": self._next_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.leads.clear()
        self.leads.update(state.get("leads", {}))
        self.tasks[:] = state.get("tasks", [])
        self.source_numbers.clear()
        self.source_numbers.update(state.get("source_numbers", {}))
        self._next_id = state.get("next_id", 1)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # -- the protocol --------------------------------------------------------------------------

    def not_found(self, request: Received) -> Answer:
        return Answer(404, {"message": "Not Found"})

    def not_allowed(self, request: Received, allowed: list[str]) -> Answer:
        message = f"The {request.method} method is not supported for this route. Supported methods: POST."
        return Answer(405, {"message": message})

    def _guarded(self, handler: Callable[..., str], failure: str) -> Callable[..., Answer]:
        def run(request: Received, **path: str) -> Answer:
            params = {k: v.strip() for k, v in self._params(request).items() if isinstance(v, str)}
            try:
                message = handler({k: v for k, v in params.items() if v}, **path)
            except _Refused as refused:
                return Answer(200, {"status": failure, "message": refused.message})
            return Answer(200, {"status": "success", "message": message})

        return run

    def _params(self, request: Received) -> dict[str, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        return {**request.query, **{k: v if isinstance(v, str) else str(v) for k, v in body.items() if v is not None}}

    def _require(self, params: dict[str, str], *names: str) -> None:
        if any(name not in params for name in names):
            raise _Refused(CHECK)
        if params.get("token", TOKEN) != TOKEN:
            raise _Refused("Invalid token.")

    def _check(self, params: dict[str, str], *, skip: tuple[str, ...] = ()) -> None:
        """The values' formats and lists ("Please check the parameters.")."""
        rules: dict[str, Callable[[str], bool]] = {
            "countrycode": lambda v: re.fullmatch(r"\d{1,4}", v) is not None,
            "email": lambda v: EMAIL.fullmatch(v) is not None,
            "staff_name": lambda v: v in self.staff,
            "assigned_to": lambda v: v in self.staff,
            "status": lambda v: v in self.statuses,
            "department": lambda v: v in self.departments,
            "task_category_id": lambda v: v in ("1", "2"),
            "deal_amount": lambda v: re.fullmatch(r"\d+", v) is not None,
            "scheduled_date": lambda v: re.fullmatch(rf"{DAY}( \d{{2}}:\d{{2}}(:\d{{2}})?)?", v) is not None,
            "start_date": lambda v: _day(v),
            "end_date": lambda v: _day(v),
        }
        for name, ok in rules.items():
            if name in params and name not in skip and not ok(params[name]):
                raise _Refused(CHECK)

    def _stamp(self) -> str:
        return self.now().strftime("%Y-%m-%d %H:%M:%S")

    # -- leads ---------------------------------------------------------------------------------

    @staticmethod
    def national(countrycode: str, mobile: str) -> str:
        """The national number: ``mobile`` without ``countrycode`` when it carries it."""
        if mobile.startswith(countrycode) and len(mobile) > len(countrycode):
            try:
                number = phonenumbers.parse("+" + mobile)
            except phonenumbers.NumberParseException:
                return mobile
            if str(number.country_code) == countrycode and phonenumbers.is_valid_number(number):
                return mobile[len(countrycode) :]
        return mobile

    def lead(self, countrycode: str, mobile: str) -> dict[str, Any] | None:
        """The lead Getlead holds for this number (with or without the country code), if any."""
        return self.leads.get(f"{countrycode}-{self.national(countrycode, mobile)}")

    def _lead_of(self, params: dict[str, str], mobile_param: str = "mobile_no") -> dict[str, Any]:
        lead = self.lead(params["countrycode"], params[mobile_param])
        if lead is None:
            raise _Refused(GONE)
        return lead

    def create(self, params: dict[str, str]) -> str:
        self._require(params, "token", "countrycode", "mobileno", "source")
        if not re.fullmatch(r"\d{8,14}", params["mobileno"]):
            raise _Refused("The mobileno must be between 8 and 14 digits.")
        self._check(params)
        cc = params["countrycode"]
        national = self.national(cc, params["mobileno"])
        key, now = f"{cc}-{national}", self._stamp()
        lead = self.leads.get(key)
        if lead is None:
            lead = self.leads[key] = {
                "id": self._new_id(),
                "countrycode": cc,
                "mobileno": national,
                "creates": 0,
                "created_at": now,
                "fields": {},
                "statuses": [],
                "notes": [],
                "tasks": [],
                "deals": [],
            }
        lead["creates"] += 1
        lead["updated_at"] = now
        for name, value in params.items():
            if name in ("token", "countrycode", "mobileno"):
                continue
            if name in CREATE_FIELDS:
                lead[name] = value
            else:
                lead["fields"][name] = value
        if "status" in params:
            lead["statuses"].append({"status": params["status"], "at": now})
        return "Lead Added Successfully."

    def task(self, params: dict[str, str]) -> str:
        self._require(params, "token", "name")
        self._check(params)
        if ("countrycode" in params) != ("mobile_no" in params):
            raise _Refused(CHECK)
        lead = None
        if "mobile_no" in params:
            lead = self._lead_of(params)
        elif "email" in params:
            lead = next(
                (x for x in self.leads.values() if x.get("email", "").casefold() == params["email"].casefold()), None
            )
            if lead is None:
                raise _Refused(GONE)
        fields = ("name", "description", "comment", "task_category_id", "scheduled_date", "assigned_to")
        task = {"id": self._new_id(), **{k: params[k] for k in fields if k in params}, "at": self._stamp()}
        task["lead"] = f"{lead['countrycode']}-{lead['mobileno']}" if lead else None
        self.tasks.append(task)
        if lead:
            lead["tasks"].append(task)
        return "Task Added Successfully."

    def note(self, params: dict[str, str]) -> str:
        self._require(params, "token", "note", "countrycode", "mobile_no")
        self._check(params)
        lead = self._lead_of(params)
        lead["notes"].append(
            {"id": self._new_id(), "note": params["note"], "email": params.get("email"), "at": self._stamp()}
        )
        return "Note Added Successfully."

    def status(self, params: dict[str, str]) -> str:
        self._require(params, "token", "status", "countrycode", "mobile_no")
        self._check(params)
        lead = self._lead_of(params)
        lead["status"] = params["status"]
        lead["statuses"].append({"status": params["status"], "at": self._stamp()})
        return "Note Added Successfully."  # sic: the seed's success reply for a status change

    def deal(self, params: dict[str, str]) -> str:
        self._require(params, "token", "mobile", "status")
        self._check(params, skip=("status",))  # a deal's status, not a lead's
        if "countrycode" in params:
            lead = self._lead_of(params, "mobile")
        else:
            mobile = params["mobile"]
            found = [x for x in self.leads.values() if mobile in (x["mobileno"], x["countrycode"] + x["mobileno"])]
            if not found:
                raise _Refused(GONE)
            lead = max(found, key=lambda x: x["id"])
        deal = {"id": self._new_id(), "status": params["status"], "at": self._stamp()}
        deal["deal_name"] = params.get("deal name", params.get("deal_name"))
        for name in ("staff_name", "deal_amount", "start_date", "end_date", "deal_note"):
            if name in params:
                deal[name] = int(params[name]) if name == "deal_amount" else params[name]
        lead["deals"].append(deal)
        return "Task Added Successfully."  # sic: the seed's success reply for a deal

    def department(self, params: dict[str, str], token: str) -> str:
        if token != TOKEN:
            raise _Refused("Invalid token.")
        missing = [name for name in ("SourceNumber", "department") if name not in params]
        if missing:
            raise _Refused(f"Missing parameters: {', '.join(missing)}.")
        if not re.fullmatch(r"\d{6,15}", params["SourceNumber"]):
            raise _Refused("Invalid SourceNumber.")
        if params["department"] not in self.departments:
            raise _Refused("Invalid department.")
        self.source_numbers[params["SourceNumber"]] = params["department"]
        return "The source number has been assigned to the specified department."


def _day(value: str) -> bool:
    try:
        return re.fullmatch(DAY, value) is not None and bool(datetime.strptime(value, "%Y-%m-%d"))
    except ValueError:
        return False


def _banner(fake: FakeGetlead) -> str:
    return "\n".join(
        [
            f"Fake Getlead on {fake.url}/api/ — token {TOKEN} (token= in the query string)",
            f"Staff: {', '.join(fake.staff)}; statuses: {', '.join(fake.statuses)}",
            f"Departments: {', '.join(fake.departments)}; Ctrl-C stops it",
        ]
    )


def main() -> None:
    serve(FakeGetlead, __doc__.split("\n\n")[0], 8704, _banner)


if __name__ == "__main__":
    main()
