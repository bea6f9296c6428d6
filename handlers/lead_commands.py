"""`/lead new|show|assign|followup|note|status|deal|department`: the subcommands that read or change one lead."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from handlers import said
from handlers.cards import row_blocks
from handlers.context import Reply
from handlers.edits import checked_edit
from handlers.invocation import Invocation, need_args
from handlers.parsing import Token, split_options, user_id
from handlers.render import escape
from handlers.views import open_new_lead_modal
from services.contact import looks_like_email, looks_like_phone, normalize_email, normalize_phone
from services.errors import Code, Invalid, LeadError
from services.models import EDITABLE_FIELDS, NewLead, validated
from services.when import WHEN_HELP, parse_when

NEW_USAGE = "/lead new NAME EMAIL|PHONE [for=… type=… source=… owner=@user|me next=WHEN status=… note=… backend=…]"
EXTENSION_WORDS = ("ext", "ext.", "x", "extension")
NEW_KEYS = ("for", "type", "source", "owner", "next", "status", "note", "backend", "sub", "customer")


def cmd_new(inv: Invocation) -> Reply | None:
    if not inv.tokens:
        open_new_lead_modal(inv.deps, trigger_id=inv.trigger_id, channel=inv.channel, response_url=inv.response_url)
        return None
    bare, opts = split_options(inv.tokens, NEW_KEYS, NEW_USAGE)
    opts = {k: v if k == "owner" else inv.plain(v) for k, v in opts.items()}
    contacts = _contacts(bare, inv.plain)
    by_customer_id = not contacts and bool(opts.get("customer")) and bool(bare)  # Capillary: name, then customer=ID
    if not contacts and not by_customer_id:
        raise Invalid("give the lead's email or phone after the name", field="email", usage=NEW_USAGE)
    contact_at = contacts[0][1] if contacts else len(bare)
    if contact_at == 0:
        raise Invalid("give the lead's name before the email or phone", field="name", usage=NEW_USAGE)
    email = phone = None
    position = contact_at
    for text, start, end in contacts:
        if start != position:
            raise _stray(bare[position:start], NEW_USAGE)
        position = end
        if looks_like_email(text) and email is None:
            email = normalize_email(text)
        elif not looks_like_email(text) and phone is None:
            phone = normalize_phone(text, inv.deps.phone_region)
        else:
            raise Invalid(
                "give one email and one phone at most ({extra} is one too many)", usage=NEW_USAGE, extra=Code(text)
            )
    if position != len(bare):
        raise _stray(bare[position:], NEW_USAGE)
    name = inv.plain(" ".join(t.text for t in bare[:contact_at]))
    owner_user = user_id(opts["owner"], inv.user) if opts.get("owner") else None
    lead = validated(
        NewLead,
        name=name,
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
    return Reply(
        text=f"New lead {escape(created.name)} ({created.ref})",
        blocks=inv.deps.private_card(created, said.created(inv.user), user=inv.user),
        in_channel=True,
    )


def _stray(tokens: list[Token], usage: str) -> LeadError:
    stray = " ".join(t.text for t in tokens)
    return Invalid("I don't know what to do with {extra} (options are key=value)", usage=usage, extra=Code(stray))


def _contacts(bare: list[Token], plain: Callable[[str], str]) -> list[tuple[str, int, int]]:
    """Emails and phones among the bare words, as (text, first, after) token positions.

    Slack links what looks like an address (``<mailto:a@b.c|a@b.c>``), so each word is read
    as plain text first. A phone may be typed with spaces (`+44 20 7946 0958`): consecutive
    number-like words are read as one phone when together they have enough digits.
    """
    words = [plain(t.text) for t in bare]
    found: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        if looks_like_email(words[i]):
            found.append((words[i], i, i + 1))
            i += 1
            continue
        j = i
        while j < len(words) and words[j] and all(ch.isdigit() or ch in "+-()." for ch in words[j]):
            j += 1
        if j > i and j + 1 < len(words) and words[j].lower() in EXTENSION_WORDS and words[j + 1].isdigit():
            j += 2  # `+1 415 555 0132 ext. 22`: the extension is part of the number
        joined = " ".join(words[i:j])
        if j > i and looks_like_phone(joined):
            found.append((joined, i, j))
            i = j
        else:
            i = max(j, i + 1)
    return found


EDIT_USAGE = "/lead edit REF field=value …  (fields: name, email, phone, company, source, type)"
EDIT_KEYS = ("name", "email", "phone", "company", "for", "source", "type")


def cmd_edit(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, EDIT_KEYS, EDIT_USAGE)
    if not bare:
        raise Invalid("give the lead to change, then field=value", field="ref", usage=EDIT_USAGE)
    if len(bare) > 1:
        raise _stray(bare[1:], EDIT_USAGE)
    if not opts:
        raise Invalid(
            "say what to change as field=value (e.g. {example})",
            usage=EDIT_USAGE,
            example=Code("email=ada@example.com"),
        )
    if "for" in opts and "company" in opts:
        raise Invalid("{a} and {b} are the same field: give one", usage=EDIT_USAGE, a=Code("for="), b=Code("company="))
    typed = {("company" if k == "for" else k): inv.plain(v).strip() for k, v in opts.items()}
    changes = checked_edit(typed, inv.deps.phone_region)
    lead = inv.service.edit(inv.actor, bare[0].text, changes, inv.channel)
    action = said.edited(inv.user, [w for w in EDITABLE_FIELDS if w in changes])
    return Reply(
        text=f"{lead.ref}: {', '.join(changes)} changed", blocks=inv.deps.private_card(lead, action, user=inv.user)
    )


SHOW_USAGE = "/lead show REF"


def cmd_show(inv: Invocation) -> Reply:
    need_args(inv, SHOW_USAGE, 1, 1)
    backend, _ = inv.service.backends.resolve(inv.tokens[0].text, inv.channel)
    staff = inv.deps.linked(inv.user, backend.name)  # a card, with its history, only for them
    lead = (inv.service.get_for_card if staff else inv.service.get)(inv.tokens[0].text, inv.channel)
    if not staff:
        # Not staff on its backend: what a preview shows, to them alone (never the customer's details).
        note = f"You are not linked in {escape(lead.backend)}, so this is what a preview shows"
        head = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
        row = row_blocks(inv.service, inv.deps.people, lead)
        return Reply(text=f"{escape(lead.name)} ({lead.ref})", blocks=[row, head])
    card = inv.deps.channel_card(lead, channel=inv.channel)
    return Reply(text=f"{escape(lead.name)} ({lead.ref})", blocks=card, in_channel=True)


ASSIGN_USAGE = "/lead assign REF @user|me"


def cmd_assign(inv: Invocation) -> Reply:
    need_args(inv, ASSIGN_USAGE, 2, 2)
    assignee = user_id(inv.tokens[1].text, inv.user)
    lead = inv.service.assign(inv.actor, inv.tokens[0].text, assignee, inv.channel)
    action = said.assigned(inv.user, assignee)
    return Reply(text=f"{lead.ref}: {action}", blocks=inv.deps.private_card(lead, action, user=inv.user))


FOLLOWUP_USAGE = '/lead followup REF [next=WHEN] [notes…]  (e.g. next="tomorrow 10am" called, left a voicemail)'


def cmd_followup(inv: Invocation) -> Reply:
    need_args(inv, FOLLOWUP_USAGE, 1)
    ref, rest = inv.tokens[0].text, inv.tokens[1:]
    next_at = None
    notes_from = 0
    if rest and rest[0].text.lower().startswith("next="):
        next_at, notes_from = _greedy_when(inv, rest)
    elif any(t.text.lower().startswith("next=") for t in rest):
        raise Invalid("put {option} right after the reference", usage=FOLLOWUP_USAGE, option=Code("next=WHEN"))
    notes = inv.plain(inv.text[rest[notes_from].start :]).strip() if notes_from < len(rest) else None
    lead = inv.service.log_follow_up(inv.actor, ref, notes=notes, next_follow_up=next_at, channel=inv.channel)
    return Reply(
        text=f"{lead.ref}: follow-up logged",
        blocks=inv.deps.private_card(lead, said.followed_up(inv.user, next_at), user=inv.user),
    )


def _greedy_when(inv: Invocation, rest: list[Token]) -> tuple[datetime, int]:
    """Read ``next=`` plus as many following words as still make a date (`next=tomorrow 10am called`)."""
    first = rest[0].text[len("next=") :]
    if rest[0].raw.startswith('next="'):  # quoted: exactly what is inside the quotes
        return inv.when(first, FOLLOWUP_USAGE), 1
    for count in range(min(len(rest), 5), 0, -1):
        words = " ".join([first, *(t.text for t in rest[1:count])]).strip()
        try:
            parse_when(words, inv.tz(), inv.service.clock(), order=inv.deps.date_order)
        except LeadError:
            continue
        return inv.when(words, FOLLOWUP_USAGE), count  # the longest reading, refused if it has passed
    raise Invalid(
        "I can't read {value} as a date or time ({help})",
        field="next",
        usage=FOLLOWUP_USAGE,
        value=Code(first),
        help=WHEN_HELP,
    )


NOTE_USAGE = "/lead note REF TEXT"


def cmd_note(inv: Invocation) -> Reply:
    need_args(inv, NOTE_USAGE, 2)
    text = inv.plain(inv.text[inv.tokens[1].start :]).strip()
    lead = inv.service.add_note(inv.actor, inv.tokens[0].text, text, inv.channel)
    card = inv.deps.private_card(lead, said.noted(inv.user), user=inv.user)
    return Reply(text=f"{lead.ref}: note added", blocks=card)


STATUS_USAGE = "/lead status REF STATUS [reason=…] [sub=…]"


def cmd_status(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("reason", "sub"), STATUS_USAGE)
    if len(bare) < 2:
        raise Invalid("give the lead and the new status", usage=STATUS_USAGE)
    if len(bare) > 2:
        raise Invalid("I don't know what to do with {extra}", usage=STATUS_USAGE, extra=Code(bare[2].text))
    status, reason, sub = inv.plain(bare[1].text), opts.get("reason"), opts.get("sub")
    lead = inv.service.change_status(
        inv.actor,
        bare[0].text,
        status,
        reason=inv.plain(reason) if reason else None,
        sub_status=inv.plain(sub) if sub else None,
        channel=inv.channel,
    )
    label = _label(inv, lead.backend, status)
    action = said.status_set(inv.user, label, inv.plain(sub) if sub else None)
    return Reply(text=f"{lead.ref}: status {escape(label)}", blocks=inv.deps.private_card(lead, action, user=inv.user))


def _label(inv: Invocation, backend: str, status: str) -> str:
    """The status's label, or what was typed when the backend cannot list its statuses now (a queued write)."""
    try:
        return inv.service.backends.get(backend).status_option(status).label
    except LeadError:
        return status


DEAL_USAGE = "/lead deal REF AMOUNT [name=…] [status=…] [start=DATE] [close=DATE] [note=…]"
AMOUNT = re.compile(r"[^\d.,]*(\d[\d,]*(?:\.\d+)?)")  # "150000", "1,50,000", "₹2,500.50", "$300"


def cmd_deal(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("name", "status", "start", "close", "note"), DEAL_USAGE)
    if len(bare) < 2:
        raise Invalid("give the lead and the deal's amount", usage=DEAL_USAGE)
    if len(bare) > 2:
        raise Invalid(
            "I don't know what to do with {extra} (a deal's name is name=…)", usage=DEAL_USAGE, extra=Code(bare[2].text)
        )
    amount = _amount(bare[1].text)
    start = inv.when(opts["start"], DEAL_USAGE, future=False).date() if opts.get("start") else None
    close = inv.when(opts["close"], DEAL_USAGE, future=False).date() if opts.get("close") else None
    lead = inv.service.add_deal(
        inv.actor,
        bare[0].text,
        amount,
        name=inv.plain(opts["name"]) if opts.get("name") else None,
        status=inv.plain(opts["status"]) if opts.get("status") else None,
        start=start,
        end=close,
        note=inv.plain(opts["note"]) if opts.get("note") else None,
        channel=inv.channel,
    )
    words = said.deal_added(inv.user, amount, inv.plain(opts["name"]) if opts.get("name") else None, close)
    return Reply(text=f"{lead.ref}: deal recorded", blocks=inv.deps.private_card(lead, words, user=inv.user))


def _amount(text: str) -> Decimal:
    match = AMOUNT.fullmatch(text.strip())
    if match is None:
        raise Invalid("{value} is not an amount (e.g. 150000 or 2,500.50)", usage=DEAL_USAGE, value=Code(text))
    return Decimal(match.group(1).replace(",", ""))


DEPARTMENT_USAGE = "/lead department REF NAME"


def cmd_department(inv: Invocation) -> Reply:
    need_args(inv, DEPARTMENT_USAGE, 2)
    name = inv.plain(inv.text[inv.tokens[1].start :]).strip()
    lead = inv.service.set_department(inv.actor, inv.tokens[0].text, name, inv.channel)
    shown = lead.department or name  # as the backend names it ("sales" typed, "Sales" kept)
    return Reply(
        text=f"{lead.ref}: handed to {escape(shown)}",
        blocks=inv.deps.private_card(lead, said.department_set(inv.user, shown), user=inv.user),
    )
