"""The contract's log levels (docs/protocol.md, "Logging"): their order and Python's equivalents.

Pure. `LOG_LEVEL` is the lowest level a worker prints on stdout and publishes
on `P/logs`; `is_at_least` is that one comparison.
"""

from __future__ import annotations

import logging
from typing import Literal

LogLevel = Literal["debug", "info", "warn", "error"]

LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warn", "error")  # lowest first
DEFAULT_LOG_LEVEL: LogLevel = "info"

PYTHON_LOG_LEVELS: dict[LogLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def is_at_least(level: LogLevel, lowest: LogLevel) -> bool:
    """True if an event at `level` passes a `LOG_LEVEL` of `lowest`."""
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(lowest)
