"""Someone who may not write to a lead is told when they press the button, before any form opens."""

from __future__ import annotations

import pytest

from tests.conftest import STRANGER, new_lead
from tests.slack import text_of


@pytest.mark.parametrize("button", ["lead_log_follow_up", "lead_add_note", "lead_edit"])
def test_an_unlinked_person_is_told_before_the_form_opens(slack, linked, button):
    ref = new_lead(linked)
    slack.command(f"show {ref}")
    slack.click(slack.last_reply()["blocks"], button, user=STRANGER)
    assert slack.opened_views() == []
    reply = slack.last_reply()
    assert "not linked to a staff ID in local, so you can't change its leads" in reply["text"] + text_of(
        reply.get("blocks", [])
    )
