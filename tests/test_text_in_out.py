"""Text in, text out: what people type is stored and sent as they typed it, and shown literally, pinging nobody.

Slack escapes command text (``&amp;``, ``&lt;``, ``<@U…>``, ``<!channel>``, ``<url|label>``);
forms send it raw. Leadbot turns both into the same plain text where it enters, and
escapes every piece of someone's text it puts into mrkdwn on the way out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.audit import Actor
from tests.conftest import ADMIN, OTHER, REP, leadsapi_settings
from tests.slack import text_of

# As Slack sends each inside a command (should_escape), and what the person had typed.
HOSTILE = [
    ("<!channel> Evil", "@channel Evil"),
    ("<!here> please", "@here please"),
    ("<!everyone> now", "@everyone now"),
    ("<https://evil.example|click me>", "click me (https://evil.example)"),
    ("AT&amp;T &lt;3", "AT&T <3"),
    ("<@UVICTIM> asked", "@victim asked"),
    ("<#C0GENERAL|general> too", "#general too"),
]
# What must never appear in anything Leadbot posts, unless Leadbot itself means it.
PINGS = re.compile(r"<!(channel|here|everyone)|<https?://evil|<@UVICTIM|<#C0GENERAL")


def strings(node: Any) -> list[str]:
    """Every string Slack would read as mrkdwn (plain_text objects are shown literally: left out)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        if node.get("type") == "plain_text":
            return []
        # A button's or option's value is data sent back to Leadbot, never shown.
        return [s for k, v in node.items() if k not in ("value", "private_metadata") for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def posted(fake_slack) -> list[str]:
    """Every text of every message, card, view and reply Leadbot sent to Slack (fallback texts included)."""
    return [s for call in fake_slack.received() for s in strings(call.body)]


def assert_pings_nobody(fake_slack) -> None:
    found = [s for s in posted(fake_slack) if PINGS.search(s)]
    assert found == [], found[:3]


@pytest.fixture
def victim(fake_slack):
    fake_slack.add_user("UVICTIM", "victim")


@pytest.mark.parametrize(("sent", "typed"), HOSTILE)
def test_a_command_stores_what_was_typed_and_every_message_shows_it_literally(
    slack, linked, fake_slack, runtime, victim, sent, typed
):
    runtime.deps.feeds["local"] = "C0FEED"
    slack.open_home(REP)
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), OTHER, "bob")
    nxt = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    slack.command(f'new {sent} ada@example.com source={sent} note={sent} owner=<@{REP}|ana> next="{nxt}"')
    # Due an hour ago, for the digest (a next follow-up typed now must lie ahead).
    runtime.store.local.update(1, at=datetime.now(UTC), next_follow_up=datetime.now(UTC) - timedelta(hours=1))
    lead = linked.get("local:1")
    assert (lead.name, lead.source) == (typed, typed)
    assert [a.text for a in linked.activity(lead, 5)] == [typed]
    card = slack.last_reply()["blocks"]
    slack.click(card, "lead_add_note")
    slack.submit(slack.opened_views()[-1], {"text": f"also {sent}"})  # a form sends raw text: kept as it is
    slack.command(f"note local:1 {sent}", user=REP)
    slack.command(f"followup local:1 {sent}", user=REP)
    slack.command(f"assign local:1 <@{OTHER}|bob>", user=REP)  # the new owner's DM carries the card
    slack.command("previews on")
    slack.event({"type": "message", "channel": "C0SALES", "user": REP, "text": "about local:1", "ts": "1.2"})
    slack.command("remind now", user=OTHER)  # the digest
    slack.command("list")
    shown = [lead.name, *(a.text for a in linked.activity(lead, 10))]
    assert f"also {sent}" in shown and typed in shown
    assert_pings_nobody(fake_slack)
    # and what was shown is what was typed, as a Slack client renders it
    texts = "\n".join(posted(fake_slack))
    if "&" not in typed and "<" not in typed:
        assert typed in texts


def test_a_form_keeps_raw_text_and_the_card_escapes_it(slack, linked, fake_slack):
    slack.command("new")
    view = slack.opened_views()[-1]
    slack.submit(view, {"name": "<!channel> Evil & Co <b>", "email": "evil@example.com", "source": "<!here>"})
    lead = linked.get("local:1")
    assert (lead.name, lead.source) == ("<!channel> Evil & Co <b>", "<!here>")
    card = slack.last_reply()
    assert card["blocks"][0]["text"]["text"] == "<!channel> Evil & Co <b>"  # a header is plain text: shown as is
    assert "&lt;!channel&gt; Evil &amp; Co &lt;b&gt;" in card["text"]  # the fallback text is mrkdwn: escaped
    assert "*Source*\n&lt;!here&gt;" in text_of(card["blocks"])
    assert_pings_nobody(fake_slack)


def test_the_shortcut_fills_the_form_with_plain_text(slack, linked):
    slack.message_shortcut(
        "lead_from_message", "From <@UVICTIM|Jane Doe>: <mailto:jane@acme.example|jane@acme.example> AT&amp;T"
    )
    (view,) = slack.opened_views()
    initial = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert initial["email"] == "jane@acme.example"


def test_an_error_about_what_was_typed_shows_it_literally(slack, linked, fake_slack):
    slack.command("show <!channel>")
    slack.command("status local:1 <!here>")
    slack.command("new Ada <https://evil.example|x@y>")
    assert_pings_nobody(fake_slack)


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch)


def test_the_crm_gets_what_was_typed(slack, linked, api_fake, fake_slack, victim):
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), ADMIN, "ada", backend="leadsapi")
    slack.command("new AT&amp;T &lt;Corp&gt; att@example.com source=<!here> backend=leadsapi")
    (sent,) = [r.body for r in api_fake.requests("POST", "/leads")]
    assert (sent["firstName"], sent["lastName"], sent["source"]) == ("AT&T", "<Corp>", "@here")
    slack.command("note leadsapi:1 <@UVICTIM> says &lt;3 <https://evil.example|click>")
    comment = api_fake.requests("POST", "/leads/comments/1")[-1].body["content"]
    assert comment.startswith("@victim says <3 click (https://evil.example)")
    slack.command("show leadsapi:1")
    assert_pings_nobody(fake_slack)
    card = slack.last_reply()
    assert card["blocks"][0]["text"]["text"] == "AT&T <Corp>" and card["text"].startswith("AT&amp;T &lt;Corp&gt;")


def test_what_a_crm_says_is_shown_literally(slack, linked, fake_slack):
    local = linked.backends.get("local")
    from services.models import NewLead

    local.create(NewLead(name="<!channel> from the CRM", email="crm@example.com", source="<@UVICTIM>"), by="ada")
    slack.command("show local:1")
    slack.command("list")
    assert_pings_nobody(fake_slack)


def test_a_status_the_crm_names_with_markup_is_shown_literally(slack, linked, api_fake, fake_slack, monkeypatch):
    from tests.fakes import leadsapi

    hostile = [*leadsapi.STATUSES, {"id": 9, "name": "<!here> Hot", "primaryColor": "red", "secondaryColor": "pink"}]
    monkeypatch.setattr(leadsapi, "STATUSES", hostile)
    linked.people.link(Actor(slack_user=ADMIN, is_admin=True), ADMIN, "ada", backend="leadsapi")
    slack.command("new Ada Lovelace ada@example.com backend=leadsapi")
    card = slack.last_reply()["blocks"]
    slack.choose(card, "lead_set_status", "<!here> Hot")
    assert api_fake.requests("PUT", "/leads/change-status")[-1].body["statusId"] == 9
    assert "set the status to &lt;!here&gt; Hot" in slack.thread_replies()[-1]["text"]
    assert_pings_nobody(fake_slack)


def test_a_follow_up_form_keeps_raw_text_and_every_message_escapes_it(slack, linked, fake_slack, runtime, victim):
    runtime.deps.feeds["local"] = "C0FEED"
    slack.open_home()
    slack.command("new Ada Lovelace ada@example.com")
    slack.click(slack.last_reply()["blocks"], "lead_log_follow_up")
    slack.submit(slack.opened_views()[-1], {"notes": "<!channel> called <@UVICTIM> & <https://evil.example|x>"})
    lead = linked.get("local:1")
    assert [a.text for a in linked.activity(lead, 5)][
        0
    ] == "follow-up: <!channel> called <@UVICTIM> & <https://evil.example|x>"
    slack.command("show local:1")
    assert "&lt;!channel&gt; called &lt;@UVICTIM&gt; &amp; &lt;https://evil.example|x&gt;" in text_of(
        slack.last_reply()["blocks"]
    )
    assert_pings_nobody(fake_slack)
