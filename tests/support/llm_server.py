"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

Standard library only. It speaks the wire format of the real API closely
enough for litellm (through the ``openai`` SDK) to take its ordinary client
path: JSON replies, server-sent-event streams shaped like the captures in
``/work/shared/data/openai/*.sse`` (role chunk, content chunks, a
finish-reason chunk, the usage-only chunk when
``stream_options.include_usage`` is set, then ``data: [DONE]``), and
OpenAI-shaped error bodies.

Typical use::

    with LLMServer() as server:
        server.add_rule("capital of France", "Paris.")
        server.queue(500, "recovered")         # first call fails, next succeeds
        litellm.completion(model="openai/task-model", api_base=server.url,
                           api_key="sk-test", messages=[...])
        assert server.count == 1

Replies are chosen in this order: the queue (first in, first out), then
the rules (the first that matches and still has ``times`` left), then
``server.default``.
"""

from __future__ import annotations

import collections
import dataclasses
import http.server
import json
import math
import re
import select
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping, Pattern, Union

__all__ = [
    "LLMServer",
    "Reply",
    "Rule",
    "count_tokens",
    "prompt_text",
    "message_text",
]

Request = dict  # a parsed chat-completions request body
ReplyContent = Union[str, Callable[[Request], Any], None]
Match = Union[str, Pattern[str], Callable[[Request], bool], None]

SYSTEM_FINGERPRINT = "fp_overnight"

# OpenAI-shaped error bodies by status: (type, code, message).
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 0s."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", "service_unavailable",
          "The engine is currently overloaded, please try again later."),
}


# --------------------------------------------------------------------------
# Token counting and request text


def count_tokens(text: str | None) -> int:
    """A rough, deterministic token count: ceil(words * 1.3)."""
    if not text:
        return 0
    return math.ceil(len(text.split()) * 1.3)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message: its string content, or its text parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def prompt_text(request: Mapping[str, Any]) -> str:
    """All message contents of a request, joined by newlines (rules match this)."""
    messages = request.get("messages") or []
    return "\n".join(message_text(m) for m in messages if isinstance(m, Mapping))


def _pieces(text: str) -> list[str]:
    """Split text into stream deltas like the captures: ``"I'm", " unable", ...``."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)):]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces = [tail]
    return pieces


def _truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of whole pieces whose token count fits max_tokens."""
    out = ""
    for piece in _pieces(text):
        if count_tokens(out + piece) > max_tokens:
            break
        out += piece
    return out


# --------------------------------------------------------------------------
# Replies and rules


@dataclasses.dataclass
class Reply:
    """What the server answers to one request.

    content: the assistant text, or a callable(request_json) returning a str
        or a Reply (evaluated per request).
    finish_reason: defaults to "stop" ("tool_calls" with tool_calls,
        "length" when the request's max_tokens truncates the text).
    status: an HTTP status; anything but 200 answers an OpenAI-shaped error
        ``{"error": {"message", "type", "param", "code"}}`` (429 carries
        ``retry-after: 0``).
    error_message / error_type / error_code: override the error body.
    headers: extra response headers (e.g. ``{"retry-after-ms": "10"}``).
    hang: never answer; the handler waits until the server stops (or the
        client goes away), then closes the connection without a reply.
    delay: seconds to wait before answering (on top of server.latency).
    tool_calls: list of ``{"name": str, "arguments": str | dict, "id"?: str}``.
    chunk_delay: seconds between streamed chunks.
    """

    content: ReplyContent = ""
    finish_reason: str | None = None
    status: int = 200
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    hang: bool = False
    delay: float = 0.0
    tool_calls: list[dict[str, Any]] | None = None
    chunk_delay: float = 0.0

    def error_body(self) -> dict[str, Any]:
        etype, code, message = _ERRORS.get(
            self.status,
            ("server_error" if self.status >= 500 else "invalid_request_error",
             None, f"Error {self.status}."),
        )
        return {
            "error": {
                "message": self.error_message if self.error_message is not None else message,
                "type": self.error_type if self.error_type is not None else etype,
                "param": None,
                "code": self.error_code if self.error_code is not None else code,
            }
        }


def _make_reply(item: Any, **options: Any) -> Reply:
    """A Reply from a str, a callable, an int (an error status), or a Reply."""
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(item, Reply):
        return dataclasses.replace(item, **options) if options else item
    if isinstance(item, bool):
        raise TypeError("a reply must be a str, a callable, an int status or a Reply")
    if isinstance(item, int):
        options.setdefault("status", item)
        return Reply(content="", **options)
    if item is None or isinstance(item, str) or callable(item):
        return Reply(content=item, **options)
    raise TypeError(f"a reply must be a str, a callable, an int status or a Reply, not {item!r}")


@dataclasses.dataclass
class Rule:
    """A scripted reply chosen by the content of the request."""

    match: Match
    reply: Reply
    times: int | None = None  # None: unlimited
    hits: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.hits)

    def matches(self, request: Request, text: str) -> bool:
        m = self.match
        if m is None:
            return True
        if isinstance(m, str):
            return m in text
        if hasattr(m, "search"):
            return m.search(text) is not None
        if callable(m):
            return bool(m(request))
        raise TypeError(f"a rule's match must be a str, a regex or a callable, not {m!r}")


class _Aborted(Exception):
    """The server is stopping or the client went away: close without a reply."""


# --------------------------------------------------------------------------
# HTTP plumbing


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 128

    def __init__(self, owner: "LLMServer") -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may try DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, _Aborted)):
            return  # a client that went away, or the server stopping
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "overnight-llm-server/1"
    server: _HTTPServer

    # -- connection bookkeeping (so that stop() can wake idle keep-alives) --

    def setup(self) -> None:
        super().setup()
        self.server.owner._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.owner.verbose:
            super().log_message(format, *args)

    # -- low-level writers --

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, reply: Reply) -> None:
        headers = {}
        if reply.status == 429:
            headers["retry-after"] = "0"
        headers.update(reply.headers)
        self._send_json(reply.status, reply.error_body(), headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes --

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.server.owner
        if not self._authorized():
            return
        if path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [owner._model_card(m) for m in owner.models]})
        elif path.startswith("/v1/models/"):
            name = path[len("/v1/models/"):]
            if name in owner.models:
                self._send_json(200, owner._model_card(name))
            else:
                self._send_error(Reply(status=404, error_message=f"The model `{name}` does not exist."))
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_body()
        if path != "/v1/chat/completions":
            self._not_found()
            return
        owner = self.server.owner
        try:
            request = json.loads(body or b"null")
        except ValueError as exc:
            self._send_error(Reply(status=400, error_message=f"We could not parse the JSON body of your request. ({exc})"))
            return
        if not isinstance(request, dict):
            self._send_error(Reply(status=400, error_message="The request body must be a JSON object."))
            return
        owner._record(request, dict(self.headers.items()))
        try:
            owner._serve_chat(self, request)
        except _Aborted:
            self.close_connection = True

    def _not_found(self) -> None:
        self._send_error(Reply(status=404, error_code="unknown_url",
                               error_message=f"Invalid URL ({self.command} {self.path})"))

    def _authorized(self) -> bool:
        key = self.server.owner.require_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        if given == f"Bearer {key}":
            return True
        if given.startswith("Bearer "):
            shown = given[len("Bearer "):]
            shown = shown[:3] + "*" * 4 + shown[-4:] if len(shown) > 8 else shown
            message = (f"Incorrect API key provided: {shown}. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.")
        else:
            message = ("You didn't provide an API key. You need to provide your API key in an "
                       "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        self._send_error(Reply(status=401, error_message=message))
        return False

    # -- waiting that wakes up on stop() or when the client leaves --

    def _wait(self, seconds: float | None) -> None:
        """Sleep `seconds` (None: forever); raise _Aborted on stop or client disconnect."""
        owner = self.server.owner
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if owner._stopping.is_set():
                raise _Aborted()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            step = 0.05 if remaining is None else min(0.05, remaining)
            if owner._stopping.wait(step):
                raise _Aborted()
            if self._client_gone():
                raise _Aborted()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # -- streaming --

    def _start_stream(self, headers: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()

    def _send_event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------
# The server


class LLMServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (ephemeral port).

    Attributes settable at any time:
        default: the reply when neither the queue nor a rule applies
            (str, callable(request) -> str | Reply, or Reply).
        latency: seconds to sleep before answering each chat request.
        require_key: if not None, ``Authorization: Bearer <require_key>`` is
            required (else 401).
        models: names listed by ``GET /v1/models``.
        verbose: log each HTTP request to stderr.

    Recorded: ``requests`` (parsed JSON bodies of every chat request, in
    arrival order), ``request_headers`` (their headers), ``count``.
    """

    def __init__(
        self,
        default: ReplyContent | Reply = "OK",
        *,
        latency: float = 0.0,
        require_key: str | None = None,
        models: Iterable[str] = ("task-model",),
        verbose: bool = False,
    ) -> None:
        self.default = default
        self.latency = latency
        self.require_key = require_key
        self.models = list(models)
        self.verbose = verbose
        self.requests: list[Request] = []
        self.request_headers: list[dict[str, str]] = []
        self.rules: list[Rule] = []
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._active = 0
        self._max_active = 0

    # -- lifecycle --

    def start(self) -> "LLMServer":
        if self._httpd is not None:
            return self
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"llm-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; hanging and sleeping handlers wake up and close."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        for handler_thread in connections.values():
            if handler_thread is not threading.current_thread():
                handler_thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = None
        self._thread = None

    close = stop

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The api_base to give litellm: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting --

    def add_rule(
        self,
        match: Match,
        reply: ReplyContent | Reply | int = "",
        *,
        times: int | None = None,
        finish_reason: str | None = None,
        status: int | None = None,
        hang: bool | None = None,
        delay: float | None = None,
        headers: dict[str, str] | None = None,
        error_message: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        chunk_delay: float | None = None,
    ) -> Rule:
        """Answer `reply` to requests whose text matches `match`; first rule wins.

        `match`: a substring or compiled regex tested against the joined
        message contents, a callable(request_json) -> bool, or None (all).
        `times`: how many requests the rule answers before it is skipped.
        """
        rule = Rule(
            match=match,
            reply=_make_reply(
                reply, finish_reason=finish_reason, status=status, hang=hang,
                delay=delay, headers=headers, error_message=error_message,
                tool_calls=tool_calls, chunk_delay=chunk_delay,
            ),
            times=times,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def queue(
        self,
        *replies: ReplyContent | Reply | int,
        finish_reason: str | None = None,
        status: int | None = None,
        hang: bool | None = None,
        delay: float | None = None,
        headers: dict[str, str] | None = None,
        error_message: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        chunk_delay: float | None = None,
    ) -> None:
        """Serve these replies, in order, to the next requests (before any rule).

        Each item is a str, a callable(request) -> str | Reply, an int
        (an error with that HTTP status), or a Reply. The keyword options
        apply to every item of this call.
        """
        items = [
            _make_reply(
                r, finish_reason=finish_reason, status=status, hang=hang,
                delay=delay, headers=headers, error_message=error_message,
                tool_calls=tool_calls, chunk_delay=chunk_delay,
            )
            for r in replies
        ]
        with self._lock:
            self._queue.extend(items)

    def simulate(self, **options: Any) -> Any:
        """Serves the simulated world of ``sim_world.py`` (models ``sim-task`` and ``sim-agent``)
        as rules after those already added; returns the world (its examples, its oracle, its counts)."""
        from .sim_world import SimWorld

        return SimWorld(**options).install(self)

    @staticmethod
    def error(status: int, message: str | None = None, *, code: str | None = None,
              type: str | None = None, headers: dict[str, str] | None = None) -> Reply:  # noqa: A002
        """A Reply that answers an OpenAI-shaped error."""
        return Reply(status=status, error_message=message, error_code=code,
                     error_type=type, headers=dict(headers or {}))

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """Forget rules, queued replies and recorded requests."""
        with self._lock:
            self.rules.clear()
            self._queue.clear()
            self.requests.clear()
            self.request_headers.clear()
            self._max_active = 0

    # -- recorded traffic --

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def last_request(self) -> Request | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    @property
    def prompts(self) -> list[str]:
        """The joined message text of each recorded request."""
        with self._lock:
            return [prompt_text(r) for r in self.requests]

    @property
    def max_concurrency(self) -> int:
        """The most chat requests that were in progress at the same time."""
        with self._lock:
            return self._max_active

    # -- internals --

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections[conn] = threading.current_thread()

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)

    def _record(self, request: Request, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.request_headers.append(headers)

    def _model_card(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1700000000, "owned_by": "overnight-tests"}

    def _choose(self, request: Request) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            text = prompt_text(request)
            for rule in self.rules:
                if rule.remaining == 0:
                    continue
                if rule.matches(request, text):
                    rule.hits += 1
                    return rule.reply
            return _make_reply(self.default)

    def _resolve(self, reply: Reply, request: Request) -> Reply:
        """Evaluate a callable content (which may return a str or a Reply)."""
        for _ in range(10):
            if not callable(reply.content):
                return reply
            produced = reply.content(request)
            if isinstance(produced, Reply):
                reply = produced
            else:
                reply = dataclasses.replace(reply, content="" if produced is None else str(produced))
        raise RuntimeError("reply callables nested too deeply")

    def _serve_chat(self, handler: _Handler, request: Request) -> None:
        with self._lock:
            self._active += 1
            self._max_active = max(self._max_active, self._active)
        try:
            if self.latency:
                handler._wait(self.latency)
            if not handler._authorized():
                return
            messages = request.get("messages")
            if not isinstance(messages, list) or not messages:
                handler._send_error(Reply(status=400, error_message="'messages' must be a non-empty array.",
                                          error_code=None))
                return
            try:
                reply = self._resolve(self._choose(request), request)
            except Exception as exc:  # a bug in a test's callable: make it visible
                traceback.print_exc()
                handler._send_error(Reply(status=500, error_message=f"scripted reply failed: {exc!r}"))
                return
            if reply.delay:
                handler._wait(reply.delay)
            if reply.hang:
                handler._wait(None)
            if reply.status != 200:
                handler._send_error(reply)
                return
            if request.get("stream"):
                self._stream(handler, request, reply)
            else:
                handler._send_json(200, self._completion(request, reply), reply.headers)
        finally:
            with self._lock:
                self._active -= 1

    # -- response bodies --

    def _answer(self, request: Request, reply: Reply) -> tuple[str | None, list[dict[str, Any]], str]:
        """(content, tool_calls, finish_reason) after max_tokens truncation."""
        tool_calls = []
        for i, call in enumerate(reply.tool_calls or []):
            args = call.get("arguments", "")
            if not isinstance(args, str):
                args = json.dumps(args)
            tool_calls.append({
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call["name"], "arguments": args},
            })
        content = reply.content if isinstance(reply.content, str) else ""
        finish = reply.finish_reason
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and count_tokens(content) > limit:
            content = _truncate(content, limit)
            finish = finish or "length"
        if finish is None:
            finish = "tool_calls" if tool_calls else "stop"
        if tool_calls and not content:
            return None, tool_calls, finish
        return content, tool_calls, finish

    def _usage(self, request: Request, content: str | None, tool_calls: list[dict[str, Any]], n: int) -> dict[str, Any]:
        prompt = count_tokens(prompt_text(request))
        completion = count_tokens(content) + sum(
            count_tokens(c["function"]["name"] + " " + c["function"]["arguments"]) for c in tool_calls
        )
        completion *= n
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _n(request: Request) -> int:
        n = request.get("n")
        return n if isinstance(n, int) and n > 0 else 1

    def _completion(self, request: Request, reply: Reply) -> dict[str, Any]:
        content, tool_calls, finish = self._answer(request, reply)
        n = self._n(request)
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", ""),
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                for i in range(n)
            ],
            "usage": self._usage(request, content, tool_calls, n),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _chunks(self, request: Request, reply: Reply) -> Iterator[dict[str, Any]]:
        """The chunk objects of a stream, shaped like the .sse captures."""
        content, tool_calls, finish = self._answer(request, reply)
        n = self._n(request)
        base = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", ""),
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        def call_start(i: int, call: dict[str, Any]) -> dict[str, Any]:
            return {"index": i, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}

        for index in range(n):
            if tool_calls:
                if len(tool_calls) == 1 and not content:
                    yield chunk(index, {"role": "assistant", "content": None,
                                        "tool_calls": [call_start(0, tool_calls[0])], "refusal": None})
                    starts_sent = True
                else:
                    yield chunk(index, {"role": "assistant", "content": None if not content else ""})
                    starts_sent = False
                for piece in _pieces(content or ""):
                    yield chunk(index, {"content": piece})
                for i, call in enumerate(tool_calls):
                    if not (starts_sent and i == 0):
                        yield chunk(index, {"tool_calls": [call_start(i, call)]})
                    for piece in re.findall(r"\w+|\W", call["function"]["arguments"]):
                        yield chunk(index, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            else:
                yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
                for piece in _pieces(content or ""):
                    yield chunk(index, {"content": piece})
            yield chunk(index, {}, finish)
        options = request.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            usage = self._usage(request, content, tool_calls, n)
            usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0}
            yield {**base, "choices": [], "usage": usage}

    def _stream(self, handler: _Handler, request: Request, reply: Reply) -> None:
        handler._start_stream(reply.headers)
        first = True
        for obj in self._chunks(request, reply):
            if reply.chunk_delay and not first:
                handler._wait(reply.chunk_delay)
            first = False
            handler._send_event(json.dumps(obj, separators=(",", ":")))
        handler._send_event("[DONE]")
        handler._end_stream()
