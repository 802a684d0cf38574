"""A fake Anthropic Messages API on 127.0.0.1 (a thread, port 0) that plays a scripted
conversation, so tests drive the real `anthropic` SDK: it builds and sends real HTTP requests,
parses real responses and raises its real errors. Every request that arrives is recorded
(method, path, headers, JSON body) for the tests to check. No network beyond loopback.

    with FakeMessagesAPI([tool_message(("propose_config", {...})), error(529)]) as api:
        sdk = api.sdk()        # anthropic.Anthropic(base_url=api.url, api_key="test", max_retries=0)
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class Reply:
    """A scripted non-200 answer (an API error) with its headers."""
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, retry_after: float | None = None, kind: str | None = None) -> Reply:
    kinds = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error",
             400: "invalid_request_error", 404: "not_found_error"}
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Reply(status, {"type": "error", "error": {"type": kind or kinds.get(status, "api_error"),
                                                     "message": f"scripted {status}"}}, headers)


_ids = iter(range(10 ** 9))


def tool_message(*tools: tuple[str, dict], text: str = "Next step.", usage=(1200, 150, 900, 0)
                 ) -> dict[str, Any]:
    """A Messages API response body: a text block then one tool_use block per (name, input)."""
    n = next(_ids)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "tool_use", "id": f"toolu_{n}_{i}", "name": name, "input": args}
                for i, (name, args) in enumerate(tools)]
    return {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content, "stop_reason": "tool_use" if tools else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1],
                      "cache_creation_input_tokens": usage[2], "cache_read_input_tokens": usage[3]}}


class FakeMessagesAPI:
    """POST /v1/messages answers from `script` in order (a response body dict or a Reply);
    GET /v1/models/<id> answers 200 for the names in `served`, 404 for the others."""

    def __init__(self, script: list[Any], served: tuple[str, ...] = ("claude-opus-4-8",)):
        self.script = list(script)
        self.served = set(served)
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:      # quiet test output
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                api._record(self, None)
                if self.path.startswith("/v1/models/"):
                    name = self.path.rsplit("/", 1)[-1].split("?")[0]
                    if name in api.served:
                        return self._send(200, {"type": "model", "id": name, "display_name": name,
                                                "created_at": "2025-11-01T00:00:00Z"})
                    return self._send(404, error(404).body | {"error": {
                        "type": "not_found_error", "message": f"model: {name}"}})
                self._send(404, error(404).body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                api._record(self, body)
                if self.path.split("?")[0] != "/v1/messages":
                    return self._send(404, error(404).body)
                with api.lock:
                    item = api.script.pop(0) if api.script else Reply(
                        500, {"type": "error", "error": {"type": "api_error",
                                                         "message": "the script is spent: the "
                                                         "client asked more often than scripted"}})
                if isinstance(item, Reply):
                    return self._send(item.status, item.body, item.headers)
                self._send(200, item)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, handler: BaseHTTPRequestHandler, body: dict[str, Any] | None) -> None:
        with self.lock:
            self.requests.append(Recorded(handler.command, handler.path,
                                          {k.lower(): v for k, v in handler.headers.items()}, body))

    def messages(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/v1/messages")]

    def sdk(self, **kw: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key="test", max_retries=0, **kw)

    def __enter__(self) -> "FakeMessagesAPI":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
