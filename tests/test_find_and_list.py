"""`/lead find` and `/lead list` across two backends (local and the REST leads API's fake), as Slack shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.loopback import Failure
from services.audit import Actor
from services.models import NewLead
from tests.conftest import ADMIN, OTHER, REP, leadsapi_settings
from tests.slack import text_of


@pytest.fixture
def settings(tmp_path, fake_slack, api_fake, monkeypatch):
    return leadsapi_settings(tmp_path, fake_slack, api_fake, monkeypatch)


@pytest.fixture
def linked(service):
    admin = Actor(slack_user=ADMIN, is_admin=True)
    for user, staff in ((ADMIN, "ada"), (REP, "ana")):
        service.people.link(admin, user, staff)
        service.people.link(admin, user, staff, backend="leadsapi")
    service.people.link(admin, OTHER, "bob")  # bob only on the local backend
    return service


def make(service, name, *, backend="local", by=REP, **fields):
    fields.setdefault("email", f"{name.split()[0].lower()}@example.com")
    return service.create(Actor(slack_user=by), NewLead(name=name, **fields), backend=backend).ref


def shown(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


def says(text: str, expected: str) -> bool:
    """Error replies start with a capital letter."""
    return expected in text or expected[:1].upper() + expected[1:] in text


def refs_in(slack) -> list[str]:
    """The leads a list shows, in order (each row's Open button carries its reference)."""
    found = []
    for block in slack.last_reply()["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == "lead_open":
            found.append(accessory["value"])
    return found


def test_find_by_name_email_phone_and_company_across_two_backends(slack, linked, api_fake):
    jose = make(linked, "José Álvarez", email="jose@acme.example", phone="+14155550123", lead_for="Acme Ltd")
    remote = make(linked, "Jose Bravo", backend="leadsapi", email="jbravo@example.com")
    make(linked, "Ada Lovelace", phone="+442079460958")
    slack.command("find jose", user=REP)
    assert set(refs_in(slack)) == {jose, remote}  # accents folded: "jose" finds José
    text = shown(slack)
    assert "Leads matching “jose” on Local store and REST leads API" in text
    assert "jose@acme.example" in text and "Acme Ltd" in text  # a search row shows what it matched
    slack.command("find acme", user=REP)
    assert refs_in(slack) == [jose]
    slack.command("find jbravo@example.com", user=REP)
    assert refs_in(slack) == [remote]
    for typed in ("(415) 555-0123", "4155550123", "+1 415 555 0123", "555-0123", "415 555"):
        slack.command(f"find {typed}", user=REP)
        assert refs_in(slack) == [jose], typed
    slack.command("find 020 7946 0958", user=REP)  # a national number finds the E.164 one
    assert refs_in(slack) == ["local:2"]
    slack.command("find jose backend=leadsapi", user=REP)
    assert refs_in(slack) == [remote]
    slack.command("find nobody-like-this", user=REP)
    assert "No leads match *Leads matching “nobody-like-this”" in shown(slack)


def test_find_ranks_the_best_match_first_and_finds_closed_leads(slack, linked):
    make(linked, "Anna Jose", email="anna@example.com")
    best = make(linked, "Jose Silva", email="silva@example.com")
    linked.change_status(Actor(slack_user=REP), best, "won")
    slack.command("find jose silva", user=REP)
    assert refs_in(slack) == [best]
    slack.command("find jose", user=REP)
    assert refs_in(slack)[0] == best  # a whole name word, in the name, ranks over a second-name match
    assert len(refs_in(slack)) == 2


def test_find_pages_with_more(slack, linked):
    for i in range(13):
        make(linked, f"Maria {i:02}", email=f"maria{i}@example.com")
    slack.command("find maria", user=REP)
    first = slack.last_reply()
    assert "1–10 of 13" in text_of(first["blocks"]) and len(refs_in(slack)) == 10
    more = first["blocks"][-1]["elements"][-1]
    assert more["text"]["text"] == "More (3)"
    slack.click(first["blocks"], "lead_list_page", value=more["value"], user=REP)
    assert "11–13 of 13" in text_of(slack.last_reply()["blocks"]) and len(refs_in(slack)) == 3


def test_find_without_text_says_what_is_missing(slack, linked):
    slack.command("find", user=REP)
    text = shown(slack)
    assert says(text, "say what to look for") and "/lead find TEXT" in text
    slack.command("find ?!", user=REP)
    assert says(shown(slack), "give some of the lead's name, email, phone or company")


def test_the_local_index_follows_the_store_across_a_restart(slack, linked, settings, clock):
    """FTS5 rows live in the database: a fresh runtime on the same file finds what the first one created."""
    from bot.app import build_runtime
    from bot.executor import InlineExecutor

    ref = make(linked, "Grace Hopper", email="grace@navy.example")
    again = build_runtime(settings, background=InlineExecutor(), clock=clock, sleep=lambda s: None)
    try:
        page = again.service.search_across(REP, text="hopper")
        assert [lead.ref for lead in page.leads] == [ref]
    finally:
        again.close()


def test_list_reads_every_backend_the_user_is_linked_on(slack, linked, api_fake):
    now = datetime.now(UTC)
    local = make(linked, "Local Lead", next_follow_up=now + timedelta(days=2))
    remote = make(linked, "Remote Lead", backend="leadsapi")
    slack.command("list", user=REP)
    assert set(refs_in(slack)) == {local, remote}
    assert "*Open leads on Local store and REST leads API* · 1–2 of 2" in shown(slack)
    slack.command("list backend=leadsapi", user=REP)
    assert refs_in(slack) == [remote] and "Open leads on REST leads API" in shown(slack)
    slack.command("list", user=OTHER)  # bob is linked on the local backend only
    assert refs_in(slack) == [local] and "Open leads on Local store*" in shown(slack)


def test_list_mine_matches_app_home(slack, linked, api_fake):
    mine_local = make(linked, "Mine Local")
    mine_remote = make(linked, "Mine Remote", backend="leadsapi")
    make(linked, "Theirs", by=ADMIN)
    slack.command("list mine", user=REP)
    assert set(refs_in(slack)) == {mine_local, mine_remote}
    assert "Your open leads on Local store and REST leads API" in shown(slack)
    home = text_of(slack.open_home(REP)["blocks"])
    assert mine_local in home and mine_remote in home


def test_list_titles_say_what_is_shown(slack, linked):
    won = make(linked, "Won Lead")
    linked.change_status(Actor(slack_user=REP), won, "won")
    slack.command("list won", user=OTHER)
    assert "*Won leads on Local store* · 1–1 of 1" in shown(slack)
    slack.command(f"list <@{REP}|ana> due", user=OTHER)
    assert f"No leads match *<@{REP}>'s open leads · due now on Local store*" in shown(slack)


def test_list_unassigned(slack, linked):
    free = make(linked, "Nobody's", owner=None)
    taken = make(linked, "Taken")
    # A lead with no owner: the local backend gives a new lead its creator unless told otherwise,
    # so the owner is cleared the way an unassigned lead arrives (an import, a form left blank).
    linked.backends.get("local").leads.update(int(free.split(":")[1]), at=datetime.now(UTC), owner=None)
    slack.command("list unassigned", user=OTHER)
    assert refs_in(slack) == [free] and taken not in refs_in(slack)
    assert "Unassigned open leads on Local store" in shown(slack)
    assert "_unassigned_" in shown(slack)


def test_a_backend_that_is_down_is_named_and_the_others_still_list(slack, linked, api_fake):
    local = make(linked, "Local Lead")
    make(linked, "Remote Lead", backend="leadsapi")
    api_fake.fail("GET", "/leads", Failure("status", status=503, times=10))
    slack.command("list", user=REP)
    assert refs_in(slack) == [local]
    text = shown(slack)
    assert "REST leads API could not be read" in text and "Open leads on Local store" in text
    slack.command("find lead", user=REP)
    assert refs_in(slack) == [local] and "REST leads API could not be read" in shown(slack)


def test_list_mistakes_still_say_the_usage(slack, linked):
    slack.command("list sleeping", user=REP)
    assert "`sleeping` is not a status in local" in shown(slack)
    slack.command("list mine unassigned", user=REP)
    assert "I don't know what to do with `unassigned`" in shown(slack)
    assert "/lead list [mine|@user|unassigned]" in shown(slack)


def test_backends_answers_with_a_backend_down(slack, linked, api_fake):
    api_fake.stop_listening()
    try:
        slack.command("backends", user=REP)
    finally:
        api_fake.start_listening()
    text = shown(slack)
    assert "*local* (default)" in text and "*leadsapi*" in text
    assert ":red_circle: unreachable:" in text and "statuses (configurable): _not read just now:" in text
    assert "find: the API has no search" in text and "edit: name, email, phone, company, source" in text


def search_on_home(slack, home: dict, text: str, *, user: str) -> dict:
    """Type ``text`` into the App Home's search box and press Enter; the tab as Leadbot redrew it."""
    block = next(b for b in home["blocks"] if b["type"] == "input" and b["element"]["action_id"] == "lead_home_search")
    assert block["dispatch_action"] is True  # Enter sends it at once, as Slack does for such an input
    action = {"type": "plain_text_input", "action_id": "lead_home_search", "block_id": block["block_id"], "value": text}
    slack._press(action, [], user=user, channel="", trigger_id=None, home=home)
    return slack.home(user)


def home_refs(home: dict, after: str = "") -> list[str]:
    """The leads a part of the tab shows: from the block that says ``after`` to the next divider."""
    blocks = home["blocks"]
    start = next((i for i, b in enumerate(blocks) if after in text_of([b])), 0) if after else 0
    end = next((i for i in range(start + 1, len(blocks)) if blocks[i]["type"] == "divider"), len(blocks))
    return [b["block_id"].removeprefix("card:") for b in blocks[start:end] if b.get("block_id", "").startswith("card:")]


def test_the_app_home_search_box_finds_leads_with_their_buttons_and_keeps_them_shown(slack, linked, api_fake):
    jose = make(linked, "José Álvarez", by=ADMIN, email="jose@acme.example")  # not hers: found all the same
    remote = make(linked, "Jose Bravo", backend="leadsapi", email="jbravo@example.com")
    home = search_on_home(slack, slack.open_home(REP), "jose", user=REP)
    text = text_of(home["blocks"])
    assert "Leads matching “jose”" in text
    found = home_refs(home, after="Leads matching")
    assert set(found) == {jose, remote}
    row = next(b for b in home["blocks"] if b.get("block_id") == f"card:{jose}")
    assert {e["action_id"] for e in row["elements"]} >= {"lead_log_follow_up", "lead_add_note", "lead_assign_to"}
    # A press on a match redraws the tab with the search still there.
    slack.click(home["blocks"], "lead_home_refresh", user=REP, home=home)
    assert "Leads matching “jose”" in text_of(slack.home(REP)["blocks"])
    cleared = search_on_home(slack, slack.home(REP), "", user=REP)  # an empty box puts the search away
    assert "Leads matching" not in text_of(cleared["blocks"])
    nothing = search_on_home(slack, cleared, "nobody-like-this", user=REP)
    assert "No lead matches that." in text_of(nothing["blocks"])
