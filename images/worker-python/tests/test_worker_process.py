"""The whole worker process against a real Mosquitto and a fake master gRPC server.

Each test starts `python -m aiswarm_worker` with the environment of
docs/protocol.md, watches MQTT with a probe client, sends tasks the way the
master does, and checks what reaches the fake master.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from helpers.broker import Broker
from helpers.fake_llm import FakeLlmServer, Script, gemini_body, openai_body
from helpers.fake_master import FakeMaster
from helpers.mqtt_probe import MqttProbe
from helpers.worker_process import WorkerProcess

TOKEN = "test-token-7f3a"
NODE = "vm-test-1"
_numbers = itertools.count()


@dataclass
class Harness:
    """One test's world: broker, fake master, MQTT probe, and the workers it started."""

    broker: Broker
    tmp_path: Path
    persistent_probe: bool = False
    master: FakeMaster = field(init=False)
    probe: MqttProbe = field(init=False)
    prefix: str = field(init=False)
    worker_id: str = field(init=False)
    workers: list[WorkerProcess] = field(default_factory=list)
    extras: list[FakeLlmServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        number = next(_numbers)
        self.prefix = f"test-{number}-{time.monotonic_ns()}"
        self.worker_id = f"py-test-{number}"
        self.master = FakeMaster(TOKEN)
        self.probe = MqttProbe(self.broker.port, self.prefix, persistent_session=self.persistent_probe)

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            "WORKER_ID": self.worker_id,
            "NODE_HOSTNAME": NODE,
            "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": str(self.broker.port),
            "MQTT_TOPIC_PREFIX": self.prefix,
            "MASTER_GRPC_ADDR": self.master.address,
            "GRPC_TOKEN": TOKEN,
            "LLM_PROVIDER": "auto",
            "SIMULATED_WORK_MS": "0",
            "HEARTBEAT_INTERVAL_MS": "200",
            "RESULT_RETRY_DEADLINE_MS": "5000",
            "SHUTDOWN_GRACE_MS": "5000",
            "HEALTH_FILE": str(self.tmp_path / "worker.health"),
            **overrides,
        }

    def start_worker(self, **overrides: str) -> WorkerProcess:
        worker = WorkerProcess(self.env(**overrides))
        self.workers.append(worker)
        return worker

    def start_ready_worker(self, **overrides: str) -> WorkerProcess:
        """Starts a worker and waits until it has announced itself idle."""
        worker = self.start_worker(**overrides)
        self.probe.wait_for(self.topic("status"), lambda p: p["status"] == "idle")
        return worker

    def fake_llm(self) -> FakeLlmServer:
        server = FakeLlmServer()
        self.extras.append(server)
        return server

    def topic(self, leaf: str) -> str:
        return f"workers/{self.worker_id}/{leaf}"

    def send_task(self, task_id: str, query: str = "What is Docker Swarm?", has_credential: bool = False) -> None:
        self.probe.publish(f"{self.prefix}/{self.topic('tasks')}", {
            "v": 1, "type": "task", "task_id": task_id, "query": query,
            "lease_ms": 30000, "has_credential": has_credential, "ts": int(time.time() * 1000),
        })

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        for server in self.extras:
            server.stop()
        self.probe.close()
        self.master.stop()


@pytest.fixture
def world(broker: Broker, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(broker, tmp_path)
    yield harness
    harness.close()


@pytest.fixture
def world_with_own_broker(own_broker: Broker, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(own_broker, tmp_path, persistent_probe=True)
    yield harness
    harness.close()


def is_status(status: str, task_id: str | None = None) -> Any:
    return lambda p: p["status"] == status and (task_id is None or p["task_id"] == task_id)


def wait_until_busy_with(world: Harness, task_id: str) -> Any:
    """The first heartbeat saying the worker runs task_id (taking a task publishes no status)."""
    return world.probe.wait_for(world.topic("heartbeat"), is_status("busy", task_id))


def wait_until_free_after(world: Harness, result: Any) -> Any:
    """The first heartbeat saying the worker is idle again after the task's result.

    An accepted result publishes no status (docs/protocol.md): the heartbeats
    are what shows the worker free.
    """
    return world.probe.wait_for(
        world.topic("heartbeat"), lambda p: p["status"] == "idle" and p["ts"] >= result.timings.finished_ms
    )


def statuses_after_result(world: Harness, result: Any, settle_s: float = 0.3) -> list[Any]:
    """The statuses published after the task's result, once the worker has had settle_s to publish one."""
    wait_until_free_after(world, result)
    time.sleep(settle_s)
    return [p for p in world.probe.on(world.topic("status")) if p["ts"] >= result.timings.finished_ms]


def stop_gracefully(worker: WorkerProcess, timeout_s: float = 10) -> int:
    worker.signal(signal.SIGTERM)
    return worker.wait(timeout_s)


# ---- the normal cycle -------------------------------------------------------------


def test_registers_heartbeats_runs_a_task_and_stops_cleanly(world: Harness) -> None:
    worker = world.start_worker()

    register = world.probe.wait_for(world.topic("register"), lambda p: True)
    assert register == {"v": 1, "type": "register", "worker_id": world.worker_id, "language": "python",
                        "node": NODE, "provider": "offline", "ts": register["ts"]}
    assert isinstance(register["ts"], int)
    world.probe.wait_for(world.topic("status"), is_status("idle"))
    heartbeat = world.probe.wait_for(world.topic("heartbeat"), lambda p: True)
    assert {k: heartbeat[k] for k in ("v", "type", "worker_id", "language", "node", "status", "task_id")} == {
        "v": 1, "type": "heartbeat", "worker_id": world.worker_id, "language": "python", "node": NODE,
        "status": "idle", "task_id": None}
    assert (world.tmp_path / "worker.health").read_text().isdigit()

    before_task = int(time.time() * 1000)
    world.send_task("q_1")
    [result] = world.master.wait_until(lambda m: m.results)
    assert (result.task_id, result.worker_id, result.language, result.node, result.provider) == (
        "q_1", world.worker_id, "python", NODE, "offline")
    assert result.answer.startswith("[offline]") and result.error == ""
    timings = result.timings
    assert before_task <= timings.received_ms <= timings.started_ms <= timings.finished_ms <= int(time.time() * 1000)

    assert statuses_after_result(world, result) == [], "an accepted result frees the worker without a status"
    logs = world.probe.wait_for("logs", lambda p: p.get("task_id") == "q_1" and "done" in p["message"])
    assert logs["source"] == world.worker_id and logs["level"] == "info"
    assert world.probe.count("logs", lambda p: p.get("task_id") == "q_1" and "started" in p["message"]) == 1

    assert stop_gracefully(worker) == 0
    statuses = world.probe.on(world.topic("status"))
    assert statuses[-1] == {"v": 1, "type": "status", "worker_id": world.worker_id, "status": "offline",
                            "task_id": None, "ts": statuses[-1]["ts"]}
    output = worker.output()
    assert f"worker={world.worker_id}" in output
    assert "language=python" in output and f"node={NODE}" in output and "provider_mode=auto" in output
    assert TOKEN not in output


def test_simulated_work_is_applied_between_answer_and_result(world: Harness) -> None:
    world.start_ready_worker(SIMULATED_WORK_MS="700")
    world.send_task("q_sim")
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.timings.finished_ms - result.timings.started_ms >= 700


# ---- bad input and rejected calls ------------------------------------------------------


def test_malformed_tasks_are_logged_and_dropped_without_a_crash(world: Harness) -> None:
    worker = world.start_ready_worker()
    tasks_topic = f"{world.prefix}/{world.topic('tasks')}"
    bad_payloads = [
        b"not json",
        b"[1,2,3]",
        b'{"v":2,"type":"task","task_id":"q","query":"x","lease_ms":1,"has_credential":false,"ts":1}',
        b'{"v":1,"type":"task","task_id":"q","lease_ms":1,"has_credential":false,"ts":1}',
        b'{"v":1,"type":"task","task_id":"q","query":"x","lease_ms":"soon","has_credential":false,"ts":1}',
        b"\xff\xfe\x00",
        b"[" * 70000,
    ]
    for payload in bad_payloads:
        world.probe.publish(tasks_topic, payload)
    deadline = time.monotonic() + 10
    while world.probe.count("logs", lambda p: "malformed task" in p["message"]) < len(bad_payloads):
        assert time.monotonic() < deadline, "not every malformed task was reported on P/logs"
        time.sleep(0.05)
    assert all(p["level"] == "error" for p in world.probe.on("logs") if "malformed" in p["message"])
    assert worker.process.poll() is None

    world.send_task("q_after_garbage")
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.task_id == "q_after_garbage"
    assert "Traceback" not in worker.output()


def test_wrong_token_is_logged_with_the_status_code_and_the_worker_stays_up(world: Harness) -> None:
    worker = world.start_ready_worker(GRPC_TOKEN="not-the-token")
    world.send_task("q_badtoken")
    world.master.wait_until(lambda m: m.rejected_calls >= 1)
    output = worker.wait_for_output("UNAUTHENTICATED")
    line = next(line for line in output.splitlines() if "UNAUTHENTICATED" in line)
    assert "q_badtoken" in line and world.worker_id in line
    assert "not-the-token" not in output
    error_log = world.probe.wait_for("logs", lambda p: p["level"] == "error" and "UNAUTHENTICATED" in p["message"])
    assert error_log["task_id"] == "q_badtoken"
    world.probe.wait_for(world.topic("status"), lambda p: p["status"] == "idle" and p["ts"] > error_log["ts"] - 1000)
    time.sleep(0.5)
    assert world.master.rejected_calls == 1, "UNAUTHENTICATED is final: no retry"
    assert world.master.results == []
    last_heartbeat = world.probe.on(world.topic("heartbeat"))[-1]
    assert last_heartbeat["status"] == "idle" and worker.process.poll() is None


def test_transient_master_errors_are_retried_until_the_result_lands(world: Harness) -> None:
    world.master.send_result_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED]
    worker = world.start_ready_worker()
    world.send_task("q_retry")
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.task_id == "q_retry"
    output = worker.output()
    assert "UNAVAILABLE, retrying in 200 ms" in output and "RESOURCE_EXHAUSTED, retrying in 400 ms" in output


def test_a_duplicate_ack_is_followed_by_idle(world: Harness) -> None:
    world.start_ready_worker()
    world.send_task("q_twice")
    [first] = world.master.wait_until(lambda m: m.results)
    wait_until_free_after(world, first)
    world.send_task("q_twice")  # leased again (say, after a lease expiry): the master already has its result
    second = world.master.wait_until(lambda m: m.results[1:])[0]
    idle = world.probe.wait_for(
        world.topic("status"), lambda p: p["status"] == "idle" and p["ts"] >= second.timings.finished_ms
    )
    assert idle["task_id"] is None and "rejected_task_id" not in idle
    assert [s for s in world.probe.on(world.topic("status")) if s["ts"] >= first.timings.finished_ms] == [idle], (
        "the accepted first result published no status, the duplicate one `idle`"
    )


def test_a_final_master_error_is_not_retried(world: Harness) -> None:
    world.master.send_result_failures = [grpc.StatusCode.PERMISSION_DENIED]
    worker = world.start_ready_worker()
    sent_at = int(time.time() * 1000)
    world.send_task("q_denied")
    worker.wait_for_output("rejected: PERMISSION_DENIED")
    # The master did not accept the result, so it still counts the worker busy until told.
    idle = world.probe.wait_for(world.topic("status"), lambda p: p["status"] == "idle" and p["ts"] >= sent_at)
    assert idle["task_id"] is None and "rejected_task_id" not in idle
    time.sleep(0.5)
    assert world.master.results == [] and world.master.send_result_failures == []


# ---- one task at a time ---------------------------------------------------------------


def test_a_task_while_busy_is_rejected_and_a_duplicate_is_ignored(world: Harness) -> None:
    worker = world.start_ready_worker(SIMULATED_WORK_MS="1500")
    world.send_task("q_first")
    wait_until_busy_with(world, "q_first")
    world.send_task("q_first")  # QoS 1 duplicate
    world.send_task("q_second")
    rejection = world.probe.wait_for(world.topic("status"), lambda p: p.get("rejected_task_id") == "q_second")
    assert (rejection["status"], rejection["task_id"]) == ("busy", "q_first")
    [result] = world.master.wait_until(lambda m: m.results)
    wait_until_free_after(world, result)
    time.sleep(0.3)
    assert [r.task_id for r in world.master.results] == ["q_first"]
    assert "ignored a duplicate delivery of task q_first" in worker.output()


def test_a_task_whose_result_is_accepted_publishes_no_status_at_all(world: Harness) -> None:
    world.start_ready_worker(SIMULATED_WORK_MS="600")
    [start_up] = world.probe.on(world.topic("status"))
    world.send_task("q_quiet")
    wait_until_busy_with(world, "q_quiet")  # taken and running, as the heartbeats say
    [result] = world.master.wait_until(lambda m: m.results)
    wait_until_free_after(world, result)
    time.sleep(0.3)
    assert world.probe.on(world.topic("status")) == [start_up], "taking the task or its accepted result published a status"


def test_a_task_arriving_while_the_result_is_sent_runs_next_and_a_third_is_rejected(world: Harness) -> None:
    world.master.answer_delay_s = 0.5  # the master has the result but has not answered yet
    worker = world.start_ready_worker()
    world.send_task("q_a")
    world.master.wait_until(lambda m: m.results)  # q_a's SendResult is in flight from here on
    world.send_task("q_b")  # leased at once by a master that already accepted q_a
    world.send_task("q_b")  # QoS 1 duplicate of the waiting task
    world.send_task("q_c")  # one task waits at most
    rejection = world.probe.wait_for(world.topic("status"), lambda p: p.get("rejected_task_id") == "q_c")
    assert (rejection["status"], rejection["task_id"]) == ("busy", "q_a")
    world.master.wait_until(lambda m: len(m.results) == 2)
    first, second = world.master.results
    assert (first.task_id, second.task_id) == ("q_a", "q_b")
    assert second.timings.received_ms < second.timings.started_ms, "q_b arrived before it could start"
    statuses = statuses_after_result(world, second)
    assert statuses == [], "both results were accepted: no idle"
    assert world.probe.count(world.topic("status"), lambda p: p.get("rejected_task_id") == "q_b") == 0
    assert [p.get("rejected_task_id") for p in world.probe.on(world.topic("status"))][1:] == ["q_c"]
    output = worker.output()
    assert "task q_b will run next" in output and "ignored a duplicate delivery of task q_b" in output


# ---- LOG_LEVEL ----------------------------------------------------------------------------


def wait_for_idle_after_result(world: Harness, task_id: str) -> None:
    """Waits for the task's result and then an idle heartbeat, which comes after the task's last message."""
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.task_id == task_id and result.answer.startswith("[offline]")
    wait_until_free_after(world, result)


def test_log_level_warn_keeps_the_task_info_events_off_p_logs_and_stdout(world: Harness) -> None:
    worker = world.start_ready_worker(LOG_LEVEL="warn")
    world.send_task("q_hushed")
    wait_for_idle_after_result(world, "q_hushed")
    # An error event still passes LOG_LEVEL=warn; any event of the task would have come before it.
    world.probe.publish(f"{world.prefix}/{world.topic('tasks')}", b"not json")
    error = world.probe.wait_for("logs", lambda p: "malformed task" in p["message"])
    assert error["level"] == "error"
    assert world.probe.on("logs") == [error]
    output = worker.output()
    assert "malformed task" in output
    assert "q_hushed" not in output, "info lines (task events, the SendResult line) are printed below LOG_LEVEL"
    assert " INFO " not in output


def test_default_log_level_publishes_the_task_info_events(world: Harness) -> None:
    worker = world.start_ready_worker()
    world.send_task("q_told")
    wait_for_idle_after_result(world, "q_told")
    events = [(p["level"], p["message"]) for p in world.probe.on("logs") if p.get("task_id") == "q_told"]
    assert [level for level, _ in events] == ["info", "info"]
    assert events[0][1] == "task q_told started"
    assert events[1][1].startswith("task q_told done in ")
    assert "SendResult for task q_told: accepted=True" in worker.output()


# ---- providers through the whole worker -------------------------------------------------


def test_per_query_key_is_fetched_over_grpc_and_never_leaks(world: Harness) -> None:
    gemini = world.fake_llm()
    gemini.script = Script(200, gemini_body("Swarm answer"))
    user_key = "user-key-AIzaUSER"
    world.master.credentials["q_key"] = user_key
    worker = world.start_ready_worker(GEMINI_BASE_URL=gemini.base_url, GEMINI_API_KEY="server-key-AIzaSRV")
    world.send_task("q_key", has_credential=True)
    [result] = world.master.wait_until(lambda m: m.results)
    assert (result.provider, result.answer, result.error) == ("gemini", "Swarm answer", "")
    [request] = world.master.credential_requests
    assert (request.task_id, request.worker_id) == ("q_key", world.worker_id)
    assert gemini.requests[0].headers["x-goog-api-key"] == user_key
    assert user_key not in str(result)
    assert user_key not in worker.output() and "server-key-AIzaSRV" not in worker.output()
    assert all(user_key.encode() not in m.raw for m in world.probe.messages)


def test_without_a_key_at_the_master_the_task_runs_with_the_worker_settings(world: Harness) -> None:
    world.start_ready_worker()
    world.send_task("q_no_key", has_credential=True)  # the master has no key for it (as after a restart)
    [result] = world.master.wait_until(lambda m: m.results)
    assert [r.task_id for r in world.master.credential_requests] == ["q_no_key"]
    assert result.provider == "offline" and result.answer.startswith("[offline]")


def test_offline_mode_does_not_fetch_the_user_key(world: Harness) -> None:
    world.master.credentials["q_offline"] = "user-key-unused"
    world.start_ready_worker(LLM_PROVIDER="offline")
    world.send_task("q_offline", has_credential=True)
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.provider == "offline"
    assert world.master.credential_requests == []


def test_llm_failure_becomes_an_error_result_and_the_worker_carries_on(world: Harness) -> None:
    openai = world.fake_llm()
    openai.script = Script(429, {"error": "rate limited"})
    worker = world.start_ready_worker(LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{openai.base_url}/v1")
    world.send_task("q_429")
    [failed] = world.master.wait_until(lambda m: m.results)
    assert (failed.provider, failed.answer, failed.error) == ("openai", "", "openai: HTTP 429")
    world.probe.wait_for("logs", lambda p: p["level"] == "error" and p.get("task_id") == "q_429")

    openai.script = Script(200, openai_body("fine now"))
    wait_until_free_after(world, failed)  # an error result is a result: accepted, no status
    world.send_task("q_ok")
    world.master.wait_until(lambda m: len(m.results) == 2)
    assert world.master.results[1].answer == "fine now"
    assert worker.process.poll() is None


# ---- failures of the process and of the broker ------------------------------------------


def test_last_will_announces_offline_when_the_worker_dies(world: Harness) -> None:
    worker = world.start_ready_worker()
    worker.process.kill()
    worker.wait(5)
    will = world.probe.wait_for(world.topic("status"), is_status("offline"))
    assert will == {"v": 1, "type": "status", "worker_id": world.worker_id, "status": "offline",
                    "task_id": None, "ts": will["ts"]}


def test_result_is_sent_while_the_broker_is_down_and_the_worker_reconnects(world_with_own_broker: Harness) -> None:
    world = world_with_own_broker
    worker = world.start_ready_worker(SIMULATED_WORK_MS="1500")
    world.send_task("q_outage")
    wait_until_busy_with(world, "q_outage")

    world.broker.stop()
    stopped_at = int(time.time() * 1000)
    [result] = world.master.wait_until(lambda m: m.results)
    assert result.task_id == "q_outage" and result.answer.startswith("[offline]")

    world.broker.start()  # same port
    register = world.probe.wait_for(world.topic("register"), lambda p: p["ts"] > stopped_at, timeout_s=20)
    assert register["worker_id"] == world.worker_id
    world.probe.wait_for(world.topic("status"), lambda p: p["status"] == "idle" and p["ts"] > stopped_at)
    world.probe.wait_for(world.topic("heartbeat"), lambda p: p["ts"] > register["ts"])
    assert "MQTT connection lost" in worker.output()


# ---- SIGTERM ----------------------------------------------------------------------------


def test_sigterm_finishes_the_task_in_hand_then_goes_offline(world: Harness) -> None:
    worker = world.start_ready_worker(SIMULATED_WORK_MS="1000", SHUTDOWN_GRACE_MS="5000")
    world.send_task("q_graceful")
    wait_until_busy_with(world, "q_graceful")
    statuses_before = len(world.probe.on(world.topic("status")))
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert [r.task_id for r in world.master.results] == ["q_graceful"]
    world.probe.wait_for(world.topic("status"), is_status("offline"))
    # One connection keeps its order, so these were all published after the busy heartbeat.
    statuses_since = [s["status"] for s in world.probe.on(world.topic("status"))[statuses_before:]]
    assert statuses_since == ["offline"], "no idle between the last task and offline"


def test_sigterm_rejects_the_task_waiting_to_run_next(world: Harness) -> None:
    world.master.answer_delay_s = 1.0
    worker = world.start_ready_worker()
    world.send_task("q_last")
    world.master.wait_until(lambda m: m.results)
    world.send_task("q_waiting")
    worker.wait_for_output("task q_waiting will run next")
    worker.signal(signal.SIGTERM)
    rejection = world.probe.wait_for(world.topic("status"), lambda p: p.get("rejected_task_id") == "q_waiting")
    assert (rejection["status"], rejection["task_id"]) == ("busy", "q_last"), "the task in hand still runs"
    assert worker.wait(10) == 0
    assert [r.task_id for r in world.master.results] == ["q_last"]
    world.probe.wait_for(world.topic("status"), is_status("offline"))


def test_sigterm_when_grace_runs_out_publishes_offline_and_exits(world: Harness) -> None:
    worker = world.start_ready_worker(SIMULATED_WORK_MS="20000", SHUTDOWN_GRACE_MS="300")
    world.send_task("q_too_long")
    wait_until_busy_with(world, "q_too_long")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - started < 5
    world.probe.wait_for(world.topic("status"), is_status("offline"))
    assert world.master.results == []
    assert "grace ran out" in worker.output()


# ---- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [({"MQTT_PORT": "abc"}, "MQTT_PORT"), ({"GRPC_TOKEN": ""}, "GRPC_TOKEN"), ({"WORKER_ID": "bad/id"}, "WORKER_ID"),
     ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL")],
)
def test_bad_config_exits_2_naming_the_variable(world: Harness, overrides: dict[str, str], variable: str) -> None:
    worker = world.start_worker(**overrides)
    assert worker.wait(10) == 2
    assert f"config error: {variable} " in worker.output()
