"""The systemd notification client, against a real datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.application.service import MultiService
from twisted.logger import LogLevel, capturedLogs

from hoodypipe.ops.sdnotify import ReadyService, SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield path, sock
    finally:
        sock.close()


def test_ready_and_stopping_reach_the_socket(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    notifier = SystemdNotifier(path)
    assert notifier.enabled
    assert notifier.ready()
    assert sock.recv(4096) == b"READY=1\nSTATUS=Serving"
    assert notifier.stopping("Draining 3 pipe(s)")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=Draining 3 pipe(s)"
    assert notifier.status("x")
    assert sock.recv(4096) == b"STATUS=x"


def test_abstract_namespace_address() -> None:
    name = f"hoodypipe-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert SystemdNotifier("@" + name).ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_from_environment() -> None:
    assert SystemdNotifier.from_environment({"NOTIFY_SOCKET": "/run/x"}).address == (
        "/run/x"
    )
    assert not SystemdNotifier.from_environment({}).enabled
    assert not SystemdNotifier.from_environment({"NOTIFY_SOCKET": ""}).enabled


def test_without_systemd_nothing_is_sent() -> None:
    with capturedLogs() as events:
        assert not SystemdNotifier(None).ready()
    assert list(events) == []


def test_unreachable_socket_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens"))
    with capturedLogs() as events:
        assert not notifier.stopping()
    assert [e["log_level"] for e in events] == [LogLevel.warn]
    assert events[0]["address"] == notifier.address


def test_ready_service_notifies_when_started(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    root = MultiService()
    ReadyService(SystemdNotifier(path)).setServiceParent(root)
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.recv(4096)
    root.startService()
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"READY=1\n")
