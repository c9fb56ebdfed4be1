"""A webhook receiver on loopback: records every request and answers from a script of
status codes (then 200), as a buyer's endpoint would, and verifies signatures as the
README tells receivers to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict:
        return json.loads(self.body)


def verify(*, secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check: recompute HMAC-SHA256 over "{t}.{body}" and compare."""
    fields = dict(part.split("=", 1) for part in headers.get("X-Market-Signature", "").split(","))
    expected = hmac.new(secret.encode(), f"{fields.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
    return fields.get("t") == headers.get("X-Market-Timestamp") and hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass
class Receiver:
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 200
    redirect_to: str = ""  # answer every request with 302 to this URL
    received: list[Received] = field(default_factory=list)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(path=self.path, headers=dict(self.headers.items()), body=body))
                if receiver.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                else:
                    self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
