"""Shared test setup.

Before any test imports the generated gRPC code, the code is regenerated from
../../proto (a no-op when nothing changed), so tests never run against stale
code. The worker as a whole process is tested once for every language by the
root conformance suite (tests/conformance/README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent.parent


def pytest_configure() -> None:
    generation = subprocess.run(
        [sys.executable, str(WORKER_DIR / "scripts" / "gen_proto.py")], capture_output=True, text=True
    )
    if generation.returncode != 0:
        raise RuntimeError(f"scripts/gen_proto.py failed:\n{generation.stdout}{generation.stderr}")
