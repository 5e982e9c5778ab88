"""TaskSlots: which task runs, which one waits, and what becomes of a new one (no network)."""

from __future__ import annotations

from aiswarm_worker.payloads import Task
from aiswarm_worker.task_slots import Decision, TakenTask, TaskSlots


def taken(task_id: str) -> TakenTask:
    return TakenTask(Task(task_id, "a question", 30000, False, 0), received_ms=0)


def in_hand_id(slots: TaskSlots) -> str | None:
    return slots.in_hand.task.task_id if slots.in_hand else None


def sending_a_with_b_waiting() -> TaskSlots:
    """Task a in hand with its result being sent, and b taken to run next."""
    slots = TaskSlots()
    slots.offer(taken("a"))
    slots.start_sending_result()
    assert slots.offer(taken("b")) is Decision.RUN_NEXT
    return slots


def test_a_free_worker_runs_a_task_now() -> None:
    slots = TaskSlots()
    assert slots.offer(taken("a")) is Decision.RUN_NOW
    assert in_hand_id(slots) == "a" and slots.waiting is None


def test_a_task_while_working_is_rejected_and_one_while_sending_waits() -> None:
    slots = TaskSlots()
    slots.offer(taken("a"))
    assert slots.offer(taken("b")) is Decision.REJECT, "still working on a: busy"
    slots.start_sending_result()
    assert slots.offer(taken("b")) is Decision.RUN_NEXT
    assert slots.offer(taken("c")) is Decision.REJECT, "one task waits at most"
    assert in_hand_id(slots) == "a" and slots.waiting == taken("b")


def test_second_deliveries_of_the_task_in_hand_or_the_waiting_one_are_duplicates() -> None:
    slots = TaskSlots()
    slots.offer(taken("a"))
    assert slots.offer(taken("a")) is Decision.DUPLICATE
    slots = sending_a_with_b_waiting()
    assert slots.offer(taken("a")) is Decision.DUPLICATE
    assert slots.offer(taken("b")) is Decision.DUPLICATE
    assert slots.waiting == taken("b")


def test_finishing_moves_the_waiting_task_in_hand_and_starts_it_working() -> None:
    slots = sending_a_with_b_waiting()
    assert slots.finish_in_hand() == taken("b")
    assert in_hand_id(slots) == "b" and slots.waiting is None
    assert slots.offer(taken("c")) is Decision.REJECT, "b is being worked on, not sent"
    assert slots.finish_in_hand() is None
    assert slots.in_hand is None
    assert slots.offer(taken("c")) is Decision.RUN_NOW


def test_shutting_down_gives_up_the_waiting_task_and_rejects_new_ones() -> None:
    slots = sending_a_with_b_waiting()
    assert slots.stop_accepting() == taken("b")
    assert in_hand_id(slots) == "a" and slots.waiting is None
    assert slots.offer(taken("c")) is Decision.REJECT
    assert slots.finish_in_hand() is None
    assert slots.offer(taken("d")) is Decision.REJECT, "free but shutting down"


def test_shutting_down_with_nothing_waiting_gives_up_nothing() -> None:
    slots = TaskSlots()
    assert slots.stop_accepting() is None
    assert slots.offer(taken("a")) is Decision.REJECT


def test_held_task_ids_are_the_task_in_hand_then_the_waiting_one() -> None:
    assert TaskSlots().held_task_ids() == []
    slots = sending_a_with_b_waiting()
    assert slots.held_task_ids() == ["a", "b"]
    slots.finish_in_hand()
    assert slots.held_task_ids() == ["b"]
