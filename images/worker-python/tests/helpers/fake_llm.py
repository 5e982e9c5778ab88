"""A fake LLM HTTP server on 127.0.0.1 that stands in for Gemini or an OpenAI-compatible API.

It answers every POST with a scripted status and JSON body, records what it
received (path, headers, body), and can hang without answering to exercise
timeouts. The worker's real client code talks to it over real HTTP.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .net import LOOPBACK


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    status: int = 200
    body: Any = field(default_factory=dict)
    hang: bool = False  # never answer (until the server stops)


def gemini_body(*texts: str) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": t} for t in texts]}}]}


def openai_body(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


class FakeLlmServer:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[ReceivedRequest] = []
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                server.requests.append(
                    ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw))
                )
                script = server.script
                if script.hang:
                    server._release.wait(30)
                    return
                data = json.dumps(script.body).encode()
                self.send_response(script.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
