"""
``?sha256`` over real sockets: the receipt a sender gets is the SHA-256 of
what it sent (as ``sha256sum`` computes it), for a 200 MB chunked send to one
and to three receivers, and for a sized send; the same digest is in ``done``,
``?status`` and ``hoodypipe watch``; and a hasher slowed on purpose (the
test-only launcher ``tests/kit/slow_hash.py``) holds a fast sender back with
the server's memory bounded, like a slow receiver would.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.kit import slow_hash
from tests.kit.clients import Clients, get_json, nothing_registered, wait_until_waiting
from tests.kit.ops import Spectator
from tests.kit.rawhttp import read_head
from tests.kit.service import REPO, running_service, service_env
from tests.kit.waiting import wait_for

BIG = 200 * 1000 * 1000


@attrs.frozen
class Source:
    path: Path
    sha256: str


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """200 MB of random bytes, and their digest from the system's sha256sum."""
    path = tmp_path_factory.mktemp("sha256") / "source.bin"
    with path.open("wb") as out:
        for _ in range(BIG // (1 << 20)):
            out.write(hashlib.sha256(out.tell().to_bytes(8, "big")).digest() * 32768)
        out.write(b"\x5a" * (BIG % (1 << 20)))
    assert path.stat().st_size == BIG
    done = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                          check=True, timeout=120)
    yield Source(path, done.stdout.split()[0])
    path.unlink()


class HashingReceiver:
    """``curl URL | sha256sum``: a receiver that keeps only the digest."""

    def __init__(self, url: str) -> None:
        self.curl = subprocess.Popen(["curl", "-sS", "--max-time", "120", url],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert self.curl.stdout is not None
        self.sum = subprocess.Popen(["sha256sum"], stdin=self.curl.stdout,
                                    stdout=subprocess.PIPE, text=True)
        self.curl.stdout.close()

    def digest(self, timeout: float = 120) -> str:
        try:
            out, _ = self.sum.communicate(timeout=timeout)
            assert self.curl.wait(10) == 0
            return out.split()[0]
        finally:
            self.stop()

    def stop(self) -> None:
        for process in (self.curl, self.sum):
            if process.poll() is None:
                process.kill()
            process.wait(5)


def receipt(lines: list[str]) -> str:
    """The digest in a sender's status body, checking where the line is."""
    assert lines[-1] == "[INFO] Transfer complete.", lines
    assert lines[-3] == "[INFO] Upload complete.", lines
    prefix = "[INFO] sha256: "
    assert lines[-2].startswith(prefix), lines
    return lines[-2][len(prefix):]


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 3])
def test_a_200_mb_chunked_send_reports_the_sha256_of_its_source(
    tmp_path: Path, clients: Clients, source: Source, n: int
) -> None:
    with running_service(tmp_path) as service:
        name = f"receipt{n}"
        spectator = Spectator(service.url(name, "progress"))
        receivers: list[HashingReceiver] = []
        try:
            wait_for(lambda: spectator.events, 10, "the spectator's first event")
            receivers = [HashingReceiver(service.url(name, f"n={n}")) for _ in range(n)]
            wait_until_waiting(service.base, name)
            sender = clients.send_stream(service.url(name, f"n={n}&sha256"), source.path)
            assert sender.wait() == 0
            assert sender.header("content-type") == "text/plain; charset=utf-8"
            assert receipt(sender.text().splitlines()) == source.sha256
            assert [r.digest() for r in receivers] == [source.sha256] * n
            done = spectator.wait_done(30)
            status = get_json(service.url(name, "status"))
        finally:
            spectator.stop()
            for receiver in receivers:
                receiver.stop()
        assert (done["ok"], done["bytes"], done["sha256"]) == (True, BIG, source.sha256)
        assert status["sha256"] == source.sha256  # while it lingers
        assert status["lastTransfer"]["sha256"] == source.sha256
        nothing_registered(service.base)


def test_a_sized_send_and_the_watch_client_agree_on_the_receipt(
    tmp_path: Path, clients: Clients
) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 40_000)
    expected = hashlib.sha256(payload.read_bytes()).hexdigest()
    with running_service(tmp_path) as service:
        url = f"{service.base}/api/v1/pipe/sized"
        watch = subprocess.Popen(
            [sys.executable, "-m", "hoodypipe.client.cli", "watch", url,
             "--expect-sha256", expected],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=service_env(), cwd=REPO)
        try:
            wait_for(lambda: get_json(service.url("sized", "status"))["state"] == "idle"
                     and watch.poll() is None, 10, "the watcher")
            receiver = HashingReceiver(service.url("sized"))
            sender = clients.send_file(service.url("sized", "sha256=yes"), payload)
            assert sender.wait() == 0
            assert receipt(sender.text().splitlines()) == expected
            assert receiver.digest() == expected
            out, err = watch.communicate(timeout=30)
        finally:
            if watch.poll() is None:
                watch.kill()
            watch.wait(5)
    assert watch.returncode == 0, err
    assert out.splitlines()[-1] == f"sha256: {expected}"


# -- a hasher that falls behind ------------------------------------------------

HASH_RATE = 16e6  # bytes per second: the slowed worker
SLOW_TOTAL = 64 * 1024 * 1024
BOUND = 16 * 1024 * 1024


class FastSender(threading.Thread):
    """A sized PUT written as fast as the socket takes it; counts what it sent."""

    def __init__(self, port: int, path: str, total: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.path, self.total = path, total
        self.sent = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sock.sendall(b"PUT %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                              % (self.path.encode(), self.total))
            block = bytes(range(256)) * 1024
            while self.sent < self.total:
                piece = block[: self.total - self.sent]
                self.digest.update(piece)
                self.sock.sendall(piece)
                self.sent += len(piece)
        except BaseException as e:  # reported by the test
            self.error = e

    def status_lines(self) -> list[str]:
        """The sender's whole (chunked) status body, as lines."""
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        body, pos = b"", data.index(b"\r\n\r\n") + 4
        while True:
            eol = data.index(b"\r\n", pos)
            size = int(data[pos:eol], 16)
            if size == 0:
                return body.decode().splitlines()
            body += data[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2


def read_all(sock: socket.socket, rest: bytes, total: int, digest: hashlib._Hash) -> None:
    """A receiver that reads as fast as it can (a Content-Length body)."""
    digest.update(rest)
    count = len(rest)
    while count < total:
        chunk = sock.recv(1 << 20)
        assert chunk, "body ended early"
        digest.update(chunk)
        count += len(chunk)


def test_a_slow_hasher_holds_the_sender_back_and_bounds_memory(tmp_path: Path) -> None:
    launcher = slow_hash.launcher(HASH_RATE)
    with running_service(tmp_path, launcher=launcher) as service:
        receiver = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        receiver.sendall(b"GET /slowhash HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until_waiting(service.base, "slowhash")
        rss_before = service.rss_bytes()
        sender = FastSender(service.port, "/slowhash?sha256", SLOW_TOTAL)
        started = time.monotonic()
        sender.start()
        head, rest = read_head(receiver)
        assert head.startswith(b"HTTP/1.1 200")
        got = hashlib.sha256()
        peak = 0
        reader = threading.Thread(target=read_all, args=(receiver, rest, SLOW_TOTAL, got),
                                  daemon=True)
        reader.start()
        # Sample while it runs: the receiver reads at once, so only the hasher
        # can be what holds the sender to its pace.
        behind: list[float] = []
        while sender.is_alive() and time.monotonic() - started < 60:
            peak = max(peak, service.rss_bytes() - rss_before)
            elapsed = time.monotonic() - started
            behind.append(sender.sent - HASH_RATE * elapsed)
            time.sleep(0.05)
        sender.join(60)
        reader.join(60)
        took = time.monotonic() - started
        lines = sender.status_lines()
        receiver.close()
        sender.sock.close()
    assert sender.error is None and not sender.is_alive()
    assert took >= 0.7 * SLOW_TOTAL / HASH_RATE, f"the sender was not held back ({took:.1f}s)"
    assert max(behind) < BOUND, f"the sender got {max(behind) / 1e6:.1f} MB ahead of the hasher"
    assert peak < BOUND, f"server grew by {peak / 1e6:.1f} MB behind a slow hasher"
    assert got.hexdigest() == sender.digest.hexdigest()
    assert receipt(lines) == sender.digest.hexdigest()
