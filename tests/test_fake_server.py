"""The shared fake-server base: every failure mode, refused connections, restarts, the clock and rate windows."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.loopback import Answer, Failure, FakeServer, ManualClock, Received, SlidingWindow, dumps, loads
from tests.fakes.testing import client


class Notes(FakeServer):
    """The smallest fake: ``POST /notes`` adds a note with the next id, ``GET /notes`` lists them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.notes: dict[int, str] = {}
        self.next_id = 1
        self.route("POST", "/notes", self.add)
        self.route("GET", "/notes", self.list)
        self.route("GET", "/notes/{note_id}", self.get)

    def add(self, request: Received) -> Answer:
        self.notes[self.next_id] = request.body["text"]
        self.next_id += 1
        return Answer(201, {"id": self.next_id - 1})

    def list(self, request: Received) -> Answer:
        return Answer(200, self.notes)

    def get(self, request: Received, note_id: str) -> Answer:
        return Answer(200, {"text": self.notes[int(note_id)]})

    def state(self) -> dict[str, Any]:
        return {"notes": self.notes, "next_id": self.next_id, "at": self.now()}

    def restore(self, state: dict[str, Any]) -> None:
        self.notes.clear()
        self.notes.update({int(k): v for k, v in state["notes"].items()})
        self.next_id = state["next_id"]


@pytest.fixture
def fake():
    server = Notes().start()
    yield server
    server.stop()


def to(fake: FakeServer, timeout: float = 2.0) -> httpx.Client:
    return client(fake.url, timeout=timeout)


def test_status_failures_carry_a_body_and_headers_and_are_counted(fake):
    failure = fake.fail("POST", "/notes", Failure("status", status=429, headers={"Retry-After": "7"}, times=2))
    with to(fake) as http:
        for _ in range(2):
            reply = http.post("/notes", json={"text": "hi"})
            assert (reply.status_code, reply.headers["Retry-After"]) == (429, "7")
        assert http.post("/notes", json={"text": "hi"}).status_code == 201
    assert (failure.fired, failure.times) == (2, 0)
    assert fake.notes == {1: "hi"}  # the refused ones were not carried out
    assert len(fake.requests("POST", "/notes")) == 3  # but every one was received


def test_a_failure_targets_method_and_path_pattern(fake):
    fake.notes[1] = "first"
    fake.fail("*", "/notes/{id}", Failure("status", status=503, body={"error": "down"}))
    with to(fake) as http:
        assert http.get("/notes").status_code == 200
        reply = http.get("/notes/1")
        assert (reply.status_code, reply.json()) == (503, {"error": "down"})
        assert http.get("/notes/1").json() == {"text": "first"}


def test_malformed_answers_garbage(fake):
    fake.fail("GET", "/notes", Failure("malformed"))
    with to(fake) as http:
        reply = http.get("/notes")
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()


def test_malformed_applies_only_when_asked(fake):
    fake.fail("POST", "/notes", Failure("malformed"))
    fake.fail("POST", "/notes", Failure("malformed", apply=True))
    with to(fake) as http:
        for text in ("not carried out", "carried out"):
            assert http.post("/notes", json={"text": text}).status_code == 200
    assert fake.notes == {1: "carried out"}


def test_a_hang_that_applies_loses_the_reply_after_the_write(fake):
    fake.fail("POST", "/notes", Failure("hang", apply=True))
    with to(fake, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/notes", json={"text": "landed"})
    assert fake.notes == {1: "landed"}


def test_a_hang_without_apply_writes_nothing(fake):
    fake.fail("POST", "/notes", Failure("hang"))
    with to(fake, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/notes", json={"text": "lost"})
    assert fake.notes == {}


def test_a_drop_applies_the_write_then_cuts_the_connection_at_once(fake):
    fake.fail("POST", "/notes", Failure("drop"))
    started = time.monotonic()
    with to(fake, timeout=5) as http, pytest.raises(httpx.RemoteProtocolError):
        http.post("/notes", json={"text": "applied"})
    assert time.monotonic() - started < 1  # no waiting for a timeout
    assert fake.notes == {1: "applied"}
    with to(fake) as http:
        assert http.get("/notes").json() == {"1": "applied"}  # the next call is answered


def test_a_drop_can_lose_the_write_too(fake):
    fake.fail("POST", "/notes", Failure("drop", apply=False))
    with to(fake) as http, pytest.raises(httpx.RemoteProtocolError):
        http.post("/notes", json={"text": "lost"})
    assert fake.notes == {}


def test_a_late_write_lands_only_when_the_test_applies_it(fake):
    fake.fail("POST", "/notes", Failure("late"))
    with to(fake, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/notes", json={"text": "late"})
        assert fake.notes == {} and len(fake.parked) == 1
        assert http.post("/notes", json={"text": "on time"}).json() == {"id": 1}  # the client's retry check
    (answer,) = fake.apply_parked()
    assert (answer.status, answer.body) == (201, {"id": 2})
    assert fake.notes == {1: "on time", 2: "late"} and fake.parked == []


def test_a_late_reply_is_never_sent_the_connection_is_closed_after_hold(fake):
    fake.fail("POST", "/notes", Failure("late", hold=0.1))
    with to(fake, timeout=5) as http, pytest.raises(httpx.RemoteProtocolError):
        http.post("/notes", json={"text": "late"})
    assert fake.notes == {}
    fake.apply_parked()
    assert fake.notes == {1: "late"}


def test_stop_listening_refuses_connections_until_start_listening(fake):
    with to(fake) as http:
        http.post("/notes", json={"text": "kept"})
        port = fake.port
        fake.stop_listening()
        with pytest.raises(httpx.ConnectError):
            http.get("/notes")  # the kept-alive connection was cut too: a new one is refused
        fake.start_listening()
        assert fake.port == port
        assert http.get("/notes").json() == {"1": "kept"}


def test_restart_keeps_data_and_ids_on_the_same_port(fake):
    with to(fake) as http:
        http.post("/notes", json={"text": "one"})
        fake.notes.clear()  # deleted meanwhile: the id must still not come back
        fake.restart()
        assert http.post("/notes", json={"text": "two"}).json() == {"id": 2}
    assert fake.url.endswith(f":{fake.port}")


def test_restart_cuts_a_hanging_request(fake):
    fake.fail("POST", "/notes", Failure("late"))
    errors: list[Exception] = []

    def send() -> None:
        with to(fake, timeout=5) as http:
            try:
                http.post("/notes", json={"text": "parked"})
            except httpx.TransportError as e:
                errors.append(e)

    thread = threading.Thread(target=send)
    thread.start()
    assert fake.wait_until(lambda: len(fake.parked) == 1)
    fake.restart()
    thread.join(2)
    assert len(errors) == 1 and len(fake.parked) == 1


def test_state_files_round_trip_datetimes_and_ids(tmp_path):
    first = Notes()
    first.notes[5] = "five"
    first.next_id = 6
    first.save_state(tmp_path / "state.json")
    first.stop()
    second = Notes()
    second.state_path = tmp_path / "state.json"
    second.load_state()
    second.start()
    try:
        with to(second) as http:
            assert http.post("/notes", json={"text": "six"}).json() == {"id": 6}
        assert loads((tmp_path / "state.json").read_text())["notes"] == {"5": "five", "6": "six"}
    finally:
        second.stop()
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert loads(dumps({"at": when})) == {"at": when}


def test_the_manual_clock_drives_now():
    clock = ManualClock(100.0)
    fake = Notes(clock=clock)
    try:
        start = fake.now()
        clock.advance(90)
        assert (fake.now() - start).total_seconds() == 90
    finally:
        fake.stop()


def test_a_sliding_window_counts_accepted_calls_per_key():
    clock = ManualClock()
    window = SlidingWindow(3, 5.0, clock)
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]
    assert window.allow("b")  # another key has its own window
    clock.advance(4.9)
    assert not window.allow("a")
    clock.advance(0.1)  # the first calls are now 5 s old
    assert [window.allow("a") for _ in range(4)] == [True, True, True, False]


def test_a_sliding_window_is_exact_under_threads():
    window = SlidingWindow(25, 5.0, ManualClock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(10):
            ok = window.allow("key")
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 25 and len(allowed) == 80


def test_unknown_failure_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown failure kind"):
        Failure("explode")
