#!/usr/bin/env python3
"""telegram_fake.py -- a stand-in for the Telegram Bot API in tests.

It answers like api.telegram.org on the wire: methods at
/bot<TOKEN>/METHOD, parameters as a query string, a JSON body, a form or
multipart body; every answer {"ok":true,"result":...} or
{"ok":false,"error_code":N,"description":"..."} with N as the HTTP status;
HTTP/1.1 with keep-alive.

The ideas:
  * Updates are a queue with increasing update_id.  getUpdates long-polls
    until an update with update_id >= offset exists (or its timeout runs
    out) and, like the real server, forgets every update below the offset
    it was given: an offset confirms what came before it.  A newer
    getUpdates ends an older one still waiting with 409 Conflict, as
    Telegram does when two pollers run.
  * sendMessage and editMessageText check the text the way Telegram does
    that matters to a bridge: HTML parse_mode entities and tags, length
    counted in UTF-16 units after entity parsing (at most 4096), an edit
    to the same content refused as "message is not modified", optional
    per-chat flood control (429 with parameters.retry_after).
  * Tests drive it through /_fake/* (queue updates, serve one again,
    switch failures on: 429, 500, 502, 409, a dropped connection) and
    read what it did: every message accepted, every request with the
    time it came (time.monotonic(): CLOCK_MONOTONIC, the clock C tests
    read), counters.
See tests/fakes/README.md for the whole interface.

Standard library only.  Binds 127.0.0.1 only.  The token is never logged.
"""

import argparse
import email.parser
import email.policy
import json
import math
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 * 1024 * 1024
MAX_TEXT = 4096                 # UTF-16 units after entity parsing
MAX_POLL_S = 50                 # a longer timeout is cut to this
BOT_ID = 7000000001
BOT_USERNAME = "switchyard_fake_bot"

FAILS = ("none", "429", "500", "502", "drop", "409")
METHODS = ("getMe", "getUpdates", "sendMessage", "editMessageText",
           "sendChatAction", "deleteMessage", "getFile", "deleteWebhook",
           "getWebhookInfo", "setMyCommands", "logOut", "close")

DEFAULT_MODE = {
    "fail": "none",
    "method": "*",
    "fail_count": -1,
    "retry_after": 1,
    "enforce_rate": False,
    "rate_interval": 1.0,
}

CONFLICT = ("Conflict: terminated by other getUpdates request; make sure "
            "that only one bot instance is running")
NOT_MODIFIED = ("Bad Request: message is not modified: specified new "
                "message content and reply markup are exactly the same as "
                "a current content and reply markup of the message")
NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
             b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
             b"<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n")


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


class ApiError(Exception):
    """An error answer: {"ok":false,"error_code":code,...}."""

    def __init__(self, code, description, parameters=None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


# ------------------------------------------------------------ HTML entities

TAG_KIND = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline", "s": "strikethrough",
    "strike": "strikethrough", "del": "strikethrough", "code": "code",
    "pre": "pre", "a": "text_link", "tg-spoiler": "spoiler",
    "span": "spoiler", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def byte_off(text, i):
    return len(text[:i].encode("utf-8"))


def parse_html(text):
    """Telegram's HTML parse mode, the parts a bridge meets: returns
    (plain text, entities) or raises ApiError 400 "can't parse entities".
    Unknown named entities stay as written (as Telegram leaves them);
    numeric ones are decoded."""
    out = []
    plen = 0                    # UTF-16 length of out so far
    stack = []                  # (name, start utf16, entity dict)
    ents = []
    i, n = 0, len(text)

    def bad(msg):
        raise ApiError(400, "Bad Request: can't parse entities: " + msg)

    while i < n:
        c = text[i]
        if c == "&":
            m = re.match(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);",
                         text[i:])
            ch = None
            if m:
                name = m.group(1)
                if name.startswith(("#x", "#X")):
                    cp = int(name[2:], 16)
                    ch = chr(cp) if 0 < cp <= 0x10FFFF else None
                elif name.startswith("#"):
                    cp = int(name[1:])
                    ch = chr(cp) if 0 < cp <= 0x10FFFF else None
                else:
                    ch = NAMED.get(name)
            if ch is not None:
                out.append(ch)
                plen += utf16_len(ch)
                i += len(m.group(0))
            else:
                out.append("&")
                plen += 1
                i += 1
            continue
        if c != "<":
            out.append(c)
            plen += utf16_len(c)
            i += 1
            continue
        end = text.find(">", i)
        if end < 0:
            bad("Unclosed start tag at byte offset %d" % byte_off(text, i))
        inner = text[i + 1:end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                bad("Unexpected end tag at byte offset %d" % byte_off(text, i))
            top = stack[-1][0]
            if name != top:
                bad('Unmatched end tag at byte offset %d, expected "</%s>", '
                    'found "</%s>"' % (byte_off(text, i), top, name))
            _, start, ent = stack.pop()
            if plen > start:
                ent["offset"] = start
                ent["length"] = plen - start
                ents.append(ent)
            i = end + 1
            continue
        m = re.match(r"([a-zA-Z][a-zA-Z0-9-]*)(.*)$", inner, re.S)
        name = m.group(1).lower() if m else ""
        if name not in TAG_KIND:
            bad('Unsupported start tag "%s" at byte offset %d'
                % (name or inner[:16], byte_off(text, i)))
        attrs = m.group(2)
        ent = {"type": TAG_KIND[name]}
        if name == "a":
            h = re.search(r"href\s*=\s*(\"([^\"]*)\"|'([^']*)'|([^\s>]+))",
                          attrs)
            if h:
                ent["url"] = h.group(2) or h.group(3) or h.group(4) or ""
        elif name == "span" and not re.search(
                r"class\s*=\s*[\"']?tg-spoiler", attrs):
            bad('Tag "span" must have class "tg-spoiler" at byte offset %d'
                % byte_off(text, i))
        stack.append((name, plen, ent))
        i = end + 1
    if stack:
        bad('Can\'t find end tag corresponding to start tag "%s"'
            % stack[-1][0])
    ents.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), ents


# ------------------------------------------------------------ state

class Fake:
    """Everything the handler threads share, under one lock."""

    def __init__(self, token, log_path, first_update_id):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.token = token
        self.log_path = log_path
        self.mode = dict(DEFAULT_MODE)
        self.updates = []           # pending, by update_id
        self.all_updates = {}       # every update made, for replay
        self.replays = []           # to be served again, once each
        self.next_update_id = first_update_id
        self.confirmed = 0          # highest offset given to getUpdates
        self.chats = {}             # chat_id -> {"next": n, "msgs": {}, "last": t}
        self.sent = []
        self.requests = []
        self.counts = {}
        self.refused = {}
        self.conflicts = 0
        self.replays_served = 0
        self.poll_gen = 0
        self.polls_waiting = 0
        self.stopping = threading.Event()

    # -------------------------------------------------------- helpers

    def chat(self, chat_id):
        c = self.chats.get(chat_id)
        if c is None:
            c = {"next": 1, "msgs": {}, "last": None, "first_name": None}
            self.chats[chat_id] = c
        return c

    def chat_obj(self, chat_id):
        c = self.chat(chat_id)
        if isinstance(chat_id, int) and chat_id < 0:
            return {"id": chat_id, "title": "group %d" % -chat_id,
                    "type": "supergroup" if chat_id < -1000000000000
                    else "group"}
        o = {"id": chat_id, "first_name": c["first_name"] or "User",
             "type": "private"}
        if not isinstance(chat_id, int):
            o["type"] = "channel"
            o["username"] = str(chat_id).lstrip("@")
        return o

    def take_fail(self, method):
        """The fail in force for a request to method, counted against
        fail_count.  Called with the lock held."""
        fail = self.mode["fail"]
        if fail == "none":
            return "none"
        if self.mode["method"] not in ("*", method):
            return "none"
        n = self.mode["fail_count"]
        if n < 0:
            return fail
        if n == 0:
            self.mode["fail"] = "none"
            self.mode["fail_count"] = -1
            return "none"
        n -= 1
        self.mode["fail_count"] = n
        if n == 0:
            self.mode["fail"] = "none"
            self.mode["fail_count"] = -1
        return fail

    def record(self, entry):
        """One Bot API request, when its answer is known (lock held)."""
        entry["seq"] = len(self.requests) + 1
        self.requests.append(entry)
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(jdump(entry) + "\n")

    def merge_mode(self, upd):
        if not isinstance(upd, dict):
            return "mode must be a JSON object"
        for k, v in upd.items():
            if k == "fail":
                if v not in FAILS:
                    return "fail must be one of " + ", ".join(FAILS)
            elif k == "method":
                if v != "*" and v not in METHODS:
                    return "method must be * or one of " + ", ".join(METHODS)
            elif k == "fail_count":
                if not isinstance(v, int) or isinstance(v, bool) or v < -1:
                    return "fail_count must be an integer >= -1"
            elif k == "retry_after":
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    return "retry_after must be an integer >= 0"
            elif k == "enforce_rate":
                if not isinstance(v, bool):
                    return "enforce_rate must be true or false"
            elif k == "rate_interval":
                if not isinstance(v, (int, float)) or isinstance(v, bool) \
                        or v <= 0:
                    return "rate_interval must be a positive number"
            else:
                return "unknown mode key " + jdump(k)
        with self.lock:
            self.mode.update(upd)
            self.cond.notify_all()
        return None

    # -------------------------------------------------------- updates

    def add_update(self, spec):
        """POST /_fake/update: a message update from a user."""
        if not isinstance(spec, dict):
            raise ApiError(400, "body must be a JSON object")
        chat_id = spec.get("chat_id")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise ApiError(400, "chat_id (integer) is required")
        from_id = spec.get("from_id", chat_id if chat_id > 0 else 1)
        if not isinstance(from_id, int) or isinstance(from_id, bool):
            raise ApiError(400, "from_id must be an integer")
        with self.lock:
            c = self.chat(chat_id)
            if isinstance(spec.get("first_name"), str):
                c["first_name"] = spec["first_name"]
            mid = c["next"]
            c["next"] += 1
            msg = {
                "message_id": mid,
                "from": {"id": from_id, "is_bot": False,
                         "first_name": spec.get("first_name", "User"),
                         "username": spec.get("username", "user%d" % from_id),
                         "language_code": "en"},
                "chat": self.chat_obj(chat_id),
                "date": int(time.time()),
            }
            if "text" in spec:
                if not isinstance(spec["text"], str):
                    raise ApiError(400, "text must be a string")
                msg["text"] = spec["text"]
                if spec["text"].startswith("/"):
                    cmd = re.match(r"/[A-Za-z0-9_@]+", spec["text"])
                    if cmd:
                        msg["entities"] = [{"offset": 0, "type": "bot_command",
                                            "length": utf16_len(cmd.group(0))}]
            if "photo" in spec:
                msg["photo"] = photo_sizes(spec["photo"])
            if "document" in spec:
                d = spec["document"]
                if not isinstance(d, dict) or not isinstance(
                        d.get("file_id"), str):
                    raise ApiError(400, "document must be an object with "
                                   "file_id")
                doc = {"file_id": d["file_id"],
                       "file_unique_id": "U" + d["file_id"][-12:]}
                for k in ("file_name", "mime_type", "file_size"):
                    if k in d:
                        doc[k] = d[k]
                msg["document"] = doc
            if "caption" in spec:
                msg["caption"] = spec["caption"]
            if not any(k in msg for k in ("text", "photo", "document")):
                raise ApiError(400, "one of text, photo, document is "
                               "required")
            c["msgs"][mid] = {"plain": msg.get("text", ""), "ents": [],
                              "bot": False}
            uid = self.next_update_id
            self.next_update_id += 1
            upd = {"update_id": uid, "message": msg}
            self.updates.append(upd)
            self.all_updates[uid] = upd
            self.cond.notify_all()
            return {"update_id": uid, "message_id": mid}

    def replay(self, update_id):
        with self.lock:
            u = self.all_updates.get(update_id)
            if u is None:
                return False
            self.replays.append(u)
            self.cond.notify_all()
            return True

    def get_updates(self, handler, p, t0):
        """Long poll; returns the result list, or raises ApiError.
        Returns None when the client left (nothing is answered)."""
        offset = int_param(p, "offset", 0)
        limit = int_param(p, "limit", 100)
        timeout = int_param(p, "timeout", 0)
        if limit < 1 or limit > 100:
            limit = 100
        timeout = max(0, min(timeout, MAX_POLL_S))
        with self.lock:
            if offset > 0:
                self.updates = [u for u in self.updates
                                if u["update_id"] >= offset]
                self.confirmed = max(self.confirmed, offset)
            elif offset < 0:
                self.updates = self.updates[offset:]
            self.poll_gen += 1
            gen = self.poll_gen
            self.cond.notify_all()      # an older poll ends with 409
            deadline = t0 + timeout
            self.polls_waiting += 1
            try:
                while True:
                    if self.replays or self.updates:
                        break
                    if gen != self.poll_gen:
                        self.conflicts += 1
                        raise ApiError(409, CONFLICT)
                    left = deadline - time.monotonic()
                    if left <= 0 or self.stopping.is_set():
                        break
                    self.cond.wait(min(left, 0.1))
                    if handler.client_gone():
                        return None
            finally:
                self.polls_waiting -= 1
            res = []
            while self.replays and len(res) < limit:
                res.append(self.replays.pop(0))
                self.replays_served += 1
            res.extend(self.updates[:limit - len(res)])
            return res

    # -------------------------------------------------------- messages

    def check_rate(self, c, now):
        """Flood control of one chat (lock held)."""
        if not self.mode["enforce_rate"] or c["last"] is None:
            return
        iv = float(self.mode["rate_interval"])
        # 50 ms of slack: the bridge's timer and ours drift a little.
        wait = iv - (now - c["last"]) - 0.05
        if wait > 0:
            n = max(1, int(math.ceil(wait)))
            raise ApiError(429, "Too Many Requests: retry after %d" % n,
                           {"retry_after": n})

    def send_or_edit(self, method, p, t0):
        chat_id = chat_param(p)
        if method == "editMessageText" and "inline_message_id" in p:
            return True
        text = p.get("text")
        if text is None or text == "":
            raise ApiError(400, "Bad Request: message text is empty")
        if not isinstance(text, str):
            text = str(text)
        mode = p.get("parse_mode") or ""
        if not isinstance(mode, str):
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        if mode.lower() == "html":
            plain, ents = parse_html(text)
        elif mode == "" or mode.lower() in ("markdown", "markdownv2"):
            plain, ents = text, []      # Markdown is not parsed here
        else:
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        if plain.strip() == "":
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        with self.lock:
            c = self.chat(chat_id)
            if method == "editMessageText":
                mid = int_param(p, "message_id", 0)
                old = c["msgs"].get(mid)
                if old is None:
                    raise ApiError(400, "Bad Request: message to edit not "
                                   "found")
                if not old["bot"]:
                    raise ApiError(400, "Bad Request: message can't be "
                                   "edited")
                if old["plain"] == plain and old["ents"] == ents:
                    raise ApiError(400, NOT_MODIFIED)
            now = time.monotonic()
            self.check_rate(c, now)
            if method == "sendMessage":
                mid = c["next"]
                c["next"] += 1
                c["msgs"][mid] = {"date": int(time.time())}
            m = c["msgs"][mid]
            m.update({"plain": plain, "ents": ents, "bot": True,
                      "text": text})
            c["last"] = now
            self.sent.append({"seq": len(self.sent) + 1, "method": method,
                              "chat_id": chat_id, "message_id": mid,
                              "text": text, "plain": plain,
                              "parse_mode": mode, "time": now})
            res = {"message_id": mid,
                   "from": {"id": BOT_ID, "is_bot": True,
                            "first_name": "Switchyard",
                            "username": BOT_USERNAME},
                   "chat": self.chat_obj(chat_id), "date": m["date"],
                   "text": plain}
            if ents:
                res["entities"] = ents
            if method == "editMessageText":
                res["edit_date"] = int(time.time())
            return res

    def stats(self):
        with self.lock:
            return {"requests": dict(self.counts),
                    "refused": dict(self.refused),
                    "confirmed_offset": self.confirmed,
                    "pending_updates": len(self.updates),
                    "next_update_id": self.next_update_id,
                    "replays_pending": len(self.replays),
                    "replays_served": self.replays_served,
                    "sent": len(self.sent),
                    "conflicts": self.conflicts,
                    "polls_waiting": self.polls_waiting}


def photo_sizes(spec):
    """A photo as Telegram sends it: several sizes, the largest last.
    spec: a file_id, an object {file_id, ...}, or a list of PhotoSize."""
    if isinstance(spec, list):
        return spec
    if isinstance(spec, str):
        spec = {"file_id": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("file_id"), str):
        raise ApiError(400, "photo must be a file_id or an object with file_id")
    fid = spec["file_id"]
    size = spec.get("file_size", 123456)
    return [{"file_id": fid + "-s", "file_unique_id": "S" + fid[-12:],
             "file_size": max(1, size // 40), "width": 90, "height": 67},
            {"file_id": fid, "file_unique_id": "L" + fid[-12:],
             "file_size": size, "width": spec.get("width", 1280),
             "height": spec.get("height", 960)}]


def int_param(p, name, dflt):
    v = p.get(name, dflt)
    if isinstance(v, bool):
        raise ApiError(400, "Bad Request: invalid %s specified" % name)
    if isinstance(v, int):
        return v
    try:
        return int(str(v).strip())
    except ValueError:
        raise ApiError(400, "Bad Request: invalid %s specified" % name)


def chat_param(p):
    v = p.get("chat_id")
    if v is None or v == "":
        raise ApiError(400, "Bad Request: chat_id is empty")
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    s = str(v).strip()
    if re.fullmatch(r"-?[0-9]{1,20}", s):
        return int(s)
    if s.startswith("@") and len(s) > 1:
        return s
    raise ApiError(400, "Bad Request: chat not found")


# ------------------------------------------------------------ HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx/1.18.0"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet: tests read their own logs
        pass

    @property
    def fake(self):
        return self.server.fake

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and
        # the client's delayed ACK hold every answer back ~40 ms.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                       1)
        except OSError:
            pass

    # -------------------------------------------------------- plumbing

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip()
                           or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(8)
                if len(out) > MAX_BODY:
                    raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def send_raw(self, code, data, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def send_json(self, code, obj):
        self.send_raw(code, jdump(obj).encode("utf-8"), "application/json")

    def send_error_api(self, e):
        body = {"ok": False, "error_code": e.code,
                "description": e.description}
        if e.parameters:
            body["parameters"] = e.parameters
        self.send_json(e.code, body)

    def client_gone(self):
        """True when the peer closed its side (the request is read, so
        anything readable now is the end of the stream)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def drop(self):
        """Closes the connection abruptly: RST, no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def params(self, raw):
        """Query string, then the body (JSON, form or multipart)."""
        p = {}
        for k, v in parse_qs(urlsplit(self.path).query,
                             keep_blank_values=True).items():
            p[k] = v[-1]
        ctype = self.headers.get("Content-Type", "")
        if not raw:
            return p
        if ctype.startswith("application/json") or raw[:1] in (b"{", b"["):
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "Bad Request: can't parse JSON object")
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: can't parse JSON object")
            p.update(body)
        elif ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    p[name] = part.get_payload(decode=True).decode(
                        "utf-8", "replace")
        else:
            try:
                s = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "Bad Request: invalid form body")
            for k, v in parse_qs(s, keep_blank_values=True).items():
                p[k] = v[-1]
        return p

    # -------------------------------------------------------- routes

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.send_json(400, {"ok": False, "error_code": 400,
                                 "description": "Bad Request: bad body"})
            return
        path = urlsplit(self.path).path
        if path.startswith("/_fake/"):
            self.control(path[len("/_fake/"):], raw)
            return
        m = re.fullmatch(r"/bot([^/]*)/([A-Za-z]+)", path)
        if not m:
            self.send_json(404, {"ok": False, "error_code": 404,
                                 "description": "Not Found"})
            return
        if m.group(1) != self.fake.token:
            self.send_json(401, {"ok": False, "error_code": 401,
                                 "description": "Unauthorized"})
            return
        self.api(m.group(2), raw)

    def api(self, name, raw):
        fake = self.fake
        t0 = time.monotonic()
        method = next((x for x in METHODS if x.lower() == name.lower()),
                      name)
        entry = {"method": method, "t": t0}
        with fake.lock:
            fake.counts[method] = fake.counts.get(method, 0) + 1
            fail = fake.take_fail(method) if method in METHODS else "none"
        try:
            if fail != "none":
                with fake.lock:
                    fake.refused[method] = fake.refused.get(method, 0) + 1
                entry["fail"] = fail
                self.fail(fail, entry)
                return
            p = self.params(raw)
            if method == "getUpdates":
                for k in ("offset", "limit", "timeout"):
                    if k in p:
                        entry[k] = int_param(p, k, 0)
                res = fake.get_updates(self, p, t0)
                if res is None:
                    entry["status"] = 0
                    entry["t_done"] = time.monotonic()
                    with fake.lock:
                        fake.record(entry)
                    self.close_connection = True
                    return
                entry["updates"] = [u["update_id"] for u in res]
            elif method in ("sendMessage", "editMessageText"):
                res = fake.send_or_edit(method, p, t0)
                entry["chat_id"] = p.get("chat_id")
                if isinstance(res, dict):
                    entry["message_id"] = res["message_id"]
            elif method == "getMe":
                res = {"id": BOT_ID, "is_bot": True,
                       "first_name": "Switchyard", "username": BOT_USERNAME,
                       "can_join_groups": True,
                       "can_read_all_group_messages": False,
                       "supports_inline_queries": False}
            elif method == "getFile":
                fid = p.get("file_id")
                if not fid:
                    raise ApiError(400, "Bad Request: file_id is empty")
                res = {"file_id": fid, "file_unique_id": "F" + fid[-12:],
                       "file_size": 1234, "file_path": "documents/%s" % fid}
            elif method == "getWebhookInfo":
                with fake.lock:
                    pend = len(fake.updates)
                res = {"url": "", "has_custom_certificate": False,
                       "pending_update_count": pend}
            elif method in METHODS:
                chat_param(p) if method in ("sendChatAction",
                                            "deleteMessage") else None
                res = True
            else:
                raise ApiError(404, "Not Found")
            entry["status"] = 200
            self.send_json(200, {"ok": True, "result": res})
        except ApiError as e:
            entry["status"] = e.code
            entry["description"] = e.description
            if e.code != 404:
                with fake.lock:
                    fake.refused[method] = fake.refused.get(method, 0) + 1
            self.send_error_api(e)
        except (BrokenPipeError, ConnectionResetError):
            entry["status"] = 0
        entry["t_done"] = time.monotonic()
        with fake.lock:
            fake.record(entry)

    def fail(self, fail, entry):
        """Answers a request with the failure switched on."""
        fake = self.fake
        code = {"429": 429, "500": 500, "502": 502, "409": 409}.get(fail, 0)
        entry["status"] = code
        if fail == "drop":
            self.drop()
        elif fail == "429":
            with fake.lock:
                n = int(fake.mode["retry_after"])
            entry["retry_after"] = n
            self.send_error_api(ApiError(
                429, "Too Many Requests: retry after %d" % n,
                {"retry_after": n}))
        elif fail == "500":
            self.send_error_api(ApiError(500, "Internal Server Error"))
        elif fail == "502":
            self.send_raw(502, NGINX_502, "text/html")
        elif fail == "409":
            self.send_error_api(ApiError(409, CONFLICT))
        entry["t_done"] = time.monotonic()
        with fake.lock:
            fake.record(entry)

    def control(self, what, raw):
        fake = self.fake
        q = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, UnicodeDecodeError):
            self.send_json(400, {"error": "body is not JSON"})
            return
        try:
            if what == "update" and self.command == "POST":
                self.send_json(200, fake.add_update(body))
            elif what == "replay" and self.command == "POST":
                uid = body.get("update_id") if isinstance(body, dict) else None
                if not isinstance(uid, int) or not fake.replay(uid):
                    self.send_json(404, {"error": "no such update_id"})
                else:
                    self.send_json(200, {"replayed": uid})
            elif what == "mode":
                if self.command == "POST":
                    err = fake.merge_mode(body)
                    if err:
                        self.send_json(400, {"error": err})
                        return
                with fake.lock:
                    self.send_json(200, dict(fake.mode))
            elif what == "sent":
                with fake.lock:
                    out = [s for s in fake.sent
                           if sent_matches(s, q)]
                self.send_json(200, {"sent": out, "count": len(out)})
            elif what == "requests":
                with fake.lock:
                    out = [r for r in fake.requests
                           if "method" not in q or r["method"] == q["method"]]
                self.send_json(200, {"requests": out, "count": len(out)})
            elif what == "stats":
                self.send_json(200, fake.stats())
            elif what == "time":
                self.send_json(200, {"time": time.monotonic()})
            else:
                self.send_json(404, {"error": "unknown control endpoint"})
        except ApiError as e:
            self.send_json(e.code, {"error": e.description})


def sent_matches(s, q):
    if "chat_id" in q and str(s["chat_id"]) != q["chat_id"]:
        return False
    if "after" in q:
        try:
            if s["seq"] <= int(q["after"]):
                return False
        except ValueError:
            return False
    return True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description="fake Telegram Bot API")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--first-update-id", type=int, default=500000001)
    ap.add_argument("--mode", default=None, help="initial mode, JSON object")
    a = ap.parse_args()

    fake = Fake(a.token, a.log, a.first_update_id)
    if a.mode:
        try:
            err = fake.merge_mode(json.loads(a.mode))
        except ValueError:
            err = "not JSON"
        if err:
            sys.exit("telegram_fake: --mode: " + err)

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.fake = fake
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    th = threading.Thread(target=srv.serve_forever,
                          kwargs={"poll_interval": 0.1})
    th.start()

    tmp = "%s.tmp.%d" % (a.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)

    stop.wait()
    fake.stopping.set()
    with fake.lock:
        fake.cond.notify_all()
    srv.shutdown()
    th.join()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
