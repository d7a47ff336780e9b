"""A server that answers chosen requests with garbage and passes the others to a real emulator.

`GarbageProxy(target=("127.0.0.1", port))` listens on 127.0.0.1; every request whose
(method, path, body) makes `victim` true gets the raw bytes in `answer` (anything: a bad HTTP
status line, a truncated body, broken XML or JSON, or nothing), and every other request is passed
to the target unchanged. Without a target every request is a victim. One request per connection
(the answer closes it), so clients never wait on a half-open keep-alive connection.
"""

from __future__ import annotations

import socket
import threading


def http_answer(status: int, body: bytes, content_type: str = "text/xml", length=None) -> bytes:
    """A raw HTTP/1.1 answer; `length` overrides Content-Length (None: the true length, -1: none)."""
    head = ["HTTP/1.1 %d Whatever" % status, "Content-Type: %s" % content_type, "Connection: close"]
    if length != -1:
        head.append("Content-Length: %d" % (len(body) if length is None else length))
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class GarbageProxy:
    def __init__(self, target=None):
        self.target = target
        self.answer = b""
        self.victim = lambda method, path, body: True
        self.victims_hit = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, name="garbage-proxy", daemon=True)

    def start(self) -> "GarbageProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._stopping:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            request = _read_request(conn)
            if request is None:
                return
            head, body = request
            first = head.split(b"\r\n", 1)[0].split(b" ")
            method = first[0].decode("latin-1", "replace")
            path = first[1].decode("latin-1", "replace") if len(first) > 1 else "/"
            if self.target is None or self.victim(method, path, body):
                self.victims_hit += 1
                if self.answer:
                    conn.sendall(self.answer)
            else:
                conn.sendall(_forward(self.target, head, body))
        except OSError:
            pass
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def _read_request(conn: socket.socket):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"0")
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _forward(target, head: bytes, body: bytes) -> bytes:
    """Send the request to the real server with `Connection: close` and return its whole answer."""
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    request = b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body
    with socket.create_connection(target, timeout=30) as upstream:
        upstream.sendall(request)
        chunks = []
        while True:
            chunk = upstream.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)
