"""Liveness file shared by the worker and the image's HEALTHCHECK.

The worker writes the current time (epoch ms) to HEALTH_FILE on every
heartbeat tick. `python -m aiswarm_worker.healthcheck` exits 0 when that time
is recent enough, 1 otherwise. "Recent enough" is 3 heartbeat intervals, but
never less than 15 s, so a short stall (GC, a busy 2-core host) does not get a
healthy worker restarted.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .config import read_settings

MIN_MAX_AGE_MS = 15000


def write_health_file(path: str, now_ms: int) -> None:
    """Atomic (write + rename), so the checker never reads a half-written file."""
    temporary = f"{path}.tmp"
    Path(temporary).write_text(str(now_ms), encoding="ascii")
    os.replace(temporary, path)


def max_age_ms(heartbeat_interval_ms: int) -> int:
    return max(3 * heartbeat_interval_ms, MIN_MAX_AGE_MS)


def check_health(path: str, heartbeat_interval_ms: int, now_ms: int) -> str | None:
    """None when healthy, else the reason it is not."""
    try:
        written_ms = int(Path(path).read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return f"{path} does not exist"
    except (OSError, ValueError, UnicodeDecodeError):
        return f"{path} does not hold a timestamp"
    age_ms = now_ms - written_ms
    limit_ms = max_age_ms(heartbeat_interval_ms)
    if age_ms > limit_ms:
        return f"{path} is {age_ms} ms old (limit {limit_ms} ms)"
    return None


def health_settings(env: Mapping[str, str]) -> tuple[str, int]:
    """HEALTH_FILE and HEARTBEAT_INTERVAL_MS only; a bad value counts as its default (the worker refuses it)."""
    values, _ = read_settings(env, only=("HEALTH_FILE", "HEARTBEAT_INTERVAL_MS"))
    return str(values["HEALTH_FILE"]), int(values["HEARTBEAT_INTERVAL_MS"] or 0)


def main() -> int:
    path, interval_ms = health_settings(os.environ)
    problem = check_health(path, interval_ms, int(time.time() * 1000))
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
