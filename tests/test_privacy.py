"""Private by default: a customer's email and phone reach only those who should see them.

A card posted where everyone sees it (a channel) shows them only in channels listed in
``contact_channels``; elsewhere it has a Contact details button that shows them, ephemerally,
to staff linked on the lead's backend. A card only its reader sees (an ephemeral reply, a DM)
shows them to linked staff. Someone not linked sees what a preview shows. A staff ID that
was ever someone else's is linked again only by an admin.
"""

from __future__ import annotations

from bot.app import build_app, build_runtime
from bot.executor import InlineExecutor
from tests.conftest import ADMIN, OTHER, REP, STRANGER, bot_settings, new_lead
from tests.slack import DispatchTransport, SlackDriver, text_of

EMAIL, PHONE = "ada@example.com", "+919895012345"


def shown(reply: dict) -> str:
    return text_of(reply.get("blocks") or []) + str(reply.get("text"))


def lead_with_contacts(linked) -> str:
    return new_lead(linked, email=EMAIL, phone=PHONE)


def test_a_card_posted_in_a_channel_hides_contact_details(slack, linked):
    ref = lead_with_contacts(linked)
    slack.command(f"show {ref}", user=REP)
    card = slack.last_reply()
    assert card["response_type"] == "in_channel"
    assert EMAIL not in shown(card) and PHONE not in shown(card) and "Contact details" in shown(card)


def test_contact_details_are_shown_ephemerally_to_linked_staff_who_press_for_them(slack, linked):
    ref = lead_with_contacts(linked)
    slack.command(f"show {ref}", user=REP)
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_contact", user=REP)
    reply = slack.last_reply()
    assert EMAIL in shown(reply) and PHONE in shown(reply)
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    slack.click(card, "lead_contact", user=STRANGER)
    refused = slack.last_reply()
    assert EMAIL not in shown(refused) and "linked" in shown(refused) and refused["response_type"] == "ephemeral"


def test_an_unlinked_member_sees_only_what_a_preview_shows_and_only_they_see_it(slack, linked):
    ref = lead_with_contacts(linked)
    slack.command(f"show {ref}", user=STRANGER)
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral"
    assert EMAIL not in shown(reply) and PHONE not in shown(reply)
    assert "Ada Lovelace" in shown(reply) and "what a preview shows" in shown(reply)


def test_a_channel_configured_for_it_shows_contact_details_to_everyone(tmp_path, fake_slack, monkeypatch):
    settings = bot_settings(tmp_path, fake_slack, monkeypatch, config='contact_channels = ["C0SALES"]\n')
    runtime = build_runtime(settings, background=InlineExecutor())
    slack = SlackDriver(DispatchTransport(build_app(runtime)), fake_slack, lambda timeout=10: True)
    from services.audit import Actor

    for user, staff in ((ADMIN, "ada"), (REP, "ana")):
        runtime.service.people.link(Actor(slack_user=ADMIN, is_admin=True), user, staff)
    ref = lead_with_contacts(runtime.service)
    slack.command(f"show {ref}", user=REP, channel="C0SALES")
    assert EMAIL in shown(slack.last_reply())
    slack.command(f"show {ref}", user=REP, channel="C0ELSEWHERE")
    assert EMAIL not in shown(slack.last_reply())
    runtime.close()


def test_a_private_reply_to_linked_staff_shows_contact_details(slack, linked):
    ref = lead_with_contacts(linked)
    slack.command(f"note {ref} called", user=REP)
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral" and EMAIL in shown(reply)


def test_the_owners_dm_shows_contact_details_and_the_feed_does_not(slack, linked, runtime, fake_slack):
    from services.audit import Actor

    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    runtime.deps.feeds["local"] = "C0FEED"
    slack.command(f"new Bob Smith bob@example.com owner=<@{OTHER}|bob>", user=ADMIN)
    dm = fake_slack.messages[fake_slack.dm_channel(OTHER)][-1]
    posted = [c.body for c in fake_slack.received("api", "chat.postMessage")]
    feed = next(b for b in posted if b.get("channel") == "C0FEED")
    dm_body = next(b for b in posted if b.get("channel") == OTHER)
    assert "bob@example.com" in text_of(dm_body["blocks"]) and dm
    assert "bob@example.com" not in text_of(feed["blocks"]) and "Contact details" in text_of(feed["blocks"])


def self_linking(tmp_path, fake_slack, monkeypatch) -> tuple[SlackDriver, object]:
    settings = bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_self_link=True)
    runtime = build_runtime(settings, background=InlineExecutor())
    return SlackDriver(DispatchTransport(build_app(runtime)), fake_slack, lambda timeout=10: True), runtime


def test_a_staff_id_someone_else_held_is_relinked_only_by_an_admin(tmp_path, fake_slack, monkeypatch):
    slack, runtime = self_linking(tmp_path, fake_slack, monkeypatch)
    people = runtime.service.people
    slack.command("link ana", user=REP)
    assert people.staff_id(REP, "local") == "ana"
    slack.command(f"unlink <@{REP}|ana>", user=ADMIN)  # ana left
    slack.command("link ana", user=OTHER)  # and bob would inherit her leads
    assert people.staff_id(OTHER, "local") is None
    assert "linked to someone else before" in slack.last_reply()["text"]
    slack.command("link bob", user=OTHER)  # a staff ID nobody held is still theirs to take
    assert people.staff_id(OTHER, "local") == "bob"
    slack.command("link ana", user=REP)  # ana back: her own staff ID
    assert people.staff_id(REP, "local") == "ana"
    slack.command(f"unlink <@{REP}|ana>", user=ADMIN)
    slack.command(f"link <@{STRANGER}|cy> ana", user=ADMIN)  # an admin decides
    assert people.staff_id(STRANGER, "local") == "ana"
    runtime.close()
