"""The worker: one task at a time, heartbeats, graceful shutdown (docs/protocol.md, "Worker behaviour").

Threads:
- paho's network thread delivers task messages to `_on_task_message`, which
  validates them and decides at once (under the lock, with TaskSlots) to run,
  keep as next, ignore or reject each one;
- one task thread runs the task in hand: credential, LLM, simulated work,
  SendResult with retries, then the task kept as next if one arrived while
  SendResult was in flight. gRPC does not depend on MQTT, so a result is
  delivered even while the broker is down;
- one heartbeat thread publishes a heartbeat and writes HEALTH_FILE;
- the main thread waits for SIGTERM and then calls `shutdown`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

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
from .task_slots import Decision, TakenTask, TaskSlots

OFFLINE_PUBLISH_TIMEOUT_S = 2.0

log = logging.getLogger("aiswarm_worker")


class Worker:
    def __init__(self, config: Config, master: MasterClient) -> None:
        self.config = config
        self.identity = Identity(config.worker_id, config.language, config.node)
        self.topics = Topics(config.topic_prefix, config.worker_id)
        self._master = master
        self._lock = threading.Lock()
        self._slots = TaskSlots()  # guarded by _lock
        self._idle = threading.Event()  # set while no task is in hand
        self._idle.set()
        self._to_run: queue.Queue[TakenTask] = queue.Queue()
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
            waiting = self._slots.stop_accepting()
            in_hand = self._slots.in_hand.task.task_id if self._slots.in_hand else None
        self.mqtt.stop_taking_tasks()
        log.info("shutting down; task in hand: %s", in_hand or "none")
        if waiting is not None:
            # The grace is for the task in hand; the master re-queues this one at once.
            log.info("rejected task %s that was waiting to run next: shutting down", waiting.task.task_id)
            self._publish_status(rejected_task_id=waiting.task.task_id)
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
            if self._slots.in_hand is not None:
                return "busy", self._slots.in_hand.task.task_id
            return ("idle" if self._slots.accepting else "offline"), None

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
        taken = TakenTask(task, received_ms)
        with self._lock:
            decision = self._slots.offer(taken)
            if decision is Decision.RUN_NOW:
                self._idle.clear()
        # Taking a task publishes no status: the master counts us busy from the
        # lease on, and heartbeats say busy while the task runs (docs/protocol.md).
        if decision is Decision.RUN_NOW:
            self._to_run.put(taken)
        elif decision is Decision.RUN_NEXT:
            log.info("task %s will run next, once SendResult has answered", task.task_id)
        elif decision is Decision.DUPLICATE:
            log.info("ignored a duplicate delivery of task %s", task.task_id)
        else:
            log.info("rejected task %s: busy or shutting down", task.task_id)
            self._publish_status(rejected_task_id=task.task_id)

    # ---- task thread -------------------------------------------------------

    def _task_loop(self) -> None:
        while True:
            taken: TakenTask | None = self._to_run.get()
            while taken is not None:
                accepted = self._run_safely(taken)
                taken = self._finish(accepted)

    def _run_safely(self, taken: TakenTask) -> bool:
        """Runs one task; True if the master accepted its result."""
        try:
            return self._run_task(taken.task, taken.received_ms)
        except Exception:  # a bug in one task must not stop the worker
            log.exception("task %s failed unexpectedly", taken.task.task_id)
            return False

    def _finish(self, accepted: bool) -> TakenTask | None:
        """Ends the task in hand and returns the task waiting to run next, if any.

        Without one, the worker is free: after an accepted result it says
        nothing (the master freed it on acceptance); otherwise it says `idle`.
        """
        with self._lock:
            next_task = self._slots.finish_in_hand()
            accepting = self._slots.accepting
        if next_task is None:
            self._idle.set()
            if not accepted and accepting:  # while shutting down, the next status is `offline`
                self._publish_status()
        return next_task

    def _run_task(self, task: Task, received_ms: int) -> bool:
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
        with self._lock:
            self._slots.start_sending_result()  # from now on a next task may arrive
        accepted = self._send_result(result)
        outcome_word = "failed" if outcome.error else "done"
        self._event("info", f"task {task.task_id} {outcome_word} in {result.finished_ms - received_ms} ms", task.task_id)
        return accepted

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

    def _send_result(self, result: ResultDraft) -> bool:
        """SendResult with retries; True if the master accepted the result."""
        def on_retry(error: Exception, delay_s: float) -> None:
            code = error.code_name if isinstance(error, MasterCallError) else type(error).__name__
            log.warning("SendResult for task %s: %s, retrying in %d ms", result.task_id, code, delay_s * 1000)

        try:
            ack = self._master.send_result(result, self.config.result_retry_deadline_ms / 1000, on_retry)
        except MasterCallError as error:
            self._event("error", f"SendResult for task {result.task_id} rejected: {error.code_name}", result.task_id)
            return False
        if ack.duplicate:
            log.info("SendResult for task %s: the master already had a result (duplicate)", result.task_id)
        else:
            log.info("SendResult for task %s: accepted=%s", result.task_id, ack.accepted)
        return bool(ack.accepted)

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
        with self._lock:
            held = self._slots.held_task_ids()
        self.mqtt.publish(self.topics.heartbeat, heartbeat_payload(self.identity, status, task_id, timestamp, held))

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
