"""core.turns: page runs take turns, and a long turn holds nobody up past its budget."""

from __future__ import annotations

import threading
import time

from core.turns import TurnGate


def test_turns_do_not_overlap_and_everyone_gets_one() -> None:
    gate = TurnGate(budget_s=30)
    inside, most, got = [0], [0], []
    lock = threading.Lock()

    def run() -> None:
        with gate.turn() as mine:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)  # work that lets go of the GIL, as a page run's messages do
            with lock:
                inside[0] -= 1
            got.append(mine)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert got == [True] * 8 and most[0] == 1


def test_a_turn_past_its_budget_is_not_waited_for() -> None:
    gate = TurnGate(budget_s=0.05)
    passed = threading.Event()
    outcome: list[bool] = []

    def long_turn() -> None:
        with gate.turn() as mine:
            outcome.append(mine)
            passed.wait(30)  # holds its turn until the other has gone past it (or 30 s)

    holder = threading.Thread(target=long_turn)
    holder.start()
    while not outcome:
        time.sleep(0.001)
    with gate.turn() as mine:  # the holder is still inside: this one goes ahead without a turn
        outcome.append(mine)
        passed.set()
    holder.join(30)
    assert outcome == [True, False]
    with gate.turn() as mine:  # and the gate is free again afterwards
        assert mine


def test_a_turn_ends_when_its_run_raises() -> None:
    gate = TurnGate(budget_s=30)
    try:
        with gate.turn():
            raise KeyboardInterrupt  # Streamlit's stop and rerun are BaseExceptions too
    except KeyboardInterrupt:
        pass
    with gate.turn() as mine:
        assert mine
