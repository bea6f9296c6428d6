"""Failures the user caused or can act on.

``LeadError`` (and its subclasses) carry a message that is safe to show a
user as it is. Any other exception is a bug or an outage: it is logged with
its traceback and the user gets a generic message with a reference to the log
line. Never put secrets, URLs with credentials or raw backend bodies in a
``LeadError`` message.
"""

from __future__ import annotations


class LeadError(Exception):
    """A known business failure; ``str(error)`` is shown to the user."""

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class NotFound(LeadError):
    """The lead or link does not exist."""


class NotAllowed(LeadError):
    """The acting user may not do this."""


class Unsupported(LeadError):
    """The backend cannot do this at all."""


class NoChange(LeadError):
    """The lead is already as asked (a double click, or two people at once): nothing was written."""


class LeadGone(NotFound):
    """The backend has no lead by this ID (deleted, or never there): a card for it is stale."""


class BackendGone(Unsupported):
    """The reference names a backend that is not configured here (any more): a card for it is stale."""


class Queued(LeadError):
    """The backend could not take the write now; it is in the outbox and will be retried."""


class Duplicate(LeadError):
    """The backend already has this lead (same email); ``existing_ref`` names it when known."""

    def __init__(self, message: str, *, existing_ref: str | None = None) -> None:
        super().__init__(message)
        self.existing_ref = existing_ref


class Unreachable(LeadError):
    """A backend did not answer usefully (timeout, refused, 5xx, 429): trying later may work."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(LeadError):
    """A backend refused the request (a 4xx other than 429): sending it again will not help."""
