"""Failures the user caused or can act on, with the facts to explain them.

::

    LeadError                 a known business failure, shown to the user
     ├── Invalid              what was given cannot be used (a date, an email, a field a backend needs)
     ├── NotFound             no such lead, link or backend
     │    └── LeadGone        the backend has no lead by this ID: a card for it is stale
     ├── NotAllowed           the acting user may not do this
     │    └── NotLinked       a person has no staff ID on a backend
     ├── Unsupported          the backend cannot do this at all
     │    └── BackendGone     the reference names a backend not configured here: a card for it is stale
     ├── NoChange             the lead is already as asked: nothing was written
     ├── Duplicate            the backend has this lead already (``existing_ref`` names it)
     ├── Queued               the backend could not take the write now; it is in the outbox
     ├── Unreachable          the backend did not answer usefully; trying later may work
     ├── MayHaveLanded        a queued write may or may not have reached a backend that cannot be asked
     └── Rejected             the backend refused; sending it again will not help

A ``LeadError`` carries a template and the facts that fill it: ``{name}``
placeholders whose values are plain text, ``Code`` (something typed or an
identifier, shown verbatim) or ``Person`` (a Slack user). The domain never
formats for a surface; whoever shows the error renders the facts its own
way (the Slack side as escaped mrkdwn with mentions, logs and the audit
trail as plain text), and adds its own hints and usage. ``field`` names the
input at fault (``email``, ``reason``, ``lead_for`` …), so a form can put
the error on that field and a command can name its option.

Any other exception is a bug or an outage: it is logged with its traceback
and the user gets a generic message with a reference to the log line. Never
put secrets, URLs with credentials or raw backend bodies in a ``LeadError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Code:
    """Something the user typed, or an identifier: shown exactly, never as markup."""

    text: str

    def __str__(self) -> str:
        return f"`{self.text}`"


@dataclass(frozen=True)
class Person:
    """A Slack user, by ID."""

    slack_user: str

    def __str__(self) -> str:
        return f"@{self.slack_user}"


Formatter = Callable[[Any], str]


class LeadError(Exception):
    """A known business failure; ``message`` is its plain-text wording."""

    def __init__(self, template: str, /, *, field: str | None = None, usage: str | None = None, **facts: Any) -> None:
        self.template = template
        self.facts = facts
        self.field = field
        self.usage = usage  # set by the surface that knows the right usage (a command's), never by the domain
        super().__init__(self.message)

    def render(self, fmt: Formatter) -> str:
        return self.template.format_map({name: fmt(value) for name, value in self.facts.items()})

    @property
    def message(self) -> str:
        return self.render(str)

    def with_usage(self, usage: str) -> LeadError:
        """The same error, saying how the command is used (the first usage given wins)."""
        if self.usage is None:
            self.usage = usage
        return self


class Invalid(LeadError):
    """What was given cannot be used as it is."""


class NotFound(LeadError):
    """The lead, link or backend does not exist."""


class LeadGone(NotFound):
    """The backend has no lead by this ID (deleted, or never there): a card for it is stale."""


class NotAllowed(LeadError):
    """The acting user may not do this."""


class OwnedElsewhere(NotAllowed):
    """The lead ``ref`` is someone else's; ``owner``: their Slack user, when the one refused may ask them for it."""

    def __init__(self, template: str, /, *, ref: str, owner: str | None, **facts: Any) -> None:
        self.ref = ref
        self.owner = owner
        super().__init__(template, **facts)


class NotLinked(NotAllowed):
    """``slack_user`` has no staff ID on ``backend``; ``acting``: they are the one trying to act."""

    def __init__(self, slack_user: str, backend: str, *, acting: bool) -> None:
        self.slack_user = slack_user
        self.backend = backend
        self.acting = acting
        if acting:
            super().__init__(
                "you are not linked to a staff ID in {backend}, so you can't change its leads", backend=backend
            )
        else:
            super().__init__("{who} is not linked to a staff ID in {backend}", who=Person(slack_user), backend=backend)


class Unsupported(LeadError):
    """The backend cannot do this at all."""


class BackendGone(Unsupported):
    """The reference names a backend that is not configured here (any more): a card for it is stale."""


class NoChange(LeadError):
    """The lead is already as asked (a double click, or two people at once): nothing was written."""


class Duplicate(LeadError):
    """The backend already has this lead; ``existing_ref`` names it when known."""

    def __init__(
        self, template: str, /, *, existing_ref: str | None = None, again: dict[str, Any] | None = None, **facts: Any
    ) -> None:
        self.existing_ref = existing_ref
        # Leadbot's own warning (not the backend's refusal): the create as asked, to make anyway if the person says so.
        self.again = again
        super().__init__(template, **facts)


class Queued(LeadError):
    """The backend could not take the write now; it is in the outbox and will be retried."""

    def __init__(self, template: str, /, *, write_key: str | None = None, **facts: Any) -> None:
        self.write_key = write_key
        super().__init__(template, **facts)


class Unreachable(LeadError):
    """A backend did not answer usefully (timeout, refused, 5xx, 429): trying later may work."""

    def __init__(
        self,
        template: str,
        /,
        *,
        retry_after: float | None = None,
        maybe_applied: bool = False,
        rate_limited: bool = False,
        **facts: Any,
    ) -> None:
        self.retry_after = retry_after
        # The request may have reached the backend (a timeout, a reply lost): check before sending it again.
        self.maybe_applied = maybe_applied
        # A 429: the backend did not take the request at all, so it may be sent again as it is (a write too).
        self.rate_limited = rate_limited
        self.checking = False  # it happened while looking whether a queued write landed, not while sending it
        super().__init__(template, **facts)


class MayHaveLanded(LeadError):
    """A queued write whose last try may have reached a backend that cannot be read: not sent again blindly."""


class Rejected(LeadError):
    """A backend refused the request (a 4xx other than 429): sending it again will not help."""
