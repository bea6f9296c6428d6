"""`/lead backends`: each configured backend, what it can do, and whether it answers now."""

from __future__ import annotations

from handlers.context import Reply
from handlers.invocation import Invocation, need_args
from handlers.render import escape
from services.models import StatusModel

USAGE = "/lead backends"
CAN = ("read", "search", "create", "assign", "follow_up", "note", "status", "deals", "departments", "opportunities")


def cmd_backends(inv: Invocation) -> Reply:
    need_args(inv, USAGE, 0, 0)
    backends = inv.service.backends
    lines = []
    for backend in backends:
        caps = backend.capabilities
        can = [name for name in CAN if getattr(caps, name)]
        default = " (default)" if backend.name == backends.default else ""
        statuses = ", ".join(escape(s.value) for s in backend.statuses())
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
        if caps.queues_writes:
            down = backend.reachable()
            line += f"\n  {':red_circle: unreachable: ' + escape(down) if down else ':large_green_circle: reachable'}"
            waiting = len(inv.service.outbox.pending(backend.name))
            if waiting:
                line += f" · {waiting} write(s) queued, retrying"
        lines.append(line)
    routed = backends.channels.get(inv.channel or "")
    if routed:
        lines.append(f"This channel uses *{routed}*.")
    return Reply(text="\n".join(lines))
