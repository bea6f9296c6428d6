"""Email and phone validation: leads are only as useful as their contact details."""

from __future__ import annotations

import re
from collections.abc import Iterator
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

# Slack's longest message; longer text (a signed request can carry 1 MB) is read this far only.
MAX_TEXT = 40_000
# An address's local part is at most 64 characters and its domain at most 255 (RFC 5321): each "@"
# is read within that reach, so a message is scanned in linear time whatever it holds. Searching
# the whole text for ``[\w.+'-]+@…`` instead started again at every character: 3.8 s at 40,000.
LOCAL_MAX, DOMAIN_MAX = 64, 255
LOCAL_RE = re.compile(r"[\w.+'-]{1,65}")  # matched on the reversed text before an "@"
DOMAIN_RE = re.compile(r"[\w-]{1,63}(?:\.[\w-]{1,63}){1,127}")
MAX_EMAILS_TRIED = 20  # candidates validated before giving up on the text
# A run of digits and phone punctuation this long is no phone number; the matcher is not shown it
# (it took 7 s over 40,000 digits).
PHONE_RUN_RE = re.compile(r"[\d+()\-. \t/]{41,}")
NAME_BEFORE_MAX = 200  # the part of a line before an email or phone looked at for a name
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
    text = text[:MAX_TEXT]
    email = email_at = None
    for tried, (start, candidate) in enumerate(email_candidates(text)):
        if tried >= MAX_EMAILS_TRIED:
            break
        try:
            email = normalize_email(candidate)
        except LeadError:
            continue
        email_at = start
        break
    phone = phone_at = None
    shown = PHONE_RUN_RE.sub(lambda m: " " * len(m.group()), text)  # the same offsets, long runs blanked
    for match in phonenumbers.PhoneNumberMatcher(shown, (default_region or "ZZ").upper()):
        phone = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        phone_at = match.start
        break
    return FoundContact(
        name=_find_name(text, [at for at in (email_at, phone_at) if at is not None], email), email=email, phone=phone
    )


def email_candidates(text: str) -> Iterator[tuple[int, str]]:
    """Where each thing shaped like an email address starts, and the thing, left to right.

    Each "@" is looked at once, within an address's reach on either side; a
    local part or domain longer than an address can have is no address.
    """
    at = text.find("@")
    while at != -1:
        reach = at - LOCAL_MAX - 2  # the reversed slice's stop: 65 characters, the local part and one more
        before = text[at - 1 : reach if reach >= 0 else None : -1] if at else ""
        local = LOCAL_RE.match(before)
        domain = DOMAIN_RE.match(text, at + 1, min(len(text), at + 2 + DOMAIN_MAX))
        if local and domain and local.end() <= LOCAL_MAX and domain.end() - at - 1 <= DOMAIN_MAX:
            start = at - local.end()
            yield start, text[start : domain.end()].strip(".'")
        at = text.find("@", at + 1)


def _find_name(text: str, contact_at: list[int], email: str | None) -> str | None:
    labelled = LABELLED_NAME_RE.search(text)
    if labelled:
        name = re.split(r"[,;|<(]| - ", labelled.group(1))[0].strip(" *_")
        if name and "@" not in name and sum(ch.isdigit() for ch in name) < 3:
            return name[:150]
    for match in INTRODUCED_NAME_RE.finditer(text):
        name = _drop_non_names(match.group(1))
        if name:
            return name
    for at in sorted(contact_at):
        line_start = max(text.rfind("\n", 0, at) + 1, at - NAME_BEFORE_MAX)
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
