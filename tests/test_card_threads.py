"""After an action on a card: the card redrawn, a thread reply saying who did what, once; stale cards marked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN, OTHER, REP, activity, audited, new_lead
from tests.slack import CARD_TS, text_of


def card_of(slack, linked) -> tuple[str, list[dict]]:
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    return ref, slack.last_reply()["blocks"]


def of_a_deleted_lead(card: list[dict]) -> list[dict]:
    """The same card, as if its lead had been deleted since: its buttons name a lead that is not there."""
    return json.loads(json.dumps(card).replace('local:1"', 'local:999"'))


def test_every_card_action_replies_in_the_cards_thread(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_assign_me", user=REP)
    slack.choose(card, "lead_set_status", "Contacted", user=REP)
    slack.click(card, "lead_log_follow_up", user=REP)
    nxt = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    slack.submit(slack.opened_views()[-1], {"notes": "called", "next": nxt}, user=REP)
    slack.click(card, "lead_add_note", user=ADMIN)
    slack.submit(slack.opened_views()[-1], {"text": "budget approved"}, user=ADMIN)
    threads = slack.thread_replies()
    assert {(t["channel"], t["thread_ts"]) for t in threads} == {("C0SALES", CARD_TS)}
    assert [t["text"] for t in threads] == [
        f"<@{REP}> took this lead",
        f"<@{REP}> set the status to Contacted",
        f"<@{REP}> logged a follow-up · next: <!date^{nxt}^{{date_short_pretty}} {{time}}|"
        + datetime.fromtimestamp(nxt, UTC).strftime("%Y-%m-%d %H:%M UTC>"),
        f"<@{ADMIN}> added a note",
    ]


def test_assign_picker_assigns_and_says_so(slack, linked):
    ref, card = card_of(slack, linked)
    picker = next(e for b in card if b["type"] == "actions" for e in b["elements"] if e["type"] == "users_select")
    assert picker["placeholder"]["text"] == "Assign…"
    slack.pick_user(card, "lead_assign_to", REP, user=ADMIN)
    assert linked.get(ref).owner == "ana"
    reply = slack.last_reply()
    assert reply["replace_original"] is True and f"*Owner*\n<@{REP}>" in text_of(reply["blocks"])
    assert [t["text"] for t in slack.thread_replies()] == [f"<@{ADMIN}> assigned this lead to <@{REP}>"]


def test_assign_picker_refuses_an_unlinked_person_and_changes_nothing(slack, linked):
    ref, card = card_of(slack, linked)
    slack.pick_user(card, "lead_assign_to", OTHER, user=ADMIN)
    reply = slack.last_reply()
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert f"<@{OTHER}> is not linked to a staff ID in local" in reply["text"]
    assert "`/lead link @them STAFF_ID backend=local`" in reply["text"]
    assert linked.get(ref).owner == "ada"
    assert slack.thread_replies() == []


def test_a_double_click_assigns_once_with_one_thread_reply(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_assign_me", user=REP, trigger_id="click.1")
    slack.click(card, "lead_assign_me", user=REP, trigger_id="click.2")  # a second payload, not a retry
    assert [result for result, _ in audited(linked, action="assign")] == ["ok", "refused"]
    assert len(slack.thread_replies()) == 1
    last = slack.last_reply()
    assert last["replace_original"] is False and "Nothing changed" in last["text"]


def test_the_same_payload_twice_logs_one_follow_up_with_one_thread_reply(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_log_follow_up", user=REP)
    view = slack.opened_views()[-1]
    for _ in range(2):
        slack.submit(view, {"notes": "called"}, user=REP)
    assert activity(linked, ref) == [("follow_up", "follow-up: called")]
    assert len(slack.thread_replies()) == 1


def test_the_same_status_twice_changes_it_once(slack, linked):
    ref, card = card_of(slack, linked)
    slack.choose(card, "lead_set_status", "Won", user=REP)
    slack.choose(card, "lead_set_status", "Won", user=REP)
    assert [result for result, _ in audited(linked, action="status")] == ["ok", "refused"]
    assert len(slack.thread_replies()) == 1
    assert "Nothing changed: `local:1` is already Won" in slack.last_reply()["text"]


def test_no_thread_reply_where_the_bot_cannot_post_but_the_card_still_updates(slack, linked, fake_slack, caplog):
    ref, card = card_of(slack, linked)
    fake_slack.fail("chat.postMessage", error="not_in_channel")
    with caplog.at_level(logging.INFO, logger="leadbot"):
        slack.click(card, "lead_assign_me", user=REP)
    assert linked.get(ref).owner == "ana"
    reply = slack.last_reply()
    assert reply["replace_original"] is True and ":warning:" not in reply["text"]
    posts = fake_slack.received("api", "chat.postMessage")
    assert [c.answer.get("error") for c in posts if c.body.get("thread_ts")] == ["not_in_channel"]
    assert "thread reply to C0SALES not sent (not_in_channel)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_ephemeral_card_has_no_thread(slack, linked):
    ref, card = card_of(slack, linked)
    slack.click(card, "lead_assign_me", user=REP, ephemeral=True)
    assert linked.get(ref).owner == "ana"
    assert slack.last_reply()["replace_original"] is True
    assert slack.thread_replies() == []


def test_a_card_for_a_deleted_lead_is_marked_stale(slack, linked):
    _, card = card_of(slack, linked)
    card = of_a_deleted_lead(card)
    slack.click(card, "lead_assign_me", user=REP)
    marked, said = slack.replies()[-2:]
    assert marked["replace_original"] is True
    assert not [b for b in marked["blocks"] if b["type"] == "actions"]  # no buttons left to press
    assert marked["blocks"][0] == card[0]  # the card as it was shown
    assert "Out of date:* there is no lead `local:999`" in text_of(marked["blocks"])
    assert said["response_type"] == "ephemeral" and said["replace_original"] is False
    assert "There is no lead `local:999`" in said["text"]
    assert slack.thread_replies() == []


def test_a_card_whose_backend_is_no_longer_configured_is_marked_stale(slack, linked):
    card = [
        {"type": "header", "text": {"type": "plain_text", "text": "Old lead"}},
        {
            "type": "actions",
            "block_id": "card:capillary:19",
            "elements": [
                {
                    "type": "button",
                    "action_id": "lead_refresh",
                    "value": "capillary:19",
                    "text": {"type": "plain_text", "text": "Refresh"},
                }
            ],
        },
    ]
    slack.click(card, "lead_refresh")
    marked, said = slack.replies()[-2:]
    assert [b["type"] for b in marked["blocks"]] == ["header", "context"]
    assert "the `capillary` backend is not configured here" in text_of(marked["blocks"])
    assert "The `capillary` backend is not configured here" in said["text"]


def test_a_stale_ephemeral_card_is_only_explained(slack, linked):
    _, card = card_of(slack, linked)
    slack.click(of_a_deleted_lead(card), "lead_refresh", ephemeral=True)
    (said,) = slack.replies()[-1:]
    assert said["replace_original"] is False and "There is no lead `local:999`" in said["text"]
    assert len(slack.replies()) == 2  # the card, then this: nothing redrawn


def test_a_long_list_pages_without_passing_50_blocks(slack, linked):
    for n in range(120):
        new_lead(linked, f"Lead {n}", email=f"l{n}@example.com")
    slack.command("list", user=ADMIN)
    seen, pages = set(), 0
    while True:
        reply = slack.last_reply()
        assert len(reply["blocks"]) <= 50
        pages += 1
        seen |= {
            b["accessory"]["value"] for b in reply["blocks"] if b.get("accessory", {}).get("action_id") == "lead_open"
        }
        more = [
            e
            for b in reply["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "lead_list_page" and e["text"]["text"].startswith("More")
        ]
        if not more:
            break
        slack.click(reply["blocks"], "lead_list_page", value=more[0]["value"])
    assert len(seen) == 120 and pages == 12
