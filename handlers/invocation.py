"""One `/lead` call as the subcommands see it, and what they share to read their arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from handlers.context import Deps, Reply
from handlers.parsing import Token, plain
from services.audit import Actor
from services.errors import Code, Invalid, LeadError
from services.leads import LeadService
from services.when import parse_when


@dataclass
class Invocation:
    deps: Deps
    user: str
    channel: str | None
    text: str  # the arguments after the subcommand, normalised
    tokens: list[Token]
    trigger_id: str
    response_url: str | None

    @property
    def actor(self) -> Actor:
        return self.deps.actor(self.user)

    @property
    def service(self) -> LeadService:
        return self.deps.service

    def tz(self) -> str | None:
        return self.deps.timezones.of(self.user)

    def plain(self, slack_text: str) -> str:
        """What the person typed, without Slack's markup: how it is stored and sent to the CRM."""
        return plain(slack_text, self.deps.names.of)

    def when(self, text: str, usage: str, *, future: bool = True) -> datetime:
        """``text`` read as services/when.py reads dates; ``future``: a time that has passed is refused."""
        try:
            return parse_when(text, self.tz(), self.service.clock(), order=self.deps.date_order, future=future)
        except LeadError as exc:
            raise exc.with_usage(usage) from None


@dataclass(frozen=True)
class Subcommand:
    usage: str
    summary: str
    run: Callable[[Invocation], Reply | None] | None  # None: answered in the ack, or not available yet
    more: tuple[tuple[str, str], ...] = ()  # further usage lines for help


def need_args(inv: Invocation, usage: str, at_least: int, at_most: int | None = None) -> None:
    count = len(inv.tokens)
    if count < at_least:
        wanted = [w for w in usage.split()[2:] if w.isupper() or "|" in w and not w.startswith(("[", "("))]
        missing = " ".join(wanted[count:at_least]) or "something"
        raise Invalid("{missing} is missing", usage=usage, missing=Code(missing))
    if at_most is not None and count > at_most:
        extra = " ".join(t.text for t in inv.tokens[at_most:])
        raise Invalid("I don't know what to do with {extra}", usage=usage, extra=Code(extra[:200]))
