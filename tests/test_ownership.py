"""The default ownership rule: a lead's owner and admins reassign and close it; anyone takes an unassigned one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, bot_settings, new_lead
from tests.slack import text_of


@pytest.fixture
def settings(tmp_path, fake_slack, monkeypatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_ownership="owner")


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    for user, staff in ((ADMIN, "ada"), (REP, "ana"), (OTHER, "bob")):
        service.people.link(admin, user, staff)
    return service


def shown(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def dms_to(slack, user: str) -> list[str]:
    return [c.body["text"] for c in slack.fake.received("api", "chat.postMessage") if c.body.get("channel") == user]


def card_actions(blocks) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def unassigned(service, ref: str) -> None:
    service.backends.get("local").leads.update(int(ref.split(":")[1]), at=datetime.now(UTC), owner=None)


def test_someone_else_cannot_take_or_reassign_an_owned_lead(slack, linked):
    ref = new_lead(linked, by=REP)  # ana's
    slack.command(f"assign {ref} me", user=OTHER)
    assert f"This is <@{REP}>'s lead: only they or a Leadbot admin can reassign it; ask them" in shown(slack)
    slack.command(f"assign {ref} <@{OTHER}|bob>", user=OTHER)
    assert "only they or a Leadbot admin can reassign it" in shown(slack)
    assert linked.get(ref).owner == "ana"


def test_the_owner_and_admins_reassign_and_the_previous_owner_is_told(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"assign {ref} <@{OTHER}|bob>", user=REP)  # the owner gives it away
    assert linked.get(ref).owner == "bob"
    assert dms_to(slack, OTHER)[-1].startswith(f"<@{REP}> assigned you")
    assert dms_to(slack, REP) == []  # she did it herself
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)  # an admin moves it back
    assert linked.get(ref).owner == "ana"
    assert dms_to(slack, OTHER)[-1] == f"<@{ADMIN}> gave <@{REP}> your lead Ada Lovelace (local:1)"


def test_an_unassigned_lead_can_be_taken_and_the_taker_is_the_owner(slack, linked):
    ref = new_lead(linked, by=REP)
    unassigned(linked, ref)
    slack.command(f"assign {ref} <@{REP}|ana>", user=OTHER)  # not for someone else
    assert "Only admins can give an unassigned lead to someone else; take it yourself" in shown(slack)
    slack.command(f"show {ref}", user=OTHER)
    card = slack.last_reply()["blocks"]
    assert "lead_assign_me" in card_actions(card)
    slack.click(card, "lead_assign_me", user=OTHER)
    assert linked.get(ref).owner == "bob"


def test_assign_to_me_is_offered_only_where_it_can_work(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"show {ref}", user=REP)
    assert "lead_assign_me" not in card_actions(slack.last_reply()["blocks"])  # owned: nobody takes it so
    assert "lead_assign_to" in card_actions(slack.last_reply()["blocks"])


def test_closing_is_for_the_owner_and_admins(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"status {ref} won", user=OTHER)
    assert "only they or a Leadbot admin can close it" in shown(slack)
    assert linked.get(ref).status == "new"
    slack.command(f"status {ref} contacted", user=OTHER)  # working it is not closing it
    assert linked.get(ref).status == "contacted"
    slack.command(f"status {ref} won", user=REP)
    assert linked.get(ref).status == "won"
    other = new_lead(linked, "Grace Hopper", by=REP, email="grace@example.com")
    slack.command(f"status {other} lost", user=ADMIN)
    assert linked.get(other).status == "lost"


def test_a_misspelt_ownership_setting_is_one_line_at_start_up(tmp_path, fake_slack, monkeypatch):
    from bot.config import ConfigError

    with pytest.raises(ConfigError, match="LEADBOT_OWNERSHIP is invalid .*: expected owner .* or open"):
        bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_ownership="owners")


def dm_blocks_to(slack, user: str) -> list:
    posts = [c.body for c in slack.fake.received("api", "chat.postMessage") if c.body.get("channel") == user]
    blocks = posts[-1]["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def test_someone_refused_asks_the_owner_who_gives_it_to_them(slack, linked):
    ref = new_lead(linked, by=REP)  # ana's
    slack.command(f"assign {ref} me", user=OTHER)
    refusal = slack.last_reply()
    assert "lead_ask_owner" in card_actions(refusal["blocks"])
    slack.click(refusal["blocks"], "lead_ask_owner", user=OTHER, ephemeral=True)
    assert f"Asked <@{REP}> for Ada Lovelace ({ref}): their answer comes as a DM." in shown(slack)
    request = dm_blocks_to(slack, REP)
    assert dms_to(slack, REP)[-1] == f"<@{OTHER}> asks for your lead *Ada Lovelace* ({ref}). Give it to them?"
    assert card_actions(request) == ["lead_give", "lead_keep"]
    assert linked.get(ref).owner == "ana"  # nothing changes until she answers
    slack.click(request, "lead_give", user=REP, channel=f"D{REP[1:]}")
    assert linked.get(ref).owner == "bob"
    answered = slack.last_reply()
    assert answered["replace_original"] is True
    assert answered["text"] == f"You gave *Ada Lovelace* ({ref}) to <@{OTHER}>."
    assert dms_to(slack, OTHER)[-1].startswith(f"<@{REP}> assigned you")


def test_the_owner_keeps_it_and_the_one_who_asked_is_told(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"assign {ref} me", user=OTHER)
    slack.click(slack.last_reply()["blocks"], "lead_ask_owner", user=OTHER, ephemeral=True)
    slack.click(dm_blocks_to(slack, REP), "lead_keep", user=REP, channel=f"D{REP[1:]}")
    assert linked.get(ref).owner == "ana"
    assert dms_to(slack, OTHER)[-1] == f"<@{REP}> is keeping *Ada Lovelace* ({ref}) for now."
    assert slack.last_reply()["text"] == f"You kept *Ada Lovelace* ({ref}); <@{OTHER}> was told."


def test_only_the_owner_can_give_a_lead_away_from_the_request(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"assign {ref} me", user=OTHER)
    slack.click(slack.last_reply()["blocks"], "lead_ask_owner", user=OTHER, ephemeral=True)
    slack.click(dm_blocks_to(slack, REP), "lead_give", user=OTHER, channel=f"D{REP[1:]}")  # the asker presses it
    assert linked.get(ref).owner == "ana"
    assert "only they or a Leadbot admin can reassign it" in shown(slack)


def test_no_ask_button_when_giving_someone_elses_lead_to_a_third_person(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.command(f"assign {ref} <@{ADMIN}|ada>", user=OTHER)
    assert "lead_ask_owner" not in card_actions(slack.last_reply().get("blocks") or [])


def test_asking_for_your_own_lead_or_one_nobody_on_slack_owns_says_so(slack, linked):
    ref = new_lead(linked, by=REP)
    slack.click(ask_message(ref), "lead_ask_owner", user=REP, ephemeral=True)  # hers already
    assert f"Nothing to ask: `{ref}` is yours already" in shown(slack)
    linked.people.unlink(Actor(slack_user=ADMIN, is_admin=True), REP, "local")  # ana leaves Slack's links
    slack.click(ask_message(ref), "lead_ask_owner", user=OTHER, ephemeral=True)
    assert "has nobody on Slack to ask for it" in shown(slack)
    assert dms_to(slack, REP) == []


def ask_message(ref: str) -> list:
    from handlers.blocks import ask_owner_button

    return [ask_owner_button(ref)]
