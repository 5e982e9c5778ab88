"""MQTT_TLS, MQTT_CA_FILE, MQTT_USERNAME and MQTT_PASSWORD_FILE against a real Mosquitto.

The test makes a throw-away CA and a server certificate for 127.0.0.1 with the
openssl CLI, and a password file with mosquitto_passwd.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.broker import Broker, find_mosquitto
from helpers.fake_master import FakeMaster
from helpers.mqtt_probe import MqttProbe
from helpers.worker_process import WorkerProcess

TOKEN = "tls-test-token"
USERNAME = "worker-user"
PASSWORD = "broker-pass-Zq81"


def run(*command: str, cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """ca.pem, and server.pem/server.key valid for IP 127.0.0.1, signed by it."""
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=aiswarm-test-ca", cwd=directory)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1", cwd=directory)
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=directory)
    for name in ("ca.pem", "server.pem", "server.key"):
        (directory / name).chmod(0o644)


@pytest.fixture
def tls_broker() -> Iterator[Broker]:
    binary = find_mosquitto()
    missing = [tool for tool in ("openssl", "mosquitto_passwd") if shutil.which(tool) is None]
    if binary is None or missing:
        pytest.skip(f"needs mosquitto, openssl and mosquitto_passwd; missing: {missing or ['mosquitto']}")
    broker = Broker(binary, settings="allow_anonymous false\npersistence false\npassword_file {dir}/passwd\n"
                    "cafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n")
    make_certificates(broker.dir)
    run("mosquitto_passwd", "-b", "-c", "passwd", USERNAME, PASSWORD, cwd=broker.dir)
    (broker.dir / "passwd").chmod(0o644)
    broker.start()
    yield broker
    broker.close()


def worker_env(broker: Broker, master: FakeMaster, password_file: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "WORKER_ID": "py-tls-1", "NODE_HOSTNAME": "vm-tls", "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(broker.port),
        "MQTT_TLS": "true", "MQTT_CA_FILE": str(broker.dir / "ca.pem"), "MQTT_USERNAME": USERNAME,
        "MQTT_PASSWORD_FILE": str(password_file), "MQTT_TOPIC_PREFIX": "tls", "MASTER_GRPC_ADDR": master.address,
        "GRPC_TOKEN": TOKEN, "SIMULATED_WORK_MS": "0", "HEARTBEAT_INTERVAL_MS": "200",
        "HEALTH_FILE": str(tmp_path / "health"),
    }


def test_worker_connects_with_tls_and_a_password_file_and_runs_a_task(tls_broker: Broker, tmp_path: Path) -> None:
    master = FakeMaster(TOKEN)
    probe = MqttProbe(tls_broker.port, "tls", ca_file=str(tls_broker.dir / "ca.pem"), username=USERNAME,
                      password=PASSWORD)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(PASSWORD + "\n")
    worker = WorkerProcess(worker_env(tls_broker, master, password_file, tmp_path))
    try:
        probe.wait_for("workers/py-tls-1/status", lambda p: p["status"] == "idle")
        probe.publish("tls/workers/py-tls-1/tasks", {"v": 1, "type": "task", "task_id": "q_tls", "query": "hi",
                                                     "lease_ms": 30000, "has_credential": False, "ts": 1})
        [result] = master.wait_until(lambda m: m.results)
        assert result.task_id == "q_tls" and result.node == "vm-tls"
        assert PASSWORD not in worker.output()
    finally:
        worker.kill()
        probe.close()
        master.stop()


def test_a_wrong_password_is_logged_without_the_password_and_the_worker_keeps_trying(
    tls_broker: Broker, tmp_path: Path
) -> None:
    master = FakeMaster(TOKEN)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("wrong-pass-Kx5\n")
    worker = WorkerProcess(worker_env(tls_broker, master, password_file, tmp_path))
    try:
        output = worker.wait_for_output("MQTT connect refused")
        assert "wrong-pass-Kx5" not in output
        time.sleep(0.5)
        assert worker.process.poll() is None
    finally:
        worker.kill()
        master.stop()
