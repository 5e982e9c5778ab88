"""Worker configuration from the environment (docs/protocol.md, "Worker environment").

Names, defaults, bounds, allowed values and messages come from `settings_gen.py`, generated
from proto/worker-settings.json for every worker language; this module only applies them.
Pure apart from reading files named by `*_FILE` and file settings: `load_config` takes the
environment as a mapping so tests can pass any dict. Every problem is collected, in the
table's order, so a bad deployment learns about all of its bad variables at once; each is
`NAME <message>` with the same text as the Go and Java workers. Secret values never appear
in messages or in repr().

Why not pydantic-settings: its models hold types and defaults, but not the contract's rules
(NAME_FILE winning over NAME, empty counting as unset, a requirement that depends on another
variable) nor its messages, which must read the same in Python, Go and Java; a small reader
of the shared table does that without a new dependency in the image.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .log_levels import LOG_LEVELS, LogLevel
from .settings_gen import FALSE_WORDS, MESSAGES, SETTINGS, TRUE_WORDS, Setting

LANGUAGE = "python"
INTEGER_TEXT = re.compile(r"-?[0-9]+")  # what every worker language reads as an integer


class ConfigError(Exception):
    """One or more variables are bad; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    worker_id: str
    node: str
    task_slot: str | None
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None
    mqtt_password: str | None = field(repr=False)
    mqtt_tls: bool
    mqtt_ca_file: str | None
    topic_prefix: str
    master_grpc_addr: str
    grpc_token: str = field(repr=False)
    llm_provider: str
    gemini_api_key: str | None = field(repr=False)
    gemini_base_url: str
    gemini_model: str
    openai_base_url: str | None
    openai_api_key: str | None = field(repr=False)
    openai_model: str
    llm_timeout_ms: int
    simulated_work_ms: int
    heartbeat_interval_ms: int
    result_retry_deadline_ms: int
    shutdown_grace_ms: int
    health_file: str
    log_level: LogLevel
    language: str = LANGUAGE


def default_worker_id(hostname: str, random_hex: str, task_slot: str | None = None) -> str:
    """`python-<hostname>-<task slot>-<8 hex>` (no slot part without one), squeezed into the worker id alphabet and length."""
    safe_host = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname) or "host"
    prefix, suffix = f"{LANGUAGE}-", (f"-{task_slot}" if task_slot else "") + f"-{random_hex}"
    return prefix + safe_host[: 64 - len(prefix) - len(suffix)] + suffix


Value = str | int | bool | None


def _message(setting: Setting, kind: str, value: str = "") -> str:
    """`NAME <message>`: the table's text for kind, {value} as a JSON string."""
    replacements = {
        "{value}": json.dumps(value, ensure_ascii=False),
        "{min}": str(setting.minimum),
        "{max}": str(setting.maximum),
        "{values}": ", ".join(setting.values),
        "{rule}": setting.rule or "",
        "{name}": setting.name,
        "{when_name}": setting.required_when[0] if setting.required_when else "",
        "{when_value}": setting.required_when[1] if setting.required_when else "",
    }
    return setting.name + " " + re.sub(r"\{[a-z_]+\}", lambda m: replacements[m.group(0)], MESSAGES[kind])


def read_settings(
    env: Mapping[str, str],
    computed: Mapping[str, str] | None = None,
    only: tuple[str, ...] | None = None,
) -> tuple[dict[str, Value], list[str]]:
    """Applies the table to env: each setting's value by name, and every problem.

    `computed` gives defaults the table cannot hold (the host name); `only` limits reading
    to those variables. A bad value is reported and replaced by its default.
    """
    values: dict[str, Value] = {}
    problems: list[str] = []

    def lookup(name: str) -> str | None:
        return env.get(name, "").strip() or None

    for setting in SETTINGS:
        if only is not None and setting.name not in only:
            continue
        given = lookup(setting.name)
        raw = given if given is not None else (computed or {}).get(setting.name, setting.default)
        if setting.kind == "integer":
            values[setting.name] = _integer(setting, raw or "", problems)
        elif setting.kind == "boolean":
            lowered = (raw or "").lower()
            if lowered not in TRUE_WORDS + FALSE_WORDS:
                problems.append(_message(setting, "boolean", raw or ""))
            values[setting.name] = lowered in TRUE_WORDS
        elif setting.kind == "choice":
            chosen = (raw or "").lower() if setting.ignore_case else (raw or "")
            if chosen not in setting.values:
                problems.append(_message(setting, "choice", raw or ""))
                chosen = setting.default or ""
            values[setting.name] = chosen
        elif setting.kind == "file":
            if raw is not None and not _readable(raw):
                problems.append(_message(setting, "file", raw))
            values[setting.name] = raw
        elif setting.kind == "secret":
            values[setting.name] = _secret(setting, lookup, problems)
        else:
            values[setting.name] = _text(setting, raw, values, problems)
    return values, problems


def _integer(setting: Setting, raw: str, problems: list[str]) -> int:
    if INTEGER_TEXT.fullmatch(raw) and setting.minimum <= int(raw) <= setting.maximum:
        return int(raw)
    problems.append(_message(setting, "integer", raw))
    return int(setting.default or "0")


def _text(setting: Setting, raw: str | None, values: Mapping[str, Value], problems: list[str]) -> str | None:
    if raw is not None and setting.pattern is not None and not re.fullmatch(setting.pattern, raw, re.ASCII):
        problems.append(_message(setting, "pattern", raw))
    if raw is not None and setting.trim_trailing_slash:
        raw = raw.rstrip("/")
    if not raw and setting.required:
        problems.append(_message(setting, "required"))
    elif not raw and setting.required_when is not None and values.get(setting.required_when[0]) == setting.required_when[1]:
        problems.append(_message(setting, "required_when"))
    return raw or None


def _secret(setting: Setting, lookup: Callable[[str], str | None], problems: list[str]) -> str | None:
    """NAME_FILE (a Docker secret) wins over NAME. The value is never put in a message."""
    file_setting = Setting(name=f"{setting.name}_FILE", kind="file")
    path = lookup(file_setting.name)
    if path is None:
        value = lookup(setting.name)
        if value is None and setting.required:
            problems.append(_message(setting, "required_secret"))
        return value
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        problems.append(_message(file_setting, "file_unreadable", path))
        return None
    if not value:
        problems.append(_message(file_setting, "file_empty", path))
        return None
    return value


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def load_config(
    env: Mapping[str, str],
    hostname: Callable[[], str] = socket.gethostname,
    random_hex: Callable[[], str] = lambda: secrets.token_hex(4),
) -> Config:
    """Builds the Config or raises ConfigError naming every bad variable."""
    values, problems = read_settings(env, computed={"NODE_HOSTNAME": hostname()})
    if problems:
        raise ConfigError(problems)

    def text(name: str) -> str:
        return str(values[name])

    def optional(name: str) -> str | None:
        value = values[name]
        return None if value is None else str(value)

    def number(name: str) -> int:
        return int(values[name] or 0)

    return Config(
        worker_id=optional("WORKER_ID") or default_worker_id(text("NODE_HOSTNAME"), random_hex(), optional("TASK_SLOT")),
        node=text("NODE_HOSTNAME"),
        task_slot=optional("TASK_SLOT"),
        mqtt_host=text("MQTT_HOST"),
        mqtt_port=number("MQTT_PORT"),
        mqtt_username=optional("MQTT_USERNAME"),
        mqtt_password=optional("MQTT_PASSWORD"),
        mqtt_tls=values["MQTT_TLS"] is True,
        mqtt_ca_file=optional("MQTT_CA_FILE"),
        topic_prefix=text("MQTT_TOPIC_PREFIX"),
        master_grpc_addr=text("MASTER_GRPC_ADDR"),
        grpc_token=text("GRPC_TOKEN"),
        llm_provider=text("LLM_PROVIDER"),
        gemini_api_key=optional("GEMINI_API_KEY"),
        gemini_base_url=text("GEMINI_BASE_URL"),
        gemini_model=text("GEMINI_MODEL"),
        openai_base_url=optional("OPENAI_BASE_URL"),
        openai_api_key=optional("OPENAI_API_KEY"),
        openai_model=text("OPENAI_MODEL"),
        llm_timeout_ms=number("LLM_TIMEOUT_MS"),
        simulated_work_ms=number("SIMULATED_WORK_MS"),
        heartbeat_interval_ms=number("HEARTBEAT_INTERVAL_MS"),
        result_retry_deadline_ms=number("RESULT_RETRY_DEADLINE_MS"),
        shutdown_grace_ms=number("SHUTDOWN_GRACE_MS"),
        health_file=text("HEALTH_FILE"),
        log_level=LOG_LEVELS[LOG_LEVELS.index(text("LOG_LEVEL"))],  # validated against the table's values
    )
