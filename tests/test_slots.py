"""Work slots: few run at once, a thread waiting on Slack gives its slot up, and a flood keeps the threads few."""

from __future__ import annotations

import threading

from bot.slots import Hands, Slots, waiting


def test_a_flood_of_work_keeps_as_many_threads_as_slots():
    slots = Slots(2)
    hands = Hands(slots, most=64)
    ran = []
    for n in range(200):
        slots.acquire()  # as the work process takes a job: only once a slot is free
        hands.hand(lambda n=n: ran.append(n))
    hands.join()
    assert sorted(ran) == list(range(200))
    assert len(hands._threads) == 2  # not one per job, nor the 64 allowed


def test_work_waiting_on_slack_lets_other_work_run_in_its_slot():
    slots = Slots(1)
    hands = Hands(slots, most=64)
    others_done = threading.Event()
    waited = []

    def hanging() -> None:
        with waiting():  # a response URL that does not answer
            waited.append(others_done.wait(10))

    slots.acquire()
    hands.hand(hanging)
    slots.acquire()  # free again only because the hanging work gave its slot up
    hands.hand(others_done.set)
    hands.join()
    assert waited == [True]  # the other work ran while the first was still waiting


def test_slacks_usual_quick_answers_keep_their_slot_and_the_threads_few():
    slots = Slots(2, grace=5.0)
    hands = Hands(slots, most=64)

    def posts_a_reply() -> None:
        with waiting():  # answered at once, as Slack usually does
            pass

    for _ in range(200):
        slots.acquire()
        hands.hand(posts_a_reply)
    hands.join()
    assert len(hands._threads) == 2
