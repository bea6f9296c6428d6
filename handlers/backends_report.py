"""`/lead backends`: each configured backend, what it can do, and whether it answers now."""

from __future__ import annotations

from handlers.context import Reply
from handlers.invocation import Invocation, need_args
from handlers.render import escape
from services.backends.base import Backend
from services.errors import LeadError, Rejected
from services.models import StatusModel

USAGE = "/lead backends"


def _reachability(backend: Backend) -> str:
    """Reachable, unreachable (and why), or refusing Leadbot's credentials."""
    try:
        down = backend.reachable()
    except Rejected as exc:
        return f":no_entry: refusing Leadbot's credentials: {escape(exc.message[:200])}"
    except LeadError as exc:
        down = exc.message
    if down is None:
        return ":large_green_circle: reachable"
    if any(word in down.lower() for word in ("refused", "denied", "401", "403", "credential", "token")):
        return f":no_entry: refusing Leadbot's credentials: {escape(down[:200])}"
    return f":red_circle: unreachable: {escape(down[:200])}"


CAN = ("read", "search", "create", "assign", "follow_up", "note", "status", "deals", "departments", "opportunities")


def cmd_backends(inv: Invocation) -> Reply:
    need_args(inv, USAGE, 0, 0)
    backends = inv.service.backends
    lines = []
    for backend in backends:
        caps = backend.capabilities
        can = [name for name in CAN if getattr(caps, name)]
        default = " (default)" if backend.name == backends.default else ""
        try:
            statuses = ", ".join(escape(s.value) for s in backend.statuses())
        except LeadError as exc:  # the moment /lead backends is needed most: it still answers
            statuses = f"_not read just now: {escape(exc.message[:200])}_"
        line = (
            f"*{backend.name}*{default} — {backend.title}\n"
            f"  can: {', '.join(can).replace('_', '-')} · statuses ({caps.status_model.value}): {statuses}"
        )
        if caps.status_model == StatusModel.WITH_REASONS:
            line += "\n  a status change needs `reason=ID` (the Status button asks for it)"
        if caps.notes_how:
            line += f"\n  notes: {caps.notes_how}"
        if caps.snooze_how:
            line += f"\n  snoozes: {caps.snooze_how}"
        if caps.staff_ids:
            line += f"\n  staff IDs: {caps.staff_ids}"
        if caps.limits:
            line += f"\n  cannot: {escape(caps.limits)}"
        if caps.search_how:
            line += f"\n  find: {escape(caps.search_how)}"
        line += f"\n  edit: {', '.join(caps.editable) if caps.editable else 'no fields (its API cannot change them)'}"
        if caps.queues_writes:
            line += f"\n  {_reachability(backend)}"
            waiting = len(inv.service.outbox.pending(backend.name))
            if waiting:
                line += f" · {waiting} write(s) queued, retrying"
        lines.append(line)
    routed = backends.channels.get(inv.channel or "")
    if routed:
        lines.append(f"This channel uses *{routed}*.")
    return Reply(text="\n".join(lines))
