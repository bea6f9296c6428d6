from tests.conftest import ADMIN
from tests.slack import text_of


def test_help_is_in_the_ack(slack):
    response = slack.command("help")
    assert response.status_code == 200
    assert "/lead new" in text_of(response.json()["blocks"])


def test_quick_create_posts_a_card(slack, linked):
    response = slack.command("new Ada Lovelace ada@example.com source=expo", user=ADMIN)
    assert response.status_code == 200
    reply = slack.last_reply()
    print(reply)
    assert reply["response_type"] == "in_channel"
    assert "Ada Lovelace" in text_of(reply["blocks"])
