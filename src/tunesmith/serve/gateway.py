"""The request limits in front of llama-server: it checks each request and passes it on, byte for byte (streams
too); it generates nothing. llama-server answers a malformed body with a 500, lets a request ask for any number of
tokens and takes any model name; here those are clear 4xx answers before the engine sees them.

  400 the body is not a JSON object, max_tokens is not 1..limit, messages is not a list of role/content objects
  401 a missing or wrong bearer token (when an API key is set)
  404 a model name other than the one served
  413 a body over MAX_BODY bytes
  429 more requests in flight than the limit (the engine queues up to that many)
  503 the engine is not up yet (while it loads) or any more
  504 the engine did not answer within the timeout
"""

from __future__ import annotations

import hmac
import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 8 << 20
GENERATING = ("/v1/chat/completions", "/v1/completions", "/chat/completions", "/completions")
PASSED_HEADERS = ("Content-Type", "Authorization", "Accept")


@dataclass(frozen=True)
class Limits:
    model: str
    max_tokens: int
    in_flight: int
    timeout: float
    api_key: str | None = None


class RequestRefused(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


def check_request(path: str, body: bytes, limits: Limits) -> dict:
    """The parsed body of a generating request, or RequestRefused saying what is wrong with it."""
    if len(body) > MAX_BODY:
        raise RequestRefused(413, f"the request body is {len(body):,} bytes; the limit is {MAX_BODY:,}")
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise RequestRefused(400, f"the request body is not JSON: {err}") from None
    if not isinstance(request, dict):
        raise RequestRefused(400, "the request body must be a JSON object")
    model = request.get("model")
    if model not in (None, limits.model):
        raise RequestRefused(404, f"model {model!r} is not served here; this server serves {limits.model!r}",
                             "model_not_found")  # fmt: skip
    for key in ("max_tokens", "max_completion_tokens"):
        value = request.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limits.max_tokens
        ):
            raise RequestRefused(400, f"{key}: {value!r}: must be an integer from 1 to {limits.max_tokens}")
    if "chat" in path:
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages or not all(valid_message(m) for m in messages):
            raise RequestRefused(400, "messages: must be a non-empty list of {role, content} objects")
    return request


def valid_message(message) -> bool:
    return isinstance(message, dict) and isinstance(message.get("role"), str) and "content" in message


def authorised(header: str | None, api_key: str | None) -> bool:
    if api_key is None:
        return True
    return header is not None and hmac.compare_digest(header.encode(), f"Bearer {api_key}".encode())


class Gateway(BaseHTTPRequestHandler):
    """Checks a request, then relays it to the engine and its answer back (start_gateway binds the class
    attributes)."""

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    limits: Limits
    slots: threading.BoundedSemaphore

    def log_message(self, *args) -> None:  # the engine's log is the record; no line per request here
        pass

    def do_GET(self) -> None:
        if self.path != "/health" and not authorised(self.headers.get("Authorization"), self.limits.api_key):
            return self.refuse(RequestRefused(401, "missing or wrong API key", "authentication_error"))
        self.forward(b"")

    def do_POST(self) -> None:
        try:
            if not authorised(self.headers.get("Authorization"), self.limits.api_key):
                raise RequestRefused(401, "missing or wrong API key", "authentication_error")
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise RequestRefused(400, "Content-Length is negative")
            if length > MAX_BODY:
                raise RequestRefused(413, f"the request body is {length:,} bytes; the limit is {MAX_BODY:,}")
            body = self.rfile.read(length)
            path = urlsplit(self.path).path  # a query string does not make a request another one
            if path in GENERATING:
                check_request(path, body, self.limits)
        except RequestRefused as refused:
            return self.refuse(refused)
        except ValueError:
            return self.refuse(RequestRefused(400, "Content-Length is not a number"))
        if not self.slots.acquire(blocking=False):
            return self.refuse(RequestRefused(429, f"{self.limits.in_flight} requests already in flight; retry later",
                                              "rate_limit_exceeded"))  # fmt: skip
        try:
            self.forward(body)
        finally:
            self.slots.release()

    def forward(self, body: bytes) -> None:
        connection = http.client.HTTPConnection(*self.upstream, timeout=self.limits.timeout)
        headers = {k: self.headers[k] for k in PASSED_HEADERS if self.headers.get(k)}
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            self.answering = True
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
            self.send_header("Connection", "close")  # the answer ends when the stream does (SSE: no length)
            self.end_headers()
            while chunk := answer.read1(1 << 16):
                self.wfile.write(chunk)
                self.wfile.flush()
        except TimeoutError:
            if not getattr(self, "answering", False):  # mid-answer, the status line has gone: only close
                self.refuse(
                    RequestRefused(504, f"the engine did not answer within {self.limits.timeout:.0f} s", "timeout")
                )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up mid-answer; the engine finishes or drops that request on its own
        except ConnectionRefusedError:
            self.refuse(RequestRefused(503, "the engine is not up (starting, or stopped)", "unavailable"))
        finally:
            connection.close()
            self.close_connection = True

    def refuse(self, refused: RequestRefused) -> None:
        payload = json.dumps({"error": {"message": str(refused), "type": refused.kind, "code": refused.status}})
        data = payload.encode()
        self.send_response(refused.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_gateway(host: str, port: int, upstream: tuple[str, int], limits: Limits) -> ThreadingHTTPServer:
    slots = threading.BoundedSemaphore(limits.in_flight)
    bound = type("BoundGateway", (Gateway,), {"upstream": upstream, "limits": limits, "slots": slots})
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="tunesmith-gateway", daemon=True).start()
    return server
