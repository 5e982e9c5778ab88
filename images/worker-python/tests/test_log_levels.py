"""The order of the contract's log levels (pure)."""

from __future__ import annotations

import logging

import pytest

from aiswarm_worker.log_levels import LOG_LEVELS, PYTHON_LOG_LEVELS, LogLevel, is_at_least


@pytest.mark.parametrize(
    ("level", "lowest", "passes"),
    [
        ("info", "info", True),
        ("warn", "info", True),
        ("error", "warn", True),
        ("debug", "debug", True),
        ("debug", "info", False),
        ("info", "warn", False),
        ("warn", "error", False),
        ("error", "error", True),
    ],
)
def test_an_event_passes_at_or_above_the_lowest_level(level: LogLevel, lowest: LogLevel, passes: bool) -> None:
    assert is_at_least(level, lowest) is passes


def test_python_levels_keep_the_contract_order() -> None:
    numbers = [PYTHON_LOG_LEVELS[level] for level in LOG_LEVELS]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    assert PYTHON_LOG_LEVELS["warn"] == logging.WARNING
