"""A real OpenAI-compatible chat server on 127.0.0.1 for the autointerp tests.

It answers by rule, as a perfect but literal rater would: an explanation names tokens
in double quotes ('Fires on the tokens "cat".'); the explainer prompt is answered with
the most frequent <<marked>> token; rubric, detection, fuzzing and simulation prompts
are answered by comparing the named tokens with the (marked) text. Failures are
scripted per request: 429 with Retry-After, 500, a slow reply, a reply that is not
JSON, a reply whose content holds no number, 401; and hostile ones (HOSTILE): a lone
surrogate or NUL in the content, an infinite token count, JSON nested too deep to
parse, a body dripped one byte at a time, a reply larger than any explanation."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monosemantic.autointerp.clients import cache_key

MARKED = re.compile(r"<<(.+?)>>")


def named_tokens(explanation: str) -> set[str]:
    return {t.strip().lower() for t in re.findall(r'"([^"]+)"', explanation)}


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", MARKED.sub(r"\1", text))}


def rule_reply(messages: list[dict]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if "explaining features" in system:
        marked = Counter(m.strip() for m in MARKED.findall(user))
        return f'Explanation: the token "{marked.most_common(1)[0][0]}".' if marked else "I am not sure."
    m = re.search(r"Explanation: (.*?)\nText: (.*)\n", user, re.S)
    named, text = named_tokens(m.group(1)), m.group(2)
    marked = {w.lower() for span in MARKED.findall(text) for w in re.findall(r"\w+", span)}
    present = named & _words(text)
    if "rate explanations" in system:
        return "Rating: 3" if marked and marked <= named else ("1" if present else "**0**")
    if "would fire somewhere" in system:
        return "1" if present else "0"
    if "marks are on the wrong tokens" in system:
        return "Yes" if marked and marked <= named else "No."
    if "simulate" in system:
        return ", ".join(f"{w}: 10" for w in sorted(present)) or "none"
    raise AssertionError(f"unknown prompt: {system[:60]}")


# action -> (raw JSON body, or None for the rule reply with this content)
HOSTILE = {
    "surrogate": None, "nul": None, "infinite_tokens": None,
    "nested": b'{"choices": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "drip": None, "huge": None,
}
HUGE_BYTES = 3_000_000


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client killed or timed out mid-request: expected here


class LLMServer:
    """`with LLMServer() as s:` serves on s.url (…/v1). Per-request behaviour: pop from
    `s.script` ("429", "500", "slow", "notjson", "nonumber", "401"), else `s.default`
    ("ok" unless changed). `s.fail_after = K`: every request after the first K gets
    a 500 (a server going down half way)."""

    def __init__(self, delay: float = 0.0, slow: float = 2.0, retry_after: str = "1"):
        self.delay, self.slow, self.retry_after = delay, slow, retry_after
        self.script: list[str] = []
        self.default = "ok"
        self.fail_after: int | None = None
        self.lock = threading.Lock()
        self.requests = 0  # every POST
        self.granted = 0   # requests not failed by fail_after
        self.answered: list[str] = []  # cache keys of prompts answered 200 with a valid reply
        self.in_flight = self.max_in_flight = 0
        self.usage = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, *args):
                pass

            def do_POST(self):
                server._handle(self)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LLMServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _action(self) -> str:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            # counted when granted, not when answered: concurrent requests checking
            # len(answered) could both pass at K - 1 and answer K + 1
            if self.fail_after is not None and self.granted >= self.fail_after:
                return "500"
            self.granted += 1
            return self.script.pop(0) if self.script else self.default

    def _send(self, h, status: int, body: bytes, headers: dict | None = None, ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    @staticmethod
    def _reply(body: dict, text: str) -> dict:
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

    def _drip(self, h, body: bytes) -> None:
        """A valid reply, one byte every 0.5 s: each read is quick, the whole is not."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, h) -> None:
        try:
            assert h.path == "/v1/chat/completions", h.path
            assert h.headers.get("Authorization", "").startswith("Bearer ")
            body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
            action = self._action()
            time.sleep(self.slow if action == "slow" else self.delay)
            if action == "429":
                return self._send(h, 429, b'{"error": "rate limited"}', {"Retry-After": self.retry_after})
            if action in ("500", "401"):
                return self._send(h, int(action), b'{"error": "scripted failure"}')
            if action == "notjson":
                return self._send(h, 200, b"Sure! Here is my answer: 2", ctype="text/plain")
            if action == "nested":
                return self._send(h, 200, HOSTILE["nested"])
            if action == "huge":
                return self._send(h, 200, b'{"choices": [{"message": {"content": "' + b"x" * HUGE_BYTES + b'"}}]}')
            if action == "drip":
                return self._drip(h, json.dumps(self._reply(body, "1")).encode())
            if action in ("surrogate", "nul", "infinite_tokens"):
                text = {"surrogate": "Fires on \\ud800 x.", "nul": "Fires on\\u0000 cats."}.get(action, "1")
                raw = json.dumps(self._reply(body, "@@")).replace('"@@"', f'"{text}"')
                if action == "infinite_tokens":
                    raw = raw.replace('"prompt_tokens": ', '"prompt_tokens": 1e999, "x": ')
                return self._send(h, 200, raw.encode())
            text = "I cannot answer that." if action == "nonumber" else rule_reply(body["messages"])
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split())}}
            self._send(h, 200, json.dumps(reply).encode())
            with self.lock:
                self.answered.append(cache_key(body["model"], body["messages"],
                                               {"max_tokens": body["max_tokens"], "temperature": body["temperature"]}))
                self.usage["prompt_tokens"] += prompt_tokens
                self.usage["completion_tokens"] += len(text.split())
        finally:
            with self.lock:
                self.in_flight = max(0, self.in_flight - 1)
