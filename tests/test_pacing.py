"""PacedPoster: evenly spaced posts, 429s waited out, and the pace learned from the first 429."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.pacing import PacedPoster


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class LimitedSlack:
    """Takes ``limit`` messages per second of the fake clock, refuses the rest with 429 Retry-After: 1."""

    def __init__(self, clock: Clock, limit: int) -> None:
        self.clock, self.limit = clock, limit
        self.taken: list[float] = []
        self.refused = 0

    def chat_postMessage(self, **message) -> SlackResponse:  # noqa: N802 - the SDK's name
        now = self.clock()
        if sum(1 for t in self.taken if now - t < 1.0) >= self.limit:
            self.refused += 1
            response = SlackResponse(
                client=None,
                http_verb="POST",
                api_url="chat.postMessage",
                req_args={},
                data={"ok": False, "error": "ratelimited"},
                headers={"Retry-After": "1"},
                status_code=429,
            )
            raise SlackApiError("ratelimited", response)
        self.taken.append(now)
        self.clock.now += 0.001  # a round trip
        return SlackResponse(
            client=None,
            http_verb="POST",
            api_url="chat.postMessage",
            req_args={},
            data={"ok": True},
            headers={},
            status_code=200,
        )


def test_posts_are_spaced_by_the_pace():
    clock = Clock()
    poster = PacedPoster(LimitedSlack(clock, 100), per_second=50, clock=clock, sleep=clock.sleep)
    for n in range(10):
        poster.post(channel=f"U{n}", text="hi")
    assert 0.18 <= clock.now <= 0.2  # ten posts at 50/s


def test_a_pace_above_the_limit_costs_one_pause_and_nothing_is_lost():
    clock = Clock()
    slack = LimitedSlack(clock, 100)
    poster = PacedPoster(slack, per_second=400, clock=clock, sleep=clock.sleep)
    for n in range(1000):
        poster.post(channel=f"U{n}", text="hi")
    assert len(slack.taken) == 1000
    assert slack.refused == 1 and poster.rate_limited == 1
    assert clock.now < 11.5  # the floor is 10 s; one 1 s pause


def test_a_post_answering_someone_is_not_held_by_the_digest_pace_but_by_a_429():
    clock = Clock()
    slack = LimitedSlack(clock, 5)
    poster = PacedPoster(slack, per_second=1, clock=clock, sleep=clock.sleep)  # digests: one a second
    for n in range(3):
        poster.post(channel=f"U{n}", text="digest")
    paced_until = clock.now
    assert paced_until >= 2.0
    for n in range(2):
        poster.post(channel=f"C{n}", text="thread reply", paced=False)
    assert clock.now - paced_until < 0.01  # at once, though the pace is behind
    for n in range(3):  # past Slack's 5 a second: one 429, then these wait its Retry-After too
        poster.post(channel=f"D{n}", text="DM", paced=False)
    assert slack.refused == 1 and len(slack.taken) == 8
    assert clock.now - paced_until >= 1.0


def test_one_tls_context_serves_every_call_to_slack(settings):
    import ssl

    from bot.app import build_client

    client = build_client(settings)
    assert isinstance(client.ssl, ssl.SSLContext)  # urllib would load the CA bundle for each connection
    assert client.ssl.verify_mode == ssl.CERT_REQUIRED and client.ssl.check_hostname
    assert build_client(settings).ssl is client.ssl  # making a context loads the bundle too (20 ms)


class LateSlack:
    """Takes a post but answers too late (the client times out); the post lands a moment later."""

    def __init__(self) -> None:
        self.posts = 0
        self.in_flight: list[dict] = []
        self.channel: list[dict] = []

    def land(self, seconds: float) -> None:  # the poster's pause between tries: time passes
        self.channel += self.in_flight
        self.in_flight = []

    def chat_postMessage(self, **message) -> SlackResponse:  # noqa: N802 - the SDK's name
        self.posts += 1
        self.in_flight.append({"ts": f"{self.posts}.0", "text": message["text"], "metadata": message["metadata"]})
        raise TimeoutError("The read operation timed out")

    def conversations_history(self, **window) -> dict:
        return {"ok": True, "messages": list(self.channel)}


def test_a_post_that_lands_after_its_timeout_is_found_not_sent_again():
    slack = LateSlack()
    poster = PacedPoster(slack, per_second=100, sleep=lambda seconds: None, pause=slack.land)
    answer = poster.post(channel="C1", text="thread reply", paced=False)
    assert slack.posts == 1 and len(slack.channel) == 1  # looked for after the pause, when it had landed
    assert answer["ts"] == "1.0"
