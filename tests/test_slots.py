"""Work slots: few run at once, a thread waiting on Slack gives its slot up, and a flood keeps the threads few."""

from __future__ import annotations

import threading

from bot.slots import Hands, Slots, waiting, waiting_long


def test_a_flood_of_work_keeps_as_many_threads_as_slots():
    slots = Slots(2)
    hands = Hands(slots, most=64)
    ran = []
    for n in range(200):
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

    hands.hand(hanging)
    hands.hand(others_done.set)  # a slot is free again only because the hanging work gave its up
    hands.join()
    assert waited == [True]  # the other work ran while the first was still waiting


def test_slacks_usual_quick_answers_keep_their_slot_and_the_threads_few():
    slots = Slots(2, grace=5.0)
    hands = Hands(slots, most=64)

    def posts_a_reply() -> None:
        with waiting():  # answered at once, as Slack usually does
            pass

    for _ in range(200):
        hands.hand(posts_a_reply)
    hands.join()
    assert len(hands._threads) == 2


def test_new_work_never_keeps_the_slot_that_work_back_from_the_backend_needs():
    go = threading.Event()
    in_wait = threading.Semaphore(0)

    class Observed(Slots):
        taken = 0

        def acquire(self) -> None:
            super().acquire()
            self.taken += 1
            if self.taken == 3:  # the third job has a slot: now let the two waiting calls answer
                go.set()

    slots = Observed(1)
    hands = Hands(slots, most=2)
    ran = []

    def backend_call() -> None:
        with waiting_long():  # a CRM call: the slot is free at once
            in_wait.release()
            go.wait(10)
        ran.append("call")

    def everything() -> None:
        hands.hand(backend_call)
        hands.hand(backend_call)
        in_wait.acquire()
        in_wait.acquire()
        hands.hand(lambda: ran.append("third"))  # every thread is taken: it must not sit on the free slot
        hands.join()

    runner = threading.Thread(target=everything, daemon=True)
    runner.start()
    runner.join(10)
    assert not runner.is_alive(), "the work waiting to resume and the new work held each other up"
    assert sorted(ran) == ["call", "call", "third"]


def test_work_back_from_a_wait_goes_before_new_work():
    slots = Slots(1)
    slots.acquire()  # the one slot is busy
    order = []

    def queued(n: int) -> None:  # until ``n`` threads wait for the slot (Condition's own waiter list)
        while len(slots._taken._waiters) < n:
            threading.Event().wait(0.001)

    def new() -> None:
        slots.acquire()
        order.append("new")
        slots.release()

    def resumed() -> None:
        slots.resume()
        order.append("resumed")
        slots.release()

    threads = [threading.Thread(target=new) for _ in range(3)]
    for thread in threads:
        thread.start()
    queued(3)  # new work asked first
    threads.append(threading.Thread(target=resumed))
    threads[-1].start()
    queued(4)
    slots.release()
    for thread in threads:
        thread.join(10)
    assert order[0] == "resumed" and order.count("new") == 3


def test_a_crm_call_that_answers_takes_its_slot_back_before_new_work():
    slots = Slots(1)
    order = []
    go, in_call = threading.Event(), threading.Event()

    def queued(n: int) -> None:
        while len(slots._taken._waiters) < n:
            threading.Event().wait(0.001)

    def calling() -> None:
        with slots.held():
            with waiting_long():  # the slot is free during the call
                in_call.set()
                go.wait(10)
            order.append("back from the call")

    def new() -> None:
        slots.acquire()
        order.append("new")
        slots.release()

    caller = threading.Thread(target=calling)
    caller.start()
    assert in_call.wait(10)
    slots.acquire()  # someone else runs in the freed slot meanwhile
    others = [threading.Thread(target=new) for _ in range(3)]
    for thread in others:
        thread.start()
    queued(3)
    go.set()  # the call answers: the caller wants its slot back, behind three pieces of new work
    queued(4)
    slots.release()
    for thread in [caller, *others]:
        thread.join(10)
    assert order[0] == "back from the call" and order.count("new") == 3


def test_an_idle_thread_is_counted_once_so_work_that_needs_more_threads_gets_them():
    slots = Slots(3)
    hands = Hands(slots, most=8)
    first = threading.Barrier(2, timeout=5)
    for _ in range(2):
        hands.hand(first.wait)  # two threads, both idle afterwards
    while hands._idle < 2:
        threading.Event().wait(0.001)
    together = threading.Barrier(3, timeout=5)  # three pieces of work that must run at once
    met = []
    for _ in range(3):
        hands.hand(lambda: met.append(together.wait() is not None))
    hands.join()
    assert met == [True, True, True]
    assert len(hands._threads) == 3
