"""Finding leads by what a person remembers of them: part of a name, an email, a phone, a company.

One rule for every backend and store, so that `/lead find` answers the same
everywhere: the text is split into words; each word must begin a word of the
lead's name, email, phone or company (``lead_for``). A text that reads as a
phone number (digits with ``+ - ( ) .`` and spaces, at least four digits) is
matched on digits alone against the end of the lead's number, so
``(415) 555-0123``, ``4155550123`` and ``+1 415 555 0123`` find the same lead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from services.errors import Invalid
from services.models import Lead

WORD_RE = re.compile(r"[^\W_]+")  # as SQLite FTS5's unicode61 splits words
PHONE_CHARS = frozenset("0123456789+-(). ")
MIN_PHONE_DIGITS = 4
MAX_TEXT = 200
SUFFIX_FROM = 4  # a phone is findable by its last 4 digits or more


def fold(text: str) -> str:
    """Case and accents away (``José`` → ``jose``), as FTS5's unicode61 tokenizer folds them."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words_of(text: str | None) -> list[str]:
    return WORD_RE.findall(fold(text or ""))


@dataclass(frozen=True)
class Terms:
    """What to look for: words (each a prefix of some word of the lead) or a phone's digits."""

    words: tuple[str, ...] = ()
    digits: str | None = None


def terms(text: str) -> Terms:
    """The search ``text`` as terms; ``Invalid`` when nothing in it can be searched for."""
    cleaned = text.strip()[:MAX_TEXT]
    digits = "".join(ch for ch in cleaned if ch.isdigit())
    if cleaned and set(cleaned) <= PHONE_CHARS and len(digits) >= MIN_PHONE_DIGITS:
        return Terms(digits=digits.lstrip("0") or digits)
    words = tuple(dict.fromkeys(words_of(cleaned)))[:8]
    if not words:
        raise Invalid("give some of the lead's name, email, phone or company to look for", field="text")
    return Terms(words=words)


def phone_suffixes(phone: str | None) -> list[str]:
    """The number's digits and every ending of them from ``SUFFIX_FROM`` digits: what a phone search matches."""
    number = (phone or "").split(" ext. ", 1)[0]  # services.contact.EXTENSION_MARK: the extension is not the number
    digits = "".join(ch for ch in number if ch.isdigit())
    return [digits[i:] for i in range(0, max(0, len(digits) - SUFFIX_FROM + 1))]


def searchable_words(lead: Lead) -> list[str]:
    """The words of the lead a word search looks through."""
    return [w for value in (lead.name, lead.email, lead.lead_for) for w in words_of(value)]


def score(lead: Lead, wanted: Terms) -> int:
    """How well ``lead`` matches (0: not at all); more for whole words and for the name."""
    if wanted.digits is not None:
        suffixes = phone_suffixes(lead.phone)
        if not suffixes:
            return 0
        if wanted.digits in suffixes:
            return 100
        return 50 if any(s.startswith(wanted.digits) for s in suffixes) else 0
    words = searchable_words(lead)
    name_words = words_of(lead.name)
    total = 0
    for term in wanted.words:
        if not any(w.startswith(term) for w in words):
            return 0
        total += 2 if term in words else 1
        total += 2 if any(w.startswith(term) for w in name_words) else 0
    return total


def ranked(leads: list[Lead], wanted: Terms) -> list[Lead]:
    """The leads that match, best first (ties: newest first)."""
    scored = [(score(lead, wanted), lead) for lead in leads]
    kept = [(s, lead) for s, lead in scored if s > 0]
    kept.sort(key=lambda pair: (-pair[0], -int(pair[1].id) if pair[1].id.isdigit() else 0))
    return [lead for _, lead in kept]
