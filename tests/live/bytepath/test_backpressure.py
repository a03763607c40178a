"""
A receiver that stops reading must stop the sender, not fill the server.

In the spirit of magic-wormhole-transit-relay's test_buffer_fills: the sender
pushes as fast as it can into a receiver that reads nothing; once the kernel
buffers are full the sender stalls, and the bytes held inside the server
process (its RSS growth) stay under a small bound. Then the receiver reads
again and gets every byte.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.kit.clients import nothing_registered, wait_until_waiting
from tests.kit.rawhttp import read_head
from tests.kit.service import running_service

TOTAL = 96 * 1024 * 1024
BLOCK = 256 * 1024
BOUND = 16 * 1024 * 1024


def pattern_block(i: int) -> bytes:
    seed = hashlib.sha256(b"%d" % i).digest()
    return seed * (BLOCK // len(seed))


class Sender(threading.Thread):
    def __init__(self, port: int, chunked: bool) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.chunked = chunked
        self.sent = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.chunked:
                head = b"PUT /bp HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            else:
                head = b"PUT /bp HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % TOTAL
            self.sock.sendall(head)
            for i in range(TOTAL // BLOCK):
                block = pattern_block(i)
                self.digest.update(block)
                if self.chunked:
                    self.sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    self.sock.sendall(block)
                self.sent += len(block)
            if self.chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except BaseException as e:  # reported by the test
            self.error = e


def dechunk_into(sock: socket.socket, rest: bytes, digest: hashlib._Hash) -> int:
    """Read a chunked body to its end, hashing the payload; returns its length."""
    buffered = bytearray(rest)
    total = 0
    while True:
        while b"\r\n" not in buffered:
            chunk = sock.recv(1 << 20)
            assert chunk, "body ended early"
            buffered += chunk
        line_end = buffered.index(b"\r\n")
        size = int(bytes(buffered[:line_end]), 16)
        del buffered[:line_end + 2]
        while len(buffered) < size + 2:
            chunk = sock.recv(1 << 20)
            assert chunk, "body ended early"
            buffered += chunk
        digest.update(buffered[:size])
        total += size
        del buffered[:size + 2]
        if size == 0:
            return total


def read_sized(sock: socket.socket, rest: bytes, digest: hashlib._Hash) -> int:
    digest.update(rest)
    total = len(rest)
    while total < TOTAL:
        chunk = sock.recv(1 << 20)
        assert chunk, "body ended early"
        digest.update(chunk)
        total += len(chunk)
    return total


def wait_for_stall(sender: Sender, quiet: float = 1.5, timeout: float = 60) -> None:
    """Until the sender's byte count stops growing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if sender.sent != last:
            last, since = sender.sent, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)
    raise AssertionError("the sender never stalled: the server kept reading")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
def test_stalled_receiver_bounds_server_memory(tmp_path: Path, chunked: bool) -> None:
    with running_service(tmp_path) as service:
        receiver = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        receiver.sendall(b"GET /bp HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until_waiting(service.base, "bp")
        rss_before = service.rss_bytes()
        sender = Sender(service.port, chunked)
        sender.start()
        head, rest = read_head(receiver)
        assert head.startswith(b"HTTP/1.1 200")
        wait_for_stall(sender)
        growth = service.rss_bytes() - rss_before
        assert sender.error is None
        assert sender.sent < TOTAL, "everything went through: nothing was held back"
        assert growth < BOUND, f"server grew by {growth / 1e6:.1f} MB while stalled"

        received = hashlib.sha256()
        if chunked:
            count = dechunk_into(receiver, rest, received)
        else:
            count = read_sized(receiver, rest, received)
        sender.join(60)
        assert not sender.is_alive() and sender.error is None
        assert count == TOTAL
        assert received.hexdigest() == sender.digest.hexdigest()
        receiver.close()
        sender.sock.close()
        nothing_registered(service.base)
