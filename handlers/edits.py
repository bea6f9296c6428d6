"""The new values of an edited lead, checked as a new lead's are (the command and the Edit form share this)."""

from __future__ import annotations

from services.contact import normalize_email, normalize_phone
from services.errors import Code, Invalid


def checked_edit(typed: dict[str, str], phone_region: str | None) -> dict[str, str]:
    """New values as a new lead's are checked: an email normalised, a phone in E.164, nothing left empty."""
    changes: dict[str, str] = {}
    for word, value in typed.items():
        if not value:
            raise Invalid("give a value after {key}", field=word, key=Code(f"{word}="))
        if word == "email":
            value = normalize_email(value)
        elif word == "phone":
            value = normalize_phone(value, phone_region)
        elif len(value) > 150:
            raise Invalid("the {word} is {n} characters; the limit is 150", field=word, word=word, n=len(value))
        changes[word] = value
    return changes
