"""The fault matrix: every backend × every write × every way a network fails, driven as Slack drives Leadbot.

One cell: a fresh bot (fake Slack, the backend's strict fake, an empty database), a lead
made beforehand where the write needs one, then the write typed as a ``/lead`` command
while the backend fails in one way; then the outbox runner, with the clock moved on
(never sleeping), until nothing is queued. What is checked is what the person was told
and what the fake holds:

- *told the truth*: a card (✅) only when the fake holds the write at that moment; ⏳
  while it is queued, then a DM that says ✅ only when the fake holds it, or ⚠ with
  a reason; ⚠ at once only for a refusal, with nothing written;
- *exactly once*: the fake holds the write once at the end (none, after a ⚠).

``tests/test_fault_matrix.py`` runs every cell; ``bench/faults.py`` prints the matrix with
the counts of lost, doubled and falsely reported writes (all three must be 0).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import build_app, build_outbox_runner, build_runtime
from bot.config import load_settings
from bot.executor import InlineExecutor
from bot.fakeslack import FakeSlack
from bot.loopback import Failure, FakeServer
from services.audit import Actor
from services.backends.common import unmarked
from tests.slack import SIGNING_SECRET, DispatchTransport, SlackDriver

ADMIN, REP, OTHER = "UADMIN", "UREP1", "UREP2"
READ_TIMEOUT = 0.2  # how long the bot waits for a reply: hangs and late writes cost this much real time
STEP = timedelta(seconds=30)
HORIZON = timedelta(hours=2)  # every cell settles well within this (the outbox gives up after a day)


class Clock:
    """The bot's clock: it stands still, and the runner loop moves it on."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


# -- what each backend's fake holds ----------------------------------------------------------


def _capillary_follow_ups(fake: Any, text: str) -> int:
    return sum(text in (f.get("notes") or "") for lead in fake.leads.values() for f in lead["followUpDetails"])


def _capillary_status_log(fake: Any, status: str, reason: int, sub: str | None) -> int:
    return sum(
        (s.get("status"), s.get("reasonId"), s.get("subStatus") or None) == (status, reason, sub)
        for lead in fake.leads.values()
        for s in lead["statusLogDetails"]
    )


def _leadsapi_comments(fake: Any, text: str) -> int:
    return sum(text in unmarked(e.get("content") or "") for log in fake.history.values() for e in log)


def _leadsapi_logs(fake: Any, action: str) -> int:
    return sum(e.get("action") == action and "content" not in e for log in fake.history.values() for e in log)


@dataclass(frozen=True)
class Write:
    """One kind of write: the request a fault hits, the command that makes it, how to count it in the fake."""

    method: str
    path: str
    command: str  # ``{ref}`` is the lead made beforehand
    count: Callable[[Any], int]
    before: tuple[str, ...] = ()  # commands after the lead is made, before the write (unfaulted)


@dataclass(frozen=True)
class Target:
    """A backend under fault: its fake, how Leadbot is configured for it, who is linked, its writes."""

    name: str
    fake: Callable[[], FakeServer]
    config: str
    env: Callable[[FakeServer], dict[str, Any]]
    staff: dict[str, str]
    create: str
    writes: dict[str, Write]
    renews_tokens: bool = False  # an expired token is renewed; otherwise it is a refusal (⚠ at once, nothing written)
    refused: Callable[[], Failure] = lambda: Failure("status", status=403, body={"message": "Access denied"})
    find: Callable[[Any], str] = lambda fake: str(next(iter(fake.leads)))  # the lead made beforehand, its id
    verifiable: bool = True  # False: a write that may have landed is told as "may have" (?), never resent


def _capillary() -> Target:
    from tests.fakes.capillary import CLIENT_KEY, CLIENT_SECRET, FakeCapillary

    return Target(
        name="capillary",
        fake=FakeCapillary,
        config=f"[backends.capillary]\ntill_id = 4242\ntimeout = {READ_TIMEOUT}\n",
        env=lambda fake: {
            "leadbot_capillary_url": fake.url,
            "leadbot_capillary_client_key": CLIENT_KEY,
            "leadbot_capillary_client_secret": CLIENT_SECRET,
        },
        staff={ADMIN: "ada.l/28812691", REP: "ana.s/28812689", OTHER: "bob.k/28812690"},
        create="new Tom Sawyer tom.sawyer@example.com for=item001 backend=capillary",
        writes={
            "create": Write(
                "POST",
                "/v2/leads",
                "new Huck Finn huck.finn@example.com for=item001 backend=capillary",
                lambda f: sum(x["userId"] == f.customers.get("huck.finn@example.com") for x in f.leads.values()),
            ),
            "assign": Write(
                "PUT",
                "/v2/leads/{id}",
                f"assign {{ref}} <@{OTHER}|bob>",
                lambda f: sum(lead["owner"] == "bob.k" for lead in f.leads.values()),
            ),
            "follow-up": Write(
                "POST",
                "/v2/leads/{id}/followup",
                "followup {ref} called about the quote",
                lambda f: _capillary_follow_ups(f, "called about the quote"),
            ),
            "note": Write(
                "POST",
                "/v2/leads/{id}/followup",
                "note {ref} prefers email",
                lambda f: _capillary_follow_ups(f, "prefers email"),
            ),
            "status": Write(
                "PUT",
                "/v2/leads/{id}/status",
                "status {ref} on_hold reason=2 sub=YetToDecide",
                lambda f: _capillary_status_log(f, "ON_HOLD", 2, "YetToDecide"),
            ),
            "reason only": Write(
                "PUT",
                "/v2/leads/{id}/status",
                "status {ref} on_hold reason=3 sub=YetToDecide",
                lambda f: _capillary_status_log(f, "ON_HOLD", 3, "YetToDecide"),
                before=("status {ref} on_hold reason=2 sub=YetToDecide",),
            ),
        },
        renews_tokens=True,
    )


def _leadsapi() -> Target:
    from tests.fakes.leadsapi import TOKEN, FakeLeadsApi

    return Target(
        name="leadsapi",
        fake=FakeLeadsApi,
        config=(
            f"[backends.leadsapi]\nbusiness = [1]\ntimeout = {READ_TIMEOUT}\n"
            'defaults = { photo = "p.png", location = "-", position = "-", description = "-", company = "-" }\n'
        ),
        env=lambda fake: {"leadbot_leadsapi_url": fake.url, "leadbot_leadsapi_token": TOKEN},
        staff={ADMIN: "ada", REP: "ana", OTHER: "bob"},
        create="new John Doe john.doe@example.com backend=leadsapi",
        writes={
            "create": Write(
                "POST",
                "/leads",
                "new Huck Finn huck.finn@example.com backend=leadsapi",
                lambda f: sum(x.get("email") == "huck.finn@example.com" for x in f.leads.values()),
            ),
            "assign": Write(
                "POST",
                "/leads/comments/{id}",
                f"assign {{ref}} <@{OTHER}|bob>",
                lambda f: _leadsapi_comments(f, "Assigned to bob by ana"),
            ),
            "follow-up": Write(
                "POST",
                "/leads/comments/{id}",
                "followup {ref} called about the quote",
                lambda f: _leadsapi_comments(f, "called about the quote"),
            ),
            "note": Write(
                "POST",
                "/leads/comments/{id}",
                "note {ref} prefers email",
                lambda f: _leadsapi_comments(f, "prefers email"),
            ),
            "status": Write(
                "PUT", "/leads/change-status", "status {ref} contacted", lambda f: _leadsapi_logs(f, "ChangeStatus")
            ),
            "archive": Write(
                "PATCH", "/leads/archive", "status {ref} archived", lambda f: _leadsapi_logs(f, "ArchiveLead")
            ),
        },
    )


def _leadsquared() -> Target:
    from tests.fakes import leadsquared as lsq

    def lead_of(fake: Any) -> dict[str, Any]:
        return next(lead for lead in fake.leads.values() if lead.get("EmailAddress") == "tom.sawyer@example.com")

    def notes(fake: Any, text: str) -> int:
        return sum(text in (n.get("Note") or "") for n in fake.notes.values())

    def activities(fake: Any, text: str) -> int:
        return sum(text in (a["Data"].get("ActivityEvent_Note") or "") for a in fake.activities.values())

    return Target(
        name="leadsquared",
        fake=lambda: lsq.FakeLeadSquared(rate_limit=None),
        # The shared rate budget has its own tests and bench; here nothing waits for it.
        config=f"[backends.leadsquared]\nrate_limit = 1000\ntimeout = {READ_TIMEOUT}\n",
        env=lambda fake: {
            "leadbot_leadsquared_url": fake.url,
            "leadbot_leadsquared_access_key": lsq.ACCESS_KEY,
            "leadbot_leadsquared_secret_key": lsq.SECRET_KEY,
        },
        staff={ADMIN: "leadbot@example.com", REP: "ana.silva@example.com", OTHER: "bob.kumar@example.com"},
        create="new Tom Sawyer tom.sawyer@example.com backend=leadsquared",
        writes={
            "create": Write(
                "POST",
                "/v2/LeadManagement.svc/Lead.Create",
                "new Huck Finn huck.finn@example.com backend=leadsquared",
                lambda f: sum(x.get("EmailAddress") == "huck.finn@example.com" for x in f.leads.values()),
            ),
            "assign": Write(
                "POST",
                "/v2/LeadManagement.svc/Lead.Update",
                f"assign {{ref}} <@{OTHER}|bob>",
                lambda f: int(lead_of(f).get("OwnerId") == lsq.BOB_ID),
            ),
            "follow-up": Write(
                "POST",
                "/v2/ProspectActivity.svc/Create",
                "followup {ref} called about the quote",
                lambda f: activities(f, "called about the quote"),
            ),
            "note": Write(
                "POST",
                "/v2/LeadManagement.svc/CreateNote",
                "note {ref} prefers email",
                lambda f: notes(f, "prefers email"),
            ),
            "status": Write(
                "POST",
                "/v2/LeadManagement.svc/Lead.Update",
                "status {ref} opportunity",
                lambda f: int(lead_of(f).get("ProspectStage") == "Opportunity"),
            ),
            "reason only": Write(
                "POST",
                "/v2/LeadManagement.svc/CreateNote",
                "status {ref} customer reason=signed the contract",
                lambda f: notes(f, "signed the contract"),
            ),
        },
        refused=lambda: Failure(
            "status",
            status=401,
            body={
                "Status": "Error",
                "ExceptionType": "MXUnAuthorizedAccessException",
                "ExceptionMessage": "The API call was made with invalid access credentials.",
            },
        ),
        find=lambda fake: next(k for k, v in fake.leads.items() if v.get("EmailAddress") == "tom.sawyer@example.com"),
    )


def _getlead() -> Target:
    from tests.fakes import getlead as gl

    def lead_of(fake: Any) -> dict[str, Any]:
        return fake.leads["91-9895012345"]

    return Target(
        name="getlead",
        fake=gl.FakeGetlead,
        config=f'[backends.getlead]\ndefault_country = "IN"\ntimeout = {READ_TIMEOUT}\n',
        env=lambda fake: {"leadbot_getlead_url": f"{fake.url}/api", "leadbot_getlead_token": gl.TOKEN},
        staff={ADMIN: "Rahul", REP: "Ajay", OTHER: "Priya"},
        create="new Tom Sawyer +91 98950 12345 source=Website backend=getlead",
        writes={
            "create": Write(
                "POST",
                "/api/gl-website-contacts",
                "new Huck Finn +91 98950 54321 source=Website backend=getlead",
                lambda f: int("91-9895054321" in f.leads),
            ),
            "assign": Write(
                "POST",
                "/api/gl-website-contacts",
                f"assign {{ref}} <@{OTHER}|bob>",
                lambda f: int(lead_of(f).get("staff_name") == "Priya"),
            ),
            "follow-up": Write(
                "POST",
                "/api/gl-note-creation-api",
                "followup {ref} called about the quote",
                lambda f: sum("called about the quote" in n["note"] for n in lead_of(f)["notes"]),
            ),
            "note": Write(
                "POST",
                "/api/gl-note-creation-api",
                "note {ref} prefers email",
                lambda f: sum("prefers email" in n["note"] for n in lead_of(f)["notes"]),
            ),
            "status": Write(
                "POST",
                "/api/gl-status-change-api",
                "status {ref} interested",
                lambda f: sum(s["status"] == "Interested" for s in lead_of(f)["statuses"]),
            ),
            "deal": Write(
                "POST",
                "/api/gl-deal-creation-api",
                'deal {ref} 150000 name="Big order"',
                lambda f: sum(d.get("deal_name") == "Big order" for d in lead_of(f)["deals"]),
            ),
            "department": Write(
                "POST",
                "/api/gl-department-vise-agent-assign/{token}",
                "department {ref} Sales",
                lambda f: int(f.source_numbers.get("919895012345") == "Sales"),
            ),
        },
        refused=lambda: Failure("status", status=200, body={"status": "error", "message": "Invalid token."}),
        find=lambda fake: "+919895012345",
        verifiable=False,
    )


TARGETS: dict[str, Callable[[], Target]] = {
    "capillary": _capillary,
    "leadsapi": _leadsapi,
    "leadsquared": _leadsquared,
    "getlead": _getlead,
}
WRITES = ("create", "assign", "follow-up", "note", "status", "reason only", "deal", "department", "archive")


# -- faults ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A way the backend fails the write: armed before the command, with hooks at two moments after it."""

    arm: Callable[[Any, Write, Target], None]
    after_reply: Callable[[Any], None] = lambda fake: None  # once the person has been answered
    after_first_check: Callable[[Any], None] = lambda fake: None  # once the runner has tried the write once


def _fail(failure: Callable[[], Failure]) -> Callable[[Any, Write, Target], None]:
    return lambda fake, write, target: fake.fail(write.method, write.path, failure())


def _expire_token(fake: Any, write: Write, target: Target) -> None:
    if target.renews_tokens:  # Capillary's OAuth tokens: forgotten before their time is up
        fake.tokens.clear()
    else:  # a static API token or key, revoked: nothing Leadbot can renew
        fake.fail(write.method, write.path, target.refused())


FAULTS: dict[str, Fault] = {
    "503": Fault(_fail(lambda: Failure("status", status=503, body={}))),
    "429 Retry-After": Fault(_fail(lambda: Failure("status", status=429, headers={"Retry-After": "40"}, body={}))),
    "refused": Fault(
        lambda fake, write, target: fake.stop_listening(), after_reply=lambda fake: fake.start_listening()
    ),
    "dropped after apply": Fault(_fail(lambda: Failure("drop"))),
    "timed out, not applied": Fault(_fail(lambda: Failure("hang"))),
    "reply lost after apply": Fault(_fail(lambda: Failure("hang", apply=True))),
    "applied after timeout": Fault(_fail(lambda: Failure("late")), after_reply=lambda fake: fake.apply_parked()),
    "applied after 1st check": Fault(
        _fail(lambda: Failure("late")), after_first_check=lambda fake: fake.apply_parked()
    ),
    "garbage, not applied": Fault(_fail(lambda: Failure("malformed"))),
    "garbage, applied": Fault(_fail(lambda: Failure("malformed", apply=True))),
    "token expired": Fault(_expire_token),
}


def rows(only: str | None = None) -> Iterator[tuple[str, str]]:
    """(backend, fault): one bot each, which makes every write of that backend under that fault."""
    for name in TARGETS:
        if only is None or name == only:
            for fault in FAULTS:
                yield name, fault


# -- one cell --------------------------------------------------------------------------------


@dataclass
class Result:
    told: list[str] = field(default_factory=list)  # what the person saw, in order: ✅ ⏳ ⚠ ?
    final: int = 0  # how many times the fake holds the write at the end
    false_reports: list[str] = field(default_factory=list)
    unsettled: bool = False
    expect_refusal: bool = False
    settled_after: timedelta = timedelta(0)  # on the bot's clock, from the command to the outbox emptying

    @property
    def lost(self) -> bool:
        # "May or may not have landed" (a backend that cannot be read) is the truth either way.
        return self.final == 0 and not self.expect_refusal and self.told[-1] != "?"

    @property
    def doubled(self) -> bool:
        return self.final > 1

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.false_reports or self.unsettled)

    def summary(self) -> str:
        return " → ".join(self.told) + f" (held {self.final}×)"


def _mark(text: str) -> str:
    if text.startswith(":hourglass_flowing_sand:"):
        return "⏳"
    if text.startswith(":white_check_mark:"):
        return "✅"
    if "may or may not have reached" in text:
        return "?"
    if text.startswith((":warning:", ":x:")):
        return "⚠"
    return "✅"  # a card: the write is done


@contextlib.contextmanager
def _bot(target: Target, fake: FakeServer, workdir: Path) -> Iterator[tuple[Any, SlackDriver, Clock, FakeSlack]]:
    slack_fake = FakeSlack().start()
    for user, name in ((ADMIN, "ada"), (REP, "ana"), (OTHER, "bob")):
        slack_fake.add_user(user, name, "Europe/London")
    config = workdir / "leadbot.toml"
    config.write_text(target.config)
    settings = load_settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_fake.api_url,
        leadbot_db=workdir / "leadbot.db",
        leadbot_admins=ADMIN,
        leadbot_config=config,
        leadbot_ownership="open",  # the rep assigns the lead away, then goes on writing to it
        **target.env(fake),
    )
    clock = Clock()
    # Retried reads back off on the bot's clock, which stands still: no real waiting.
    runtime = build_runtime(settings, background=InlineExecutor(), clock=clock, sleep=lambda seconds: None)
    runtime.deps.poster.sleep = lambda seconds: None  # nor do posts wait for their pace
    try:
        admin = Actor(slack_user=ADMIN, is_admin=True)
        for user, staff in target.staff.items():
            runtime.service.people.link(admin, user, staff, backend=target.name)
        driver = SlackDriver(DispatchTransport(build_app(runtime)), slack_fake, lambda timeout=10: True)
        yield runtime, driver, clock, slack_fake
    finally:
        runtime.close()
        slack_fake.stop()


def _dms(slack_fake: FakeSlack, user: str) -> list[str]:
    return [c.body["text"] for c in slack_fake.received("api", "chat.postMessage") if c.body.get("channel") == user]


def run_row(backend: str, fault_name: str, workdir: Path) -> dict[str, Result]:
    """Every write of ``backend`` under one fault, in ``WRITES`` order, on one bot in ``workdir`` (empty).

    One lead is made first (unfaulted); each write then has the fault armed for it, is typed,
    and is settled (the outbox empty) before the next. The environment must hold no settings.
    """
    target = TARGETS[backend]()
    fault = FAULTS[fault_name]
    fake = target.fake().start()
    results: dict[str, Result] = {}
    try:
        with _bot(target, fake, workdir) as (runtime, slack, clock, slack_fake):
            slack.command(target.create, user=REP)
            ref = f"{backend}:{target.find(fake)}"
            runner = build_outbox_runner(runtime)
            for name in WRITES:
                if name in target.writes:
                    write = target.writes[name]
                    results[name] = _run_write(
                        target, fake, write, fault, fault_name, ref, slack, runtime, runner, clock
                    )
    finally:
        fake.stop()
    return results


def _run_write(
    target: Target,
    fake: Any,
    write: Write,
    fault: Fault,
    fault_name: str,
    ref: str,
    slack: SlackDriver,
    runtime: Any,
    runner: Any,
    clock: Clock,
) -> Result:
    slack_fake = slack.fake
    result = Result(expect_refusal=fault_name == "token expired" and not target.renews_tokens)
    for command in write.before:
        slack.command(command.format(ref=ref), user=REP)
    baseline = write.count(fake)

    def held() -> int:
        return write.count(fake) - baseline

    command = write.command.format(ref=ref)
    fault.arm(fake, write, target)
    answered = len(slack.replies())
    slack.command(command, user=REP)
    reply = slack.replies()[answered:]
    said = _mark(reply[-1]["text"]) if reply else "∅"
    result.told.append(said)
    if said == "✅" and held() != 1:
        result.false_reports.append(f"✅ at once while the fake held it {held()}×")
    if said == "⚠" and held() != 0:
        result.false_reports.append(f"⚠ at once while the fake held it {held()}×")
    if said == "∅":
        result.false_reports.append("no answer at all")
    fault.after_reply(fake)
    seen = len(_dms(slack_fake, REP))
    start, tried = clock.at, False
    while runtime.service.outbox.pending() and clock.at - start < HORIZON:
        clock.at += STEP
        if runner.run_due() and not tried:
            tried = True
            fault.after_first_check(fake)
        for dm in _dms(slack_fake, REP)[seen:]:
            mark = _mark(dm)
            result.told.append(mark)
            if mark == "✅" and held() != 1:
                result.false_reports.append(f"✅ by DM while the fake held it {held()}×")
            if mark == "⚠" and held() != 0:
                result.false_reports.append(f"⚠ by DM while the fake held it {held()}×")
        seen = len(_dms(slack_fake, REP))
    result.unsettled = bool(runtime.service.outbox.pending())
    result.settled_after = clock.at - start
    fake.apply_parked()  # anything still parked lands now: it must not make a double
    fake.failures.clear()  # a fault this write did not meet is not left for the next
    result.final = held()
    if result.told[-1] == "⏳":
        result.false_reports.append("queued, and never told how it ended")
    if result.told[-1] == "⚠" and not result.expect_refusal:
        result.false_reports.append("refused, though the backend would have taken it")
    return result


def run_all(only: str | None = None) -> dict[tuple[str, str, str], Result]:
    """Every cell, each in a fresh temporary directory; settings in the environment are set aside meanwhile."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("SLACK_", "LEADBOT_"))}
    for name in saved:
        del os.environ[name]
    results = {}
    try:
        for backend, fault in rows(only):
            with tempfile.TemporaryDirectory() as tmp:
                for write, result in run_row(backend, fault, Path(tmp)).items():
                    results[(backend, write, fault)] = result
    finally:
        os.environ.update(saved)
    return results
