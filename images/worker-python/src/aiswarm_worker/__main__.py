"""Entry point: `python -m aiswarm_worker`.

Exit codes: 0 after SIGTERM/SIGINT and the graceful sequence; 2 on a bad
configuration (the message names each bad variable).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from .config import Config, ConfigError, load_config
from .log_levels import PYTHON_LOG_LEVELS, LogLevel
from .master_client import MasterClient
from .providers import default_provider
from .worker import Worker

EXIT_BAD_CONFIG = 2


def setup_logging(worker_id: str, lowest: LogLevel) -> None:
    """One line per event on stdout, each naming the worker; nothing below LOG_LEVEL."""
    logging.basicConfig(
        level=PYTHON_LOG_LEVELS[lowest],
        stream=sys.stdout,
        format=f"%(asctime)s %(levelname)s worker={worker_id} %(name)s: %(message)s",
        force=True,
    )


def describe(config: Config) -> str:
    """The start-up line: identity and provider mode, no secrets."""
    return (
        f"starting worker_id={config.worker_id} language={config.language} node={config.node} "
        f"provider_mode={config.llm_provider} default_provider={default_provider(config)} "
        f"mqtt={config.mqtt_host}:{config.mqtt_port} tls={config.mqtt_tls} master={config.master_grpc_addr} "
        f"simulated_work_ms={config.simulated_work_ms}"
    )


def wait_for_stop_signal() -> None:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("aiswarm_worker").info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
        pass


def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        for problem in error.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    setup_logging(config.worker_id, config.log_level)
    log = logging.getLogger("aiswarm_worker")
    log.info(describe(config))
    if config.llm_provider == "gemini" and config.gemini_api_key is None:
        log.warning("LLM_PROVIDER=gemini without GEMINI_API_KEY: only tasks with a user key can succeed")
    worker = Worker(config, MasterClient(config.master_grpc_addr, config.grpc_token, config.worker_id))
    worker.start()
    wait_for_stop_signal()
    finished = worker.shutdown()
    logging.shutdown()
    if not finished:
        # The task thread may be inside a gRPC call; don't let interpreter
        # teardown race it. Everything worth flushing has been flushed.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
