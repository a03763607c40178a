"""The graceful drain, driven by a Clock against a fake registry."""

from __future__ import annotations

import socket
from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs

from hoodypipe.ops.drain import SHUTTING_DOWN, DrainService, second_signal_cuts_drain
from hoodypipe.ops.sdnotify import SystemdNotifier


class FakeRegistry:
    def __init__(self, active: int = 0, waiting: int = 0) -> None:
        self.active = active
        self.waiting = waiting
        self.draining = False
        self.failed_with: list[str] = []

    def start_draining(self) -> None:
        self.draining = True

    def active_count(self) -> int:
        return self.active

    def waiting_count(self) -> int:
        return self.waiting

    def fail_all(self, reason: str) -> None:
        self.failed_with.append(reason)
        self.active = self.waiting = 0


class Child(Service):
    """Stands in for the listeners: records when it is stopped."""

    stopped_at: float | None = None

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def stopService(self) -> None:
        super().stopService()
        self.stopped_at = self.clock.seconds()


def started(
    registry: FakeRegistry, grace: float = 10.0, notifier: SystemdNotifier | None = None
) -> tuple[DrainService, Child, Clock]:
    clock = Clock()
    root = DrainService(registry, clock, grace, notifier, poll_interval=0.25,
                        flush_delay=1.0)
    child = Child(clock)
    child.setServiceParent(root)
    root.startService()
    return root, child, clock


def fired(d: Deferred[None]) -> bool:
    return d.called


def test_nothing_open_stops_at_once() -> None:
    registry = FakeRegistry()
    root, child, clock = started(registry)
    d = root.stopService()
    assert fired(d)
    assert registry.draining
    assert child.stopped_at == 0
    assert registry.failed_with == []


def test_waits_for_running_transfers_then_flushes_then_stops_children() -> None:
    registry = FakeRegistry(active=2, waiting=1)
    root, child, clock = started(registry)
    d = root.stopService()
    assert registry.draining
    clock.advance(3)
    assert not fired(d)
    assert child.running, "listeners stay open while draining"
    registry.waiting = 0
    registry.active = 1
    clock.advance(1)
    assert not fired(d)
    registry.active = 0
    clock.advance(0.25)
    assert not fired(d), "the last bytes get flush_delay to reach clients"
    assert child.running
    clock.advance(1.0)
    assert fired(d)
    assert not child.running
    assert child.stopped_at is not None and 4.25 <= child.stopped_at <= 5.5
    assert registry.failed_with == []


def test_grace_over_fails_everything_left() -> None:
    registry = FakeRegistry(active=1)
    root, child, clock = started(registry, grace=5.0)
    with capturedLogs() as events:
        d = root.stopService()
        clock.pump([0.25] * 19)
        assert not fired(d)
        assert registry.failed_with == []
        clock.pump([0.25] * 2)
        assert registry.failed_with == [SHUTTING_DOWN]
        assert not fired(d)
        clock.advance(1.0)
        assert fired(d)
    assert not child.running
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert len(warnings) == 1 and warnings[0]["left"] == 1


def test_second_stop_returns_the_same_drain() -> None:
    registry = FakeRegistry(active=1)
    root, _, clock = started(registry)
    first = root.stopService()
    assert root.stopService() is first
    registry.active = 0
    clock.pump([0.25] * 6)
    assert fired(first)


def test_stopping_is_announced_to_systemd(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        registry = FakeRegistry(active=2)
        root, _, clock = started(registry, notifier=SystemdNotifier(path))
        root.stopService()
        assert sock.recv(4096) == b"STOPPING=1\nSTATUS=Draining 2 pipe(s)"
        assert sock.recv(4096) == b"STATUS=Draining 2 pipe(s)"
        registry.active = 1
        clock.advance(0.25)
        assert sock.recv(4096) == b"STATUS=Draining 1 pipe(s)"
        clock.advance(0.25)
        sock.settimeout(0.05)
        try:
            extra = sock.recv(4096)
        except TimeoutError:
            extra = b""
        assert extra == b"", "status is sent only when the count changes"


def test_cut_short_fails_what_is_left_now_instead_of_at_the_grace() -> None:
    registry = FakeRegistry(active=1, waiting=1)
    root, child, clock = started(registry, grace=60.0)
    with capturedLogs() as events:
        d = root.stopService()
        clock.advance(2.0)
        assert registry.failed_with == []
        root.cut_short()
        assert registry.failed_with == [SHUTTING_DOWN]
        assert not fired(d), "the last bytes still get flush_delay"
        clock.advance(1.0)
        assert fired(d)
    assert not child.running
    warned = [e for e in events if e["log_level"] == LogLevel.warn]
    assert [e["log_format"] for e in warned] == ["second stop signal: failing {left} pipe(s) now"]
    assert warned[0]["left"] == 2


def test_cut_short_before_the_drain_began_starts_it_with_no_grace() -> None:
    registry = FakeRegistry(active=1)
    root, _, clock = started(registry, grace=60.0)
    root.cut_short()
    assert registry.failed_with == [] and not registry.draining
    d = root.stopService()
    assert registry.failed_with == [SHUTTING_DOWN]
    clock.advance(1.0)
    assert fired(d)


def test_cut_short_while_finishing_changes_nothing() -> None:
    registry = FakeRegistry(active=1)
    root, _, clock = started(registry)
    d = root.stopService()
    registry.active = 0
    clock.advance(0.25)  # drained: the flush delay is running
    with capturedLogs() as events:
        root.cut_short()
        root.cut_short()
    assert registry.failed_with == []
    assert [e["log_format"] for e in events] == ["second stop signal: already stopping"] * 2
    clock.advance(1.0)
    assert fired(d)


class SignalledReactor:
    """The reactor's part in signal handling: its handlers and callFromThread."""

    def __init__(self) -> None:
        self.twisted_handled: list[int] = []
        self.from_thread: list[object] = []

    def sigTerm(self, number: int, frame: object = None) -> None:
        self.twisted_handled.append(number)

    def sigInt(self, number: int, frame: object = None) -> None:
        self.twisted_handled.append(number)

    def callFromThread(self, f: object, *args: object) -> None:
        self.from_thread.append(f)


def test_the_first_signal_is_twisteds_and_every_later_one_cuts_the_drain_short() -> None:
    reactor = SignalledReactor()
    root, _, _ = started(FakeRegistry(active=1))
    second_signal_cuts_drain(reactor, root)
    reactor.sigTerm(15)
    assert reactor.twisted_handled == [15] and reactor.from_thread == []
    reactor.sigInt(2)
    reactor.sigTerm(15)
    assert reactor.twisted_handled == [15]
    assert reactor.from_thread == [root.cut_short, root.cut_short]


def test_a_signal_after_a_stop_that_was_not_a_signal_cuts_the_drain_short() -> None:
    reactor = SignalledReactor()
    root, _, _ = started(FakeRegistry(active=1))
    second_signal_cuts_drain(reactor, root)
    root.stopService()  # e.g. reactor.stop() from code
    reactor.sigInt(2)
    assert reactor.twisted_handled == []
    assert reactor.from_thread == [root.cut_short]
