"""Loopback servers that speak each provider's own protocol: Anthropic Messages, Ollama chat and
generate, and an OpenAI-compatible server whose replies carry `reasoning_content`.

One `ProviderServer` answers all of them (by path), records every request it got, and can
answer late (`delay`) or never (`hang`), so timeouts are tested against a real socket.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field

from tests.support.llm_server import count_tokens


@dataclass
class ProviderServer:
    answer: str = "OK"
    thinking: str = ""  # a thinking block (Anthropic) or reasoning_content (OpenAI-compatible) before the answer
    delay: float = 0.0
    hang: bool = False
    cut: bool = False  # the answer stops at max_tokens, empty (a reasoning model that only thought)
    requests: list[dict] = field(default_factory=list)  # {"path": ..., "body": ...}
    url: str = ""

    def start(self) -> "ProviderServer":
        owner = self
        self._stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                owner.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                if owner.hang:
                    owner._stop.wait(600)
                    return
                if owner.delay:
                    owner._stop.wait(owner.delay)
                reply = owner._reply(self.path, body)
                if reply is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _reply(self, path: str, body: dict) -> dict | None:
        prompt = count_tokens(json.dumps(body.get("messages") or body.get("prompt") or ""))
        text = "" if self.cut else self.answer
        out = count_tokens(text) + count_tokens(self.thinking)
        if path.rstrip("/") == "/v1/messages":  # Anthropic Messages
            content = ([{"type": "thinking", "thinking": self.thinking, "signature": "sig"}] if self.thinking else [])
            content += [{"type": "text", "text": text}] if text else []
            return {"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"), "content": content,
                    "stop_reason": "max_tokens" if self.cut else "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": out}}
        if path.rstrip("/") == "/api/chat":  # Ollama chat
            return {"model": body.get("model"), "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": text}, "done": True,
                    "done_reason": "length" if self.cut else "stop", "prompt_eval_count": prompt, "eval_count": out}
        if path.rstrip("/") == "/api/generate":  # Ollama generate
            return {"model": body.get("model"), "created_at": "2026-01-01T00:00:00Z", "response": text, "done": True,
                    "done_reason": "length" if self.cut else "stop", "prompt_eval_count": prompt, "eval_count": out}
        if path.rstrip("/").endswith("/chat/completions"):  # OpenAI-compatible, with reasoning
            message = {"role": "assistant", "content": text}
            if self.thinking:
                message["reasoning_content"] = self.thinking
            return {"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": "length" if self.cut else "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}}
        return None
