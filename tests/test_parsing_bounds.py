"""Parsing user text is linear and bounded: no input makes Leadbot scan it again and again.

Slack's longest message is 40,000 characters (a message shortcut brings one), and a signed
request can carry 1 MB of command text. Each parser of user text either reads the whole text
with a pattern that runs once over it, or looks only within a bounded reach of a landmark
(an email's "@"): that is the property checked here, with adversarial text, by recording
what each pattern is given. Times are printed by bench/fairness.py.
"""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import parsing
from handlers.parsing import MAX_COMMAND_TEXT, split_options, tokenize
from services import contact
from tests.conftest import REP

# Patterns that read the whole text, each once per call: their shape cannot backtrack more than
# a line (anchored at line starts, or at a keyword), so one pass is linear.
WHOLE_TEXT = {"LABELLED_NAME_RE", "INTRODUCED_NAME_RE", "PHONE_RUN_RE"}
REACH = contact.LOCAL_MAX + contact.DOMAIN_MAX + 2  # the most any other pattern may be shown

PIECES = st.sampled_from(
    ["a", "A", "Aaa ", "@", ".", "1", "+", "-", " ", "\n", "<", "|", ">", ":", "name:", "is ", "x@y.co", "'", "é"]
)
ADVERSARIAL = st.builds(
    lambda parts, repeat: "".join(parts) * repeat,
    st.lists(PIECES, min_size=1, max_size=6),
    st.integers(min_value=1, max_value=4000),
).map(lambda text: text[: contact.MAX_TEXT + 100])


class Recording:
    """A compiled pattern that records the length of text each call was given."""

    def __init__(self, name: str, pattern: re.Pattern[str], seen: list[tuple[str, int]]) -> None:
        self.name, self.pattern, self.seen = name, pattern, seen

    def _given(self, text: str, pos: int = 0, endpos: int | None = None) -> None:
        self.seen.append((self.name, min(len(text), endpos if endpos is not None else len(text)) - pos))

    def __getattr__(self, method: str):
        def call(*args, **kwargs):
            if method == "sub":  # (replacement, text)
                self._given(args[1])
            else:
                self._given(*args[:3])
            return getattr(self.pattern, method)(*args, **kwargs)

        return call


class Seen:
    """What the contact parser's patterns, its email validator and the phone matcher were given."""

    def __init__(self) -> None:
        self.patterns: list[tuple[str, int]] = []
        self.validated: list[str] = []
        self.matcher_given: list[str] = []

    def clear(self) -> None:
        self.patterns.clear()
        self.validated.clear()
        self.matcher_given.clear()


@pytest.fixture
def seen(monkeypatch) -> Seen:
    record = Seen()
    for name, value in vars(contact).items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(contact, name, Recording(name, value, record.patterns))
    real = contact.normalize_email
    monkeypatch.setattr(contact, "normalize_email", lambda text: record.validated.append(text) or real(text))
    real_matcher = phonenumbers.PhoneNumberMatcher

    def matcher(text, region):
        record.matcher_given.append(text)
        return real_matcher(text, region)

    monkeypatch.setattr(phonenumbers, "PhoneNumberMatcher", matcher)
    return record


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ADVERSARIAL)
def test_contact_extraction_looks_at_each_part_of_the_text_a_bounded_number_of_times(seen, text):
    seen.clear()
    contact.find_contact(text, "IN")
    whole = [(name, size) for name, size in seen.patterns if name in WHOLE_TEXT]
    near = [(name, size) for name, size in seen.patterns if name not in WHOLE_TEXT]
    assert len(whole) <= 3 and all(size <= contact.MAX_TEXT for _, size in whole)
    assert all(size <= REACH for _, size in near), max(near, key=lambda c: c[1])
    assert sum(size for _, size in near) <= REACH * (text.count("@") + 3)  # within reach of each "@", and 2 names
    assert len(seen.validated) <= contact.MAX_EMAILS_TRIED
    (given_to_matcher,) = seen.matcher_given
    assert len(given_to_matcher) <= contact.MAX_TEXT
    runs = re.findall(r"[\d+()\-. \t/]{41,}", given_to_matcher)
    assert not [run for run in runs if not run.isspace()]  # no run of digits the phone matcher could choke on


def test_an_address_is_found_whatever_comes_before_it_and_one_too_long_is_none():
    assert contact.find_contact("x" * 39_000 + " reach me at jane.doe@example.com").email == "jane.doe@example.com"
    assert contact.find_contact("a" * 65 + "@example.com").email is None  # a local part is at most 64
    assert contact.find_contact("a" * 64 + "@example.com").email == "a" * 64 + "@example.com"
    assert contact.find_contact("@example.com, then bob@example.org").email == "bob@example.org"
    assert contact.find_contact("call 9895012345" + " 1" * 30, "IN").phone is None  # a run of 60 is no number
    assert contact.find_contact("call 98950 12345 today", "IN").phone == "+919895012345"


WORDS = st.lists(st.text(st.characters(blacklist_characters='"“”„«»', blacklist_categories=["Z", "C"]), min_size=1))


@given(before=WORDS, value=WORDS)
def test_an_option_runs_on_to_the_next_option(before, value):
    bare = [w for w in before if "=" not in w and "<" not in w]
    words = [w for w in value if "=" not in w and "<" not in w]
    if not words:
        return
    _, tokens = tokenize(" ".join([*bare, "note=" + words[0], *words[1:], "source=web"]))
    found_bare, options = split_options(tokens, ("note", "source"), "usage")
    assert [t.text for t in found_bare] == bare
    assert options == {"note": " ".join(words), "source": "web"}


def test_command_text_beyond_slacks_limit_is_refused_in_the_ack(slack, linked, fake_slack):
    answer = slack.command("note local:1 " + "x " * (MAX_COMMAND_TEXT // 2), user=REP)
    assert "at most 40,000" in answer.json()["text"]
    assert not fake_slack.received("response")  # nothing ran after the ack
    with pytest.raises(parsing.Invalid):
        tokenize("x" * (MAX_COMMAND_TEXT + 1))


def test_a_date_longer_than_anyone_types_is_refused_before_it_is_read(slack, linked):
    from tests.conftest import new_lead

    ref = new_lead(linked)
    slack.command(f'followup {ref} next="{"1 " * 60}" called', user=REP)
    assert "too long to be a date" in slack.last_reply()["text"]


def test_a_message_of_slacks_longest_opens_the_form_with_what_it_holds(slack, linked):
    text = "x" * 39_950 + " from Jane Doe, jane.doe@example.com"
    assert len(text) <= contact.MAX_TEXT
    slack.message_shortcut("lead_from_message", text)
    (view,) = slack.opened_views()
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b.get("element")}
    assert (initial["name"], initial["email"]) == ("Jane Doe", "jane.doe@example.com")
