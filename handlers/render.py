"""Domain words into Slack's: errors as mrkdwn with their hints, and text escaped so it pings nobody."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from services.errors import Code, LeadError, NotLinked, Person

ERROR_MARK = ":warning:"  # error replies start with this, so people (and the console) can tell them apart

# What a command user types to give the field an error is about.
OPTION_HINTS = MappingProxyType(
    {
        "lead_for": "give `for=PRODUCT`",
        "reason": "add `reason=ID`",
        "sub_status": "leave out `sub=` or pick one of those",
        "customer": "give `customer=ID` or an email or phone",
        "type": "give `type=…`",
    }
)


def escape(text: str) -> str:
    """Text as mrkdwn shows it literally: ``<!channel>``, ``<@U…>`` and ``<url|label>`` stop being markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fact(value: Any) -> str:
    """One fact of a ``LeadError`` as mrkdwn."""
    if isinstance(value, Person):
        return f"<@{value.slack_user}>"
    if isinstance(value, Code):
        return f"`{escape(value.text).replace('`', 'ˋ')}`" if value.text else ""
    return escape(str(value))


def error_mrkdwn(exc: LeadError) -> str:
    """The error's own words, then what to do about it, then (from a command) its usage."""
    text = exc.render(fact)
    text = f"{ERROR_MARK} {text[:1].upper()}{text[1:]}"
    if isinstance(exc, NotLinked):
        if exc.acting:
            text += f". Ask an admin to run `/lead link @you STAFF_ID backend={exc.backend}`"
        else:
            text += f". An admin can link them: `/lead link @them STAFF_ID backend={exc.backend}`"
    elif exc.usage and exc.field in OPTION_HINTS:
        text += f": {OPTION_HINTS[exc.field]}"
    if exc.usage:
        text += f"\nUsage: `{exc.usage}`"
    return text


def error_plain(message: str, usage: str | None = None) -> str:
    """An error of the Slack side's own (no domain facts), in the same shape."""
    text = f"{ERROR_MARK} {message[:1].upper()}{message[1:]}"
    if usage:
        text += f"\nUsage: `{usage}`"
    return text


QUEUED_MARK = ":hourglass_flowing_sand:"


def queued_mrkdwn(exc: LeadError) -> str:
    """A write that is in the outbox: the same words from every command, button and form."""
    text = exc.render(fact)
    return f"{QUEUED_MARK} {text[:1].upper()}{text[1:]}"
