"""Runs `python -m aiswarm_worker` as a real process, with its output in a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class WorkerProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.output_path = Path(tempfile.mkstemp(prefix="aiswarm-worker-", suffix=".log")[1])
        # A clean environment: only what the worker is given, plus what Python needs.
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        with open(self.output_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aiswarm_worker"],
                env={**base, "PYTHONUNBUFFERED": "1", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout_s: float = 10) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            output = self.output()
            if text in output:
                return output
            time.sleep(0.05)
        raise AssertionError(f"worker output has no {text!r} within {timeout_s} s:\n{self.output()}")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        """Cleanup: stops the process (by its PID) if it is still running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.output_path.unlink(missing_ok=True)
