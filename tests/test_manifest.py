"""manifest.yml and the code agree: commands, interactivity, scopes, and every handler reachable."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bot import slackrequests as sr
from handlers import EVENT_SCOPES, EVENT_TYPES
from handlers.blocks import (
    ACTION_IDS,
    CALLBACK_IDS,
    SHORTCUT_IDS,
    CardData,
    ask_owner_button,
    lead_card,
    lead_request,
)
from handlers.command import SUBCOMMANDS
from handlers.unhandled import OUT_OF_DATE
from services.models import Opportunity, OpportunityPage
from tests.conftest import new_lead
from tests.slack import DESIGN_SUBCOMMANDS, button_message

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

# The bot scope each Web API method needs (https://api.slack.com/methods); None: no scope.
SCOPE_OF = {
    "auth_test": None,
    "views_open": None,
    "views_update": None,
    "views_push": None,
    "views_publish": None,
    "users_info": "users:read",
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "conversations_open": "im:write",
    # Looking for a post whose answer was lost (bot/pacing.py): in a DM, a channel or a thread.
    "conversations_history": ("im:history", "channels:history", "groups:history"),
    "conversations_replies": ("im:history", "channels:history", "groups:history"),
}


def web_api_methods_used() -> set[str]:
    used = set()
    for folder in ("bot", "handlers", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("fakeslack.py", "console.py"):
                continue
            used |= set(re.findall(r"client\.([a-z]+_[A-Za-z]+)\(", path.read_text()))
    return used


def test_scopes_are_exactly_the_ones_used():
    used = web_api_methods_used()
    assert used, "the scan found no Web API calls at all"
    unknown = used - SCOPE_OF.keys()
    assert not unknown, f"add these methods and their scopes to SCOPE_OF: {unknown}"
    scopes = [SCOPE_OF[m] for m in used]
    needed = {scope for s in scopes for scope in (s if isinstance(s, tuple) else (s,)) if scope is not None}
    needed |= {"commands"} | set(SCOPES_BEYOND_METHODS) | set(EVENT_SCOPES)
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


# Scopes that widen what a method may do rather than unlock one, and why we ask for them.
SCOPES_BEYOND_METHODS = {
    "chat:write.public": "thread replies under cards in public channels the bot was never invited to",
}


def test_manifest_declares_the_command_interactivity_and_socket_mode():
    commands = MANIFEST["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/lead"]
    assert commands[0]["should_escape"] is True  # mentions arrive as <@U…|name>
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True


def test_manifest_subscribes_to_exactly_the_events_handled(slack, linked):
    events = MANIFEST["settings"]["event_subscriptions"]
    assert events["request_url"] == MANIFEST["settings"]["interactivity"]["request_url"]
    assert sorted(events["bot_events"]) == sorted(EVENT_TYPES)
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    for event_type in EVENT_TYPES:
        event = {"type": event_type.split(".")[0], "user": "UREP1", "tab": "home", "channel": "C0SALES", "ts": "1.2"}
        assert slack.event(event).status_code == 200, event_type
    assert slack.fake.received("api", "views.publish")


def test_help_covers_every_subcommand_in_the_design():
    assert set(SUBCOMMANDS) == set(DESIGN_SUBCOMMANDS)


def test_every_declared_command_and_handled_id_is_reachable(slack, linked):
    for command in MANIFEST["features"]["slash_commands"]:
        request = sr.slash_command(
            "help", user="UADMIN", response_url="http://127.0.0.1:9/r", trigger_id="1.1", command=command["command"]
        )
        answer = slack.send(request)
        assert answer.status_code == 200 and "/lead new" in answer.text, command
    not_ours = sr.slash_command(
        "help", user="UADMIN", response_url="http://127.0.0.1:9/r", trigger_id="1.2", command="/leads"
    )
    answer = slack.send(not_ours)  # the loop above would notice a command nobody handles
    assert answer.status_code == 200 and "does not have this command" in answer.text
    for action_id in ACTION_IDS:
        value = "{}" if action_id == "lead_list_page" else "local:1"
        slack.fake.clear()
        assert slack.click(button_message(action_id, value), action_id).status_code == 200, action_id
        assert not any(OUT_OF_DATE[1:] in str(reply) for reply in slack.replies()), action_id
    for callback_id in CALLBACK_IDS:
        view = {"id": "V1", "type": "modal", "callback_id": callback_id, "blocks": [], "private_metadata": "{}"}
        assert slack.submit(view, {}).status_code == 200, callback_id
    shortcuts = MANIFEST["features"]["shortcuts"]
    assert sorted(s["callback_id"] for s in shortcuts) == sorted(SHORTCUT_IDS)
    for shortcut in shortcuts:
        assert shortcut["type"] == "message" and len(shortcut["description"]) <= 80
        assert slack.message_shortcut(shortcut["callback_id"], "hello").status_code == 200
    # and the check can fail: an id nobody handles is acked, and told it is out of date
    assert slack.click(button_message("nobody_handles_this"), "nobody_handles_this").status_code == 200
    assert OUT_OF_DATE[1:] in slack.last_reply()["text"]


def test_every_button_the_app_renders_is_handled_and_every_handler_is_rendered(slack, linked):
    for i in range(11):
        new_lead(linked, f"Lead {i}")
    new_lead(linked, "Due Lead", next_follow_up=datetime.now(UTC) - timedelta(hours=1))
    rendered: set[str] = set()
    rendered |= set(re.findall(r"'action_id': '([a-z_]+)'", str(slack.open_home()["blocks"])))
    slack.command("remind now")  # the digest DM
    (digest,) = [
        c.body
        for c in slack.fake.received("api", "chat.postMessage")
        if (c.body.get("metadata") or {}).get("event_type") == "leadbot_digest"
    ]
    rendered |= set(re.findall(r"'action_id': '([a-z_]+)'", str(digest["blocks"])))
    for text in ("new Ada Twin ada@example.com", "list", "show local:1"):  # the first: a duplicate warning
        slack.command(text)
        rendered |= set(re.findall(r"'action_id': '([a-z_]+)'", str(slack.last_reply()["blocks"])))
    # What only other backends' cards show: deals and departments (Getlead), opportunities (LeadSquared).
    other = lead_card(
        CardData(
            lead=linked.get("local:1"),
            backend_title="Getlead",
            status=None,
            statuses=[],
            owner_user=None,
            now=datetime.now(UTC),
            deals=True,
            departments=True,
            opportunities=OpportunityPage(
                opportunities=[Opportunity(id=str(n), name=f"Deal {n}") for n in range(5)], total=12, page=2, size=5
            ),
        )
    )
    rendered |= set(re.findall(r"'action_id': '([a-z_]+)'", str(other)))
    # What only a refusal and a DM show: asking a lead's owner for it, and the owner's answer.
    asked = [ask_owner_button("local:1"), *lead_request("asks", "local:1", "U0ASKER")]
    rendered |= set(re.findall(r"'action_id': '([a-z_]+)'", str(asked)))
    assert rendered == set(ACTION_IDS)
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_log_follow_up")
    slack.click(card, "lead_add_note")
    slack.click(card, "lead_edit")
    slack.message_shortcut("lead_add_to", "a message")
    slack.command("new")
    # The status modal opens only for backends that need a reason (tests/test_capillary_slack.py opens it),
    # the deal and department forms only for Getlead's leads (tests/test_getlead_slack.py opens them).
    others = {"lead_status", "lead_deal", "lead_department"}
    assert {v["callback_id"] for v in slack.opened_views()} == set(CALLBACK_IDS) - others
