"""Shared test setup.

Before any test imports the generated gRPC code, the code is regenerated from
../../proto (a no-op when nothing changed), so tests never run against stale
code. The broker fixtures start a real Mosquitto on a free loopback port.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.broker import Broker, find_mosquitto

WORKER_DIR = Path(__file__).resolve().parent.parent


def pytest_configure() -> None:
    generation = subprocess.run(
        [sys.executable, str(WORKER_DIR / "scripts" / "gen_proto.py")], capture_output=True, text=True
    )
    if generation.returncode != 0:
        raise RuntimeError(f"scripts/gen_proto.py failed:\n{generation.stdout}{generation.stderr}")


def _mosquitto_or_skip() -> str:
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto); whole-process tests need a real broker")
    return binary


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """One real Mosquitto for the session; tests keep apart by topic prefix and worker id."""
    running = Broker(_mosquitto_or_skip())
    running.start()
    yield running
    running.close()


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A Mosquitto of the test's own, for tests that stop and restart it.

    It keeps sessions across a restart (persistence), so a test's probe with a
    persistent session misses nothing published before it has reconnected.
    """
    running = Broker(_mosquitto_or_skip(), "allow_anonymous true\npersistence true\npersistence_location {dir}/\n")
    running.start()
    yield running
    running.close()
