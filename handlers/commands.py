"""The `/lead` slash command.

The ack answers at once with what needs no I/O (help, an unknown
subcommand); everything else runs after the ack and replies through the
command's ``response_url``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import blocks
from handlers.cards import card_blocks, row_blocks
from handlers.context import BUSY, Deps, Reply, error_reply
from handlers.digests import DigestSender
from handlers.home import refresh_homes
from handlers.notices import post_to_feed, tell_new_owner
from handlers.parsing import Token, is_user, split_options, tokenize, user_id
from handlers.views import open_new_lead_modal
from services.contact import looks_like_email, looks_like_phone, normalize_email, normalize_phone
from services.errors import LeadError
from services.leads import Actor, LeadService
from services.models import NewLead, StatusModel
from services.reminders import Reminders, local_day
from services.when import WHEN_HELP, parse_when


@dataclass
class Invocation:
    """One `/lead` call, as the subcommand functions see it."""

    deps: Deps
    user: str
    channel: str | None
    text: str  # the arguments after the subcommand, normalised
    tokens: list[Token]
    trigger_id: str
    response_url: str | None
    client: WebClient

    @property
    def actor(self) -> Actor:
        return self.deps.actor(self.user)

    @property
    def service(self) -> LeadService:
        return self.deps.service

    def tz(self) -> str:
        return self.deps.users.tz(self.client, self.user)

    def when(self, text: str, usage: str) -> Any:
        try:
            return parse_when(text, self.tz(), self.service.clock())
        except LeadError as exc:
            raise LeadError(exc.message, usage=usage) from None


@dataclass(frozen=True)
class Subcommand:
    usage: str
    summary: str
    run: Callable[[Invocation], Reply | None] | None  # None: answered in the ack, or not available yet
    more: tuple[tuple[str, str], ...] = ()  # further usage lines for help


def _need_args(inv: Invocation, usage: str, at_least: int, at_most: int | None = None) -> None:
    count = len(inv.tokens)
    if count < at_least:
        raise LeadError("something is missing", usage=usage)
    if at_most is not None and count > at_most:
        extra = " ".join(t.text for t in inv.tokens[at_most:])
        raise LeadError(f"I don't know what to do with `{extra}`", usage=usage)


# -- subcommands ------------------------------------------------------------------------------

NEW_USAGE = "/lead new NAME EMAIL|PHONE [for=… type=… source=… owner=@user|me next=WHEN status=… note=… backend=…]"
NEW_KEYS = ("for", "type", "source", "owner", "next", "status", "note", "backend", "sub", "customer")


def cmd_new(inv: Invocation) -> Reply | None:
    if not inv.tokens:
        return _open_new_lead_modal(inv)
    bare, opts = split_options(inv.tokens, NEW_KEYS, NEW_USAGE)
    contacts = _contacts(bare)
    by_customer_id = not contacts and bool(opts.get("customer")) and bool(bare)  # Capillary: name, then customer=ID
    if not contacts and not by_customer_id:
        raise LeadError("give the lead's email or phone after the name", usage=NEW_USAGE)
    contact_at = contacts[0][1] if contacts else len(bare)
    if contact_at == 0:
        raise LeadError("give the lead's name before the email or phone", usage=NEW_USAGE)
    email = phone = None
    position = contact_at
    for text, start, end in contacts:
        if start != position:
            stray = " ".join(t.text for t in bare[position:start])
            raise LeadError(f"I don't know what to do with `{stray}` (options are key=value)", usage=NEW_USAGE)
        position = end
        if looks_like_email(text) and email is None:
            email = normalize_email(text)
        elif not looks_like_email(text) and phone is None:
            phone = normalize_phone(text, inv.deps.phone_region)
        else:
            raise LeadError(f"give one email and one phone at most (`{text}` is one too many)", usage=NEW_USAGE)
    if position != len(bare):
        stray = " ".join(t.text for t in bare[position:])
        raise LeadError(f"I don't know what to do with `{stray}` (options are key=value)", usage=NEW_USAGE)
    name = " ".join(t.text for t in bare[:contact_at])
    owner_user = user_id(opts["owner"], inv.user) if opts.get("owner") else None
    lead = NewLead(
        name=name[:150],
        email=email,
        phone=phone,
        lead_for=opts.get("for") or None,
        type=opts.get("type") or None,
        source=opts.get("source") or None,
        status=opts.get("status") or None,
        next_follow_up=inv.when(opts["next"], NEW_USAGE) if opts.get("next") else None,
        note=opts.get("note") or None,
        sub_status=opts.get("sub") or None,
        customer=opts.get("customer") or None,
    )
    created = inv.service.create(
        inv.actor, lead, owner_user=owner_user, backend=opts.get("backend"), channel=inv.channel
    )
    tell_new_owner(inv.deps, created, inv.user)
    post_to_feed(inv.deps, created, inv.user)
    refresh_homes(inv.deps, created, inv.user)
    return Reply(
        text=f"New lead {created.name} ({created.ref})",
        blocks=card_blocks(inv.service, created, last_action=f"Created by <@{inv.user}>"),
        in_channel=True,
    )


def _contacts(bare: list[Token]) -> list[tuple[str, int, int]]:
    """Emails and phones among the bare words, as (text, first, after) token positions.

    A phone may be typed with spaces (`+44 20 7946 0958`): consecutive number-like words
    are read as one phone when together they have enough digits.
    """
    found: list[tuple[str, int, int]] = []
    i = 0
    while i < len(bare):
        if looks_like_email(bare[i].text):
            found.append((bare[i].text, i, i + 1))
            i += 1
            continue
        j = i
        while j < len(bare) and bare[j].text and all(ch.isdigit() or ch in "+-()." for ch in bare[j].text):
            j += 1
        joined = " ".join(t.text for t in bare[i:j])
        if j > i and looks_like_phone(joined):
            found.append((joined, i, j))
            i = j
        else:
            i = max(j, i + 1)
    return found


def _open_new_lead_modal(inv: Invocation) -> None:
    open_new_lead_modal(inv.deps, trigger_id=inv.trigger_id, channel=inv.channel, response_url=inv.response_url)


SHOW_USAGE = "/lead show REF"


def cmd_show(inv: Invocation) -> Reply:
    _need_args(inv, SHOW_USAGE, 1, 1)
    lead = inv.service.get(inv.tokens[0].text, inv.channel)
    return Reply(text=f"{lead.name} ({lead.ref})", blocks=card_blocks(inv.service, lead), in_channel=True)


LIST_USAGE = "/lead list [mine|@user] [STATUS] [due] [backend=NAME] [sub=SUB-STATUS]"
PAGE_SIZE = 10


def cmd_list(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend", "sub"), LIST_USAGE)
    state: dict[str, Any] = {"offset": 0}
    for token in bare:
        word = token.text.lower()
        if word == "mine":
            state["o"] = inv.user
        elif is_user(token.text):
            state["o"] = user_id(token.text, inv.user)
        elif word == "due":
            state["d"] = True
        elif "s" not in state:
            state["s"] = token.text
        else:
            raise LeadError(f"I don't know what to do with `{token.text}`", usage=LIST_USAGE)
    if opts.get("backend"):
        state["b"] = opts["backend"]
    if opts.get("sub"):
        state["u"] = opts["sub"]
    if "s" in state:
        backend = inv.service.backend(state["b"]) if "b" in state else inv.service.backend_for_channel(inv.channel)
        try:
            state["s"] = backend.status_option(state["s"]).value
        except LeadError as exc:
            raise LeadError(exc.message, usage=LIST_USAGE) from None
    return list_page(inv.deps, inv.user, inv.channel, state)


def list_page(deps: Deps, user: str, channel: str | None, state: dict[str, Any]) -> Reply:
    service = deps.service
    page = service.search(
        channel=channel,
        backend=state.get("b"),
        owner_user=state.get("o"),
        status=state.get("s"),
        sub_status=state.get("u"),
        due=bool(state.get("d")),
        offset=int(state.get("offset", 0)),
        limit=PAGE_SIZE,
    )
    title_parts = ["mine" if state.get("o") == user else (f"<@{state['o']}>" if state.get("o") else "all open leads")]
    if state.get("s"):
        title_parts.append(state["s"])
    if state.get("u"):
        title_parts.append(state["u"])
    if state.get("d"):
        title_parts.append("due")
    title = " · ".join(title_parts)
    rows = [row_blocks(service, lead) for lead in page.leads]
    message = blocks.list_message(
        rows, title=title, total=page.total, offset=page.offset, page_size=PAGE_SIZE, state=state
    )
    return Reply(text=f"Leads: {title} ({page.total})", blocks=message)


ASSIGN_USAGE = "/lead assign REF @user|me"


def cmd_assign(inv: Invocation) -> Reply:
    _need_args(inv, ASSIGN_USAGE, 2, 2)
    assignee = user_id(inv.tokens[1].text, inv.user)
    lead = inv.service.assign(inv.actor, inv.tokens[0].text, assignee, inv.channel)
    tell_new_owner(inv.deps, lead, inv.user)
    refresh_homes(inv.deps, lead, inv.user)
    action = f"Assigned to <@{assignee}> by <@{inv.user}>"
    return Reply(text=f"{lead.ref}: {action}", blocks=card_blocks(inv.service, lead, last_action=action))


FOLLOWUP_USAGE = '/lead followup REF [next=WHEN] [notes…]  (e.g. next="tomorrow 10am" called, left a voicemail)'


def cmd_followup(inv: Invocation) -> Reply:
    _need_args(inv, FOLLOWUP_USAGE, 1)
    ref, rest = inv.tokens[0].text, inv.tokens[1:]
    next_at = None
    notes_from = 0
    if rest and rest[0].text.lower().startswith("next="):
        next_at, notes_from = _greedy_when(inv, rest)
    elif any(t.text.lower().startswith("next=") for t in rest):
        raise LeadError("put `next=WHEN` right after the reference", usage=FOLLOWUP_USAGE)
    notes = inv.text[rest[notes_from].start :].strip() if notes_from < len(rest) else None
    lead = inv.service.log_follow_up(inv.actor, ref, notes=notes, next_follow_up=next_at, channel=inv.channel)
    refresh_homes(inv.deps, lead, inv.user)
    action = f"<@{inv.user}> logged a follow-up" + (
        f" · next: {blocks.slack_time(next_at, relative=False)}" if next_at else ""
    )
    return Reply(text=f"{lead.ref}: follow-up logged", blocks=card_blocks(inv.service, lead, last_action=action))


def _greedy_when(inv: Invocation, rest: list[Token]) -> tuple[Any, int]:
    """Read ``next=`` plus as many following words as still make a date (`next=tomorrow 10am called`)."""
    first = rest[0].text[len("next=") :]
    if rest[0].raw.startswith('next="'):  # quoted: exactly what is inside the quotes
        return inv.when(first, FOLLOWUP_USAGE), 1
    best = None
    for count in range(min(len(rest), 5), 0, -1):
        words = " ".join([first, *(t.text for t in rest[1:count])]).strip()
        try:
            best = (parse_when(words, inv.tz(), inv.service.clock()), count)
            break
        except LeadError:
            continue
    if best is None:
        raise LeadError(f"I can't read `{first}` as a date or time ({WHEN_HELP})", usage=FOLLOWUP_USAGE)
    return best


NOTE_USAGE = "/lead note REF TEXT"


def cmd_note(inv: Invocation) -> Reply:
    _need_args(inv, NOTE_USAGE, 2)
    text = inv.text[inv.tokens[1].start :].strip()
    if len(text) > 3000:
        raise LeadError(f"the note is {len(text)} characters; the limit is 3000", usage=NOTE_USAGE)
    lead = inv.service.add_note(inv.actor, inv.tokens[0].text, text, inv.channel)
    refresh_homes(inv.deps, lead, inv.user)
    return Reply(
        text=f"{lead.ref}: note added",
        blocks=card_blocks(inv.service, lead, last_action=f"<@{inv.user}> added a note"),
    )


STATUS_USAGE = "/lead status REF STATUS [reason=…] [sub=…]"


def cmd_status(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("reason", "sub"), STATUS_USAGE)
    if len(bare) < 2:
        raise LeadError("give the lead and the new status", usage=STATUS_USAGE)
    if len(bare) > 2:
        raise LeadError(f"I don't know what to do with `{bare[2].text}`", usage=STATUS_USAGE)
    try:
        lead = inv.service.change_status(
            inv.actor,
            bare[0].text,
            bare[1].text,
            reason=opts.get("reason") or None,
            sub_status=opts.get("sub") or None,
            channel=inv.channel,
        )
    except LeadError as exc:
        raise LeadError(exc.message, usage=exc.usage or STATUS_USAGE) from None
    refresh_homes(inv.deps, lead, inv.user)
    action = f"<@{inv.user}> set the status to {lead.status}"
    return Reply(text=f"{lead.ref}: status {lead.status}", blocks=card_blocks(inv.service, lead, last_action=action))


LINK_USAGE = "/lead link @user STAFF_ID [backend=NAME]  ·  /lead link STAFF_ID [backend=NAME] (yourself)"


def cmd_link(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend",), LINK_USAGE)
    if len(bare) == 2 and is_user(bare[0].text):
        target, staff = user_id(bare[0].text, inv.user), bare[1].text
    elif len(bare) == 1 and not is_user(bare[0].text):
        target, staff = inv.user, bare[0].text
    else:
        raise LeadError("give a person and their staff ID", usage=LINK_USAGE)
    link = inv.service.link(inv.actor, target, staff, opts.get("backend"))
    return Reply(text=f"Linked <@{link.slack_user}> to `{link.staff_id}` in {link.backend}.")


UNLINK_USAGE = "/lead unlink @user|me [backend=NAME]"


def cmd_unlink(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend",), UNLINK_USAGE)
    if len(bare) != 1:
        raise LeadError("give the person to unlink", usage=UNLINK_USAGE)
    target = user_id(bare[0].text, inv.user)
    link = inv.service.unlink(inv.actor, target, opts.get("backend"))
    return Reply(text=f"Unlinked <@{link.slack_user}> from `{link.staff_id}` in {link.backend}.")


def cmd_whoami(inv: Invocation) -> Reply:
    _need_args(inv, "/lead whoami", 0, 0)
    links = inv.service.links(inv.user)
    lines = [f"You are <@{inv.user}>" + (" (Leadbot admin)." if inv.actor.is_admin else ".")]
    lines.append(f"Time zone: {inv.tz()}")
    if links:
        lines.append("Linked as: " + ", ".join(f"`{link.staff_id}` in {link.backend}" for link in links))
    else:
        lines.append("You are not linked to any backend yet; an admin can run `/lead link @you STAFF_ID`.")
    return Reply(text="\n".join(lines))


def cmd_backends(inv: Invocation) -> Reply:
    _need_args(inv, "/lead backends", 0, 0)
    service = inv.service
    lines = []
    for backend in service.backends.values():
        caps = backend.capabilities
        can = [
            name
            for name in ("read", "search", "create", "assign", "follow_up", "note", "status", "deals", "departments")
            if getattr(caps, name)
        ]
        default = " (default)" if backend.name == service.default_backend else ""
        statuses = ", ".join(s.value for s in backend.statuses())
        line = (
            f"*{backend.name}*{default} — {backend.title}\n"
            f"  can: {', '.join(can).replace('_', '-')} · statuses ({caps.status_model.value}): {statuses}"
        )
        if caps.status_model == StatusModel.WITH_REASONS:
            line += "\n  a status change needs `reason=ID` (the Status button asks for it)"
        if caps.notes_how:
            line += f"\n  notes: {caps.notes_how}"
        if caps.staff_ids:
            line += f"\n  staff IDs: {caps.staff_ids}"
        if caps.queues_writes:
            down = backend.reachable()
            line += f"\n  {':red_circle: unreachable: ' + down if down else ':large_green_circle: reachable'}"
            waiting = sum(1 for row in service.outbox.pending() if row["backend"] == backend.name)
            if waiting:
                line += f" · {waiting} write(s) queued, retrying"
        lines.append(line)
    routed = service.channel_backends.get(inv.channel or "")
    if routed:
        lines.append(f"This channel uses *{routed}*.")
    return Reply(text="\n".join(lines))


NOTIFY_USAGE = "/lead notify on|off"


def cmd_notify(inv: Invocation) -> Reply:
    _need_args(inv, NOTIFY_USAGE, 1, 1)
    choice = inv.tokens[0].text.lower()
    if choice not in ("on", "off"):
        raise LeadError(f"`{inv.tokens[0].text}` is neither on nor off", usage=NOTIFY_USAGE)
    inv.service.set_assignment_dms(inv.actor, choice == "on")
    if choice == "on":
        return Reply(text="You will get a DM when someone else assigns you a lead.")
    return Reply(text="You will no longer get DMs when someone assigns you a lead. `/lead notify on` undoes this.")


REMIND_USAGE = "/lead remind on|off|at HH:MM|now"


def cmd_remind(inv: Invocation) -> Reply:
    _need_args(inv, REMIND_USAGE, 0, 2)
    reminders = Reminders(inv.service)
    words = [t.text.lower() for t in inv.tokens]
    if not words:
        setting = reminders.settings(inv.user)
        return Reply(text=f"Your daily follow-up digest is {setting.describe()}.\n{REMIND_USAGE}")
    if words == ["on"] or words == ["off"]:
        reminders.set_on(inv.actor, words[0] == "on")
        setting = reminders.settings(inv.user)
        if setting.on:
            return Reply(
                text=f"Your daily follow-up digest is on: a DM at {setting.at:%H:%M} your time"
                " on days something is due."
            )
        return Reply(text="No more daily digests. `/lead remind on` brings them back.")
    if words[0] == "at":
        if len(words) != 2:
            raise LeadError("say when, e.g. `/lead remind at 08:30`", usage=REMIND_USAGE)
        try:
            at = reminders.set_at(inv.actor, words[1])
        except LeadError as exc:
            raise LeadError(exc.message, usage=REMIND_USAGE) from None
        return Reply(
            text=f"Your daily follow-up digest will come at {at:%H:%M}, your time (Slack's time zone for you)."
        )
    if words == ["now"]:
        return _remind_now(inv, reminders)
    raise LeadError(f"I don't know `{' '.join(words)}` here", usage=REMIND_USAGE)


def _remind_now(inv: Invocation, reminders: Reminders) -> Reply:
    """Today's digest at once, counted as today's (so it does not come again at the set time)."""
    sender = DigestSender(inv.deps, reminders, inv.deps.poster)
    now = inv.service.clock()
    tz = sender.tz(inv.user, now)
    if not inv.service.links(inv.user):
        raise LeadError("you are not linked to a staff ID anywhere, so no leads are yours yet")
    if reminders.digest(inv.user, now, tz).empty:
        return Reply(text="Nothing is due today. :tada: `/lead list mine` shows your open leads.")
    outcome = sender.send_today(inv.user, now)
    if outcome == "taken":
        row = reminders.row(inv.user, local_day(now, tz)) or {}
        return Reply(
            text=f"Today's digest was already sent ({row.get('state', 'claimed')});"
            " `/lead list mine due` lists what is due."
        )
    if outcome == "sent":
        return Reply(text="Today's digest is in your DMs from Leadbot.")
    return error_reply("the digest could not be sent just now; Leadbot will try again")


PREVIEWS_USAGE = "/lead previews on|off"


def cmd_previews(inv: Invocation) -> Reply:
    _need_args(inv, PREVIEWS_USAGE, 0, 1)
    if not inv.channel:
        raise LeadError("previews are set per channel: run this in the channel", usage=PREVIEWS_USAGE)
    if not inv.tokens:
        state = "on" if inv.service.previews_on(inv.channel) else "off"
        return Reply(text=f"Lead previews are {state} in this channel.\n{PREVIEWS_USAGE} (Leadbot admins)")
    choice = inv.tokens[0].text.lower()
    if choice not in ("on", "off"):
        raise LeadError(f"`{inv.tokens[0].text}` is neither on nor off", usage=PREVIEWS_USAGE)
    inv.service.set_previews(inv.actor, inv.channel, choice == "on")
    if choice == "off":
        return Reply(text=f"<@{inv.user}> turned lead previews off in this channel.", in_channel=True)
    return Reply(
        text=(
            f"<@{inv.user}> turned lead previews on: a message here that names a lead (e.g. `local:7`)"
            " gets its name, status, owner and next follow-up in a thread, never contact details."
            " Leadbot must be a member of the channel (`/invite @Leadbot`)."
        ),
        in_channel=True,
    )


SUBCOMMANDS: dict[str, Subcommand] = {
    "help": Subcommand("/lead help", "this list", None),
    "new": Subcommand("/lead new", "open the New lead form", cmd_new, more=((NEW_USAGE, "quick create"),)),
    "show": Subcommand(SHOW_USAGE, "post the lead card", cmd_show),
    "list": Subcommand(LIST_USAGE, "leads matching the filters, 10 at a time", cmd_list),
    "assign": Subcommand(ASSIGN_USAGE, "give the lead an owner", cmd_assign),
    "followup": Subcommand(FOLLOWUP_USAGE, "log a follow-up done now, optionally schedule the next", cmd_followup),
    "note": Subcommand(NOTE_USAGE, "add a note", cmd_note),
    "status": Subcommand(STATUS_USAGE, "change the status", cmd_status),
    "link": Subcommand(LINK_USAGE, "link a Slack user to their staff ID (admins)", cmd_link),
    "unlink": Subcommand(UNLINK_USAGE, "remove a link", cmd_unlink),
    "whoami": Subcommand("/lead whoami", "your links and settings", cmd_whoami),
    "backends": Subcommand("/lead backends", "configured backends and what each can do", cmd_backends),
    "remind": Subcommand(REMIND_USAGE, "your daily follow-up digest (on at 09:00 by default)", cmd_remind),
    "notify": Subcommand(NOTIFY_USAGE, "DMs when someone else assigns you a lead (on by default)", cmd_notify),
    "previews": Subcommand(PREVIEWS_USAGE, "preview leads named in this channel's messages (admins)", cmd_previews),
    "deal": Subcommand("/lead deal REF AMOUNT [name=…]", "record a deal (coming soon)", None),
    "department": Subcommand("/lead department REF NAME", "assign a department (coming soon)", None),
}
ALIASES = {"follow-up": "followup", "fu": "followup", "ls": "list", "backend": "backends", "?": "help"}


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
        name, rest = split_subcommand(body.get("text", ""))
        sub = SUBCOMMANDS.get(name)
        if name == "help":
            ack(help_text())
        elif sub is None:
            error_reply(f"`{name[:50]}` is not a /lead command; `/lead help` lists them").ack(ack)
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
    if not deps.service.claim(f"command:{command.get('trigger_id')}"):
        return None  # a Slack retry of a request already handled
    normalised, tokens = tokenize(rest)
    inv = Invocation(
        deps=deps,
        user=command["user_id"],
        channel=command.get("channel_id"),
        text=normalised,
        tokens=tokens,
        trigger_id=command.get("trigger_id", ""),
        response_url=command.get("response_url"),
        client=deps.client,
    )
    return sub.run(inv)


def register(app: App, deps: Deps) -> None:
    app.command("/lead")(lead_command(deps))
