#!/usr/bin/env python3
"""ollama_fake.py -- a stand-in for an Ollama server (and for an
OpenAI-compatible one: llama.cpp server, vLLM) in tests.

It answers like the real thing on the wire: HTTP/1.1, keep-alive, streams
sent with chunked transfer encoding, one JSON object per line for
/api/chat (application/x-ndjson) and server-sent events for
/v1/chat/completions.  What it answers is deterministic: the reply text is
reply_prefix + the last user message, split into tokens after each space,
so a test knows every token it must see.

Failures a real backend shows are switched on at run time (POST
/_fake/mode) or at start (--mode): errors reported mid-stream under a 200,
a dropped connection, 500, 503 (queue full), an unhealthy server, a server
that accepts the request and then says nothing, slow model loading and
slow tokens.  See tests/fakes/README.md for the whole interface.

Standard library only.  Binds 127.0.0.1 only.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAILS = ("none", "error_line", "drop", "http500", "busy503", "unhealthy",
         "hang")

DEFAULT_MODE = {
    "reply_prefix": "Answer: ",
    "first_token_delay_ms": 0,
    "token_delay_ms": 0,
    "fail": "none",
    "fail_after_tokens": 0,
    "fail_count": -1,
}

BUSY_TEXT = "server busy, please try again.  maximum pending requests exceeded"
MIDSTREAM_TEXT = ("an error was encountered while running the model: "
                  "unexpected EOF")
HANG_LIMIT_S = 600          # a hung request gives up by itself after this
MAX_BODY = 64 * 1024 * 1024


def jdump(obj, **kw):
    """Compact JSON, as Go's encoder writes it."""
    return json.dumps(obj, separators=(",", ":"), **kw)


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def full_name(name):
    """Ollama's rule: a model name without a tag means the tag 'latest'."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def split_tokens(text):
    """Splits after each space: 'a b c' -> ['a ', 'b ', 'c']."""
    parts = text.split(" ")
    toks = [p + " " for p in parts[:-1]]
    if parts[-1]:
        toks.append(parts[-1])
    return toks


def message_text(content):
    """A message's text: a string, or OpenAI's list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return "".join(out)
    return ""


class State:
    """Mode, model list and counters, shared by the handler threads."""

    def __init__(self, mode, models, log_path):
        self.lock = threading.Lock()
        self.start_mode = dict(mode)
        self.mode = dict(mode)
        self.models = [full_name(m) for m in models]
        self.log_path = log_path
        self.chat_requests = 0
        self.tags_requests = 0
        self.active = 0
        self.last_request = None
        self.stopping = threading.Event()

    def get_mode(self):
        with self.lock:
            m = dict(self.mode)
            m["models"] = list(self.models)
            return m

    def merge_mode(self, upd):
        """Checks and merges upd into the mode; returns an error text or
        None."""
        if not isinstance(upd, dict):
            return "mode must be a JSON object"
        for k, v in upd.items():
            if k == "models":
                if not isinstance(v, list) or not all(
                        isinstance(x, str) and x for x in v):
                    return "models must be a list of names"
            elif k == "fail":
                if v not in FAILS:
                    return "fail must be one of " + ", ".join(FAILS)
            elif k == "reply_prefix":
                if not isinstance(v, str):
                    return "reply_prefix must be a string"
            elif k in ("first_token_delay_ms", "token_delay_ms",
                       "fail_after_tokens", "fail_count"):
                if not isinstance(v, int) or isinstance(v, bool) or v < -1:
                    return k + " must be an integer"
            else:
                return "unknown mode key " + jdump(k)
        with self.lock:
            for k, v in upd.items():
                if k == "models":
                    self.models = [full_name(m) for m in v]
                else:
                    self.mode[k] = v
        return None

    def reset(self):
        with self.lock:
            self.mode = dict(self.start_mode)
            self.chat_requests = 0
            self.tags_requests = 0
            self.last_request = None

    def take_fail(self, applies):
        """The fail in force for this request, counting it against
        fail_count when applies(fail) says it is used here."""
        with self.lock:
            fail = self.mode.get("fail", "none")
            if fail == "none" or not applies(fail):
                return "none"
            n = self.mode.get("fail_count", -1)
            if n is None or n < 0:
                return fail
            if n == 0:
                self.mode["fail"] = "none"
                return "none"
            n -= 1
            self.mode["fail_count"] = n
            if n == 0:
                self.mode["fail"] = "none"
                self.mode["fail_count"] = -1
            return fail

    def log_chat(self, body):
        with self.lock:
            self.chat_requests += 1
            self.last_request = body
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(jdump(body, ensure_ascii=False) + "\n")

    def stats(self):
        with self.lock:
            return {"chat_requests": self.chat_requests,
                    "tags_requests": self.tags_requests,
                    "active": self.active,
                    "last_request": self.last_request}

    def find_model(self, name):
        with self.lock:
            fn = full_name(name)
            return fn if fn in self.models else None


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-fake/1"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet: tests read their own logs
        pass

    @property
    def st(self):
        return self.server.state

    # ------------------------------------------------------------ plumbing

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked()
        return self.rfile.read(n) if n else b""

    def read_chunked(self):
        out = b""
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += self.rfile.read(size)
            self.rfile.readline(8)
            if len(out) > MAX_BODY:
                raise ValueError("body too large")

    def send_json(self, code, obj, ctype="application/json; charset=utf-8"):
        data = jdump(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def start_stream(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def end_stream(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def client_gone(self):
        """True when the peer closed its side (the request body has been
        read, so anything readable now is the end of the stream)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def wait_ms(self, ms):
        """Sleeps ms, in slices, ending early when the client leaves or the
        server stops (raises ClientGone then)."""
        end = time.monotonic() + ms / 1000.0
        while True:
            if self.st.stopping.is_set() or self.client_gone():
                raise ClientGone()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    def drop(self):
        """Closes the connection abruptly: RST, no final chunk."""
        try:
            self.wfile.flush()
            time.sleep(0.05)    # let the client read what was sent first
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def hang(self, ctype):
        """Headers, then nothing until the client gives up."""
        self.start_stream(ctype)
        self.close_connection = True
        end = time.monotonic() + HANG_LIMIT_S
        while time.monotonic() < end:
            if self.st.stopping.is_set() or self.client_gone():
                return
            time.sleep(0.02)

    # ------------------------------------------------------------ routes

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.send_json(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif path == "/api/version":
            self.send_json(200, {"version": "0.5.7"})
        elif path == "/api/tags":
            self.tags(openai=False)
        elif path == "/v1/models":
            self.tags(openai=True)
        elif path == "/_fake/mode":
            self.send_json(200, self.st.get_mode())
        elif path == "/_fake/stats":
            self.send_json(200, self.st.stats())
        elif path == "/_fake/reset":
            self.st.reset()
            self.send_json(200, self.st.get_mode())
        else:
            self.send_json(404, b"404 page not found", "text/plain")

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send_json(400, {"error": "bad request body"})
            return
        if path == "/api/chat":
            self.chat(raw, openai=False)
        elif path == "/v1/chat/completions":
            self.chat(raw, openai=True)
        elif path == "/_fake/mode":
            try:
                upd = json.loads(raw or b"{}")
            except ValueError:
                self.send_json(400, {"error": "mode is not JSON"})
                return
            err = self.st.merge_mode(upd)
            if err:
                self.send_json(400, {"error": err})
            else:
                self.send_json(200, self.st.get_mode())
        elif path == "/_fake/reset":
            self.st.reset()
            self.send_json(200, self.st.get_mode())
        else:
            self.send_json(404, b"404 page not found", "text/plain")

    def tags(self, openai):
        with self.st.lock:
            self.st.tags_requests += 1
        fail = self.st.take_fail(lambda f: f == "unhealthy")
        if fail == "unhealthy":
            self.error(500, "llama runner process has terminated", openai)
            return
        models = self.st.get_mode()["models"]
        if openai:
            self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000,
                 "owned_by": "library"} for m in models]})
            return
        out = []
        for i, m in enumerate(models):
            fam = m.split(":")[0].rstrip("0123456789.")
            out.append({
                "name": m, "model": m,
                "modified_at": "2025-01-01T12:00:00.000000000Z",
                "size": 2019393189 + i,
                "digest": "%064x" % (0xa80c4f17acd5 + i),
                "details": {"parent_model": "", "format": "gguf",
                            "family": fam or "llama", "families": [fam or "llama"],
                            "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M"}})
        self.send_json(200, {"models": out})

    def error(self, code, text, openai):
        if openai:
            self.send_json(code, {"error": {"message": text, "type": "api_error",
                                            "param": None, "code": None}})
        else:
            self.send_json(code, {"error": text})

    # ------------------------------------------------------------ chat

    def chat(self, raw, openai):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.st.log_chat(body if body is not None
                         else raw.decode("utf-8", "replace"))
        if not isinstance(body, dict):
            self.error(400, "invalid character in request body", openai)
            return
        with self.st.lock:
            self.st.active += 1
        try:
            self.chat_body(body, openai)
        except ClientGone:
            self.close_connection = True
        finally:
            with self.st.lock:
                self.st.active -= 1

    def chat_body(self, body, openai):
        fail = self.st.take_fail(
            lambda f: f in ("http500", "busy503", "unhealthy"))
        if fail == "http500":
            self.error(500, "llama runner process has terminated: exit status 2",
                       openai)
            return
        if fail == "busy503":
            self.error(503, BUSY_TEXT, openai)
            return
        if fail == "unhealthy":
            self.error(500, "llama runner process has terminated", openai)
            return
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self.error(400, "model is required", openai)
            return
        model = self.st.find_model(name)
        if model is None:
            self.error(404, 'model "%s" not found, try pulling it first' % name,
                       openai)
            return
        fail = self.st.take_fail(lambda f: f in ("error_line", "drop", "hang"))
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            msgs = []
        question = ""
        prompt_words = 0
        for m in msgs:
            if isinstance(m, dict):
                txt = message_text(m.get("content"))
                prompt_words += len(txt.split())
                if m.get("role") == "user":
                    question = txt
        mode = self.st.get_mode()
        text = str(mode.get("reply_prefix", "")) + question
        tokens = split_tokens(text)
        stream = body.get("stream", not openai)
        ctx = {"model": name, "tokens": tokens, "text": text,
               "prompt": prompt_words + 10, "mode": mode, "fail": fail,
               "t0": time.monotonic_ns()}
        if fail == "hang":
            self.hang("text/event-stream" if openai else "application/x-ndjson")
            return
        self.wait_ms(max(0, int(mode.get("first_token_delay_ms", 0))))
        if not stream:
            self.whole(ctx, openai)
        elif openai:
            self.stream_openai(ctx, body)
        else:
            self.stream_ollama(ctx)

    def counts(self, ctx, sent):
        total = max(time.monotonic_ns() - ctx["t0"], 1000)
        load = min(total // 4, 5000000)
        return {"total_duration": total, "load_duration": load,
                "prompt_eval_count": ctx["prompt"],
                "prompt_eval_duration": total // 8 + 1,
                "eval_count": sent,
                "eval_duration": total - load - total // 8}

    def whole(self, ctx, openai):
        """stream: false, or a mid-stream failure of a whole answer."""
        fail = ctx["fail"]
        if fail in ("error_line", "drop"):
            if fail == "drop":
                self.drop()
            else:
                self.error(500, MIDSTREAM_TEXT, openai)
            return
        n = len(ctx["tokens"])
        c = self.counts(ctx, n)
        if openai:
            self.send_json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion",
                "created": int(time.time()), "model": ctx["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant",
                                         "content": ctx["text"]}}],
                "usage": {"prompt_tokens": c["prompt_eval_count"],
                          "completion_tokens": n,
                          "total_tokens": c["prompt_eval_count"] + n}})
            return
        out = {"model": ctx["model"], "created_at": now_iso(),
               "message": {"role": "assistant", "content": ctx["text"]},
               "done": True, "done_reason": "stop"}
        out.update(c)
        self.send_json(200, out)

    def each_token(self, ctx, emit):
        """Calls emit(token) for each token with the delays; returns the
        number sent, or None when the fail mode cut the stream (the caller
        then does what the fail says)."""
        delay = max(0, int(ctx["mode"].get("token_delay_ms", 0)))
        after = max(0, int(ctx["mode"].get("fail_after_tokens", 0)))
        cut = ctx["fail"] in ("error_line", "drop")
        sent = 0
        for tok in ctx["tokens"]:
            if cut and sent >= after:
                return None
            if sent > 0 and delay:
                self.wait_ms(delay)
            emit(tok)
            sent += 1
        if cut:
            return None
        return sent

    def stream_ollama(self, ctx):
        self.start_stream("application/x-ndjson")

        def emit(tok):
            self.chunk(jdump({"model": ctx["model"], "created_at": now_iso(),
                                   "message": {"role": "assistant", "content": tok},
                                   "done": False}) + "\n")
        sent = self.each_token(ctx, emit)
        if sent is None:
            if ctx["fail"] == "drop":
                self.drop()
                return
            self.chunk(jdump({"error": MIDSTREAM_TEXT}) + "\n")
            self.end_stream()
            return
        last = {"model": ctx["model"], "created_at": now_iso(),
                "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "stop"}
        last.update(self.counts(ctx, sent))
        self.chunk(jdump(last) + "\n")
        self.end_stream()

    def stream_openai(self, ctx, body):
        self.start_stream("text/event-stream")
        created = int(time.time())
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": created, "model": ctx["model"],
                "system_fingerprint": "fp_fake"}

        def event(choices, usage=None):
            ev = dict(base)
            ev["choices"] = choices
            if usage is not None:
                ev["usage"] = usage
            self.chunk("data: " + jdump(ev) + "\n\n")

        event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                "finish_reason": None}])
        sent = self.each_token(ctx, lambda tok: event(
            [{"index": 0, "delta": {"content": tok}, "finish_reason": None}]))
        if sent is None:
            if ctx["fail"] == "drop":
                self.drop()
                return
            self.chunk("data: " + jdump({"error": {
                "message": MIDSTREAM_TEXT, "type": "api_error",
                "param": None, "code": None}}) + "\n\n")
            self.end_stream()
            return
        event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        so = body.get("stream_options")
        if isinstance(so, dict) and so.get("include_usage") is True:
            p = ctx["prompt"]
            event([], {"prompt_tokens": p, "completion_tokens": sent,
                       "total_tokens": p + sent})
        self.chunk("data: [DONE]\n\n")
        self.end_stream()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="fake Ollama / OpenAI server")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", default=None)
    ap.add_argument("--models", default="llama3.2:latest")
    ap.add_argument("--mode", default=None, help="initial mode, JSON object")
    a = ap.parse_args()

    models = [m.strip() for m in a.models.split(",") if m.strip()]
    state = State(DEFAULT_MODE, models, a.log)
    if a.mode:
        try:
            upd = json.loads(a.mode)
        except ValueError:
            sys.exit("ollama_fake: --mode is not JSON")
        err = state.merge_mode(upd)
        if err:
            sys.exit("ollama_fake: --mode: " + err)
        state.start_mode = dict(state.mode)

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = state
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1})
    th.start()

    tmp = "%s.tmp.%d" % (a.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)

    stop.wait()
    state.stopping.set()
    srv.shutdown()
    th.join()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
