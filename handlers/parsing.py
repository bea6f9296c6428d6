"""Reading `/lead` text: tokens, @mentions and key=value options.

Double quotes group words (`note="met at the expo"`); single quotes do not,
because apostrophes are common in notes. Slack sends mentions escaped as
``<@U123|ana>`` (the manifest sets ``should_escape``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import Code, Invalid

# Slack's longest message, and so the longest command text a person can type; a signed request can
# carry more (1 MB), which is refused rather than read.
MAX_COMMAND_TEXT = 40_000
QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
# A token is a run of non-space characters, quoted stretches and Slack's <…> markup (a mention's
# label may hold spaces: <@U123|Ana Maria>).
TOKEN_RE = re.compile(r'(?:<[^<>]*>|[^\s"<]+|"[^"]*"|<)+')
MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
OPTION_RE = re.compile(r"^([A-Za-z_]+)=(.*)$", re.S)


@dataclass(frozen=True)
class Token:
    text: str  # quotes removed
    raw: str
    start: int
    end: int


def tokenize(text: str) -> tuple[str, list[Token]]:
    """Return the normalised text and its tokens; an unclosed quote is a usage error."""
    if len(text) > MAX_COMMAND_TEXT:
        raise Invalid(too_long(len(text)))
    normalised = text.translate(QUOTES).strip()
    if normalised.count('"') % 2:
        raise Invalid('a double quote (") is not closed')
    tokens = [Token(m.group().replace('"', ""), m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(normalised)]
    return normalised, tokens


def too_long(length: int) -> str:
    return f"that /lead text is {length:,} characters long; it can be at most {MAX_COMMAND_TEXT:,} (Slack's limit)"


def user_id(token: str, actor: str) -> str:
    if token.lower() == "me":
        return actor
    match = MENTION_RE.match(token)
    if match:
        return match.group(1)
    raise Invalid(
        "{value} is not a person: mention them with @ (pick them from Slack's list) or say {me}",
        value=Code(token),
        me=Code("me"),
    )


def is_user(token: str) -> bool:
    return token.lower() == "me" or bool(MENTION_RE.match(token))


def option(token: Token) -> tuple[str, str] | None:
    match = OPTION_RE.match(token.text)
    return (match.group(1).lower(), match.group(2)) if match else None


def split_options(tokens: list[Token], allowed: tuple[str, ...], usage: str) -> tuple[list[Token], dict[str, str]]:
    """Split bare tokens from key=value ones; bare tokens after a key continue its value.

    Each value's words are joined once at the end: adding them one by one copied the
    value so far for every word, quadratic in the text (20 s for 1 MB).
    """
    bare: list[Token] = []
    words: dict[str, list[str]] = {}
    current: list[str] | None = None
    for token in tokens:
        pair = option(token)
        if pair:
            key, value = pair
            if key not in allowed:
                keys = ", ".join(f"{k}=" for k in allowed)
                raise Invalid(
                    "{key} is not an option here (options: {keys})", usage=usage, key=Code(f"{key}="), keys=keys
                )
            if key in words:
                raise Invalid("{key} is given twice", usage=usage, key=Code(f"{key}="))
            current = words[key] = [value]
        elif current is not None:
            current.append(token.text)
        else:
            bare.append(token)
    options = {
        key: values[0] if len(values) == 1 else " ".join(w for w in values if w).strip()
        for key, values in words.items()
    }
    return bare, options


SLACK_MARKUP_RE = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
SPECIALS = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def plain(slack_text: str, name_of: Callable[[str], str | None] = lambda user: None) -> str:
    """Slack's escaped text as the person typed and read it, for the CRM and the store.

    Entities become characters (``&amp;`` → ``&``); ``<@U…|ana>`` becomes ``@ana`` (the
    name from the mention, else ``name_of``, else the ID); ``<#C…|sales>`` ``#sales``;
    ``<!here>`` ``@here``; ``<url|label>`` ``label (url)``; ``<mailto:a@b>`` ``a@b``.
    Nothing of Slack's markup is left to ping anyone when the text is shown again
    (and whatever shows it escapes it once more).
    """

    def shown(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            user = target[1:]
            return "@" + (label or name_of(user) or user)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            if word in SPECIALS:
                return SPECIALS[word]
            return label or ""  # <!date^…|fallback>, <!subteam^S1|@team>: what Slack would show
        if target.startswith(("mailto:", "tel:")):
            return label or target.split(":", 1)[1]
        return f"{label} ({target})" if label and label != target else target

    text = SLACK_MARKUP_RE.sub(shown, slack_text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
