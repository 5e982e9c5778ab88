"""Retry schedule for SendResult (docs/protocol.md, delivery rule 5).

Pure: the clock and sleep are parameters, so the schedule is unit-tested
without waiting. Exponential backoff from 200 ms doubling to a 5 s cap, no
jitter (the contract fixes the schedule; every worker language follows it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

INITIAL_DELAY_S = 0.2
MAX_DELAY_S = 5.0


def backoff_delays(initial_s: float = INITIAL_DELAY_S, cap_s: float = MAX_DELAY_S) -> Iterator[float]:
    """0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, ... seconds."""
    delay = initial_s
    while True:
        yield min(delay, cap_s)
        delay *= 2


def retry_until_deadline(
    call: Callable[[], T],
    is_retryable: Callable[[Exception], bool],
    deadline_s: float,
    on_retry: Callable[[Exception, float], None] = lambda error, delay: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Calls `call` until it succeeds, fails for good, or `deadline_s` has passed.

    A retryable error is retried after the next backoff delay (shortened so the
    last attempt happens at the deadline); any other error, or a retryable one
    once the deadline has passed, is raised to the caller.
    """
    give_up_at = clock() + deadline_s
    for delay in backoff_delays():
        try:
            return call()
        except Exception as error:
            remaining = give_up_at - clock()
            if not is_retryable(error) or remaining <= 0:
                raise
            wait_s = min(delay, remaining)
            on_retry(error, wait_s)
            sleep(wait_s)
    raise AssertionError("backoff_delays() never ends")
