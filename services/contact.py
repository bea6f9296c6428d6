"""Email and phone validation: leads are only as useful as their contact details."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.errors import LeadError


def normalize_email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise LeadError(f"`{text}` is not a valid email address: {exc}") from None


def normalize_phone(text: str, default_region: str | None = None) -> str:
    """Return the number in E.164 (``+919895012345``)."""
    region = None if text.strip().startswith("+") else default_region
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        if region is None and not text.strip().startswith("+"):
            raise LeadError(f"`{text}` needs a country code, e.g. `+14155550123`") from None
        raise LeadError(f"`{text}` is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise LeadError(f"`{text}` is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def looks_like_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return digits >= 6 and all(ch.isdigit() or ch in "+-() ." for ch in text)


def looks_like_email(text: str) -> bool:
    return "@" in text and not text.startswith("<@") and not text.startswith("@")
