"""
Raw HTTP/1.1 over loopback sockets, as an attacker or a careful client
speaks it: whole responses read off a socket (sized, chunked, or up to EOF),
the head parsed, and connections read until the server closes them.
"""

from __future__ import annotations

import socket
import time

import attrs

from tests.kit.service import Service


def connect(service: Service, timeout: float = 15) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=timeout)


@attrs.frozen
class Head:
    status_line: bytes
    headers: dict[bytes, bytes]

    @property
    def status(self) -> int:
        return int(self.status_line.split(b" ")[1])

    @property
    def phrase(self) -> bytes:
        return self.status_line.split(b" ", 2)[2]

    def header(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())


def parse_head(head: bytes) -> Head:
    status_line, *lines = head.split(b"\r\n")
    headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
               for line in lines}
    return Head(status_line, headers)


def _recv(sock: socket.socket, buffered: bytearray, what: str) -> None:
    chunk = sock.recv(65536)
    assert chunk, f"connection closed mid-{what}: {bytes(buffered[:300])!r}"
    buffered += chunk


def read_response(
    sock: socket.socket, buffered: bytearray, head_request: bool = False,
) -> tuple[bytes, bytes]:
    """One whole HTTP/1.1 response (head, body) from ``sock``; chunked or sized
    (no body after a HEAD request or for 1xx, 204 and 304).

    ``buffered`` holds what was read past the previous response, and keeps
    what is read past this one.
    """
    while b"\r\n\r\n" not in buffered:
        _recv(sock, buffered, "head")
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    buffered[:] = rest
    headers = parse_head(head)
    body = b""
    if head_request or headers.status < 200 or headers.status in (204, 304):
        return head, body
    if headers.header(b"transfer-encoding") == b"chunked":
        while True:
            while b"\r\n" not in buffered:
                _recv(sock, buffered, "chunk size")
            size_line, _, rest = bytes(buffered).partition(b"\r\n")
            size = int(size_line, 16)
            buffered[:] = rest
            while len(buffered) < size + 2:
                _recv(sock, buffered, "chunk")
            body += bytes(buffered[:size])
            buffered[:] = buffered[size + 2:]
            if size == 0:
                break
    else:
        length = int(headers.header(b"content-length") or b"0")
        while len(buffered) < length:
            _recv(sock, buffered, "body")
        body = bytes(buffered[:length])
        buffered[:] = buffered[length:]
    return head, body


def read_until_closed(sock: socket.socket, timeout: float = 15) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    sock.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    else:
        raise AssertionError(f"still open after {timeout}s: {got[:300]!r}")
    return got


def send_all_tolerantly(sock: socket.socket, data: bytes) -> None:
    """Send ``data``; a server that refused and closed may cut it short."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head, and whatever of the body came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest
