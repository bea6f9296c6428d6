"""Reference previews: a lead named in a message gets a compact, contact-free preview in its thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN, REP, new_lead
from tests.slack import text_of

SAID_AT = "1700000900.000300"


def message(text: str, **extra) -> dict:
    return {"type": "message", "channel": "C0SALES", "user": REP, "text": text, "ts": SAID_AT, **extra}


def previews_on(slack) -> None:
    slack.command("previews on", user=ADMIN)
    slack.fake.clear()


def test_a_message_naming_a_lead_gets_a_preview_in_its_thread(slack, linked):
    ref = new_lead(linked, "Ada Lovelace", phone="+14155550132", next_follow_up=datetime.now(UTC) + timedelta(days=1))
    previews_on(slack)
    assert slack.event(message(f"did anyone call {ref} back?")).status_code == 200
    (preview,) = slack.thread_replies()
    assert (preview["channel"], preview["thread_ts"]) == ("C0SALES", SAID_AT)
    shown = text_of(preview["blocks"])
    assert (
        "*Ada Lovelace* `local:1`" in shown
        and "New" in shown
        and "owner <@UADMIN>" in shown
        and "next <!date^" in shown
    )
    assert "ada@example.com" not in str(preview) and "4155550132" not in str(preview)  # never contact details


def test_previews_are_off_until_an_admin_turns_them_on(slack, linked):
    ref = new_lead(linked)
    slack.event(message(f"about {ref}"))
    assert slack.thread_replies() == []
    slack.command("previews on", user=REP)
    assert "Only Leadbot admins can turn lead previews on or off" in slack.last_reply()["text"]
    slack.command("previews")
    assert "Lead previews are off in this channel" in slack.last_reply()["text"]
    slack.command("previews on", user=ADMIN)
    said = slack.last_reply()
    assert said["response_type"] == "in_channel" and "turned lead previews on" in said["text"]
    slack.command("previews")
    assert "Lead previews are on in this channel" in slack.last_reply()["text"]
    slack.command("previews off", user=ADMIN)
    slack.fake.clear()
    slack.event(message(f"about {ref}"))
    assert slack.thread_replies() == []


def test_previews_are_per_channel(slack, linked):
    ref = new_lead(linked)
    previews_on(slack)
    slack.event(message(f"about {ref}", channel="C0OTHER"))
    assert slack.thread_replies() == []


def test_a_reply_in_a_thread_is_previewed_in_that_thread(slack, linked):
    ref = new_lead(linked)
    previews_on(slack)
    slack.event(message(f"{ref} again", ts="1700000950.000100", thread_ts=SAID_AT))
    (preview,) = slack.thread_replies()
    assert preview["thread_ts"] == SAID_AT


def test_each_message_in_a_thread_gets_its_own_preview(slack, linked):
    first, second = new_lead(linked, "Ada Lovelace"), new_lead(linked, "Grace Hopper")
    previews_on(slack)
    slack.event(message(f"about {first}"))
    slack.event(message(f"and {second} too", ts="1700000950.000100", thread_ts=SAID_AT))
    slack.event(message(f"and {second} too", ts="1700000950.000100", thread_ts=SAID_AT), retry=1)
    previews = slack.thread_replies()
    assert [(p["text"], p["thread_ts"]) for p in previews] == [
        ("Ada Lovelace (local:1)", SAID_AT),
        ("Grace Hopper (local:2)", SAID_AT),
    ]


def test_several_references_once_each_and_unknown_ones_skipped(slack, linked):
    first, second = new_lead(linked, "Ada Lovelace"), new_lead(linked, "Grace Hopper")
    previews_on(slack)
    slack.event(message(f"{second}, local:99, {first} and {second} again; capillary:19 is elsewhere"))
    assert [p["text"] for p in slack.thread_replies()] == ["Grace Hopper (local:2)", "Ada Lovelace (local:1)"]


def test_a_slack_retry_posts_no_second_preview(slack, linked):
    ref = new_lead(linked)
    previews_on(slack)
    slack.event(message(f"about {ref}"))
    slack.event(message(f"about {ref}"), retry=1)
    assert len(slack.thread_replies()) == 1


def test_bots_edits_and_plain_chatter_are_ignored(slack, linked):
    ref = new_lead(linked)
    previews_on(slack)
    slack.event(message(f"about {ref}", bot_id="B0LEADBOT", user="U0LEADBOT"))
    slack.event(message(f"about {ref}", subtype="message_changed"))
    slack.event(message("nothing to see, local: colon, http://local:8080/x"))
    assert slack.thread_replies() == []


def test_posts_of_bots_leadbot_included_are_never_previewed(slack, linked):
    ref = new_lead(linked)
    previews_on(slack)
    # Leadbot's own messages (a card, a thread reply) come back as message events with its bot_id
    # (Bolt drops those itself); another integration's posts carry their own bot_id.
    own = message(f"New lead Ada ({ref})", user="U0LEADBOT", bot_id="B0LEADBOT", ts="1700000901.000400")
    other = message(f"Zap: lead {ref} updated", user="U0ZAPIER", bot_id="B0ZAPIER", ts="1700000901.000450")
    for event in (own, other):
        assert slack.event(event).status_code == 200
    assert slack.thread_replies() == []
    slack.event(message(f"about {ref}", ts="1700000902.000500"))  # a person's message still is
    assert len(slack.thread_replies()) == 1


def test_no_preview_where_leadbot_is_not_a_member(slack, linked, fake_slack, caplog):
    ref = new_lead(linked)
    previews_on(slack)
    fake_slack.fail("chat.postMessage", error="not_in_channel")
    caplog.set_level("INFO", logger="leadbot")
    assert slack.event(message(f"about {ref}")).status_code == 200
    assert "preview to C0SALES not sent (not_in_channel)" in caplog.text
