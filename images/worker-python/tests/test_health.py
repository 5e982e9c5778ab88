"""Health file writing and the HEALTHCHECK module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from aiswarm_worker.healthcheck import check_health, max_age_ms, write_health_file


def test_max_age_is_three_intervals_but_at_least_15_s() -> None:
    assert max_age_ms(2000) == 15000
    assert max_age_ms(10000) == 30000


def test_fresh_file_is_healthy_and_stale_or_missing_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "health")
    assert check_health(path, 2000, 1_000_000) == f"{path} does not exist"
    write_health_file(path, 1_000_000)
    assert check_health(path, 2000, 1_010_000) is None
    assert check_health(path, 2000, 1_016_000) == f"{path} is 16000 ms old (limit 15000 ms)"
    Path(path).write_text("garbage")
    assert check_health(path, 2000, 1_000_000) == f"{path} does not hold a timestamp"


def run_healthcheck(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_overrides}
    return subprocess.run([sys.executable, "-m", "aiswarm_worker.healthcheck"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_healthcheck_module_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "worker.health"
    missing = run_healthcheck({"HEALTH_FILE": str(path)})
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    write_health_file(str(path), int(time.time() * 1000))
    fresh = run_healthcheck({"HEALTH_FILE": str(path), "HEARTBEAT_INTERVAL_MS": "2000"})
    assert fresh.returncode == 0, fresh.stderr

    write_health_file(str(path), int(time.time() * 1000) - 20000)
    stale = run_healthcheck({"HEALTH_FILE": str(path)})
    assert stale.returncode == 1 and "ms old" in stale.stderr
