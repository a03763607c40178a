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
    def __init__(self, port: int, chunked: bool, path: bytes = b"/bp") -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.chunked = chunked
        self.path = path
        self.sent = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.chunked:
                head = b"PUT %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" % (
                    self.path)
            else:
                head = b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (
                    self.path, TOTAL)
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


class Reader(threading.Thread):
    """A receiver that reads its chunked response as fast as it comes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.digest = hashlib.sha256()
        self.count = -1
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            head, rest = read_head(self.sock)
            assert head.startswith(b"HTTP/1.1 200")
            self.count = dechunk_into(self.sock, rest, self.digest)
        except BaseException as e:  # reported by the test
            self.error = e


def test_one_stalled_receiver_of_two_holds_the_sender_and_the_other_still_gets_it_all(
    tmp_path: Path,
) -> None:
    """The valve of the stalled one shuts (direct writes queue what the kernel
    refuses, and the queue pauses the sender); the reading one is not cut off,
    and once the stalled one reads again both get the same bytes."""
    with running_service(tmp_path) as service:
        stalled = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        stalled.sendall(b"GET /bp?n=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        reading = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        reading.sendall(b"GET /bp?n=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until_waiting(service.base, "bp")
        reader = Reader(reading)
        reader.start()
        rss_before = service.rss_bytes()
        sender = Sender(service.port, chunked=True, path=b"/bp?n=2")
        sender.start()
        head, rest = read_head(stalled)
        assert head.startswith(b"HTTP/1.1 200")
        wait_for_stall(sender)
        growth = service.rss_bytes() - rss_before
        assert sender.error is None and reader.error is None
        assert sender.sent < TOTAL, "everything went through: nothing was held back"
        assert growth < BOUND, f"server grew by {growth / 1e6:.1f} MB while stalled"

        received = hashlib.sha256()
        count = dechunk_into(stalled, rest, received)
        sender.join(60)
        reader.join(60)
        assert not sender.is_alive() and sender.error is None
        assert not reader.is_alive() and reader.error is None
        assert count == reader.count == TOTAL
        assert received.hexdigest() == reader.digest.hexdigest() == sender.digest.hexdigest()
        for sock in (stalled, reading, sender.sock):
            sock.close()
        nothing_registered(service.base)
