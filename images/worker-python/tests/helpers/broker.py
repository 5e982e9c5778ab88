"""A real Mosquitto broker on a free 127.0.0.1 port, started and stopped by PID."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .net import LOOPBACK, free_port, wait_for_port


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )


class Broker:
    def __init__(self, binary: str, settings: str = "allow_anonymous true\npersistence false\n") -> None:
        """`settings`: mosquitto.conf lines for the listener (default: anonymous, plain TCP, in memory);
        `{dir}` in them stands for the broker's temp folder, where a test may put certificates."""
        self._binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="aiswarm-mosquitto-"))
        # mosquitto started as root drops to its own user: let it read (certificates)
        # and write (its persistence file) here.
        self.dir.chmod(0o777)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        config = self.dir / "mosquitto.conf"
        config.write_text(f"listener {self.port} {LOOPBACK}\n{settings.format(dir=self.dir)}")
        self._config = config

    def start(self) -> None:
        """Starts (or restarts, on the same port) the broker and waits until it accepts connections."""
        log = open(self.dir / "mosquitto.log", "ab")
        self._process = subprocess.Popen([self._binary, "-c", str(self._config)], stdout=log, stderr=log)
        log.close()
        if not wait_for_port(self.port, 10):
            self.stop()
            raise RuntimeError(f"mosquitto did not listen on {LOOPBACK}:{self.port}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
