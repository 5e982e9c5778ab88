"""Worker configuration from the environment (docs/protocol.md, "Worker environment").

Pure apart from reading `*_FILE` secrets: `load_config` takes the environment
as a mapping so tests can pass any dict. Every problem is collected, so a bad
deployment learns about all of its bad variables at once; each message starts
with the variable's name. Secret values never appear in messages or in repr().
"""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS, LogLevel

LANGUAGE = "python"
WORKER_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PROVIDER_MODES = ("auto", "gemini", "openai", "offline")


class ConfigError(Exception):
    """One or more variables are bad; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    worker_id: str
    node: str
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


def default_worker_id(hostname: str, random_hex: str) -> str:
    """`python-<hostname>-<4 hex>`, squeezed into the worker id alphabet and length."""
    safe_host = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname) or "host"
    prefix, suffix = f"{LANGUAGE}-", f"-{random_hex}"
    return prefix + safe_host[: 64 - len(prefix) - len(suffix)] + suffix


class _Reader:
    """Reads typed values from the environment, collecting problems instead of raising."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        """The value, or None when unset. Empty counts as unset (compose files often pass "")."""
        value = self.env.get(name, "").strip()
        return value or None

    def text_or(self, name: str, default: str) -> str:
        return self.text(name) or default

    def secret(self, name: str) -> str | None:
        """NAME_FILE (a Docker secret) wins over NAME. The value is never put in a message."""
        file_var = f"{name}_FILE"
        path = self.text(file_var)
        if path is None:
            return self.text(name)
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            self.problems.append(f"{file_var}: cannot read {path!r} ({type(error).__name__})")
            return None
        if not value:
            self.problems.append(f"{file_var}: file {path!r} is empty")
            return None
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int = 2**31 - 1) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]+", raw):
            self.problems.append(f"{name}: {raw!r} is not a whole number")
            return default
        value = int(raw)
        if not minimum <= value <= maximum:
            self.problems.append(f"{name}: {value} is out of range [{minimum}, {maximum}]")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        self.problems.append(f"{name}: {raw!r} is not true or false")
        return default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if raw not in allowed:
            self.problems.append(f"{name}: {raw!r} is not one of {', '.join(allowed)}")
            return default
        return raw

    def log_level(self, name: str) -> LogLevel:
        raw = self.choice(name, DEFAULT_LOG_LEVEL, LOG_LEVELS)
        return LOG_LEVELS[LOG_LEVELS.index(raw)]  # the same value, typed as a LogLevel

    def base_url(self, name: str, default: str | None) -> str | None:
        raw = self.text(name) or default
        if raw is None:
            return None
        if not re.match(r"https?://[^/\s]+", raw):
            self.problems.append(f"{name}: {raw!r} is not an http:// or https:// URL")
            return None
        return raw.rstrip("/")


def load_config(
    env: Mapping[str, str],
    hostname: Callable[[], str] = socket.gethostname,
    random_hex: Callable[[], str] = lambda: secrets.token_hex(2),
) -> Config:
    """Builds the Config or raises ConfigError naming every bad variable."""
    read = _Reader(env)
    problems = read.problems

    node = read.text_or("NODE_HOSTNAME", hostname())
    worker_id = read.text("WORKER_ID") or default_worker_id(node, random_hex())
    if not WORKER_ID_PATTERN.fullmatch(worker_id):
        problems.append(f"WORKER_ID: {worker_id!r} must be 1 to 64 characters of [A-Za-z0-9_.-]")

    topic_prefix = read.text_or("MQTT_TOPIC_PREFIX", "ai-system")
    if re.search(r"[+#\x00]", topic_prefix) or topic_prefix.startswith("/") or topic_prefix.endswith("/"):
        problems.append(f"MQTT_TOPIC_PREFIX: {topic_prefix!r} must not hold + # or start/end with /")

    master_grpc_addr = read.text_or("MASTER_GRPC_ADDR", "master:50051")
    if not re.fullmatch(r"\S+:[0-9]{1,5}", master_grpc_addr):
        problems.append(f"MASTER_GRPC_ADDR: {master_grpc_addr!r} is not host:port")

    grpc_token = read.secret("GRPC_TOKEN")
    if grpc_token is None and not any(p.startswith("GRPC_TOKEN_FILE") for p in problems):
        problems.append("GRPC_TOKEN: required (set GRPC_TOKEN or GRPC_TOKEN_FILE)")

    mqtt_ca_file = read.text("MQTT_CA_FILE")
    if mqtt_ca_file is not None and not Path(mqtt_ca_file).is_file():
        problems.append(f"MQTT_CA_FILE: {mqtt_ca_file!r} is not a readable file")

    llm_provider = read.choice("LLM_PROVIDER", "auto", PROVIDER_MODES)
    openai_base_url = read.base_url("OPENAI_BASE_URL", None)
    if llm_provider == "openai" and openai_base_url is None and read.text("OPENAI_BASE_URL") is None:
        problems.append("OPENAI_BASE_URL: required when LLM_PROVIDER=openai")

    config = Config(
        worker_id=worker_id,
        node=node,
        mqtt_host=read.text_or("MQTT_HOST", "mosquitto"),
        mqtt_port=read.integer("MQTT_PORT", 1883, minimum=1, maximum=65535),
        mqtt_username=read.text("MQTT_USERNAME"),
        mqtt_password=read.secret("MQTT_PASSWORD"),
        mqtt_tls=read.boolean("MQTT_TLS", False),
        mqtt_ca_file=mqtt_ca_file,
        topic_prefix=topic_prefix,
        master_grpc_addr=master_grpc_addr,
        grpc_token=grpc_token or "",
        llm_provider=llm_provider,
        gemini_api_key=read.secret("GEMINI_API_KEY"),
        gemini_base_url=read.base_url("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com") or "",
        gemini_model=read.text_or("GEMINI_MODEL", "gemini-2.5-flash"),
        openai_base_url=openai_base_url,
        openai_api_key=read.secret("OPENAI_API_KEY"),
        openai_model=read.text_or("OPENAI_MODEL", "llama3.2"),
        llm_timeout_ms=read.integer("LLM_TIMEOUT_MS", 30000, minimum=1),
        simulated_work_ms=read.integer("SIMULATED_WORK_MS", 10000, minimum=0),
        heartbeat_interval_ms=read.integer("HEARTBEAT_INTERVAL_MS", 2000, minimum=1),
        result_retry_deadline_ms=read.integer("RESULT_RETRY_DEADLINE_MS", 120000, minimum=0),
        shutdown_grace_ms=read.integer("SHUTDOWN_GRACE_MS", 20000, minimum=0),
        health_file=read.text_or("HEALTH_FILE", "/tmp/worker.health"),
        log_level=read.log_level("LOG_LEVEL"),
    )
    if problems:
        raise ConfigError(problems)
    return config
