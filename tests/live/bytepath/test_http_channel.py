"""
The HTTP connection itself under a streamed send: keep-alive, pipelining,
``Expect: 100-continue``, and the channel timeouts, over raw loopback sockets.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import Service, running_service


def connect(service: Service) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=15)


def read_response(sock: socket.socket, buffered: bytearray) -> tuple[bytes, bytes]:
    """One whole HTTP/1.1 response (head, body) from ``sock``; chunked or sized."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {bytes(buffered)!r}"
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    buffered[:] = rest
    headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
               for line in head.split(b"\r\n")[1:]}
    body = b""
    if headers.get(b"transfer-encoding") == b"chunked":
        while True:
            while b"\r\n" not in buffered:
                buffered += sock.recv(65536)
            size_line, _, rest = bytes(buffered).partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                chunk = sock.recv(65536)
                assert chunk
                rest += chunk
            body += rest[:size]
            buffered[:] = rest[size + 2:]
            if size == 0:
                break
    else:
        length = int(headers.get(b"content-length", b"0"))
        while len(buffered) < length:
            chunk = sock.recv(65536)
            assert chunk
            buffered += chunk
        body = bytes(buffered[:length])
        buffered[:] = buffered[length:]
    return head, body


def test_keep_alive_send_then_more_requests_on_the_same_connection(
    service: Service, clients: Clients
) -> None:
    receiver = clients.receive(service.url("ka"))
    wait_until_waiting(service.base, "ka")
    payload = os.urandom(300_000)
    with connect(service) as sock:
        sock.sendall(b"PUT /ka HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                     % len(payload) + payload
                     + b"GET /help HTTP/1.1\r\nHost: second\r\n\r\n"
                     + b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        buffered = bytearray()
        head1, body1 = read_response(sock, buffered)
        head2, body2 = read_response(sock, buffered)
        head3, body3 = read_response(sock, buffered)
    assert head1.startswith(b"HTTP/1.1 200")
    assert body1.endswith(b"[INFO] Transfer complete.\n")
    assert head2.startswith(b"HTTP/1.1 200") and b"http://second/mypath" in body2
    assert body3 == b"User-agent: *\nDisallow: /\n"
    assert receiver.wait(30) == 0
    assert receiver.out.read_bytes() == payload
    nothing_registered(service.base)


def test_chunked_send_followed_by_a_pipelined_request(
    service: Service, clients: Clients
) -> None:
    receiver = clients.receive(service.url("pl"))
    wait_until_waiting(service.base, "pl")
    parts = [os.urandom(size) for size in (1, 70_000, 5, 200_000)]
    body = b"".join(b"%x;ext=1\r\n" % len(p) + p + b"\r\n" for p in parts)
    with connect(service) as sock:
        sock.sendall(b"POST /pl HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + body + b"0\r\nX-Trailer: yes\r\n\r\n"
                     + b"GET /robots.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        buffered = bytearray()
        head1, body1 = read_response(sock, buffered)
        head2, body2 = read_response(sock, buffered)
    assert body1.splitlines()[-1] == b"[INFO] Transfer complete."
    assert body2 == b"User-agent: *\nDisallow: /\n"
    assert receiver.wait(30) == 0
    assert receiver.out.read_bytes() == b"".join(parts)


def test_expect_100_continue_comes_before_the_final_status(
    service: Service, clients: Clients
) -> None:
    receiver = clients.receive(service.url("cont"))
    wait_until_waiting(service.base, "cont")
    with connect(service) as sock:
        sock.sendall(b"PUT /cont HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1)
            assert chunk
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        head, body = read_response(sock, bytearray())
    assert head.startswith(b"HTTP/1.1 200")
    assert receiver.wait(30) == 0 and receiver.out.read_bytes() == b"hello"


def test_refused_send_with_a_body_still_coming_closes_cleanly(
    service: Service, clients: Clients
) -> None:
    """A refusal mid-upload ends the response and closes; the client sees the line."""
    with connect(service) as sock:
        sock.sendall(b"PUT /a%2Fb HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n"
                     + b"x" * 100_000)
        head, body = read_response(sock, bytearray())
        assert head.startswith(b"HTTP/1.1 400")
        assert body.startswith(b"[ERROR] ")
        # The server closes its side; what we still send is dropped, not parsed.
        try:
            sock.sendall(b"GET /help HTTP/1.1\r\nHost: t\r\n\r\n")
        except OSError:
            pass
        rest = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"HTTP/1.1" not in rest
    nothing_registered(service.base)


def test_waiting_sender_outlives_the_connection_timeout(
    tmp_path: Path, clients: Clients
) -> None:
    """The channel's idle timer must not cut a send that waits for its receiver."""
    payload = os.urandom(1_000_000)
    with running_service(tmp_path, "--connection-timeout", "1") as service:
        with connect(service) as sock:
            sock.sendall(b"PUT /patient HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                         % len(payload) + payload[:400_000])
            wait_until_waiting(service.base, "patient")
            time.sleep(2.5)  # deliberately longer than the 1 s channel timeout
            receiver = clients.receive(service.url("patient"))
            sock.sendall(payload[400_000:])
            head, body = read_response(sock, bytearray())
        assert body.splitlines()[-1] == b"[INFO] Transfer complete."
        assert receiver.wait(30) == 0 and receiver.out.read_bytes() == payload


def test_idle_connection_is_closed_by_the_connection_timeout(tmp_path: Path) -> None:
    with running_service(tmp_path, "--connection-timeout", "1") as service:
        with connect(service) as sock:
            sock.settimeout(10)
            started = time.monotonic()
            assert sock.recv(1) == b""
            assert time.monotonic() - started < 8


def test_sender_that_dies_while_paused_and_waiting_is_noticed(
    service: Service,
) -> None:
    with connect(service) as sock:
        sock.sendall(b"PUT /ghost HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n")
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while sent < 4_000_000 and time.monotonic() < deadline:
            try:
                sent += sock.send(b"x" * 65536)
            except BlockingIOError:
                time.sleep(0.01)
        wait_until_waiting(service.base, "ghost")
    # The socket is closed with the server's socket paused: it must still notice.
    nothing_registered(service.base)


def test_client_half_close_after_a_small_complete_body_is_a_departure(
    service: Service,
) -> None:
    with connect(service) as sock:
        sock.sendall(b"PUT /half HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        wait_until_waiting(service.base, "half")
    nothing_registered(service.base)
