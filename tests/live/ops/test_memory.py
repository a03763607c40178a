"""
Memory given back after a peak (issue 8 finding 7): after a burst of
concurrent transfers the server's RSS falls back near where it started,
instead of staying at the peak for good.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.kit.clients import Clients, nothing_registered, wait_until_waiting
from tests.kit.service import running_service
from tests.kit.waiting import wait_for

MB = 1_000_000
TRANSFERS = 48


def _above(value: int, bound: int) -> int:
    return value if value > bound else 0


class _StalledReceiver:
    """A receiver with a small socket buffer that reads only when told to."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

    def read_all(self, timeout: float) -> int:
        """Read the sized response to its end; returns the body's length."""
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, "closed before the head"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        got = len(rest)
        while got < length:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "closed before the end of the body"
            got += len(chunk)
        return got


def test_rss_falls_back_after_a_burst_of_concurrent_transfers(
    tmp_path: Path, clients: Clients,
) -> None:
    payload = tmp_path / "p.bin"
    payload.write_bytes(os.urandom(20 * MB))
    with running_service(tmp_path) as service:
        # First-request costs out of the baseline: one small transfer.
        receiver = clients.receive(service.url("warm"))
        wait_until_waiting(service.base, "warm")
        assert clients.curl("--data-binary", "x", service.url("warm")).wait(30) == 0
        assert receiver.wait(30) == 0
        baseline = service.rss_bytes()

        # Receivers that read nothing until the peak is seen: the relay sends
        # straight to any socket the kernel can take, so only what a receiver
        # is behind on (past its kernel buffers) is held in the server.
        receivers = [_StalledReceiver(service.port, f"/burst{i}") for i in range(TRANSFERS)]
        try:
            wait_until_waiting(service.base, "burst", TRANSFERS)
            senders = [clients.send_file(service.url(f"burst{i}"), payload)
                       for i in range(TRANSFERS)]
            peak = wait_for(lambda: _above(service.rss_bytes(), baseline + 15 * MB), 60,
                            "the burst to make a peak for this test to mean much")
            for stalled in receivers:
                assert stalled.read_all(30) == payload.stat().st_size
            for curl in senders:
                assert curl.wait(60) == 0
        finally:
            for stalled in receivers:
                stalled.sock.close()
        nothing_registered(service.base)

        wait_for(lambda: service.rss_bytes() < baseline + 8 * MB, 15,
                 f"RSS back near {baseline / MB:.0f} MB (peak {peak / MB:.0f} MB)",
                 interval=0.2)
