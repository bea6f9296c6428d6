"""The card's blocks, exactly, for a fully populated lead and for a minimal one.

A change to either snapshot is a change to what every rep sees: review the
diff, then refresh with ``LEADBOT_UPDATE_SNAPSHOTS=1 pytest tests/test_card_snapshots.py`` (that run
fails on purpose) and run again without it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.blocks import CardData, lead_card
from services.models import Activity, Colour, Lead, StatusOption

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
STATUSES = [
    StatusOption(value="new", label="New", colour=Colour.BLUE),
    StatusOption(value="contacted", label="Contacted", colour=Colour.YELLOW),
    StatusOption(value="won", label="Won", colour=Colour.GREEN, open=False),
]


def full_card() -> CardData:
    lead = Lead(
        backend="local",
        id="7",
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+442079460958",
        lead_for="Analytical Engine",
        type="inbound",
        source="expo",
        status="contacted",
        owner="ana",
        next_follow_up=NOW - timedelta(hours=3),  # overdue
        last_activity=NOW - timedelta(days=1),
        created_at=NOW - timedelta(days=5),
    )
    activity = [
        Activity(kind="follow_up", at=NOW - timedelta(days=1), by="ana", text="follow-up: called, wants a demo"),
        Activity(kind="note", at=NOW - timedelta(days=2), by="ada", text="note: budget approved"),
        Activity(kind="status", at=NOW - timedelta(days=3), by="ghost", text="status → contacted"),
    ]
    return CardData(
        lead=lead,
        backend_title="Local store",
        status=STATUSES[1],
        statuses=STATUSES,
        owner_user="UREP1",
        now=NOW,
        activity=activity,
        activity_users={"ana": "UREP1", "ada": "UADMIN"},  # "ghost" is not linked: shown as the staff ID
        last_action="<@UREP1> logged a follow-up",
    )


def minimal_card() -> CardData:
    lead = Lead(backend="getlead", id="+919895012345", name="Ravi", status="new")
    return CardData(lead=lead, backend_title="Getlead", status=None, statuses=[], owner_user=None, now=NOW)


@pytest.mark.parametrize(("name", "card"), [("card_full", full_card()), ("card_minimal", minimal_card())])
def test_card_blocks_match_the_snapshot(name, card):
    blocks = lead_card(card)
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("LEADBOT_UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(blocks, indent=2, ensure_ascii=False) + "\n")
        # Never a green run while rewriting: the new snapshot is unreviewed until the next run compares it.
        pytest.fail(f"{name} rewritten: review the diff, then run again without LEADBOT_UPDATE_SNAPSHOTS")
    assert blocks == json.loads(path.read_text()), f"{name} changed; see the module docstring"


def test_the_minimal_card_shows_no_empty_fields():
    text = json.dumps(lead_card(minimal_card()))
    for absent in ("None", "null", "*Contact*", "*Next follow-up*", "*Last activity*", "*Recent*", "*Source*", '""'):
        assert absent not in text
