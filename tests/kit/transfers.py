"""
Whole transfers driven from a test, with real processes against a real
hoodypipe: a complete curl transfer, a sender that vanishes mid-stream, and
a paced chunked sender.

They block: from a ``pytest_twisted`` test run them in a thread
(``deferToThread``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.kit.clients import Clients
from tests.kit.service import Service

#: Writes ``total`` bytes to stdout in 100 kB pieces spread over ``seconds``.
PACER = (
    "import sys, time\n"
    "total, seconds = int(sys.argv[1]), float(sys.argv[2])\n"
    "piece = 100_000\n"
    "pieces = max(1, total // piece)\n"
    "start = time.monotonic()\n"
    "out = sys.stdout.buffer\n"
    "try:\n"
    "    for i in range(pieces):\n"
    "        size = piece if i < pieces - 1 else total - piece * (pieces - 1)\n"
    "        out.write(b'x' * size)\n"
    "        out.flush()\n"
    "        delay = start + seconds * (i + 1) / pieces - time.monotonic()\n"
    "        if delay > 0:\n"
    "            time.sleep(delay)\n"
    "except BrokenPipeError:\n"
    "    pass\n"
)


def send_file(service: Service, name: str, payload: Path) -> float:
    """One complete transfer (curl sender and receiver); the sender's wall time."""
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "60", "-o", "/dev/null", service.url(name)]
    )
    try:
        started = time.monotonic()
        sender = subprocess.run(
            ["curl", "-sS", "--max-time", "60", "--data-binary", f"@{payload}",
             "-H", "Content-Type: application/octet-stream", service.url(name)],
            capture_output=True, text=True, timeout=70,
        )
        took = time.monotonic() - started
        assert "[INFO] Transfer complete." in sender.stdout, sender.stdout
        assert receiver.wait(70) == 0
        return took
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)


def send_then_vanish(service: Service, name: str) -> None:
    """A sender that announces 10 MB, sends 64 KiB and disconnects mid-stream."""
    receiver = subprocess.Popen(
        ["curl", "-sS", "--max-time", "30", "-o", "/dev/null", service.url(name)],
        stderr=subprocess.DEVNULL,
    )
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
            s.sendall(
                f"POST /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Length: 10000000\r\n\r\n".encode()
            )
            s.sendall(b"x" * 65536)
            deadline = time.monotonic() + 10
            seen = b""
            while b"Streaming" not in seen and time.monotonic() < deadline:
                seen += s.recv(4096)
        receiver.wait(30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)


class Paced:
    """A chunked send (``curl -T -``) fed at a steady pace by a Python writer."""

    def __init__(
        self, clients: Clients, url: str, total: int, seconds: float
    ) -> None:
        self.writer = subprocess.Popen(
            [sys.executable, "-c", PACER, str(total), str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert self.writer.stdout is not None
        self.curl = clients.curl("-T", "-", url, stdin=self.writer.stdout)
        self.writer.stdout.close()

    def kill(self) -> None:
        """The sender vanishes mid-stream (curl first: without its writer it
        would end the chunked body cleanly)."""
        for process in (self.curl.process, self.writer):
            if process.poll() is None:
                process.kill()
            process.wait(5)

    def wait(self) -> int:
        try:
            self.writer.wait(60)
        finally:
            if self.writer.poll() is None:
                self.writer.kill()
        return self.curl.wait(60)
