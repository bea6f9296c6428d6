"""Email and phone validation: leads are only as useful as their contact details."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.errors import Code, LeadError


def normalize_email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise LeadError("{text} is not a valid email address: {reason}", text=Code(text), reason=str(exc)) from None


EXTENSION_MARK = " ext. "  # how a kept extension follows the E.164 number (``+14155550132 ext. 22``)
REGION_ALIASES = {"UK": "GB", "EN": "GB"}  # what people type for a country whose ISO code differs


def normalize_phone(text: str, default_region: str | None = None) -> str:
    """Return the number in E.164 (``+919895012345``), with its extension if one was typed (`` ext. 22``).

    A number without ``+`` is read as ``default_region``'s (``LEADBOT_PHONE_REGION``); the
    errors give an example in the format of the region in force and name the setting.
    """
    international = text.strip().startswith("+")
    region = None if international else default_region
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        if region is None and not international:
            raise LeadError(
                "{text} has no country code: type it as {example}, or an admin can set LEADBOT_PHONE_REGION"
                " so numbers without one are read as that country's",
                text=Code(text),
                example=Code("+44 20 7946 0958"),
            ) from None
        raise LeadError("{text} is not a phone number ({hint})", text=Code(text), hint=_hint(region)) from None
    if not phonenumbers.is_valid_number(number):
        raise LeadError("{text} is not a valid phone number ({hint})", text=Code(text), hint=_hint(region))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{e164}{EXTENSION_MARK}{number.extension}" if number.extension else e164


def _hint(region: str | None) -> str:
    """An example number in the format of ``region`` (the one LEADBOT_PHONE_REGION names), else an international one."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) if region else None
    if example is None:
        return "e.g. +44 20 7946 0958"
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    setting = f"without + it is read as a {region} number, as LEADBOT_PHONE_REGION says"
    return f"e.g. {national} or {international}; {setting}"


def phone_region_problem(value: str) -> str | None:
    """Why ``value`` cannot be LEADBOT_PHONE_REGION (None: it can): an ISO 3166 code phonenumbers knows."""
    code = value.strip().upper()
    if code in phonenumbers.SUPPORTED_REGIONS:
        return None
    if code in REGION_ALIASES:
        return f"{code} is not an ISO 3166 country code; did you mean {REGION_ALIASES[code]}?"
    return f"{code[:10]} is not a country code phone numbers can be read for"


def without_extension(phone: str | None) -> str | None:
    """The number alone, for systems that take E.164 only."""
    return phone.split(EXTENSION_MARK, 1)[0] if phone else phone


EXTENSION_RE = re.compile(r"\s*(?:ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.I)


def looks_like_phone(text: str) -> bool:
    number = EXTENSION_RE.sub("", text)
    digits = sum(ch.isdigit() for ch in number)
    return digits >= 6 and all(ch.isdigit() or ch in "+-() ." for ch in number)


def looks_like_email(text: str) -> bool:
    return "@" in text and not text.startswith("<@") and not text.startswith("@")


# -- finding a lead's details in free text (a Slack message someone turns into a lead) ---------

EMAIL_RE = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
NAME_WORD = r"[A-Z][a-zà-ÿ'’\-]+"
NAME = rf"{NAME_WORD}(?:[ \t]+{NAME_WORD}){{0,3}}"
LABELLED_NAME_RE = re.compile(
    r"(?im)^[ \t*_]*(?:name|full name|lead|contact|customer|client)[ \t*_]*[:\-][ \t*_]*(.+)$"
)
INTRODUCED_NAME_RE = re.compile(rf"\b(?:[Ff]rom|[Nn]amed|[Cc]alled|[Ii]s|[Ww]ith|[Cc]ontact|[Mm]eet)[ \t]+({NAME})")
NAME_BEFORE_CONTACT_RE = re.compile(rf"({NAME})[ \t]*[,(<\-–—:]?[ \t]*$")
NOT_NAMES = frozenset(
    {"Hi", "Hello", "Hey", "Thanks", "Please", "New", "Lead", "The", "Call", "Email", "Phone", "Mobile"}
)


@dataclass(frozen=True)
class FoundContact:
    name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164


def find_contact(text: str, default_region: str | None = None) -> FoundContact:
    """The first valid email and phone number in ``text``, and a name for the person if one stands out.

    A name is taken, in this order, from a ``Name: …`` line, from words like
    "from Jane Doe", from capitalised words just before the email or phone,
    or from an email address like ``jane.doe@…``. Anything unsure is left out:
    the person creating the lead sees the form and fills in the rest.
    """
    email = email_at = None
    for match in EMAIL_RE.finditer(text):
        try:
            email = normalize_email(match.group().strip(".'"))
        except LeadError:
            continue
        email_at = match.start()
        break
    phone = phone_at = None
    for match in phonenumbers.PhoneNumberMatcher(text, (default_region or "ZZ").upper()):
        phone = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        phone_at = match.start
        break
    return FoundContact(
        name=_find_name(text, [at for at in (email_at, phone_at) if at is not None], email), email=email, phone=phone
    )


def _find_name(text: str, contact_at: list[int], email: str | None) -> str | None:
    labelled = LABELLED_NAME_RE.search(text)
    if labelled:
        name = re.split(r"[,;|<(]| - ", labelled.group(1))[0].strip(" *_")
        if name and not EMAIL_RE.search(name) and sum(ch.isdigit() for ch in name) < 3:
            return name[:150]
    for match in INTRODUCED_NAME_RE.finditer(text):
        name = _drop_non_names(match.group(1))
        if name:
            return name
    for at in sorted(contact_at):
        line_start = text.rfind("\n", 0, at) + 1
        before = NAME_BEFORE_CONTACT_RE.search(text[line_start:at])
        if before:
            name = _drop_non_names(before.group(1))
            if name and " " in name:
                return name
    if email:
        parts = [p for p in re.split(r"[._-]", email.split("@")[0]) if p.isalpha()]
        if len(parts) >= 2:
            return " ".join(p.capitalize() for p in parts[:3])
    return None


def _drop_non_names(words: str) -> str | None:
    kept = [w for w in words.split() if w not in NOT_NAMES]
    return " ".join(kept) or None
