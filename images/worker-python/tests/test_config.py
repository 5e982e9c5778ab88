"""Config parsing and validation (pure: env is a dict), against the generated settings table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from aiswarm_worker.config import Config, ConfigError, default_worker_id, load_config
from aiswarm_worker.healthcheck import health_settings
from aiswarm_worker.settings_gen import SETTINGS

BASE_ENV = {"GRPC_TOKEN": "tok-123"}
# Config fields whose name is not the variable's in lower case.
FIELD_OF = {"NODE_HOSTNAME": "node", "MQTT_TOPIC_PREFIX": "topic_prefix"}


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(env, hostname=lambda: "vm2", random_hex=lambda: "1a2b")
    return caught.value.problems


def as_table_text(value: object) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def test_every_setting_of_the_table_is_a_config_field() -> None:
    fields = set(Config.__dataclass_fields__) - {"language"}
    assert {FIELD_OF.get(s.name, s.name.lower()) for s in SETTINGS} == fields


def test_defaults_are_the_tables() -> None:
    config = asdict(load_config(BASE_ENV, hostname=lambda: "vm2", random_hex=lambda: "1a2b"))
    for setting in SETTINGS:
        if setting.default is not None:
            assert as_table_text(config[FIELD_OF.get(setting.name, setting.name.lower())]) == setting.default, setting.name
    assert (config["worker_id"], config["node"], config["language"]) == ("python-vm2-1a2b", "vm2", "python")
    assert config["openai_base_url"] is None and config["mqtt_ca_file"] is None and config["gemini_api_key"] is None


@pytest.mark.parametrize("level", ["debug", "info", "warn", "error"])
def test_log_level_takes_each_contract_value(level: str) -> None:
    assert load_config({**BASE_ENV, "LOG_LEVEL": level}).log_level == level


def test_explicit_values_are_taken(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = load_config({
        **BASE_ENV, "WORKER_ID": "py-a_b.c", "MQTT_PORT": " 18830 ", "MQTT_TLS": "YES", "MQTT_CA_FILE": str(ca),
        "MQTT_TOPIC_PREFIX": "lab/x", "LLM_PROVIDER": "OpenAI", "OPENAI_BASE_URL": "http://127.0.0.1:1234/v1/",
        "MASTER_GRPC_ADDR": "[::1]:9", "SIMULATED_WORK_MS": "0", "LOG_LEVEL": "warn",
    })
    assert (config.worker_id, config.mqtt_port, config.mqtt_tls, config.mqtt_ca_file) == ("py-a_b.c", 18830, True, str(ca))
    assert (config.topic_prefix, config.llm_provider, config.master_grpc_addr) == ("lab/x", "openai", "[::1]:9")
    assert (config.openai_base_url, config.simulated_work_ms, config.log_level) == ("http://127.0.0.1:1234/v1", 0, "warn")


def test_empty_values_count_as_unset() -> None:
    config = load_config({**BASE_ENV, "LOG_LEVEL": "", "MQTT_PORT": " ", "WORKER_ID": ""}, random_hex=lambda: "abcd")
    assert (config.log_level, config.mqtt_port) == ("info", 1883)
    assert config.worker_id.startswith("python-") and config.worker_id.endswith("-abcd")


def test_node_hostname_overrides_host_name_and_names_the_default_id() -> None:
    config = load_config({**BASE_ENV, "NODE_HOSTNAME": "vm7"}, hostname=lambda: "c0ffee", random_hex=lambda: "abcd")
    assert (config.node, config.worker_id) == ("vm7", "python-vm7-abcd")


def test_the_default_id_has_the_task_slot_and_32_random_bits() -> None:
    config = load_config({**BASE_ENV, "NODE_HOSTNAME": "vm7", "TASK_SLOT": "12"}, random_hex=lambda: "0badcafe")
    assert config.worker_id == "python-vm7-12-0badcafe"
    assert len(load_config({**BASE_ENV, "NODE_HOSTNAME": "vm7"}).worker_id) == len("python-vm7-") + 8
    with pytest.raises(ConfigError) as caught:
        load_config({**BASE_ENV, "TASK_SLOT": "3 "+"x"})
    assert caught.value.problems == ['TASK_SLOT must be 1 to 10 digits, got "3 x"']


def test_default_worker_id_is_valid_for_odd_or_long_host_names() -> None:
    assert default_worker_id("my host!", "00ff") == "python-my-host--00ff"
    assert default_worker_id("h" * 100, "00ff") == "python-" + "h" * (64 - len("python-") - len("-00ff")) + "-00ff"
    env = {**BASE_ENV, "WORKER_ID": "", "NODE_HOSTNAME": "vm 7/ü" + "n" * 80}
    config = load_config(env, hostname=lambda: "c0ffee", random_hex=lambda: "abcd")
    assert config.worker_id == ("python-vm-7--" + "n" * 80)[:64 - len("-abcd")] + "-abcd"


def test_file_variable_wins_over_plain_twin(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    password = tmp_path / "pw"
    password.write_text("s3cret")
    config = load_config({"GRPC_TOKEN": "plain", "GRPC_TOKEN_FILE": str(token_file), "MQTT_PASSWORD": "x",
                          "MQTT_PASSWORD_FILE": str(password)})
    assert (config.grpc_token, config.mqtt_password) == ("from-file", "s3cret")


def test_secrets_never_appear_in_repr_or_messages() -> None:
    env = {"GRPC_TOKEN": "tok-secret", "GEMINI_API_KEY": "gem-secret", "OPENAI_API_KEY": "oai-secret", "MQTT_PASSWORD": "mqtt-secret"}
    text = repr(load_config(env))
    assert not any(secret in text for secret in env.values())
    assert not any("secret" in problem for problem in problems_of({**env, "MQTT_PORT": "x"}))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GRPC_TOKEN": ""}, "GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)"),
        ({"GRPC_TOKEN_FILE": "/nonexistent/token"}, 'GRPC_TOKEN_FILE names a file that cannot be read: "/nonexistent/token"'),
        ({"WORKER_ID": "bad id!"}, 'WORKER_ID must be 1 to 64 characters of [A-Za-z0-9_.-], got "bad id!"'),
        ({"MQTT_PORT": "abc"}, 'MQTT_PORT must be an integer from 1 to 65535, got "abc"'),
        ({"MQTT_PORT": "70000"}, 'MQTT_PORT must be an integer from 1 to 65535, got "70000"'),
        ({"MQTT_PORT": "٣"}, 'MQTT_PORT must be an integer from 1 to 65535, got "٣"'),
        ({"MQTT_TLS": "maybe"}, 'MQTT_TLS must be true or false, got "maybe"'),
        ({"MQTT_CA_FILE": "/nonexistent/ca.pem"}, 'MQTT_CA_FILE must name a readable file, got "/nonexistent/ca.pem"'),
        ({"MQTT_TOPIC_PREFIX": "a/#"},
         "MQTT_TOPIC_PREFIX must be a topic prefix without wildcards (+, #) or leading/trailing '/', got \"a/#\""),
        ({"MASTER_GRPC_ADDR": "no-port"}, 'MASTER_GRPC_ADDR must be host:port, got "no-port"'),
        ({"LLM_PROVIDER": "claude"}, 'LLM_PROVIDER must be one of auto, gemini, openai, offline, got "claude"'),
        ({"LLM_PROVIDER": "openai"}, "OPENAI_BASE_URL is required when LLM_PROVIDER=openai"),
        ({"OPENAI_BASE_URL": "localhost:11434"}, 'OPENAI_BASE_URL must be an http:// or https:// URL, got "localhost:11434"'),
        ({"GEMINI_MODEL": "two words"}, "GEMINI_MODEL must be a model name without spaces, '?' or '#', got \"two words\""),
        ({"LLM_TIMEOUT_MS": "0"}, 'LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got "0"'),
        ({"SIMULATED_WORK_MS": "-5"}, 'SIMULATED_WORK_MS must be an integer from 0 to 2147483647, got "-5"'),
        ({"HEARTBEAT_INTERVAL_MS": "1.5"}, 'HEARTBEAT_INTERVAL_MS must be an integer from 1 to 2147483647, got "1.5"'),
        ({"LOG_LEVEL": "WARN"}, 'LOG_LEVEL must be one of debug, info, warn, error, got "WARN"'),
        ({"LOG_LEVEL": 'say "hi"'}, 'LOG_LEVEL must be one of debug, info, warn, error, got "say \\"hi\\""'),
    ],
)
def test_each_bad_value_gets_the_contract_message(env: dict[str, str], expected: str) -> None:
    assert problems_of({**BASE_ENV, **env}) == [expected]


def test_empty_secret_file_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert problems_of({**BASE_ENV, "GEMINI_API_KEY_FILE": str(empty)}) == [f'GEMINI_API_KEY_FILE names an empty file: "{empty}"']


def test_every_bad_variable_is_reported_at_once_in_the_tables_order() -> None:
    assert problems_of({"LOG_LEVEL": "loud", "MQTT_PORT": "x", "LLM_TIMEOUT_MS": "y"}) == [
        'MQTT_PORT must be an integer from 1 to 65535, got "x"',
        "GRPC_TOKEN is required (set GRPC_TOKEN or GRPC_TOKEN_FILE)",
        'LLM_TIMEOUT_MS must be an integer from 1 to 2147483647, got "y"',
        'LOG_LEVEL must be one of debug, info, warn, error, got "loud"',
    ]


def test_health_settings_read_only_their_two_variables() -> None:
    assert health_settings({"HEALTH_FILE": "/tmp/h", "HEARTBEAT_INTERVAL_MS": "500", "GRPC_TOKEN_FILE": "/nope"}) == ("/tmp/h", 500)
    default_interval = next(int(s.default or "") for s in SETTINGS if s.name == "HEARTBEAT_INTERVAL_MS")
    assert health_settings({"HEARTBEAT_INTERVAL_MS": "x"})[1] == default_interval
