"""The `/lead` slash command: the subcommand table, help, and the listener.

The ack answers at once with what needs no I/O (help, an unknown
subcommand); everything else runs after the ack and replies through the
command's ``response_url``. Each subcommand lives with its kind:
``lead_commands`` (one lead), ``list_commands``, ``people_commands``,
``backends_report``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers import blocks
from handlers.backends_report import USAGE as BACKENDS_USAGE
from handlers.backends_report import cmd_backends
from handlers.context import BUSY, Deps, Reply, error_reply
from handlers.invocation import Invocation, Subcommand
from handlers.lead_commands import (
    ASSIGN_USAGE,
    DEAL_USAGE,
    DEPARTMENT_USAGE,
    EDIT_USAGE,
    FOLLOWUP_USAGE,
    NEW_USAGE,
    NOTE_USAGE,
    SHOW_USAGE,
    STATUS_USAGE,
    cmd_assign,
    cmd_deal,
    cmd_department,
    cmd_edit,
    cmd_followup,
    cmd_new,
    cmd_note,
    cmd_show,
    cmd_status,
)
from handlers.list_commands import FIND_USAGE, LIST_USAGE, cmd_find, cmd_list
from handlers.parsing import MAX_COMMAND_TEXT, tokenize, too_long
from handlers.people_commands import (
    LINK_USAGE,
    NOTIFY_USAGE,
    PREVIEWS_USAGE,
    REMIND_USAGE,
    UNLINK_USAGE,
    WHOAMI_USAGE,
    cmd_link,
    cmd_notify,
    cmd_previews,
    cmd_remind,
    cmd_unlink,
    cmd_whoami,
)
from handlers.render import escape
from services.errors import Invalid, LeadError

SUBCOMMANDS: dict[str, Subcommand] = MappingProxyType(
    {
        "help": Subcommand("/lead help", "this list", None),
        "new": Subcommand("/lead new", "open the New lead form", cmd_new, more=((NEW_USAGE, "quick create"),)),
        "show": Subcommand(SHOW_USAGE, "post the lead card", cmd_show),
        "edit": Subcommand(EDIT_USAGE, "change the lead's name, email, phone, company, source or type", cmd_edit),
        "list": Subcommand(LIST_USAGE, "leads on every backend you are linked on, 10 at a time", cmd_list),
        "find": Subcommand(FIND_USAGE, "leads by name, email, phone or company, best matches first", cmd_find),
        "assign": Subcommand(ASSIGN_USAGE, "give the lead an owner", cmd_assign),
        "followup": Subcommand(FOLLOWUP_USAGE, "log a follow-up done now, optionally schedule the next", cmd_followup),
        "note": Subcommand(NOTE_USAGE, "add a note", cmd_note),
        "status": Subcommand(STATUS_USAGE, "change the status", cmd_status),
        "link": Subcommand(LINK_USAGE, "link a Slack user to their staff ID (admins)", cmd_link),
        "unlink": Subcommand(UNLINK_USAGE, "remove a link", cmd_unlink),
        "whoami": Subcommand(WHOAMI_USAGE, "your links and settings", cmd_whoami),
        "backends": Subcommand(BACKENDS_USAGE, "configured backends and what each can do", cmd_backends),
        "remind": Subcommand(REMIND_USAGE, "your daily follow-up digest (on at 09:00 by default)", cmd_remind),
        "notify": Subcommand(NOTIFY_USAGE, "DMs when someone else assigns you a lead (on by default)", cmd_notify),
        "previews": Subcommand(PREVIEWS_USAGE, "preview leads named in this channel's messages (admins)", cmd_previews),
        "deal": Subcommand(DEAL_USAGE, "record a deal (Getlead)", cmd_deal),
        "department": Subcommand(DEPARTMENT_USAGE, "hand the lead to a department (Getlead)", cmd_department),
    }
)
ALIASES = MappingProxyType(
    {"follow-up": "followup", "fu": "followup", "ls": "list", "backend": "backends", "?": "help", "search": "find"}
)


@functools.cache
def help_text() -> str:
    return blocks.help_text([line for s in SUBCOMMANDS.values() for line in ((s.usage, s.summary), *s.more)])


def split_subcommand(text: str) -> tuple[str, str]:
    """The subcommand word and the rest, untouched: the ack needs no more than this."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "help", ""
    name = parts[0].lower()
    return ALIASES.get(name, name), parts[1] if len(parts) > 1 else ""


def lead_command(deps: Deps) -> Callable[..., None]:
    def lead(ack: Ack, body: dict[str, Any]) -> None:
        """Answer what needs no I/O in the ack itself; the rest replies after the ack."""
        text = str(body.get("text") or "")
        if len(text) > MAX_COMMAND_TEXT:  # refused before anything reads it
            error_reply(too_long(len(text)), "/lead help").ack(ack)
            return
        name, rest = split_subcommand(text)
        sub = SUBCOMMANDS.get(name)
        if name == "help":
            ack(help_text())
        elif sub is None:
            close = difflib.get_close_matches(name, [*SUBCOMMANDS, *ALIASES], n=1)
            hint = f" (did you mean `/lead {ALIASES.get(close[0], close[0])}`?)" if close else ""
            error_reply(f"`{escape(name[:50])}` is not a /lead command{hint}; `/lead help` lists them").ack(ack)
        elif sub.run is None:
            error_reply(f"`/lead {name}` is not available yet in this version of Leadbot").ack(ack)
        elif deps.background.saturated():
            error_reply(BUSY).ack(ack)
        else:
            ack()
            respond = Respond(response_url=body.get("response_url"))
            deps.after_ack(respond, lambda: run_subcommand(deps, sub, rest, body))

    return lead


def run_subcommand(deps: Deps, sub: Subcommand, rest: str, command: dict[str, Any]) -> Reply | None:
    if not deps.claims.claim(f"command:{command.get('trigger_id')}"):
        return None  # a Slack retry of a request already handled
    run = sub.run
    if run is None:
        return None
    try:
        normalised, tokens = tokenize(rest)
        inv = Invocation(
            deps=deps,
            user=str(command["user_id"]),
            channel=command.get("channel_id"),
            text=normalised,
            tokens=tokens,
            trigger_id=str(command.get("trigger_id", "")),
            response_url=command.get("response_url"),
        )
        return run(inv)
    except LeadError as exc:
        if isinstance(exc, Invalid) or exc.field == "ref":
            raise exc.with_usage(sub.usage) from None  # a typing mistake: show how the command goes
        raise


def register(app: App, deps: Deps) -> None:
    app.command("/lead")(lead_command(deps))
