"""Phone numbers: LEADBOT_PHONE_REGION checked at start-up, national numbers read with it, extensions kept."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from tests.conftest import REP, bot_settings
from tests.slack import text_of


@pytest.fixture
def settings(tmp_path, fake_slack, monkeypatch):
    return bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_phone_region="gb")


def shown(slack) -> str:
    reply = slack.last_reply()
    return reply["text"] + "\n" + text_of(reply.get("blocks", []))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("UK", "LEADBOT_PHONE_REGION is invalid (UK is not an ISO 3166 country code; did you mean GB?)"),
        ("XX", "LEADBOT_PHONE_REGION is invalid (XX is not a country code phone numbers can be read for)"),
    ],
)
def test_the_region_is_an_iso_code_checked_at_start_up(tmp_path, fake_slack, monkeypatch, value, expected):
    with pytest.raises(ConfigError) as raised:
        bot_settings(tmp_path, fake_slack, monkeypatch, leadbot_phone_region=value)
    assert str(raised.value).startswith(expected)


def test_a_national_number_is_read_in_the_region(settings, slack, linked):
    assert settings.leadbot_phone_region == "GB"
    slack.command("new Ada Lovelace 020 7946 0958", user=REP)
    assert linked.get("local:1").phone == "+442079460958"


def test_a_wrong_national_number_gets_an_example_of_the_region_naming_the_setting(slack, linked):
    slack.command("new Ada Lovelace 0791 234", user=REP)
    text = shown(slack)
    assert "is not a valid phone number (e.g. 07400 123456 or +44 7400 123456" in text
    assert "read as a GB number, as LEADBOT_PHONE_REGION says" in text
    assert "+14155550123" not in text


def test_an_extension_is_kept(slack, linked):
    slack.command("new Ada Lovelace +1 415 555 0132 ext. 22", user=REP)
    assert linked.get("local:1").phone == "+14155550132 ext. 22"
    assert "+14155550132 ext. 22" in shown(slack)
    slack.command("find 4155550132", user=REP)  # found by the number, the extension aside
    assert "local:1" in shown(slack)
