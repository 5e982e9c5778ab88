"""The worker: one task at a time, heartbeats, graceful shutdown (docs/protocol.md, "Worker behaviour").

Threads:
- paho's network thread delivers task messages to `_on_task_message`, which
  validates them and decides at once (under the lock) to take, ignore or
  reject each one, so two tasks can never both be taken;
- one task thread runs the taken task: credential, LLM, simulated work,
  SendResult with retries. gRPC does not depend on MQTT, so a result is
  delivered even while the broker is down;
- one heartbeat thread publishes a heartbeat and writes HEALTH_FILE;
- the main thread waits for SIGTERM and then calls `shutdown`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from .config import Config
from .healthcheck import write_health_file
from .log_levels import PYTHON_LOG_LEVELS, LogLevel, is_at_least
from .master_client import MasterCallError, MasterClient, ResultDraft
from .mqtt_link import MqttLink, now_ms
from .payloads import (
    Identity,
    PayloadError,
    Status,
    Task,
    Topics,
    heartbeat_payload,
    log_payload,
    parse_task,
    register_payload,
    status_payload,
)
from .providers import ask_llm, default_provider, select_provider

OFFLINE_PUBLISH_TIMEOUT_S = 2.0

log = logging.getLogger("aiswarm_worker")


@dataclass(frozen=True)
class _TakenTask:
    task: Task
    received_ms: int


class Worker:
    def __init__(self, config: Config, master: MasterClient) -> None:
        self.config = config
        self.identity = Identity(config.worker_id, config.language, config.node)
        self.topics = Topics(config.topic_prefix, config.worker_id)
        self._master = master
        self._lock = threading.Lock()
        self._current: Task | None = None  # guarded by _lock
        self._accepting = True  # guarded by _lock
        self._idle = threading.Event()
        self._idle.set()
        self._taken: queue.Queue[_TakenTask] = queue.Queue()
        self._stop_heartbeat = threading.Event()
        self._health_file_ok = True
        self.mqtt = MqttLink(config, self.topics, self._announce, self._on_task_message)

    # ---- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        self._beat()  # HEALTH_FILE exists from the first moment
        self.mqtt.start()
        threading.Thread(target=self._task_loop, name="task", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True).start()

    def shutdown(self) -> bool:
        """SIGTERM sequence; True if the task in hand (if any) finished within the grace period."""
        with self._lock:
            self._accepting = False
            in_hand = self._current.task_id if self._current else None
        self.mqtt.stop_taking_tasks()
        log.info("shutting down; task in hand: %s", in_hand or "none")
        finished = self._idle.wait(self.config.shutdown_grace_ms / 1000)
        if not finished:
            self._event("warn", f"shutdown grace ran out with task {in_hand} in hand; the master will re-dispatch it", in_hand)
        self._stop_heartbeat.set()
        offline = status_payload(self.config.worker_id, "offline", None, now_ms())
        if not self.mqtt.publish_and_wait(self.topics.status, offline, OFFLINE_PUBLISH_TIMEOUT_S):
            log.warning("could not publish status offline (broker unreachable); the last will covers it")
        self.mqtt.stop()
        if finished:
            self._master.close()  # else the task thread may still be using it; the process exits anyway
        log.info("stopped")
        return finished

    # ---- MQTT side (paho's thread) -----------------------------------------

    def _status_now(self) -> tuple[Status, str | None]:
        with self._lock:
            if self._current is not None:
                return "busy", self._current.task_id
            return ("idle" if self._accepting else "offline"), None

    def _publish_status(self, rejected_task_id: str | None = None) -> None:
        status, task_id = self._status_now()
        payload = status_payload(self.config.worker_id, status, task_id, now_ms(), rejected_task_id)
        self.mqtt.publish(self.topics.status, payload)

    def _announce(self) -> None:
        """After every (re)connect: register, then the current status."""
        provider = default_provider(self.config)
        self.mqtt.publish(self.topics.register, register_payload(self.identity, provider, now_ms()))
        self._publish_status()

    def _on_task_message(self, raw: bytes, received_ms: int) -> None:
        try:
            task = parse_task(raw)
        except PayloadError as error:
            self._event("error", f"dropped a malformed task message: {error}")
            return
        with self._lock:
            if self._current is not None and self._current.task_id == task.task_id:
                decision = "duplicate"
            elif self._current is not None or not self._accepting:
                decision = "reject"
            else:
                decision = "take"
                self._current = task
                self._idle.clear()
        if decision == "duplicate":
            log.info("ignored a duplicate delivery of task %s", task.task_id)
        elif decision == "reject":
            log.info("rejected task %s: busy or shutting down", task.task_id)
            self._publish_status(rejected_task_id=task.task_id)
        else:
            # No `status busy` here: the master counts us busy from the lease on,
            # and heartbeats say busy while the task runs (docs/protocol.md).
            self._taken.put(_TakenTask(task, received_ms))

    # ---- task thread -------------------------------------------------------

    def _task_loop(self) -> None:
        while True:
            taken = self._taken.get()
            try:
                self._run_task(taken.task, taken.received_ms)
            except Exception:  # a bug in one task must not stop the worker
                log.exception("task %s failed unexpectedly", taken.task.task_id)
            with self._lock:
                self._current = None
                accepting = self._accepting
            self._idle.set()
            if accepting:  # while shutting down, the next status is `offline`
                self._publish_status()

    def _run_task(self, task: Task, received_ms: int) -> None:
        self._event("info", f"task {task.task_id} started", task.task_id)
        # The user's key is only fetched when it can be used (not in offline mode).
        wants_key = task.has_credential and self.config.llm_provider != "offline"
        user_key = self._fetch_user_key(task.task_id) if wants_key else None
        choice = select_provider(
            self.config.llm_provider, user_key, self.config.gemini_api_key, self.config.openai_base_url
        )
        started_ms = now_ms()
        outcome = ask_llm(self.config, choice, task.query)
        if outcome.error:
            self._event("error", f"task {task.task_id}: {outcome.error}", task.task_id)
        time.sleep(self.config.simulated_work_ms / 1000)
        result = ResultDraft(
            task_id=task.task_id,
            worker_id=self.identity.worker_id,
            language=self.identity.language,
            node=self.identity.node,
            provider=outcome.provider,
            answer=outcome.answer,
            error=outcome.error,
            received_ms=received_ms,
            started_ms=started_ms,
            finished_ms=now_ms(),
        )
        self._send_result(result)
        outcome_word = "failed" if outcome.error else "done"
        self._event("info", f"task {task.task_id} {outcome_word} in {result.finished_ms - received_ms} ms", task.task_id)

    def _fetch_user_key(self, task_id: str) -> str | None:
        """The user's key; on failure the task runs with the worker's own settings (as after a master restart)."""
        try:
            key = self._master.fetch_credential(task_id)
        except MasterCallError as error:
            self._event("error", f"GetTaskCredential for task {task_id} failed: {error.code_name}", task_id)
            return None
        if key is None:
            log.info("task %s: the master holds no user key; using the worker's provider settings", task_id)
        return key

    def _send_result(self, result: ResultDraft) -> None:
        def on_retry(error: Exception, delay_s: float) -> None:
            code = error.code_name if isinstance(error, MasterCallError) else type(error).__name__
            log.warning("SendResult for task %s: %s, retrying in %d ms", result.task_id, code, delay_s * 1000)

        try:
            ack = self._master.send_result(result, self.config.result_retry_deadline_ms / 1000, on_retry)
        except MasterCallError as error:
            self._event("error", f"SendResult for task {result.task_id} rejected: {error.code_name}", result.task_id)
            return
        if ack.duplicate:
            log.info("SendResult for task %s: the master already had a result (duplicate)", result.task_id)
        else:
            log.info("SendResult for task %s: accepted=%s", result.task_id, ack.accepted)

    # ---- heartbeat thread --------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval_s = self.config.heartbeat_interval_ms / 1000
        while not self._stop_heartbeat.wait(interval_s):
            try:
                self._beat()
            except Exception:  # keep beating whatever happened
                log.exception("heartbeat failed")

    def _beat(self) -> None:
        timestamp = now_ms()
        self._write_health_file(timestamp)
        status, task_id = self._status_now()
        self.mqtt.publish(self.topics.heartbeat, heartbeat_payload(self.identity, status, task_id, timestamp))

    def _write_health_file(self, timestamp: int) -> None:
        try:
            write_health_file(self.config.health_file, timestamp)
        except OSError as error:
            if self._health_file_ok:  # say it once, not every heartbeat
                log.error("cannot write HEALTH_FILE %s: %s", self.config.health_file, error.strerror)
            self._health_file_ok = False
            return
        self._health_file_ok = True

    # ---- events --------------------------------------------------------------

    def _event(self, level: LogLevel, message: str, task_id: str | None = None) -> None:
        """A log line here and the same event on P/logs for the cluster; neither below LOG_LEVEL."""
        if not is_at_least(level, self.config.log_level):
            return  # also saves the MQTT message, which costs CPU in the broker and the master
        log.log(PYTHON_LOG_LEVELS[level], message)
        self.mqtt.publish(self.topics.logs, log_payload(self.config.worker_id, level, message, now_ms(), task_id))
