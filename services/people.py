"""People: which staff ID each Slack user is on each backend, who may link whom, and their own settings."""

from __future__ import annotations

from contextlib import suppress

from services.audit import Actor, Audit
from services.backends.base import Backend
from services.clock import Clock, utcnow
from services.errors import (
    Code,
    Invalid,
    LeadError,
    NotAllowed,
    NotFound,
    NotLinked,
    OwnedElsewhere,
    Person,
    Unreachable,
)
from services.models import Lead, LeadQuery, StaffLink
from services.ports import Conflict, Preferences, StaffLinks
from services.routing import Backends

MAX_STAFF_ID = 100


def check_staff_id(staff_id: str) -> None:
    """A staff ID is one word a backend could know someone by: no blanks, markup, mentions or control characters."""
    if not staff_id or not staff_id.strip():
        raise Invalid("give the staff ID (how the backend knows them, e.g. an email or user name)", field="staff_id")
    if len(staff_id) > MAX_STAFF_ID:
        raise Invalid("a staff ID is at most {most} characters", field="staff_id", most=MAX_STAFF_ID)
    if any(ch.isspace() or not ch.isprintable() for ch in staff_id):
        raise Invalid("a staff ID is one word, without spaces or control characters", field="staff_id")
    if any(ch in "<>@" for ch in staff_id[:1]) or "<" in staff_id or ">" in staff_id:
        raise Invalid(
            "{value} looks like a Slack mention, not a staff ID: give how the backend knows them",
            field="staff_id",
            value=Code(staff_id[:40]),
        )


class People:
    def __init__(
        self,
        links: StaffLinks,
        prefs: Preferences,
        backends: Backends,
        audit: Audit,
        *,
        self_link: bool = False,
        ownership: str = "owner",
        clock: Clock = utcnow,
    ) -> None:
        self.store_links = links
        self.prefs = prefs
        self.backends = backends
        self.audit = audit
        self.self_link = self_link
        self.ownership = ownership  # "owner": owners and admins reassign and close; "open": anyone linked
        self.clock = clock

    # -- reading ------------------------------------------------------------------------------

    def staff_id(self, slack_user: str, backend: str) -> str | None:
        return self.store_links.staff_id(slack_user, backend)

    def slack_user_for(self, backend: str, staff_id: str) -> str | None:
        return self.store_links.holder(backend, staff_id)

    def links(self, slack_user: str) -> list[StaffLink]:
        return self.store_links.of_user(slack_user)

    def linked_users(self) -> list[str]:
        return self.store_links.users()

    # -- linking ------------------------------------------------------------------------------

    def link(
        self, actor: Actor, slack_user: str, staff_id: str, backend: str | None = None, *, replace: bool = False
    ) -> StaffLink:
        """Link ``slack_user`` as ``staff_id``; a link they have on the backend already is replaced only if
        ``replace`` (``Invalid`` otherwise, naming it and the open leads it holds)."""
        target = self.backends.get(backend) if backend else self.backends.get(self.backends.default)
        with self.audit.action(actor, "link", None, f"{slack_user} → {target.name}:{staff_id[:120]}"):
            self._require_may_link(actor, slack_user)
            check_staff_id(staff_id)
            with suppress(Unreachable):  # the backend cannot say right now: linked as asked
                target.check_staff_id(staff_id)
            before = self.staff_id(slack_user, target.name)
            if before is not None and before != staff_id and not replace:
                raise Invalid(
                    "{who} is linked as {before} in {backend} already ({held}); to replace that link say so: {how}",
                    who=Person(slack_user),
                    before=Code(before),
                    backend=target.name,
                    held=self.held_by(target, before),
                    how=Code(f"/lead link @… {staff_id} replace=yes"),
                )
            holder = self.slack_user_for(target.name, staff_id)
            earlier = [u for u in self.store_links.held_by(target.name, staff_id) if u != slack_user]
            if not actor.is_admin and not holder and earlier:
                # Whoever held it may have left and had their link taken away: their leads are not
                # for anyone who links themselves to it.
                raise NotAllowed(
                    "staff ID {staff} in {backend} was linked to someone else before; ask a Leadbot admin to link you",
                    staff=Code(staff_id),
                    backend=target.name,
                )
            if holder and holder != slack_user:
                raise LeadError(
                    "staff ID {staff} in {backend} is already linked to {holder}; unlink them first",
                    staff=Code(staff_id),
                    backend=target.name,
                    holder=Person(holder),
                )
            link = StaffLink(slack_user=slack_user, backend=target.name, staff_id=staff_id)
            try:
                self.store_links.put(link, by=actor.slack_user, at=self.clock())
            except Conflict:
                raise LeadError(
                    "staff ID {staff} in {backend} was just linked to someone else",
                    staff=Code(staff_id),
                    backend=target.name,
                ) from None
            return link

    def held_by(self, backend: Backend, staff_id: str) -> str:
        """How many open leads ``staff_id`` owns on ``backend``, in words ("2 open leads", "open leads unknown")."""
        try:
            page = backend.search(LeadQuery(owner=staff_id, limit=1))
        except LeadError:
            return f"{backend.title} cannot say how many open leads that ID holds right now"
        count = f"{page.total}+" if page.more else str(page.total)
        return f"{count} open lead{'' if page.total == 1 and not page.more else 's'} under it"

    def open_leads(self, backend: Backend, staff_id: str, limit: int = 100) -> list[Lead]:
        """Open leads ``staff_id`` owns on ``backend`` (the first ``limit``)."""
        return backend.search(LeadQuery(owner=staff_id, limit=limit)).leads

    def unlink(self, actor: Actor, slack_user: str, backend: str | None = None) -> StaffLink:
        target = self.backends.get(backend) if backend else self.backends.get(self.backends.default)
        with self.audit.action(actor, "unlink", None, f"{slack_user} from {target.name}"):
            self._require_may_link(actor, slack_user, unlinking=True)
            staff_id = self.staff_id(slack_user, target.name)
            if staff_id is None:
                raise NotFound("{who} is not linked in {backend}", who=Person(slack_user), backend=target.name)
            self.store_links.delete(slack_user, target.name)
            return StaffLink(slack_user=slack_user, backend=target.name, staff_id=staff_id)

    # -- rules --------------------------------------------------------------------------------

    def require_link(self, actor: Actor, backend: Backend) -> str:
        """The acting user's staff ID on ``backend``; only linked people change its leads."""
        staff_id = self.staff_id(actor.slack_user, backend.name)
        if staff_id is None:
            raise NotLinked(actor.slack_user, backend.name, acting=True)
        return staff_id

    def require_may_reassign(
        self, actor: Actor, backend: Backend, owner: str | None, assignee_staff: str, ref: str = ""
    ) -> None:
        """The ownership rule for giving a lead to someone (``owner``: its staff ID now, None: unassigned).

        Its owner and admins may give it to anyone; anyone linked may take an unassigned lead
        for themselves, and ask the owner for one that is not (``OwnedElsewhere``).
        With ``LEADBOT_OWNERSHIP=open`` anyone linked may do either.
        """
        if self.ownership == "open" or actor.is_admin or owner is None and self._is(actor, backend, assignee_staff):
            return
        if owner is not None and self._is(actor, backend, owner):
            return
        if owner is None:
            raise NotAllowed(
                "only admins can give an unassigned lead to someone else; take it yourself ({how})",
                how=Code("/lead assign REF me"),
            )
        holder = self.slack_user_for(backend.name, owner)
        taking = self._is(actor, backend, assignee_staff)
        raise OwnedElsewhere(
            "this is {who}'s lead: only they or a Leadbot admin can reassign it; ask them",
            ref=ref,
            owner=holder if taking and holder != actor.slack_user else None,
            who=self._owner_shown(backend, owner),
        )

    def require_may_close(self, actor: Actor, backend: Backend, owner: str | None) -> None:
        """Closing (won, lost) is for the lead's owner and admins; an unassigned lead anyone linked may close."""
        if self.ownership == "open" or actor.is_admin or owner is None or self._is(actor, backend, owner):
            return
        raise NotAllowed(
            "this is {who}'s lead: only they or a Leadbot admin can close it", who=self._owner_shown(backend, owner)
        )

    def _is(self, actor: Actor, backend: Backend, staff: str) -> bool:
        return self.staff_id(actor.slack_user, backend.name) == staff

    def _owner_shown(self, backend: Backend, owner: str) -> Person | Code:
        holder = self.slack_user_for(backend.name, owner)
        return Person(holder) if holder else Code(owner)

    def staff_for(self, slack_user: str, backend: Backend) -> str:
        """The staff ID of someone a lead is being given to."""
        staff_id = self.staff_id(slack_user, backend.name)
        if staff_id is None:
            raise NotLinked(slack_user, backend.name, acting=False)
        return staff_id

    def require_may_link(self, actor: Actor, slack_user: str, *, unlinking: bool = False) -> None:
        """Admins link anyone; others themselves, where self-linking is on (unlinking oneself always)."""
        self._require_may_link(actor, slack_user, unlinking=unlinking)

    def _require_may_link(self, actor: Actor, slack_user: str, *, unlinking: bool = False) -> None:
        if actor.is_admin:
            return
        if slack_user == actor.slack_user and (self.self_link or unlinking):
            return
        if slack_user == actor.slack_user:
            raise NotAllowed("only Leadbot admins can link staff IDs here; ask one to link you")
        raise NotAllowed("only Leadbot admins can link or unlink other people")

    # -- their own settings -------------------------------------------------------------------

    def assignment_dms(self, slack_user: str) -> bool:
        """Whether ``slack_user`` is told when someone else assigns them a lead (on unless turned off)."""
        return self.prefs.user(slack_user).assignment_dms

    def set_assignment_dms(self, actor: Actor, on: bool) -> None:
        with self.audit.action(actor, "notify", None, "on" if on else "off"):
            self.prefs.set_user(actor.slack_user, assignment_dms=on)
