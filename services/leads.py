"""LeadService: reading and writing leads on whichever backend a reference names.

Every write checks who may make it (``People``), goes to the backend once,
and either lands (an event is published) or, when the backend cannot take it
now, is queued in the outbox and the caller is told so (``Queued``). Each
call is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services import rerun, trace
from services.audit import Actor, Audit
from services.backends.base import Backend
from services.backends.common import CARD_HISTORY, alongside, new_receipt
from services.clock import Clock, utcnow
from services.errors import (
    Code,
    Duplicate,
    Invalid,
    LeadError,
    MayHaveLanded,
    NoChange,
    Person,
    Queued,
    Rejected,
    Unreachable,
    Unsupported,
)
from services.events import (
    ORIGIN,
    DealAdded,
    DepartmentSet,
    Events,
    FollowUpLogged,
    FollowUpMoved,
    LeadAssigned,
    LeadCreated,
    LeadEdited,
    LeadEvent,
    NoteAdded,
    StatusChanged,
    WriteSettled,
)
from services.models import (
    DEPARTMENT_MAX,
    EDITABLE_FIELDS,
    Activity,
    Deal,
    FollowUp,
    Lead,
    LeadEdit,
    LeadPage,
    LeadQuery,
    LeadsAcross,
    NewLead,
    Note,
    OpportunityPage,
    StatusChange,
    StatusModel,
    StatusOption,
    Unread,
    validated,
)
from services.outbox import Outbox, what
from services.people import People
from services.ports import QueuedWrite, RequestWrite, RequestWrites
from services.routing import Backends
from services.search import ranked, terms

__all__ = ["Actor", "LeadService"]

MAX_PAGE_SIZE = 100  # opportunities per page at most
MAX_ACROSS = 200  # leads read from each backend for one page of a list across backends


class LeadService:
    def __init__(
        self,
        backends: Backends,
        people: People,
        outbox: Outbox,
        audit: Audit,
        events: Events | None = None,
        *,
        clock: Clock = utcnow,
        writes: RequestWrites | None = None,
        atomic: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.backends = backends
        self.people = people
        self.outbox = outbox
        self.audit = audit
        self.events = events or Events()
        self.clock = clock
        self.writes = writes  # how each write of a journalled request ended (services/rerun.py)
        self.atomic = atomic  # one store transaction: a local write and its record commit together

    # -- reading ------------------------------------------------------------------------------

    def get(self, ref: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.backends.resolve(ref, channel)
        return backend.get(lead_id)

    def get_for_card(self, ref: str, channel: str | None = None) -> Lead:
        """``get``, with the lead's latest history where the backend can read both at once.

        A card needs both; on a backend that answers in 200 ms, one after the other they kept
        the request (and its thread) twice as long. If the history cannot be read, the lead
        comes without it, and the card reads it again (and says what it says).
        """
        backend, lead_id = self.backends.resolve(ref, channel)
        if not backend.capabilities.card_reads_at_once:
            return backend.get(lead_id)
        history = alongside(lambda: backend.activity(lead_id, CARD_HISTORY))
        lead = backend.get(lead_id)
        try:
            found = history.result()
        except LeadError:
            return lead
        return lead.model_copy(update={"history": tuple(found)})

    def activity(self, lead: Lead, limit: int = 3) -> list[Activity]:
        return self.backends.get(lead.backend).activity(lead.id, limit)

    def search(
        self,
        *,
        channel: str | None = None,
        backend: str | None = None,
        owner_user: str | None = None,
        status: str | None = None,
        sub_status: str | None = None,
        due: bool = False,
        due_before: datetime | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> LeadPage:
        target = self.backends.get(backend) if backend else self.backends.for_channel(channel)
        owner = None
        if owner_user:
            owner = self.people.staff_id(owner_user, target.name)
            if owner is None:
                return LeadPage(leads=[], total=0, offset=offset)
        if status:
            target.status_option(status)
        self._check_sub_status(target, sub_status)
        query = LeadQuery(
            owner=owner,
            status=status,
            sub_status=sub_status,
            due_before=due_before or (self.clock() if due else None),
            offset=offset,
            limit=limit,
        )
        return target.search(query)

    def readable(self, slack_user: str, channel: str | None = None) -> list[Backend]:
        """The backends a person's lists and searches read: every one they are linked on, and the channel's.

        Someone linked nowhere reads the channel's backend (else the default one).
        """
        linked = {link.backend for link in self.people.links(slack_user)}
        home = self.backends.for_channel(channel)
        return [b for b in self.backends if b.name in linked or b is home]

    def search_across(
        self,
        slack_user: str,
        *,
        channel: str | None = None,
        backend: str | None = None,
        owner_user: str | None = None,
        unassigned: bool = False,
        status: str | None = None,
        sub_status: str | None = None,
        due: bool = False,
        text: str | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> LeadsAcross:
        """One page of leads from every backend ``slack_user`` reads (or ``backend`` alone), merged.

        A status or sub-status is looked for where the backend has it; a backend that is
        down is named in ``unread`` and the others still answer. A search by ``text``
        (services/search.py) is ranked best match first; anything else is ordered as
        one backend orders it: due soonest first, then undated ones.
        """
        targets = [self.backends.get(backend)] if backend else self.readable(slack_user, channel)
        wanted = terms(text) if text is not None else None
        if status:
            having = [b for b in targets if self._has_status(b, status)]
            if not having:
                targets[0].status_option(status)  # says which statuses there are
            targets = having
        if sub_status:
            for target in targets:
                self._check_sub_status(target, sub_status)
        pages: list[tuple[Backend, LeadPage]] = []
        unread: list[Unread] = []
        for target in targets:
            owner = None
            if owner_user:
                owner = self.people.staff_id(owner_user, target.name)
                if owner is None:
                    continue  # they have no leads where they have no staff ID
            query = LeadQuery(
                owner=owner,
                unassigned=unassigned,
                status=target.status_option(status).value if status else None,
                sub_status=sub_status,
                due_before=self.clock() if due else None,
                text=text,
                offset=0,
                limit=min(offset + limit, MAX_ACROSS),
            )
            try:
                pages.append((target, target.search(query)))
            except (Unreachable, Rejected, Unsupported) as exc:
                unread.append(Unread(backend=target.title, why=exc.message))
        leads = [lead for _, page in pages for lead in page.leads]
        if wanted is not None:
            leads = ranked(leads, wanted)
        else:
            far = datetime.max.replace(tzinfo=UTC)
            leads.sort(key=lambda lead: (lead.next_follow_up is None, lead.next_follow_up or far))
        return LeadsAcross(
            leads=leads[offset : offset + limit],
            total=sum(page.total for _, page in pages),
            offset=offset,
            more=any(page.more for _, page in pages),
            backends=[b.title for b, _ in pages],
            unread=unread,
        )

    @staticmethod
    def _has_status(backend: Backend, status: str) -> bool:
        try:
            backend.status_option(status)
        except LeadError:
            return False
        return True

    def opportunities(self, ref: str, *, page: int = 1, size: int = 5, channel: str | None = None) -> OpportunityPage:
        """One page of the lead's opportunities, newest first (``page`` from 1, ``size`` per page).

        For a card section with a More button: ``OpportunityPage.more`` says whether
        page ``page + 1`` has any, ``total`` counts them all. Each page is one call to
        the backend. ``Unsupported`` where the backend has none
        (``capabilities.opportunities``); ``Invalid`` for a page below 1 or a size
        outside 1 to 100.
        """
        backend, lead_id = self.backends.resolve(ref, channel)
        if not backend.capabilities.opportunities:
            raise Unsupported("{backend} has no opportunities", backend=backend.title)
        if page < 1:
            raise Invalid("pages are counted from 1", field="page")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise Invalid("a page holds 1 to {most} opportunities", field="size", most=MAX_PAGE_SIZE)
        return backend.opportunities(lead_id, page, size)

    # -- writing ------------------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        lead: NewLead,
        *,
        owner_user: str | None = None,
        backend: str | None = None,
        channel: str | None = None,
        allow_duplicate: bool = False,
    ) -> Lead:
        """A new lead. One whose email or phone an open lead of the backend has already is ``Duplicate``
        (naming that lead, and carrying the create to make anyway) unless ``allow_duplicate``."""
        target = self.backends.get(backend) if backend else self.backends.for_channel(channel)
        with self.audit.action(actor, "create", None) as audit:
            by = self.people.require_link(actor, target)
            owner = self.people.staff_for(owner_user, target) if owner_user else by
            if lead.status:
                target.status_option(lead.status)
            self._check_sub_status(target, lead.sub_status)
            if lead.customer and not target.capabilities.customer_ids:
                raise Unsupported(
                    "{backend} does not take a customer id: give an email or phone instead",
                    field="customer",
                    backend=target.title,
                )
            if not (lead.email or lead.phone or lead.customer):
                raise Invalid("give the lead's email or phone", field="email")
            if not allow_duplicate and not self._made_before():
                self._refuse_duplicate(target, lead, owner_user)
            wanted = lead.model_copy(update={"owner": owner, "receipt": new_receipt()})
            args = {"lead": wanted.model_dump(mode="json"), "by": by}
            created = self._send(actor, target, "create", args, None, lambda: target.create(wanted, by=by))
            audit["ref"] = created.ref
        trace.note(ref=created.ref)
        self._publish(LeadCreated(lead=created, by_user=actor.slack_user, origin=_origin()))
        return created

    def _made_before(self) -> bool:
        """Whether an earlier run of this request made its next write already (then it is that lead, not a twin)."""
        scope = rerun.CURRENT.get()
        return scope is not None and self.writes is not None and self.writes.get(scope.peek_key()) is not None

    @staticmethod
    def _refuse_duplicate(target: Backend, lead: NewLead, owner_user: str | None) -> None:
        found = target.duplicates(lead)
        if not found:
            return
        same = found[0]
        by_email = bool(lead.email and same.email and same.email.casefold() == lead.email.casefold())
        again = {
            "lead": lead.model_dump(mode="json", exclude_none=True),
            "owner": owner_user,
            "backend": target.name,
            "key": new_receipt(),  # one warning makes one lead, however often its button is pressed
        }
        raise Duplicate(
            "{name} ({ref}) is already open with this {what}; Create anyway makes a second lead",
            existing_ref=same.ref,
            again=again,
            name=same.name,
            ref=Code(same.ref),
            what="email" if by_email else "phone",
        )

    def assign(self, actor: Actor, ref: str, assignee: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "assign", f"{backend.name}:{lead_id}", f"to {assignee}"):
            by = self.people.require_link(actor, backend)
            owner = self.people.staff_for(assignee, backend)
            now = self._read(backend, lead_id)
            previous = now.owner if now is not None else None
            if now is not None:  # unreadable now: the write is queued unchecked, as every check is skipped then
                self.people.require_may_reassign(actor, backend, previous, owner, ref=f"{backend.name}:{lead_id}")
            if previous == owner:
                raise NoChange(
                    "nothing changed: {ref} is already assigned to {who}",
                    ref=Code(f"{backend.name}:{lead_id}"),
                    who=Person(assignee),
                )
            receipt = new_receipt()
            args = {"lead_id": lead_id, "owner": owner, "by": by, "previous_owner": previous, "receipt": receipt}
            lead = self._send(
                actor, backend, "assign", args, lead_id, lambda: backend.assign(lead_id, owner, by=by, receipt=receipt)
            )
        self._publish(LeadAssigned(lead=lead, by_user=actor.slack_user, origin=_origin(), previous_owner=previous))
        return lead

    def edit(self, actor: Actor, ref: str, changes: dict[str, str], channel: str | None = None) -> Lead:
        """Change the lead's own fields: ``changes`` maps words of ``EDITABLE_FIELDS`` to values.

        Values arrive checked as for a new lead (an email normalised, a phone in E.164);
        a field the backend cannot change (``capabilities.editable``) refuses the whole
        edit, naming what it can change. Publishes ``LeadEdited``.
        """
        backend, lead_id = self.backends.resolve(ref, channel)
        words = tuple(w for w in EDITABLE_FIELDS if w in changes)
        with self.audit.action(actor, "edit", f"{backend.name}:{lead_id}", ", ".join(words)):
            unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
            if unknown or not changes:
                raise Invalid(
                    "say what to change as field=value; the fields are {fields}",
                    field="edit",
                    fields=", ".join(EDITABLE_FIELDS),
                )
            cannot = [w for w in words if w not in backend.capabilities.editable]
            if cannot:
                can = backend.capabilities.editable
                raise Unsupported(
                    "{backend} cannot change the {fields} from Leadbot ({can})",
                    field="edit",
                    backend=backend.title,
                    fields=", ".join(cannot),
                    can=f"it can change: {', '.join(can)}" if can else "it takes no edits at all",
                )
            by = self.people.require_link(actor, backend)
            edit = validated(LeadEdit, **{EDITABLE_FIELDS[w]: changes[w] for w in words}, by=by, receipt=new_receipt())
            try:
                before: Lead | None = backend.get(lead_id)
            except Unreachable:
                before = None  # the write itself then lands or is queued, as with every "nothing changed" check
            if before is not None and all(getattr(before, f) == v for f, v in edit.changes().items()):
                raise NoChange(
                    "nothing changed: {ref} already has those details", ref=Code(f"{backend.name}:{lead_id}")
                )
            args = {"lead_id": lead_id, "edit": edit.model_dump(mode="json")}
            lead = self._send(actor, backend, "edit", args, lead_id, lambda: backend.edit(lead_id, edit))
        self._publish(LeadEdited(lead=lead, by_user=actor.slack_user, origin=_origin(), fields=words))
        return lead

    def log_follow_up(
        self,
        actor: Actor,
        ref: str,
        *,
        notes: str | None,
        next_follow_up: datetime | None,
        done_at: datetime | None = None,
        channel: str | None = None,
    ) -> Lead:
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "follow_up", f"{backend.name}:{lead_id}"):
            by = self.people.require_link(actor, backend)
            follow_up = validated(
                FollowUp,
                done_at=done_at or self.clock(),
                notes=notes or None,
                next_follow_up=next_follow_up,
                by=by,
                receipt=new_receipt(),
            )
            args = {"lead_id": lead_id, "follow_up": follow_up.model_dump(mode="json")}
            lead = self._send(
                actor, backend, "log_follow_up", args, lead_id, lambda: backend.log_follow_up(lead_id, follow_up)
            )
        self._publish(
            FollowUpLogged(lead=lead, by_user=actor.slack_user, origin=_origin(), next_follow_up=next_follow_up)
        )
        return lead

    def add_note(self, actor: Actor, ref: str, text: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "note", f"{backend.name}:{lead_id}"):
            by = self.people.require_link(actor, backend)
            note = validated(Note, text=text, by=by, at=self.clock(), receipt=new_receipt())
            args = {"lead_id": lead_id, "note": note.model_dump(mode="json")}
            lead = self._send(actor, backend, "add_note", args, lead_id, lambda: backend.add_note(lead_id, note))
        self._publish(NoteAdded(lead=lead, by_user=actor.slack_user, origin=_origin()))
        return lead

    def change_status(
        self,
        actor: Actor,
        ref: str,
        status: str,
        *,
        reason: str | None = None,
        sub_status: str | None = None,
        channel: str | None = None,
    ) -> Lead:
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "status", f"{backend.name}:{lead_id}", status):
            by = self.people.require_link(actor, backend)
            wanted = self._status(backend, status)
            now = self._read(backend, lead_id) if wanted is not None else None
            if wanted is not None and not wanted.open and now is not None:
                self.people.require_may_close(actor, backend, now.owner)
            current = now.status if now is not None else None
            if reason is None and sub_status is None and wanted is not None and current == wanted.value:
                raise NoChange(
                    "nothing changed: {ref} is already {status}",
                    ref=Code(f"{backend.name}:{lead_id}"),
                    status=wanted.label,
                )
            change = validated(
                StatusChange,
                status=status,
                reason=reason,
                sub_status=sub_status,
                by=by,
                at=self.clock(),
                receipt=new_receipt(),
            )
            args = {"lead_id": lead_id, "change": change.model_dump(mode="json")}
            lead = self._send(
                actor, backend, "change_status", args, lead_id, lambda: backend.change_status(lead_id, change)
            )
        label = wanted.label if wanted is not None else status
        self._publish(
            StatusChanged(
                lead=lead, by_user=actor.slack_user, origin=_origin(), status_label=label, sub_status=sub_status
            )
        )
        return lead

    def reschedule(self, actor: Actor, ref: str, when: datetime, channel: str | None = None) -> Lead:
        """Move the next follow-up (Snooze) without logging one."""
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "snooze", f"{backend.name}:{lead_id}", when.isoformat()):
            by = self.people.require_link(actor, backend)
            receipt = new_receipt()
            args = {"lead_id": lead_id, "when": when.isoformat(), "by": by, "receipt": receipt}
            lead = self._send(
                actor,
                backend,
                "reschedule",
                args,
                lead_id,
                lambda: backend.reschedule(lead_id, when, by=by, receipt=receipt),
            )
        self._publish(FollowUpMoved(lead=lead, by_user=actor.slack_user, origin=_origin(), to=when))
        return lead

    def add_deal(
        self,
        actor: Actor,
        ref: str,
        amount: Decimal | int | str,
        *,
        name: str | None = None,
        status: str | None = None,
        start: date | None = None,
        end: date | None = None,
        note: str | None = None,
        channel: str | None = None,
    ) -> Lead:
        """Record a deal on the lead (``capabilities.deals``): its amount, and optionally a name, a deal
        status (else the backend's default), its start and expected close, and a note. Publishes ``DealAdded``."""
        backend, lead_id = self.backends.resolve(ref, channel)
        with self.audit.action(actor, "deal", f"{backend.name}:{lead_id}", str(amount)):
            if not backend.capabilities.deals:
                raise Unsupported("{backend} has no deals", backend=backend.title)
            by = self.people.require_link(actor, backend)
            deal = validated(
                Deal,
                amount=amount,
                name=name or None,
                status=status or None,
                start=start,
                end=end,
                note=note or None,
                by=by,
                at=self.clock(),
                receipt=new_receipt(),
            )
            if deal.start and deal.end and deal.end < deal.start:
                raise Invalid("a deal cannot close before it starts", field="end")
            args = {"lead_id": lead_id, "deal": deal.model_dump(mode="json")}
            lead = self._send(actor, backend, "add_deal", args, lead_id, lambda: backend.add_deal(lead_id, deal))
        self._publish(DealAdded(lead=lead, by_user=actor.slack_user, origin=_origin(), deal=deal))
        return lead

    def set_department(self, actor: Actor, ref: str, department: str, channel: str | None = None) -> Lead:
        """Hand the lead to a department (``capabilities.departments``). Publishes ``DepartmentSet``."""
        backend, lead_id = self.backends.resolve(ref, channel)
        name = department.strip()
        with self.audit.action(actor, "department", f"{backend.name}:{lead_id}", name):
            if not backend.capabilities.departments:
                raise Unsupported("{backend} has no departments", backend=backend.title)
            by = self.people.require_link(actor, backend)
            if not name or len(name) > DEPARTMENT_MAX:
                raise Invalid(
                    "give the department's name (up to {limit} characters)", field="department", limit=DEPARTMENT_MAX
                )
            current = str(self._current(backend, lead_id, "department") or "")
            if current.casefold() == name.casefold():
                raise NoChange(
                    "nothing changed: {ref} is already with {department}",
                    ref=Code(f"{backend.name}:{lead_id}"),
                    department=Code(current),
                )
            receipt = new_receipt()
            args = {"lead_id": lead_id, "department": name, "by": by, "receipt": receipt}
            lead = self._send(
                actor,
                backend,
                "set_department",
                args,
                lead_id,
                lambda: backend.set_department(lead_id, name, by=by, receipt=receipt),
            )
        self._publish(DepartmentSet(lead=lead, by_user=actor.slack_user, origin=_origin(), department=name))
        return lead

    # -- writes a backend could not take at once ----------------------------------------------

    @staticmethod
    def _status(backend: Backend, status: str) -> StatusOption | None:
        """The status asked for; None when the backend cannot list its statuses now (the write checks it later)."""
        try:
            return backend.status_option(status)
        except Unreachable:
            return None

    @staticmethod
    def _read(backend: Backend, lead_id: str) -> Lead | None:
        """The lead as the backend has it now; None when it cannot be read right now."""
        try:
            return backend.get(lead_id)
        except Unreachable:
            return None

    @staticmethod
    def _current(backend: Backend, lead_id: str, field: str) -> object:
        """A field of the lead as the backend has it now, for the "nothing changed" check.

        If the backend cannot be read right now, the check is skipped: the write itself
        then either goes through or is queued, never dropped because a read failed.
        """
        try:
            return getattr(backend.get(lead_id), field)
        except Unreachable:
            return None

    def _send(
        self, actor: Actor, backend: Backend, op: str, args: dict, lead_id: str | None, call: Callable[[], Lead]
    ) -> Lead:
        """Make the write once, even when this request's work runs again after a crash (services/rerun.py)."""
        scope = rerun.CURRENT.get()
        if scope is None or self.writes is None:
            return self._send_now(actor, backend, op, args, lead_id, call)
        key = scope.next_key()
        earlier = self.writes.get(key)
        if earlier is not None:
            return self._as_before(actor, backend, earlier, lead_id)
        record = RequestWrite(key=key, backend=backend.name, op=op, args=args, state="sent", at=self.clock())
        if not backend.capabilities.queues_writes:
            with self.atomic():  # the local store: the write and its record, or neither
                lead = call()
                self.writes.record(replace(record, state="landed", ref=lead.ref))
            return lead
        self.writes.record(record)
        try:
            lead = self._send_now(actor, backend, op, args, lead_id, call)
        except Queued as exc:
            self.writes.record(replace(record, state="queued", queued_key=exc.write_key))
            raise
        except LeadError:
            self.writes.forget(key)  # refused, or never left: a re-run makes it again and is told the same
            raise
        self.writes.record(replace(record, state="landed", ref=lead.ref))
        return lead

    def _as_before(self, actor: Actor, backend: Backend, earlier: RequestWrite, lead_id: str | None) -> Lead:
        """A write an earlier run of this request made: its lead, its queued state, or the outbox's to find."""
        if earlier.state == "landed" and earlier.ref:
            return backend.get(earlier.ref.split(":", 1)[1])
        ref = f"{backend.name}:{lead_id}" if lead_id else None
        if earlier.state == "queued":
            raise self._queued(earlier.queued_key or "", "it could not be saved at once", earlier.op, ref)
        # Sent by a run that died before it heard back: the outbox looks for it (same receipt) before resending.
        queued = self.outbox.add(
            backend=backend.name,
            op=earlier.op,
            args=earlier.args,
            ref=ref,
            slack_user=actor.slack_user,
            origin=_origin(),
            now=self.clock(),
            maybe_applied=True,
        )
        self.writes.record(replace(earlier, state="queued", queued_key=queued.key))
        raise self._queued(queued.key, "Leadbot restarted while saving it", earlier.op, ref)

    @staticmethod
    def _queued(write_key: str, why: str, op: str, ref: str | None) -> Queued:
        on = " on {ref}" if ref else ""
        return Queued(
            "{why}, so your {what}" + on + " is queued: Leadbot will keep trying"
            " and tell you when it lands (or if it cannot)",
            write_key=write_key,
            why=why,
            what=what(op),
            ref=Code(ref or ""),
        )

    def _send_now(
        self, actor: Actor, backend: Backend, op: str, args: dict, lead_id: str | None, call: Callable[[], Lead]
    ) -> Lead:
        """Make the write; if the backend is unreachable and can queue, queue it and say so."""
        try:
            return call()
        except Unreachable as exc:
            if not backend.capabilities.queues_writes:
                raise
            ref = f"{backend.name}:{lead_id}" if lead_id else None
            queued = self.outbox.add(
                backend=backend.name,
                op=op,
                args=args,
                ref=ref,
                slack_user=actor.slack_user,
                origin=_origin(),
                now=self.clock(),
                retry_after=exc.retry_after,
                maybe_applied=exc.maybe_applied,
            )
            raise self._queued(queued.key, exc.message, op, ref) from None

    def replay(self, item: QueuedWrite) -> Lead | None:
        """Try a queued write again: unless the backend shows it landed already, send it once more.

        Returns the lead once the write is there; None when it is not seen yet and its
        last try may still land (``Outbox.may_resend``), so it is not sent again yet.
        Raises ``Unreachable`` (try later; ``checking`` when the look itself failed) or
        another ``LeadError`` (give up, and say why).
        """
        backend = self.backends.get(item.backend)
        actor = Actor(slack_user=item.slack_user)
        try:
            landed = backend.applied(item.op, item.args)
        except Unreachable as exc:
            exc.checking = True
            raise
        if landed is None and item.unknown_since is not None and not backend.capabilities.verifiable:
            raise MayHaveLanded(
                "{backend} cannot be asked whether it got the write, and its last try may have reached it;"
                " check there before writing it again",
                backend=backend.title,
            )
        if landed is None and not self.outbox.may_resend(item, self.clock()):
            return None
        with self.audit.action(actor, f"retry {item.op}", item.ref, f"try {item.attempts + 1}") as audit:
            if landed is None:
                landed = self._call(backend, item.op, item.args)
            audit["ref"] = landed.ref
        return landed

    def settled(self, item: QueuedWrite, lead: Lead | None, why: str | None, *, uncertain: bool = False) -> None:
        """Tell the listeners how a queued write ended (it landed as ``lead``, or ``why`` it never will).

        ``uncertain``: Leadbot gave up, but the write may have landed; nobody can tell which.
        """
        if lead is not None:
            event = _landed_event(item, lead, self.backends.get(item.backend))
            if event is not None:
                self._publish(event)
        title = self.backends.get(item.backend).title if item.backend in self.backends else item.backend
        self._publish(WriteSettled(write=item, lead=lead, why=why, backend_title=title, uncertain=uncertain))

    @staticmethod
    def _call(backend: Backend, op: str, args: dict) -> Lead:
        if op == "create":
            return backend.create(NewLead.model_validate(args["lead"]), by=args["by"])
        if op == "assign":
            return backend.assign(args["lead_id"], args["owner"], by=args["by"], receipt=args.get("receipt"))
        if op == "log_follow_up":
            return backend.log_follow_up(args["lead_id"], FollowUp.model_validate(args["follow_up"]))
        if op == "add_note":
            return backend.add_note(args["lead_id"], Note.model_validate(args["note"]))
        if op == "change_status":
            return backend.change_status(args["lead_id"], StatusChange.model_validate(args["change"]))
        if op == "reschedule":
            when = datetime.fromisoformat(args["when"])
            return backend.reschedule(args["lead_id"], when, by=args["by"], receipt=args.get("receipt"))
        if op == "add_deal":
            return backend.add_deal(args["lead_id"], Deal.model_validate(args["deal"]))
        if op == "set_department":
            return backend.set_department(
                args["lead_id"], args["department"], by=args["by"], receipt=args.get("receipt")
            )
        if op == "edit":
            return backend.edit(args["lead_id"], LeadEdit.model_validate(args["edit"]))
        raise ValueError(f"unknown queued operation {op!r}")

    # -- helpers ------------------------------------------------------------------------------

    def _check_sub_status(self, backend: Backend, sub_status: str | None) -> None:
        if sub_status and backend.capabilities.status_model != StatusModel.WITH_REASONS:
            raise Unsupported("{backend} has no sub-statuses", field="sub_status", backend=backend.title)

    def _publish(self, event: object) -> None:
        self.events.publish(event)


def _origin() -> dict[str, Any]:
    return dict(ORIGIN.get() or {})


def _landed_event(item: QueuedWrite, lead: Lead, backend: Backend) -> LeadEvent | None:
    """The event a queued write would have published had it landed at once."""
    common: dict[str, Any] = {"lead": lead, "by_user": item.slack_user, "origin": item.origin, "settled": item}
    args = item.args
    if item.op == "create":
        return LeadCreated(**common)
    if item.op == "assign":
        return LeadAssigned(**common, previous_owner=args.get("previous_owner"))
    if item.op == "log_follow_up":
        next_at = (args.get("follow_up") or {}).get("next_follow_up")
        return FollowUpLogged(**common, next_follow_up=datetime.fromisoformat(next_at) if next_at else None)
    if item.op == "add_note":
        return NoteAdded(**common)
    if item.op == "change_status":
        change = args.get("change") or {}
        try:
            label = backend.status_option(change.get("status", "")).label
        except LeadError:  # a backend that cannot list its statuses now: its value will do
            label = str(change.get("status"))
        return StatusChanged(**common, status_label=label, sub_status=change.get("sub_status"))
    if item.op == "reschedule":
        return FollowUpMoved(**common, to=datetime.fromisoformat(args["when"]))
    if item.op == "add_deal":
        return DealAdded(**common, deal=Deal.model_validate(args["deal"]))
    if item.op == "set_department":
        return DepartmentSet(**common, department=args["department"])
    if item.op == "edit":
        changed = LeadEdit.model_validate(args["edit"]).changes()
        return LeadEdited(**common, fields=tuple(w for w, f in EDITABLE_FIELDS.items() if f in changed))
    return None
