"""Every /lead subcommand, driven as Slack sends it, asserted on what the user sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ADMIN, OTHER, REP, STRANGER, activity, audited, leads, new_lead
from tests.slack import DESIGN_SUBCOMMANDS, text_of


def reply_text(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def says(shown: str, expected: str) -> bool:
    """Error replies start with a capital letter; the messages under test may not."""
    return expected in shown or (expected[:1].upper() + expected[1:]) in shown


def test_help_answers_in_the_ack_with_every_subcommand(slack):
    response = slack.command("help")
    assert response.status_code == 200
    shown = response.text  # plain mrkdwn text: Slack shows it to the user alone
    for sub in DESIGN_SUBCOMMANDS:
        assert f"/lead {sub}" in shown
    assert slack.replies() == []  # nothing else was sent


def test_empty_command_shows_help(slack):
    assert "/lead new" in slack.command("").text


def test_quick_create_posts_a_card_in_channel_and_audits(slack, linked):
    response = slack.command(
        "new Ada Lovelace ada@Example.com +44 20 7946 0958 source=expo for=Engines "
        'type=inbound next="tomorrow 10am" note=met at the expo',
        user=ADMIN,
    )
    assert response.status_code == 200 and response.text == ""
    reply = slack.last_reply()
    assert reply["response_type"] == "in_channel"
    blocks = reply["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Ada Lovelace", "emoji": False}}
    shown = text_of(blocks)
    assert "`local:1` · Local store" in shown
    assert "ada@example.com · +442079460958" in shown
    assert "*Owner*\n<@UADMIN>" in shown
    assert "*Source*\nexpo" in shown and "*For*\nEngines" in shown
    assert "met at the expo" in shown  # the note is the first activity
    # next follow-up: tomorrow 10:00 in the admin's zone (Europe/London), rendered by Slack per viewer
    assert "*Next follow-up*\n<!date^" in shown
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "lead_assign_me",
        "lead_assign_to",
        "lead_log_follow_up",
        "lead_add_note",
        "lead_set_status",
        "lead_edit",
        "lead_refresh",
    ]
    lead = linked.get("local:1")
    assert lead.next_follow_up.astimezone(UTC).hour == 10  # London is UTC in November
    assert lead.next_follow_up.date() > datetime.now(UTC).date()
    (entry,) = linked.audit.log.entries(action="create")
    assert (entry.slack_user, entry.lead_ref, entry.result) == (ADMIN, "local:1", "ok")


def test_quick_create_with_owner_and_status(slack, linked):
    slack.command(f"new Grace Hopper grace@navy.mil owner=<@{REP}|ana> status=contacted", user=ADMIN)
    lead = linked.get("local:1")
    assert (lead.owner, lead.status) == ("ana", "contacted")
    assert f"*Owner*\n<@{REP}>" in reply_text(slack)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("new Ada", "give the lead's email or phone after the name"),
        ("new ada@example.com", "give the lead's name before the email or phone"),
        ("new Ada ada@", "`ada@` is not a valid email address"),
        ("new Ada 12345678", "`12345678` has no country code: type it as `+44 20 7946 0958`, or an admin can set"),
        ("new Ada +1 555", "Give the lead's email or phone"),
        ("new Ada +99 1234567", "is not a phone number"),
        ("new Ada ada@example.com colour=blue", "`colour=` is not an option here"),
        ("new Ada ada@example.com next=whenever-ish", "I can't read `whenever-ish` as a date or time"),
        ("new Ada ada@example.com status=sleeping", "`sleeping` is not a status in local"),
        ("new Ada ada@example.com owner=bob", "`bob` is not a person"),
        ('new "Ada ada@example.com', "a double quote"),
        ("new Ada ada@example.com backend=capillary", "the `capillary` backend is not configured"),
        ("new Ada ada@example.com backend=nowhere", "there is no backend called `nowhere`"),
    ],
)
def test_quick_create_mistakes_say_what_was_wrong(slack, linked, text, expected):
    response = slack.command(text, user=ADMIN)
    assert response.status_code == 200
    shown = reply_text(slack) if not response.text else response.text + text_of(response.json().get("blocks", []))
    assert ":warning:" in shown
    assert expected.lower() in shown.lower()
    assert leads(linked) == []


def test_usage_is_shown_with_mistakes(slack, linked):
    slack.command("new Ada", user=ADMIN)
    assert "Usage: `/lead new NAME EMAIL|PHONE" in reply_text(slack)


def test_unknown_subcommand_is_answered_in_the_ack(slack):
    response = slack.command("frobnicate")
    assert "`frobnicate` is not a /lead command; `/lead help` lists them" in response.json()["text"]
    assert response.json()["response_type"] == "ephemeral"


@pytest.mark.parametrize(
    ("sub", "said"), [("deal local:1 100", "has no deals"), ("department local:1 x", "has no departments")]
)
def test_deals_and_departments_are_refused_where_the_backend_has_none(slack, linked, sub, said):
    new_lead(linked)
    slack.command(sub)
    assert f"Local store {said}" in reply_text(slack)


def test_unlinked_user_cannot_create(slack, linked):
    slack.command("new Ada ada@example.com", user=STRANGER)
    shown = reply_text(slack)
    assert says(shown, "you are not linked to a staff ID in local")
    assert "/lead link @you STAFF_ID backend=local" in shown
    assert leads(linked) == []
    assert [result for result, _ in audited(linked, action="create")] == ["refused"]


def test_show_posts_the_card(slack, linked):
    ref = new_lead(linked, phone="+919895012345")
    slack.command(f"show {ref}")
    reply = slack.last_reply()
    assert reply["response_type"] == "in_channel"
    assert "+919895012345" not in text_of(reply["blocks"])  # everyone in the channel sees it (test_privacy.py)
    assert "Contact details" in text_of(reply["blocks"])
    slack.command("show 1")  # bare ID: the channel's (default) backend
    assert "`local:1`" in reply_text(slack)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("show", "`REF` is missing"),
        ("show local:1 extra", "I don't know what to do with `extra`"),
        ("show local:999", "there is no lead `local:999`"),
        ("show local:abc", "local leads are numbered"),
        ("show what?!", "is not a lead reference"),
        ("show crm:7", "there is no backend called `crm`"),
        ("show salesforce:7", "there is no backend called `salesforce`"),
    ],
)
def test_show_mistakes(slack, linked, text, expected):
    new_lead(linked)
    slack.command(text)
    shown = reply_text(slack)
    assert says(shown, expected)


def test_list_filters_and_pages(slack, linked):
    now = datetime.now(UTC)
    for i in range(12):
        new_lead(linked, f"Lead {i:02}", owner=None)
    new_lead(linked, "Rep lead", by=REP, next_follow_up=now - timedelta(hours=1))
    new_lead(linked, "Rep later", by=REP, next_follow_up=now + timedelta(days=3))
    slack.command("list", user=ADMIN)
    first = slack.last_reply()
    shown = text_of(first["blocks"])
    assert "*Open leads on Local store* · 1–10 of 14" in shown
    assert shown.index("Rep lead") < shown.index("Rep later")  # due first
    assert first["response_type"] == "ephemeral"
    more = first["blocks"][-1]["elements"][-1]
    assert more["text"]["text"] == "More (4)"
    slack.click(first["blocks"], "lead_list_page", value=more["value"])
    second = slack.last_reply()
    assert second["replace_original"] is True
    assert "11–14 of 14" in text_of(second["blocks"])

    slack.command("list mine due", user=REP)
    shown = reply_text(slack)
    assert "Rep lead" in shown and "Rep later" not in shown and "Lead 00" not in shown
    slack.command(f"list <@{REP}|ana>", user=ADMIN)
    assert "1–2 of 2" in reply_text(slack)
    slack.command("list won")
    assert "No leads match *Won leads on Local store*" in reply_text(slack)


def test_list_mistakes(slack, linked):
    slack.command("list sleeping")
    assert "`sleeping` is not a status in local" in reply_text(slack)
    slack.command("list won lost")
    assert "I don't know what to do with `lost`" in reply_text(slack)


def test_assign(slack, linked):
    ref = new_lead(linked)
    slack.command(f"assign {ref} <@{REP}|ana>", user=ADMIN)
    assert linked.get(ref).owner == "ana"
    shown = reply_text(slack)
    assert f"<@{ADMIN}> assigned this lead to <@{REP}>" in shown
    slack.command(f"assign {ref} me", user=ADMIN)
    assert f"<@{ADMIN}> took this lead" in reply_text(slack)
    slack.command(f"assign {ref} me", user=ADMIN)  # again: nothing to do, and it says so
    assert f"Nothing changed: `{ref}` is already assigned to <@{ADMIN}>" in reply_text(slack)
    assert [result for result, _ in audited(linked, action="assign")] == ["ok", "ok", "refused"]


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("assign local:1", ADMIN, "`@user|me` is missing"),
        ("assign local:1 <@UREP2|bob>", ADMIN, "<@UREP2> is not linked to a staff ID in local"),
        ("assign local:1 me", STRANGER, "you are not linked"),
        ("assign local:1 bob", ADMIN, "`bob` is not a person"),
    ],
)
def test_assign_mistakes(slack, linked, text, user, expected):
    new_lead(linked)
    slack.command(text, user=user)
    assert says(reply_text(slack), expected)
    assert linked.get("local:1").owner == "ada"


def test_followup_with_next_and_notes(slack, linked):
    ref = new_lead(linked)
    slack.command(f"followup {ref} next=tomorrow 3pm called, left a voicemail", user=REP)
    lead = linked.get(ref)
    # REP is in Asia/Kolkata: 15:00 IST is 09:30 UTC
    assert (lead.next_follow_up.hour, lead.next_follow_up.minute) == (9, 30)
    (done,) = linked.activity(lead, 10)
    assert (done.kind, done.text, done.by) == ("follow_up", "follow-up: called, left a voicemail", "ana")
    shown = reply_text(slack)
    assert f"<@{REP}> logged a follow-up · next:" in shown
    assert "follow-up: called, left a voicemail" in shown


def test_followup_quoted_next_and_plain(slack, linked):
    ref = new_lead(linked)
    slack.command(f'followup {ref} next="in 3 days" sent the deck', user=ADMIN)
    assert activity(linked, ref) == [("follow_up", "follow-up: sent the deck")]
    assert linked.get(ref).next_follow_up is not None
    slack.command(f"followup {ref}", user=ADMIN)
    assert [kind for kind, _ in activity(linked, ref)] == ["follow_up", "follow_up"]
    assert linked.get(ref).next_follow_up is None  # nothing scheduled after the plain follow-up


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("followup", "`REF` is missing"),
        ("followup local:1 next=someday-maybe", "I can't read `someday-maybe`"),
        ("followup local:1 called next=fri", "put `next=WHEN` right after the reference"),
    ],
)
def test_followup_mistakes(slack, linked, text, expected):
    new_lead(linked)
    slack.command(text)
    shown = reply_text(slack)
    assert says(shown, expected) and "Usage: `/lead followup REF" in shown
    assert activity(linked, "local:1") == []


def test_note_keeps_apostrophes_and_spacing(slack, linked):
    ref = new_lead(linked)
    slack.command(f'note {ref} Ada\'s team wants a demo — "soon"', user=REP)
    assert activity(linked, ref) == [("note", 'Ada\'s team wants a demo — "soon"')]
    assert f"<@{REP}> added a note" in reply_text(slack)


def test_note_mistakes(slack, linked):
    new_lead(linked)
    slack.command("note local:1")
    assert "Usage: `/lead note REF TEXT`" in reply_text(slack)
    slack.command("note local:1 " + "x" * 3001)
    assert "The note is 3,001 characters long; the limit is 3,000" in reply_text(slack)


def test_status(slack, linked):
    ref = new_lead(linked)
    slack.command(f"status {ref} Lost reason=budget", user=ADMIN)
    lead = linked.get(ref)
    assert lead.status == "lost"
    assert activity(linked, ref) == [("status", "status → lost (budget)")]
    shown = reply_text(slack)
    assert ":red_circle: Lost" in shown and "status → lost (budget)" in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status local:1", "give the lead and the new status"),
        ("status local:1 sleeping", "`sleeping` is not a status in local; use one of: new, contacted"),
        ("status local:1 won now", "I don't know what to do with `now`"),
        ("status local:1 won why=because", "`why=` is not an option here"),
    ],
)
def test_status_mistakes(slack, linked, text, expected):
    new_lead(linked)
    slack.command(text)
    shown = reply_text(slack)
    assert says(shown, expected) and "Usage: `/lead status REF STATUS" in shown
    assert linked.get("local:1").status == "new"


def test_link_unlink_whoami(slack, linked):
    slack.command(f"link <@{OTHER}|bob> bob@example.com", user=ADMIN)
    assert f"Linked <@{OTHER}> to `bob@example.com` in local." in reply_text(slack)
    assert linked.people.staff_id(OTHER, "local") == "bob@example.com"
    slack.command("whoami", user=OTHER)
    shown = reply_text(slack)
    assert "Linked as: `bob@example.com` in local" in shown and "America/New_York" in shown
    slack.command(f"unlink <@{OTHER}|bob>", user=ADMIN)
    assert linked.people.staff_id(OTHER, "local") is None
    slack.command("whoami", user=OTHER)
    assert "not linked to any backend yet" in reply_text(slack)
    slack.command("whoami", user=ADMIN)
    assert "(Leadbot admin)" in reply_text(slack)


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        (f"link <@{OTHER}|bob> bob", REP, "only Leadbot admins can link or unlink other people"),
        ("link bob", OTHER, "only Leadbot admins can link staff IDs here"),
        (f"link <@{OTHER}|bob> ana", ADMIN, "staff ID `ana` in local is already linked to <@UREP1>"),
        ("link", ADMIN, "give a person (mention them with @) and their staff ID"),
        (f"link <@{OTHER}|bob> bob backend=capillary", ADMIN, "the `capillary` backend is not configured"),
        (f"unlink <@{OTHER}|bob>", ADMIN, "<@UREP2> is not linked in local"),
        (f"unlink <@{REP}|ana>", OTHER, "only Leadbot admins can link or unlink other people"),
        ("whoami please", ADMIN, "I don't know what to do with `please`"),
    ],
)
def test_link_mistakes(slack, linked, text, user, expected):
    slack.command(text, user=user)
    assert says(reply_text(slack), expected) and slack.last_reply()["response_type"] == "ephemeral"
    assert linked.people.staff_id(OTHER, "local") is None
    assert linked.people.staff_id(REP, "local") == "ana"  # a refused unlink of someone else left them linked


def test_self_link_where_allowed(settings, fake_slack):
    from bot.app import build_app, build_runtime
    from bot.executor import InlineExecutor
    from tests.slack import DispatchTransport, SlackDriver

    runtime = build_runtime(settings.model_copy(update={"leadbot_self_link": True}), background=InlineExecutor())
    slack = SlackDriver(DispatchTransport(build_app(runtime)), fake_slack, lambda timeout=10: True)
    slack.command("link bob", user=OTHER)
    assert runtime.service.people.staff_id(OTHER, "local") == "bob"
    slack.command("unlink me", user=OTHER)
    assert runtime.service.people.staff_id(OTHER, "local") is None


def test_backends_lists_capabilities(slack):
    slack.command("backends")
    shown = reply_text(slack)
    assert "*local* (default) — Local store" in shown
    assert "can: read, search, create, assign, follow-up, note, status" in shown
    assert "statuses (fixed): new, contacted, qualified, won, lost" in shown


def test_dates_are_read_in_the_users_time_zone_and_cached(slack, linked, fake_slack):
    ref = new_lead(linked)
    slack.command(f"followup {ref} next=tomorrow 9am", user=REP)
    slack.command(f"followup {ref} next=tomorrow 9am", user=REP)
    lead = linked.get(ref)
    assert (lead.next_follow_up.hour, lead.next_follow_up.minute) == (3, 30)  # 09:00 IST
    assert len(fake_slack.received("api", "users.info")) == 1
