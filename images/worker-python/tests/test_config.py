"""Config parsing and validation (pure: env is a dict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiswarm_worker.config import ConfigError, default_worker_id, load_config

BASE_ENV = {"GRPC_TOKEN": "tok-123"}


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(env, hostname=lambda: "vm2", random_hex=lambda: "1a2b")
    return caught.value.problems


def test_defaults_follow_the_contract() -> None:
    config = load_config(BASE_ENV, hostname=lambda: "vm2", random_hex=lambda: "1a2b")
    assert config.worker_id == "python-vm2-1a2b"
    assert config.node == "vm2"
    assert (config.mqtt_host, config.mqtt_port, config.mqtt_tls) == ("mosquitto", 1883, False)
    assert config.topic_prefix == "ai-system"
    assert config.master_grpc_addr == "master:50051"
    assert config.llm_provider == "auto"
    assert config.gemini_base_url == "https://generativelanguage.googleapis.com"
    assert config.gemini_model == "gemini-2.5-flash"
    assert config.openai_base_url is None
    assert config.openai_model == "llama3.2"
    assert config.llm_timeout_ms == 30000
    assert config.simulated_work_ms == 10000
    assert config.heartbeat_interval_ms == 2000
    assert config.result_retry_deadline_ms == 120000
    assert config.shutdown_grace_ms == 20000
    assert config.health_file == "/tmp/worker.health"
    assert config.log_level == "info"
    assert config.language == "python"


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
def test_log_level_takes_each_contract_value(level: str) -> None:
    assert load_config({**BASE_ENV, "LOG_LEVEL": level}).log_level == level


def test_empty_log_level_counts_as_unset() -> None:
    assert load_config({**BASE_ENV, "LOG_LEVEL": ""}).log_level == "info"


def test_node_hostname_overrides_host_name_and_names_the_default_id() -> None:
    config = load_config({**BASE_ENV, "NODE_HOSTNAME": "vm7"}, hostname=lambda: "c0ffee", random_hex=lambda: "abcd")
    assert config.node == "vm7"
    assert config.worker_id == "python-vm7-abcd"


def test_default_worker_id_is_valid_for_odd_or_long_host_names() -> None:
    assert default_worker_id("my host!", "00ff") == "python-my-host--00ff"
    long_id = default_worker_id("h" * 100, "00ff")
    assert long_id == "python-" + "h" * (64 - len("python-") - len("-00ff")) + "-00ff"


def test_default_worker_id_uses_the_node_name_cleaned_and_cut() -> None:
    env = {**BASE_ENV, "WORKER_ID": "", "NODE_HOSTNAME": "vm 7/ü" + "n" * 80}
    config = load_config(env, hostname=lambda: "c0ffee", random_hex=lambda: "abcd")
    assert config.worker_id == ("python-vm-7--" + "n" * 80)[:64 - len("-abcd")] + "-abcd"
    assert len(config.worker_id) == 64
    config = load_config({**BASE_ENV, "WORKER_ID": ""}, hostname=lambda: "my.host_1", random_hex=lambda: "00ff")
    assert config.worker_id == "python-my.host_1-00ff"


def test_file_variable_wins_over_plain_twin(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = load_config({"GRPC_TOKEN": "plain", "GRPC_TOKEN_FILE": str(token_file)})
    assert config.grpc_token == "from-file"


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    config = load_config(
        {"GRPC_TOKEN": "tok-secret", "GEMINI_API_KEY": "gem-secret", "OPENAI_API_KEY": "oai-secret",
         "MQTT_USERNAME": "u", "MQTT_PASSWORD": "mqtt-secret"}
    )
    text = repr(config)
    for secret in ("tok-secret", "gem-secret", "oai-secret", "mqtt-secret"):
        assert secret not in text


def test_missing_token_is_an_error_naming_the_variable() -> None:
    assert problems_of({}) == ["GRPC_TOKEN: required (set GRPC_TOKEN or GRPC_TOKEN_FILE)"]


def test_unreadable_or_empty_secret_file_names_the_file_variable(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    problems = problems_of({"GRPC_TOKEN_FILE": str(tmp_path / "missing"), "GEMINI_API_KEY_FILE": str(empty)})
    assert len(problems) == 2
    assert problems[0].startswith("GRPC_TOKEN_FILE: cannot read")
    assert problems[1].startswith("GEMINI_API_KEY_FILE: file") and "empty" in problems[1]


@pytest.mark.parametrize(
    ("variable", "value", "expected_start"),
    [
        ("WORKER_ID", "bad id!", "WORKER_ID:"),
        ("WORKER_ID", "x" * 65, "WORKER_ID:"),
        ("MQTT_PORT", "abc", "MQTT_PORT: 'abc' is not a whole number"),
        ("MQTT_PORT", "70000", "MQTT_PORT: 70000 is out of range"),
        ("MQTT_TLS", "maybe", "MQTT_TLS: 'maybe' is not true or false"),
        ("MQTT_TOPIC_PREFIX", "a/#", "MQTT_TOPIC_PREFIX:"),
        ("MASTER_GRPC_ADDR", "no-port", "MASTER_GRPC_ADDR:"),
        ("LLM_PROVIDER", "claude", "LLM_PROVIDER: 'claude' is not one of auto, gemini, openai, offline"),
        ("GEMINI_BASE_URL", "ftp://x", "GEMINI_BASE_URL:"),
        ("OPENAI_BASE_URL", "localhost:11434", "OPENAI_BASE_URL:"),
        ("LLM_TIMEOUT_MS", "0", "LLM_TIMEOUT_MS: 0 is out of range"),
        ("SIMULATED_WORK_MS", "-5", "SIMULATED_WORK_MS: '-5' is not a whole number"),
        ("HEARTBEAT_INTERVAL_MS", "1.5", "HEARTBEAT_INTERVAL_MS:"),
        ("RESULT_RETRY_DEADLINE_MS", "soon", "RESULT_RETRY_DEADLINE_MS:"),
        ("SHUTDOWN_GRACE_MS", "x", "SHUTDOWN_GRACE_MS:"),
        ("MQTT_CA_FILE", "/nonexistent/ca.pem", "MQTT_CA_FILE:"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: 'verbose' is not one of debug, info, warn, error"),
        ("LOG_LEVEL", "WARN", "LOG_LEVEL: 'WARN' is not one of debug, info, warn, error"),
        ("LOG_LEVEL", "warning", "LOG_LEVEL: 'warning' is not one of debug, info, warn, error"),
    ],
)
def test_bad_value_is_reported_by_variable_name(variable: str, value: str, expected_start: str) -> None:
    problems = problems_of({**BASE_ENV, variable: value})
    assert len(problems) == 1
    assert problems[0].startswith(expected_start)


def test_every_bad_variable_is_reported_at_once() -> None:
    problems = problems_of({"MQTT_PORT": "x", "LLM_TIMEOUT_MS": "y"})
    assert [p.split(":")[0] for p in problems] == ["GRPC_TOKEN", "MQTT_PORT", "LLM_TIMEOUT_MS"]


def test_openai_mode_requires_a_base_url() -> None:
    assert problems_of({**BASE_ENV, "LLM_PROVIDER": "openai"}) == ["OPENAI_BASE_URL: required when LLM_PROVIDER=openai"]


def test_base_urls_lose_their_trailing_slash_and_empty_values_count_as_unset() -> None:
    config = load_config({**BASE_ENV, "OPENAI_BASE_URL": "http://127.0.0.1:1234/v1/", "WORKER_ID": "", "MQTT_PORT": ""})
    assert config.openai_base_url == "http://127.0.0.1:1234/v1"
    assert config.mqtt_port == 1883
    assert config.worker_id.startswith("python-")


def test_tls_and_mqtt_credentials(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    password = tmp_path / "pw"
    password.write_text("s3cret")
    config = load_config(
        {**BASE_ENV, "MQTT_TLS": "true", "MQTT_CA_FILE": str(ca), "MQTT_USERNAME": "worker",
         "MQTT_PASSWORD": "ignored", "MQTT_PASSWORD_FILE": str(password)}
    )
    assert config.mqtt_tls is True
    assert config.mqtt_ca_file == str(ca)
    assert (config.mqtt_username, config.mqtt_password) == ("worker", "s3cret")
