"""Which task the worker runs, which one waits, and what becomes of a new one.

docs/protocol.md, delivery rules 2 and 6: the master frees a worker the moment
it accepts its result, so the next task can arrive while the worker still
waits for SendResult's answer. That task is kept (one at most) and runs right
after; a task arriving at any other busy moment, or after SIGTERM, is
rejected; a second delivery of a task the worker holds is ignored.

Pure state, no I/O and no locking: the worker calls it under its own lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .payloads import Task


@dataclass(frozen=True)
class TakenTask:
    task: Task
    received_ms: int


class Decision(Enum):
    RUN_NOW = "run now"  # nothing in hand
    RUN_NEXT = "run next"  # the result in hand is being sent: run it right after
    DUPLICATE = "duplicate"  # the task in hand or the waiting one again (QoS 1)
    REJECT = "reject"  # busy otherwise, or shutting down


class TaskSlots:
    def __init__(self) -> None:
        self.in_hand: TakenTask | None = None
        self.waiting: TakenTask | None = None
        self.sending_result = False  # the task in hand is done; SendResult is in flight
        self.accepting = True  # False from SIGTERM on

    def offer(self, taken: TakenTask) -> Decision:
        """Decides about a task that just arrived, and keeps it if it is taken."""
        if self._holds(taken.task.task_id):
            return Decision.DUPLICATE
        if not self.accepting:
            return Decision.REJECT
        if self.in_hand is None:
            self.in_hand = taken
            return Decision.RUN_NOW
        if self.sending_result and self.waiting is None:
            self.waiting = taken
            return Decision.RUN_NEXT
        return Decision.REJECT

    def start_sending_result(self) -> None:
        self.sending_result = True

    def finish_in_hand(self) -> TakenTask | None:
        """The task in hand is over: the waiting task, if any, is now in hand and returned."""
        self.in_hand, self.waiting = self.waiting, None
        self.sending_result = False
        return self.in_hand

    def stop_accepting(self) -> TakenTask | None:
        """SIGTERM: takes no more tasks and gives up the waiting one (returned, for the worker to reject)."""
        self.accepting = False
        waiting, self.waiting = self.waiting, None
        return waiting

    def held_task_ids(self) -> list[str]:
        """The task in hand and the one waiting to run next, in that order (the heartbeat's held_task_ids)."""
        return [slot.task.task_id for slot in (self.in_hand, self.waiting) if slot is not None]

    def _holds(self, task_id: str) -> bool:
        return any(slot is not None and slot.task.task_id == task_id for slot in (self.in_hand, self.waiting))
