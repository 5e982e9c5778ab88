"""A small fake master: the real WorkerCallback gRPC service (generated from the same proto) on 127.0.0.1.

It enforces the token like the master (UNAUTHENTICATED), records every call,
can fail the first SendResult calls with a chosen code, can hold back its
SendResult answers (a result is recorded on arrival, then answered after
`answer_delay_s`, as a busy master would), and hands out per-task user keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar

import grpc

from aiswarm_worker.pb import worker_callback_pb2 as pb
from aiswarm_worker.pb import worker_callback_pb2_grpc as pb_grpc

from .net import LOOPBACK

T = TypeVar("T")


class FakeMaster(pb_grpc.WorkerCallbackServicer):
    def __init__(self, token: str) -> None:
        self.token = token
        self.results: list[pb.TaskResult] = []
        self.credential_requests: list[pb.CredentialRequest] = []
        self.rejected_calls = 0
        self.send_result_failures: list[grpc.StatusCode] = []  # popped one per SendResult call
        self.credentials: dict[str, str] = {}
        self.answer_delay_s = 0.0
        self._changed = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_WorkerCallbackServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self.address = f"{LOOPBACK}:{self.port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)

    def _authenticate(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        if metadata.get("authorization") != f"Bearer {self.token}":
            with self._changed:
                self.rejected_calls += 1
                self._changed.notify_all()
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token")

    def SendResult(self, request: pb.TaskResult, context: grpc.ServicerContext) -> pb.ResultAck:  # noqa: N802
        self._authenticate(context)
        with self._changed:
            failure = self.send_result_failures.pop(0) if self.send_result_failures else None
            duplicate = False
            if failure is None:
                duplicate = any(r.task_id == request.task_id for r in self.results)
                self.results.append(request)
            self._changed.notify_all()
        time.sleep(self.answer_delay_s)
        if failure is not None:
            context.abort(failure, "scripted failure")
        return pb.ResultAck(accepted=not duplicate, duplicate=duplicate)

    def GetTaskCredential(  # noqa: N802
        self, request: pb.CredentialRequest, context: grpc.ServicerContext
    ) -> pb.CredentialReply:
        self._authenticate(context)
        with self._changed:
            self.credential_requests.append(request)
            self._changed.notify_all()
        key = self.credentials.get(request.task_id)
        return pb.CredentialReply(present=key is not None, api_key=key or "")

    def wait_until(self, predicate: Callable[[FakeMaster], T], timeout_s: float = 10) -> T:
        """Waits until predicate(self) is truthy and returns it; fails the test on timeout."""
        with self._changed:
            value = self._changed.wait_for(lambda: predicate(self), timeout_s)
        assert value, f"fake master: condition not met within {timeout_s} s"
        return value
