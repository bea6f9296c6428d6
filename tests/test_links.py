"""Links are deliberate: no silent self-link for a forgotten @, replacing says what it replaced, unlink minds leads."""

from __future__ import annotations

import pytest

from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, new_lead
from tests.slack import text_of


def shown(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def test_a_forgotten_at_does_not_relink_the_admin(slack, linked):
    slack.command("link bob", user=ADMIN)  # meant @bob
    text = shown(slack)
    assert "That would replace your own link (`ada` in local); to link someone else, mention them" in text
    assert "`/lead link @name bob`" in text and "Usage:" in text
    assert linked.people.staff_id(ADMIN, "local") == "ada"


def test_replacing_a_link_needs_replace_yes_and_says_what_it_replaced(slack, linked):
    new_lead(linked, by=REP)
    new_lead(linked, "Grace Hopper", by=REP, email="grace@example.com")
    slack.command(f"link <@{REP}|ana> anita", user=ADMIN)
    text = shown(slack)
    assert f"<@{REP}> is linked as `ana` in local already (2 open leads under it)" in text
    assert "replace=yes" in text
    assert linked.people.staff_id(REP, "local") == "ana"
    slack.command(f"link <@{REP}|ana> anita replace=yes", user=ADMIN)
    assert f"Linked <@{REP}> to `anita` in local. This replaced `ana` (2 open leads under it)." in shown(slack)
    assert linked.people.staff_id(REP, "local") == "anita"


def test_unlink_with_open_leads_names_them_and_can_hand_them_over(slack, linked):
    first = new_lead(linked, by=REP)
    second = new_lead(linked, "Grace Hopper", by=REP, email="grace@example.com")
    slack.command(f"unlink <@{REP}|ana>", user=ADMIN)
    text = shown(slack)
    assert "still owns 2 open lead(s) in local" in text and first in text and second in text
    assert linked.people.staff_id(REP, "local") == "ana"
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    slack.command(f"unlink <@{REP}|ana> to=<@{OTHER}|bob>", user=ADMIN)
    assert f"Unlinked <@{REP}> from `ana` in local. Their 2 open lead(s) went to <@{OTHER}> first." in shown(slack)
    assert linked.get(first).owner == "bob" and linked.get(second).owner == "bob"
    assert linked.people.staff_id(REP, "local") is None


def test_unlink_keep_yes_leaves_the_leads_under_the_old_id(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"unlink <@{REP}|ana> keep=yes", user=ADMIN)
    assert f"Unlinked <@{REP}> from `ana`" in shown(slack)
    assert linked.get(ref).owner == "ana"


def test_someone_who_may_not_unlink_moves_no_leads(slack, linked):
    ref = new_lead(linked, by=ADMIN)
    slack.command(f"unlink <@{ADMIN}|ada> to=<@{REP}|ana>", user=REP)
    assert "only Leadbot admins can link or unlink other people" in shown(slack).replace("Only", "only")
    assert linked.get(ref).owner == "ada"


@pytest.mark.parametrize(
    ("staff", "expected"),
    [
        ('"  "', "give the staff ID"),
        ('"two words"', "one word, without spaces"),
        ("x" * 101, "at most 100 characters"),
        ("<!channel>", "looks like a Slack mention"),
        ("<@U999|zed>", "`@zed` looks like a Slack mention, not a staff ID"),
    ],
)
def test_staff_ids_are_checked(slack, linked, staff, expected):
    slack.command(f"link <@{OTHER}|bob> {staff}", user=ADMIN)
    assert expected in shown(slack) or expected[:1].upper() + expected[1:] in shown(slack)
    assert linked.people.staff_id(OTHER, "local") is None


def test_whoami_shows_the_settings(slack, linked):
    slack.command("notify off", user=REP)
    slack.command("whoami", user=REP)
    text = shown(slack)
    assert "Linked as: `ana` in local" in text and "Assignment DMs: off" in text and "Daily digest:" in text
