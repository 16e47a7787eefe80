"""Scripted TCP servers on the loopback interface, standing in for remote picture hosts.

Each connection runs a behaviour in its own thread. The server counts connections and
requests, so that a test can assert that a server was never reached.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

Behaviour = Callable[[socket.socket, "ScriptedServer"], None]


class ScriptedServer:
    """Listens on `host` (127.0.0.1 or ::1) and runs `behaviour` for every connection."""

    def __init__(self, behaviour: Behaviour, host: str = "127.0.0.1", port: int = 0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[bytes] = []  # request heads, in arrival order
        self.bytes_sent = 0
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        # OSError: the client hung up, as the fetcher does when it gives up.
        with connection, contextlib.suppress(OSError):
            self.behaviour(connection, self)

    def read_request(self, connection: socket.socket) -> bytes:
        """Read one request head; return b"" when the client closed first."""
        connection.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = connection.recv(4096)
            if not chunk:
                return b""
            head += chunk
        with self._lock:
            self.requests.append(head)
        return head

    def send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)


def response_bytes(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def serve_body(body: bytes, content_type: str = "image/png") -> Behaviour:
    """Respond to every request with 200 and `body`, keeping the connection open."""
    def behaviour(connection: socket.socket, server: ScriptedServer) -> None:
        while server.read_request(connection):
            server.send(connection, response_bytes("200 OK", {
                "Content-Type": content_type, "Content-Length": str(len(body))}, body))
    return behaviour


def redirect_to(location: Callable[[int], str], close: bool = False) -> Behaviour:
    """Respond to the n-th request (from 1) with a 302 to `location(n)`."""
    def behaviour(connection: socket.socket, server: ScriptedServer) -> None:
        while server.read_request(connection):
            headers = {"Location": location(len(server.requests)), "Content-Length": "0"}
            if close:
                headers["Connection"] = "close"
            server.send(connection, response_bytes("302 Found", headers))
            if close:
                return
    return behaviour


def silent(connection: socket.socket, server: ScriptedServer) -> None:
    """Accept the connection and read the request, but never respond."""
    server.read_request(connection)
    server.stopped.wait()


def trickle(interval: float) -> Behaviour:
    """Send valid headers, then one byte of a JPEG every `interval` seconds, forever."""
    def behaviour(connection: socket.socket, server: ScriptedServer) -> None:
        server.read_request(connection)
        server.send(connection, response_bytes("200 OK", {
            "Content-Type": "image/jpeg", "Content-Length": "100000"}))
        while not server.stopped.wait(interval):
            server.send(connection, b"\xff")
    return behaviour


def flood(declared_length: int | None) -> Behaviour:
    """Send zeros as fast as the client reads them, declaring `declared_length` or nothing."""
    def behaviour(connection: socket.socket, server: ScriptedServer) -> None:
        server.read_request(connection)
        headers = {"Content-Type": "image/jpeg", "Connection": "close"}
        if declared_length is not None:
            headers["Content-Length"] = str(declared_length)
        server.send(connection, response_bytes("200 OK", headers))
        chunk = bytes(65536)
        while not server.stopped.is_set():
            server.send(connection, chunk)
    return behaviour
