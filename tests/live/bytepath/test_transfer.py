"""End-to-end transfers over loopback with real curl as sender and receivers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.kit.clients import (
    Clients,
    nothing_registered,
    sha256_file,
    wait_until_waiting,
)
from tests.kit.service import Service
from tests.kit.waiting import wait_for

SENDER_LINES_RECEIVER_FIRST = [
    "[INFO] Waiting for 1 receiver(s) to connect...",
    "[INFO] 1 receiver(s) already connected.",
    "[INFO] Streaming to 1 receiver(s)...",
    "[INFO] Upload complete.",
    "[INFO] Transfer complete.",
]




@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """110 MB of incompressible bytes."""
    path = tmp_path_factory.mktemp("data") / "big.bin"
    with path.open("wb") as f:
        block = os.urandom(1 << 20)
        for i in range(110):
            f.write(block[i:] + block[:i])
    return path


def small_file(tmp_path: Path, size: int = 200_000, name: str = "small.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def assert_reusable(service: Service, clients: Clients, tmp_path: Path, name: str) -> None:
    """Nothing stays registered, and the same name carries a new transfer."""
    nothing_registered(service.base)
    data = small_file(tmp_path, 1000, "again.bin")
    receiver = clients.receive(service.url(name))
    sender = clients.send_file(service.url(name), data)
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.out.read_bytes() == data.read_bytes()
    nothing_registered(service.base)


def test_receiver_first(service: Service, clients: Clients, tmp_path: Path) -> None:
    data = small_file(tmp_path)
    receiver = clients.receive(service.url("first/receiver"))
    wait_until_waiting(service.base, "first/receiver")
    sender = clients.send_file(service.url("first/receiver"), data)
    assert sender.wait() == 0
    assert receiver.wait() == 0
    assert receiver.out.read_bytes() == data.read_bytes()
    assert sender.text().splitlines() == SENDER_LINES_RECEIVER_FIRST
    assert receiver.status() == 200
    assert_reusable(service, clients, tmp_path, "first/receiver")


def test_sender_first(service: Service, clients: Clients, tmp_path: Path) -> None:
    data = small_file(tmp_path)
    sender = clients.send_stream(service.url("api-first", ""), data)
    wait_until_waiting(service.base, "api-first")
    wait_for(lambda: "Waiting for 1" in sender.text(), 10, "the sender's waiting line")
    receiver = clients.receive(f"{service.base}/api/v1/pipe/api-first")
    assert receiver.wait() == 0 and sender.wait() == 0
    assert receiver.out.read_bytes() == data.read_bytes()
    assert sender.text().splitlines() == [
        "[INFO] Waiting for 1 receiver(s) to connect...",
        "[INFO] A receiver connected.",
        "[INFO] Streaming to 1 receiver(s)...",
        "[INFO] Upload complete.",
        "[INFO] Transfer complete.",
    ]
    assert_reusable(service, clients, tmp_path, "api-first")


@pytest.mark.parametrize("how", ["chunked", "sized"])
def test_large_transfer_is_byte_exact(
    service: Service, clients: Clients, tmp_path: Path, big_file: Path, how: str
) -> None:
    receiver = clients.receive(service.url(f"big-{how}"))
    wait_until_waiting(service.base, f"big-{how}")
    if how == "chunked":
        sender = clients.send_stream(service.url(f"big-{how}"), big_file)
    else:
        sender = clients.send_file(service.url(f"big-{how}"), big_file)
    assert sender.wait() == 0 and receiver.wait() == 0
    assert sha256_file(receiver.out) == sha256_file(big_file)
    if how == "sized":
        assert receiver.header("Content-Length") == str(big_file.stat().st_size)
        assert receiver.header("Transfer-Encoding") is None
    else:
        assert receiver.header("Transfer-Encoding") == "chunked"
    assert sender.text().splitlines()[-1] == "[INFO] Transfer complete."
    nothing_registered(service.base)


def test_three_receivers_get_identical_copies(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    data = small_file(tmp_path, 3_000_000)
    receivers = [clients.receive(service.url("fan", "n=3")) for _ in range(3)]
    wait_until_waiting(service.base, "fan")
    sender = clients.send_stream(service.url("fan", "n=3"), data)
    assert sender.wait() == 0
    for receiver in receivers:
        assert receiver.wait() == 0
        assert receiver.out.read_bytes() == data.read_bytes()
    assert "[INFO] Streaming to 3 receiver(s)..." in sender.text()
    assert sender.text().splitlines()[-1] == "[INFO] Transfer complete."
    assert_reusable(service, clients, tmp_path, "fan")


def test_headers_are_forwarded_and_sanitised(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    data = small_file(tmp_path, 1234)
    receiver = clients.receive(service.url("hdr"))
    wait_until_waiting(service.base, "hdr")
    sender = clients.send_file(
        service.url("hdr"), data,
        "-H", "Content-Type: text/html; charset=utf-8",
        "-H", 'Content-Disposition: attachment; filename="a.html"',
        "-H", "X-Piping: legacy-meta=true",
        "-H", "X-Hoody-Pipe: build-id=42; commit=abc1234",
        "-H", "X-Other: not-forwarded",
    )
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.header("Content-Type") == "text/plain; charset=utf-8"
    assert receiver.header("Content-Length") == "1234"
    assert receiver.header("Content-Disposition") == 'attachment; filename="a.html"'
    assert receiver.header("X-Piping") == "legacy-meta=true"
    assert receiver.header("X-Hoody-Pipe") == "build-id=42; commit=abc1234"
    assert receiver.header("X-Other") is None
    assert receiver.header("X-Content-Type-Options") == "nosniff"
    assert receiver.header("X-Robots-Tag") == "none"
    assert receiver.header("Access-Control-Allow-Origin") == "*"
    exposed = receiver.header("Access-Control-Expose-Headers") or ""
    assert {h.strip() for h in exposed.split(",")} >= {"X-Piping", "X-Hoody-Pipe"}


@pytest.mark.parametrize("content_type, expected", [
    ("image/svg+xml", "text/plain"),
    ("application/javascript", "text/plain"),
    ("text/xml; charset=iso-8859-1", "text/plain; charset=iso-8859-1"),
    ("application/json", "application/json"),
])
def test_content_type_sanitising(
    service: Service, clients: Clients, tmp_path: Path,
    content_type: str, expected: str,
) -> None:
    data = small_file(tmp_path, 10)
    receiver = clients.receive(service.url("ctype"))
    wait_until_waiting(service.base, "ctype")
    sender = clients.curl("--data-binary", f"@{data}", "-H", f"Content-Type: {content_type}",
                          service.url("ctype"))
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.header("Content-Type") == expected


def test_no_content_type_defaults_to_octet_stream(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    data = small_file(tmp_path, 10)
    receiver = clients.receive(service.url("notype"))
    wait_until_waiting(service.base, "notype")
    sender = clients.send_file(service.url("notype"), data, "-H", "Content-Type:")
    assert sender.wait() == 0 and receiver.wait() == 0
    assert receiver.header("Content-Type") == "application/octet-stream"


def test_sender_killed_midstream_fails_every_receiver(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    receivers = [clients.receive(service.url("cut", "n=2")) for _ in range(2)]
    wait_until_waiting(service.base, "cut")
    feeder = subprocess.Popen(
        ["python3", "-c",
         "import sys,time\n"
         "for _ in range(1000):\n"
         "    sys.stdout.buffer.write(b'x'*65536); sys.stdout.flush(); time.sleep(0.01)"],
        stdout=subprocess.PIPE)
    try:
        assert feeder.stdout is not None
        sender = clients.curl("-T", "-", service.url("cut", "n=2"), stdin=feeder.stdout)
        wait_for(lambda: all(r.out.exists() and r.out.stat().st_size > 500_000
                             for r in receivers), 30, "bytes at both receivers")
        sender.kill()
    finally:
        feeder.kill()
        feeder.wait(5)
    for receiver in receivers:
        assert receiver.wait() != 0
    assert_reusable(service, clients, tmp_path, "cut")


def test_receiver_killed_midstream(service: Service, clients: Clients, tmp_path: Path) -> None:
    data = small_file(tmp_path, 30_000_000)
    slow = clients.receive(service.url("drop", "n=2"), "--limit-rate", "2M")
    keeper = clients.receive(service.url("drop", "n=2"), "--limit-rate", "4M")
    wait_until_waiting(service.base, "drop")
    sender = clients.send_stream(service.url("drop", "n=2"), data)
    wait_for(lambda: slow.out.exists() and slow.out.stat().st_size > 1_000_000, 30,
             "bytes at the slow receiver")
    slow.kill()
    wait_for(lambda: "A receiver disconnected." in sender.text(), 20,
             "the sender to hear of it")
    assert keeper.wait() == 0 and sender.wait() == 0
    assert keeper.out.read_bytes() == data.read_bytes()
    lines = sender.text().splitlines()
    assert "[INFO] A receiver disconnected." in lines
    assert lines[-1] == "[INFO] Transfer complete."
    assert_reusable(service, clients, tmp_path, "drop")


def test_last_receiver_killed_fails_the_transfer(
    service: Service, clients: Clients, tmp_path: Path
) -> None:
    data = small_file(tmp_path, 30_000_000)
    receiver = clients.receive(service.url("lastdrop"), "--limit-rate", "2M")
    wait_until_waiting(service.base, "lastdrop")
    sender = clients.send_stream(service.url("lastdrop"), data)
    wait_for(lambda: receiver.out.exists() and receiver.out.stat().st_size > 1_000_000,
             30, "bytes at the receiver")
    receiver.kill()
    sender.wait()
    lines = sender.text().splitlines()
    assert lines[-2:] == [
        "[INFO] A receiver disconnected.",
        "[ERROR] All receivers disconnected before transfer completed.",
    ]
    assert "[INFO] Transfer complete." not in lines
    assert_reusable(service, clients, tmp_path, "lastdrop")


def test_receiver_wait_runs_out_with_408(service: Service, clients: Clients,
                                         tmp_path: Path) -> None:
    receiver = clients.receive(service.url("lonely", "wait=1"))
    assert receiver.wait(10) == 0
    assert receiver.status() == 408
    assert receiver.text() == "[ERROR] Timed out waiting for sender.\n"
    assert_reusable(service, clients, tmp_path, "lonely")


def test_sender_wait_runs_out(service: Service, clients: Clients, tmp_path: Path) -> None:
    data = small_file(tmp_path, 100_000)
    sender = clients.send_stream(service.url("alone", "wait=1"), data)
    assert sender.wait(15) == 0
    assert sender.text().splitlines()[-1] == "[ERROR] Timed out waiting for receivers."
    assert_reusable(service, clients, tmp_path, "alone")


def test_sixty_simultaneous_pairs(service: Service, clients: Clients, tmp_path: Path) -> None:
    pairs = []
    for i in range(60):
        data = small_file(tmp_path, 300_000 + i, f"pair{i}.bin")
        receiver = clients.receive(service.url(f"pair/{i}"))
        pairs.append((data, receiver))
    wait_until_waiting(service.base, "pair", 60)
    senders = [clients.send_stream(service.url(f"pair/{i}"), data)
               for i, (data, _) in enumerate(pairs)]
    for sender in senders:
        assert sender.wait() == 0
        assert sender.text().splitlines()[-1] == "[INFO] Transfer complete."
    for data, receiver in pairs:
        assert receiver.wait() == 0
        assert receiver.out.read_bytes() == data.read_bytes()
    nothing_registered(service.base)
