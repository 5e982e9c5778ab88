"""The SendResult retry schedule, on a fake clock (pure)."""

from __future__ import annotations

import itertools

import pytest

from aiswarm_worker.backoff import backoff_delays, retry_until_deadline


class Transient(Exception):
    pass


class Final(Exception):
    pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_delays_double_from_200_ms_to_a_5_s_cap() -> None:
    assert list(itertools.islice(backoff_delays(), 8)) == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_transient_errors_are_retried_until_success() -> None:
    clock = FakeClock()
    failures_left = 2

    def call() -> str:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise Transient()
        return "ok"

    result = retry_until_deadline(call, lambda e: isinstance(e, Transient), 120, clock=clock, sleep=clock.sleep)
    assert result == "ok"
    assert clock.sleeps == [0.2, 0.4]


def test_final_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        raise Final()

    with pytest.raises(Final):
        retry_until_deadline(call, lambda e: isinstance(e, Transient), 120, clock=clock, sleep=clock.sleep)
    assert calls == 1 and clock.sleeps == []


def test_retries_stop_at_the_deadline_with_a_last_attempt_on_it() -> None:
    clock = FakeClock()
    attempt_times: list[float] = []
    retries: list[float] = []

    def call() -> None:
        attempt_times.append(clock.now)
        raise Transient()

    with pytest.raises(Transient):
        retry_until_deadline(
            call, lambda e: isinstance(e, Transient), 10, on_retry=lambda e, d: retries.append(d),
            clock=clock, sleep=clock.sleep,
        )
    # 0.2+0.4+0.8+1.6+3.2 = 6.2 s, then only 3.8 s are left of the 10 s.
    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 3.8])
    assert retries == clock.sleeps
    assert attempt_times[-1] == pytest.approx(10.0)


def test_zero_deadline_means_one_attempt() -> None:
    clock = FakeClock()
    with pytest.raises(Transient):
        retry_until_deadline(lambda: (_ for _ in ()).throw(Transient()), lambda e: True, 0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []
