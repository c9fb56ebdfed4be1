"""The seller CLI's API calls over a connection that drops once after the request was sent."""

import json
import socket
import threading

import pytest

from datasets.client import Api


class DropsFirstConnection:
    """A loopback HTTP server that reads the first request and closes without answering
    (the peer sees a reset or a disconnect), then answers every later request with 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(65536).decode(errors="replace")
                self.requests.append(head.split(" ", 2)[0])
                if len(self.requests) == 1:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                    continue
                body = json.dumps({"ok": True}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr("datasets.client.time.sleep", lambda s: None)  # the back-off, not the unit
    srv = DropsFirstConnection()
    yield srv
    srv.close()


def test_a_get_is_sent_again_after_the_connection_drops(server):
    api = Api(f"http://127.0.0.1:{server.port}", "token")
    assert api.call("GET", "uploads/1/") == {"ok": True}
    assert server.requests == ["GET", "GET"]

