"""gRPC client of the master's WorkerCallback service (proto/aiswarm/v1/worker_callback.proto).

Every call carries `authorization: Bearer <GRPC_TOKEN>` and a 5 s deadline.
SendResult is retried on UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED
(docs/protocol.md, delivery rule 5); every other failure is final and raised
as MasterCallError, which names the status code and never the token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from .backoff import retry_until_deadline
from .pb import worker_callback_pb2 as pb
from .pb import worker_callback_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 5.0
# gRPC's own reconnect backoff grows to 120 s by default, so after a long master
# outage calls would keep failing fast long after it is back. Keep it in step
# with the SendResult schedule (200 ms doubling to 5 s).
#
# Keepalive (docs/protocol.md, rule 5): a ping every 10 s, even between calls,
# and a connection whose ping goes unanswered for 5 s is dropped. Without it a
# connection to a master whose VM is gone (no FIN, no RST: silence) looks open
# for ever, every call on it times out, and the channel never looks up the
# leader again. gRPC core closes the connection on an unanswered ping only
# with ping_timeout_ms set (keepalive_timeout_ms alone did not, on 1.85: the
# failover suite's lost-VM test).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.ping_timeout_ms", 5_000),
]
RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class MasterCallError(Exception):
    """A gRPC call to the master failed; `code_name` is e.g. "UNAUTHENTICATED"."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method} failed: {code.name} ({details})")
        self.method = method
        self.code = code
        self.code_name = code.name

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


@dataclass(frozen=True)
class ResultDraft:
    """Everything a TaskResult holds; `answer` xor `error` is set."""

    task_id: str
    worker_id: str
    language: str
    node: str
    provider: str
    answer: str
    error: str
    received_ms: int
    started_ms: int
    finished_ms: int

    def to_proto(self) -> pb.TaskResult:
        return pb.TaskResult(
            task_id=self.task_id,
            worker_id=self.worker_id,
            language=self.language,
            node=self.node,
            provider=self.provider,
            answer=self.answer,
            error=self.error,
            timings=pb.Timings(
                received_ms=self.received_ms, started_ms=self.started_ms, finished_ms=self.finished_ms
            ),
        )


def _as_call_error(method: str, error: grpc.RpcError) -> MasterCallError:
    if isinstance(error, grpc.Call):
        return MasterCallError(method, error.code(), error.details() or "")
    return MasterCallError(method, grpc.StatusCode.UNKNOWN, type(error).__name__)


class MasterClient:
    def __init__(self, address: str, token: str, worker_id: str) -> None:
        self._channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.WorkerCallbackStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._worker_id = worker_id

    def close(self) -> None:
        self._channel.close()

    def fetch_credential(self, task_id: str) -> str | None:
        """The user's API key for a task this worker holds, or None if the master has none."""
        request = pb.CredentialRequest(task_id=task_id, worker_id=self._worker_id)
        try:
            reply = self._stub.GetTaskCredential(request, timeout=CALL_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as error:
            raise _as_call_error("GetTaskCredential", error) from None
        return reply.api_key if reply.present and reply.api_key else None

    def send_result_once(self, result: ResultDraft) -> pb.ResultAck:
        try:
            return self._stub.SendResult(result.to_proto(), timeout=CALL_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as error:
            raise _as_call_error("SendResult", error) from None

    def send_result(
        self,
        result: ResultDraft,
        retry_deadline_s: float,
        on_retry: Callable[[Exception, float], None] = lambda error, delay: None,
    ) -> pb.ResultAck:
        """SendResult with retries on transient codes until retry_deadline_s has passed."""
        return retry_until_deadline(
            call=lambda: self.send_result_once(result),
            is_retryable=lambda error: isinstance(error, MasterCallError) and error.retryable,
            deadline_s=retry_deadline_s,
            on_retry=on_retry,
        )
