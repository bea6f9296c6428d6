"""LeadService: the one entry point handlers call.

It routes each call to the backend a lead reference names, maps Slack users
to the staff IDs that backend knows, enforces who may do what, and writes the
audit trail. It knows nothing about Slack beyond user IDs being strings.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from bot.store import Store, to_db_time, utcnow
from services.backends.base import Backend
from services.errors import BackendGone, LeadError, NoChange, NotAllowed, NotFound, Queued, Unreachable, Unsupported
from services.models import (
    Activity,
    FollowUp,
    Lead,
    LeadPage,
    LeadQuery,
    Model,
    NewLead,
    Note,
    StaffLink,
    StatusChange,
    StatusModel,
)
from services.outbox import WHAT, Outbox, QueuedWrite

KNOWN_BACKENDS = ("local", "capillary", "leadsapi", "leadsquared", "getlead")
REF_RE = re.compile(r"^(?:(?P<backend>[A-Za-z]+):)?(?P<id>[A-Za-z0-9+_.\-]{1,64})$")
# In running text a reference must name its backend, and a trailing full stop is punctuation.
REF_IN_TEXT_RE = re.compile(
    rf"(?<![\w/:.@-])(?P<backend>{'|'.join(KNOWN_BACKENDS)}):(?P<id>[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)(?![\w@])",
    re.I,
)
REF_USAGE = "a lead reference is `BACKEND:ID` (e.g. `local:7`) or a bare `ID`"


# The keys claimed by the request being worked on (None outside one).
_CLAIMS: ContextVar[list[str] | None] = ContextVar("leadbot_claims", default=None)


class Actor(Model):
    slack_user: str
    is_admin: bool = False


class LeadService:
    def __init__(
        self,
        store: Store,
        backends: dict[str, Backend],
        *,
        default_backend: str = "local",
        channel_backends: dict[str, str] | None = None,
        self_link: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if default_backend not in backends:
            raise ValueError(f"default backend {default_backend!r} is not configured")
        self.store = store
        self.backends = backends
        self.default_backend = default_backend
        self.channel_backends = channel_backends or {}
        self.self_link = self_link
        self.clock = clock
        self.outbox = Outbox(store)

    # -- routing ------------------------------------------------------------

    def backend(self, name: str) -> Backend:
        key = name.strip().lower()
        if key in self.backends:
            return self.backends[key]
        configured = ", ".join(self.backends)
        if key in KNOWN_BACKENDS:
            raise BackendGone(f"the `{key}` backend is not configured here (configured: {configured})")
        raise NotFound(f"there is no backend called `{name}` (configured: {configured})")

    def backend_for_channel(self, channel: str | None) -> Backend:
        return self.backend(self.channel_backends.get(channel or "", self.default_backend))

    def resolve(self, ref: str, channel: str | None = None) -> tuple[Backend, str]:
        match = REF_RE.match(ref.strip())
        if not match:
            raise NotFound(f"`{ref}` is not a lead reference: {REF_USAGE}")
        name = match["backend"]
        backend = self.backend(name) if name else self.backend_for_channel(channel)
        return backend, match["id"]

    def claim(self, key: str) -> bool:
        """Handle ``key`` once. Inside ``claims_until_done()``, the claim is released only when the work ends."""
        pending = _CLAIMS.get()
        if not self.store.claim_request(key, until_done=pending is not None):
            return False
        if pending is not None:
            pending.append(key)
        return True

    @contextmanager
    def claims_until_done(self) -> Iterator[None]:
        """Run a request's work: its claims count as finished only once the work is over (or failed)."""
        token = _CLAIMS.set([])
        try:
            yield
        finally:
            keys = _CLAIMS.get()
            _CLAIMS.reset(token)
            if keys:
                self.store.finish_requests(keys)

    def references_in(self, text: str, limit: int = 3) -> list[str]:
        """Full lead references (``capillary:19``) to configured backends in free text, first ``limit``, once each."""
        found: list[str] = []
        for match in REF_IN_TEXT_RE.finditer(text):
            ref = f"{match['backend'].lower()}:{match['id']}"
            if match["backend"].lower() in self.backends and ref not in found:
                found.append(ref)
                if len(found) == limit:
                    break
        return found

    # -- reading ------------------------------------------------------------

    def get(self, ref: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.resolve(ref, channel)
        return backend.get(lead_id)

    def activity(self, lead: Lead, limit: int = 3) -> list[Activity]:
        return self.backend(lead.backend).activity(lead.id, limit)

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
        target = self.backend(backend) if backend else self.backend_for_channel(channel)
        owner = None
        if owner_user:
            owner = self.staff_id(owner_user, target.name)
            if owner is None:
                return LeadPage(leads=[], total=0, offset=offset)
        if status:
            target.status_option(status)
        if sub_status and target.capabilities.status_model != StatusModel.WITH_REASONS:
            raise Unsupported(f"{target.title} has no sub-statuses: leave out `sub=`")
        query = LeadQuery(
            owner=owner,
            status=status,
            sub_status=sub_status,
            due_before=due_before or (self.clock() if due else None),
            offset=offset,
            limit=limit,
        )
        return target.search(query)

    # -- writing ------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        lead: NewLead,
        *,
        owner_user: str | None = None,
        backend: str | None = None,
        channel: str | None = None,
    ) -> Lead:
        target = self.backend(backend) if backend else self.backend_for_channel(channel)
        with self._audited(actor, "create", None) as audit:
            by = self._require_link(actor, target)
            owner = self._staff_for_assignee(owner_user, target) if owner_user else by
            if lead.status:
                target.status_option(lead.status)
            if lead.sub_status and target.capabilities.status_model != StatusModel.WITH_REASONS:
                raise Unsupported(f"{target.title} has no sub-statuses: leave out `sub=`")
            if lead.customer and not target.capabilities.customer_ids:
                raise Unsupported(f"{target.title} does not take a customer id: give an email or phone instead")
            if not (lead.email or lead.phone or lead.customer):
                raise LeadError("give the lead's email or phone")
            wanted = lead.model_copy(update={"owner": owner})
            args = {"lead": wanted.model_dump(mode="json"), "by": by}
            created = self._send(actor, target, "create", args, None, lambda: target.create(wanted, by=by))
            audit["ref"] = created.ref
            return created

    def assign(self, actor: Actor, ref: str, assignee: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.resolve(ref, channel)
        with self._audited(actor, "assign", f"{backend.name}:{lead_id}", f"to {assignee}"):
            by = self._require_link(actor, backend)
            owner = self._staff_for_assignee(assignee, backend)
            if self._current(backend, lead_id, "owner") == owner:
                raise NoChange(f"nothing changed: `{backend.name}:{lead_id}` is already assigned to <@{assignee}>")
            args = {"lead_id": lead_id, "owner": owner, "by": by}
            return self._send(actor, backend, "assign", args, lead_id, lambda: backend.assign(lead_id, owner, by=by))

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
        backend, lead_id = self.resolve(ref, channel)
        with self._audited(actor, "follow_up", f"{backend.name}:{lead_id}"):
            by = self._require_link(actor, backend)
            follow_up = FollowUp(
                done_at=done_at or self.clock(),
                notes=notes or None,
                next_follow_up=next_follow_up,
                by=by,
            )
            args = {"lead_id": lead_id, "follow_up": follow_up.model_dump(mode="json")}
            return self._send(
                actor, backend, "log_follow_up", args, lead_id, lambda: backend.log_follow_up(lead_id, follow_up)
            )

    def add_note(self, actor: Actor, ref: str, text: str, channel: str | None = None) -> Lead:
        backend, lead_id = self.resolve(ref, channel)
        with self._audited(actor, "note", f"{backend.name}:{lead_id}"):
            by = self._require_link(actor, backend)
            note = Note(text=text, by=by, at=self.clock())
            args = {"lead_id": lead_id, "note": note.model_dump(mode="json")}
            return self._send(actor, backend, "add_note", args, lead_id, lambda: backend.add_note(lead_id, note))

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
        backend, lead_id = self.resolve(ref, channel)
        with self._audited(actor, "status", f"{backend.name}:{lead_id}", status):
            by = self._require_link(actor, backend)
            wanted = backend.status_option(status)
            if reason is None and sub_status is None and self._current(backend, lead_id, "status") == wanted.value:
                raise NoChange(f"nothing changed: `{backend.name}:{lead_id}` is already {wanted.label}")
            change = StatusChange(status=status, reason=reason, sub_status=sub_status, by=by, at=self.clock())
            args = {"lead_id": lead_id, "change": change.model_dump(mode="json")}
            return self._send(
                actor, backend, "change_status", args, lead_id, lambda: backend.change_status(lead_id, change)
            )

    def reschedule(self, actor: Actor, ref: str, when: datetime, channel: str | None = None) -> Lead:
        """Move the next follow-up (Snooze) without logging one."""
        backend, lead_id = self.resolve(ref, channel)
        with self._audited(actor, "snooze", f"{backend.name}:{lead_id}", when.isoformat()):
            by = self._require_link(actor, backend)
            args = {"lead_id": lead_id, "when": when.isoformat(), "by": by}
            return self._send(
                actor, backend, "reschedule", args, lead_id, lambda: backend.reschedule(lead_id, when, by=by)
            )

    # -- writes a backend could not take at once --------------------------------

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
        """Make the write; if the backend is unreachable and can queue, queue it and say so."""
        try:
            return call()
        except Unreachable as exc:
            if not backend.capabilities.queues_writes:
                raise
            ref = f"{backend.name}:{lead_id}" if lead_id else None
            self.outbox.add(
                backend=backend.name,
                op=op,
                args=args,
                ref=ref,
                slack_user=actor.slack_user,
                now=self.clock(),
                retry_after=exc.retry_after,
            )
            on = f" on `{ref}`" if ref else ""
            raise Queued(
                f"{exc.message}, so your {WHAT[op]}{on} is queued: Leadbot will keep trying"
                " and tell you when it lands (or if it cannot)"
            ) from None

    def replay(self, item: QueuedWrite) -> Lead:
        """Try a queued write again: unless the backend shows it landed already, send it once more.

        Raises ``Unreachable`` (try later) or another ``LeadError`` (give up, and say why).
        """
        backend = self.backend(item.backend)
        actor = Actor(slack_user=item.slack_user)
        with self._audited(actor, f"retry {item.op}", item.ref, f"try {item.attempts + 1}") as audit:
            landed = backend.applied(item.op, item.args)
            if landed is None:
                landed = self._call(backend, item.op, item.args)
            audit["ref"] = landed.ref
            return landed

    @staticmethod
    def _call(backend: Backend, op: str, args: dict) -> Lead:
        if op == "create":
            return backend.create(NewLead.model_validate(args["lead"]), by=args["by"])
        if op == "assign":
            return backend.assign(args["lead_id"], args["owner"], by=args["by"])
        if op == "log_follow_up":
            return backend.log_follow_up(args["lead_id"], FollowUp.model_validate(args["follow_up"]))
        if op == "add_note":
            return backend.add_note(args["lead_id"], Note.model_validate(args["note"]))
        if op == "change_status":
            return backend.change_status(args["lead_id"], StatusChange.model_validate(args["change"]))
        if op == "reschedule":
            return backend.reschedule(args["lead_id"], datetime.fromisoformat(args["when"]), by=args["by"])
        raise ValueError(f"unknown queued operation {op!r}")

    # -- people's settings ----------------------------------------------------

    def assignment_dms(self, slack_user: str) -> bool:
        """Whether ``slack_user`` is told when someone else assigns them a lead (on unless turned off)."""
        return bool(self.store.user_setting(slack_user, "assignment_dms", 1))

    def has_home(self, slack_user: str) -> bool:
        """Whether ``slack_user`` has opened Leadbot's App Home (only then is it redrawn after changes)."""
        return bool(self.store.user_setting(slack_user, "home_opened", 0))

    def mark_home_opened(self, slack_user: str) -> None:
        if not self.has_home(slack_user):
            self.store.set_user_setting(slack_user, "home_opened", 1)

    def set_assignment_dms(self, actor: Actor, on: bool) -> None:
        with self._audited(actor, "notify", None, "on" if on else "off"):
            self.store.set_user_setting(actor.slack_user, "assignment_dms", int(on))

    def previews_on(self, channel: str) -> bool:
        """Whether messages naming a lead in ``channel`` get a preview (off unless an admin turned it on)."""
        return bool(self.store.channel_setting(channel, "previews", 0))

    def set_previews(self, actor: Actor, channel: str, on: bool) -> None:
        with self._audited(actor, "previews", None, f"{'on' if on else 'off'} in {channel}"):
            if not actor.is_admin:
                raise NotAllowed("only Leadbot admins can turn lead previews on or off")
            self.store.set_channel_setting(channel, "previews", int(on))

    # -- staff links --------------------------------------------------------

    def staff_id(self, slack_user: str, backend: str) -> str | None:
        rows = self.store.db["staff_links"].rows_where("slack_user = ? and backend = ?", [slack_user, backend])
        return next((r["staff_id"] for r in rows), None)

    def slack_user_for(self, backend: str, staff_id: str) -> str | None:
        rows = self.store.db["staff_links"].rows_where("backend = ? and staff_id = ?", [backend, staff_id])
        return next((r["slack_user"] for r in rows), None)

    def links(self, slack_user: str) -> list[StaffLink]:
        rows = self.store.db["staff_links"].rows_where("slack_user = ?", [slack_user], order_by="backend")
        return [StaffLink(slack_user=r["slack_user"], backend=r["backend"], staff_id=r["staff_id"]) for r in rows]

    def link(self, actor: Actor, slack_user: str, staff_id: str, backend: str | None = None) -> StaffLink:
        target = self.backend(backend) if backend else self.backend(self.default_backend)
        with self._audited(actor, "link", None, f"{slack_user} → {target.name}:{staff_id}"):
            self._require_may_link(actor, slack_user)
            holder = self.slack_user_for(target.name, staff_id)
            if holder and holder != slack_user:
                raise LeadError(
                    f"staff ID `{staff_id}` in {target.name} is already linked to <@{holder}>; unlink them first"
                )
            try:
                with self.store.transaction() as db:
                    db["staff_links"].upsert(
                        {
                            "slack_user": slack_user,
                            "backend": target.name,
                            "staff_id": staff_id,
                            "linked_by": actor.slack_user,
                            "linked_at": to_db_time(self.clock()),
                        },
                        pk=("slack_user", "backend"),
                    )
            except sqlite3.IntegrityError:
                raise LeadError(f"staff ID `{staff_id}` in {target.name} was just linked to someone else") from None
            return StaffLink(slack_user=slack_user, backend=target.name, staff_id=staff_id)

    def unlink(self, actor: Actor, slack_user: str, backend: str | None = None) -> StaffLink:
        target = self.backend(backend) if backend else self.backend(self.default_backend)
        with self._audited(actor, "unlink", None, f"{slack_user} from {target.name}"):
            self._require_may_link(actor, slack_user, unlinking=True)
            staff_id = self.staff_id(slack_user, target.name)
            if staff_id is None:
                raise NotFound(f"<@{slack_user}> is not linked in {target.name}")
            with self.store.transaction() as db:
                db["staff_links"].delete((slack_user, target.name))
            return StaffLink(slack_user=slack_user, backend=target.name, staff_id=staff_id)

    # -- rules --------------------------------------------------------------

    def _require_link(self, actor: Actor, backend: Backend) -> str:
        staff_id = self.staff_id(actor.slack_user, backend.name)
        if staff_id is None:
            raise NotAllowed(
                f"you are not linked to a staff ID in {backend.name}, so you can't change its leads."
                f" Ask an admin to run `/lead link @you STAFF_ID backend={backend.name}`"
            )
        return staff_id

    def _staff_for_assignee(self, slack_user: str, backend: Backend) -> str:
        staff_id = self.staff_id(slack_user, backend.name)
        if staff_id is None:
            raise NotAllowed(
                f"<@{slack_user}> is not linked to a staff ID in {backend.name}."
                f" An admin can link them: `/lead link @them STAFF_ID backend={backend.name}`"
            )
        return staff_id

    def _require_may_link(self, actor: Actor, slack_user: str, *, unlinking: bool = False) -> None:
        if actor.is_admin:
            return
        if slack_user == actor.slack_user and (self.self_link or unlinking):
            return
        if slack_user == actor.slack_user:
            raise NotAllowed("only Leadbot admins can link staff IDs here; ask one to link you")
        raise NotAllowed("only Leadbot admins can link or unlink other people")

    @contextmanager
    def _audited(self, actor: Actor, action: str, ref: str | None, detail: str = "") -> Iterator[dict]:
        record: dict = {"ref": ref}
        try:
            yield record
        except Queued as exc:
            self.store.audit(
                slack_user=actor.slack_user,
                action=action,
                lead_ref=record["ref"],
                result="queued",
                detail=exc.message,
            )
            raise
        except LeadError as exc:
            self.store.audit(
                slack_user=actor.slack_user,
                action=action,
                lead_ref=record["ref"],
                result="refused",
                detail=exc.message,
            )
            raise
        except Exception as exc:
            self.store.audit(
                slack_user=actor.slack_user,
                action=action,
                lead_ref=record["ref"],
                result="error",
                detail=type(exc).__name__,
            )
            raise
        self.store.audit(slack_user=actor.slack_user, action=action, lead_ref=record["ref"], result="ok", detail=detail)
