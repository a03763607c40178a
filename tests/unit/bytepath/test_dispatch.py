"""
The reactor's per-event dispatch without the legacy log context
(``bytepath.dispatch``): real sockets under a real epoll reactor that is
never installed or run, driven one ``doIteration`` at a time.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import abstract, epollreactor
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python import log

from hoodypipe.bytepath import dispatch

WAIT_S = 5.0  # a bound: doIteration returns as soon as a socket is ready


@pytest.fixture
def reactor() -> Iterator[epollreactor.EPollReactor]:
    made = epollreactor.EPollReactor()
    yield made
    made.removeAll()
    if made.waker is not None:
        made.waker.connectionLost(None)
    made._poller.close()


@pytest.fixture
def wrapped(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every selectable Twisted's ``log.callWithLogger`` is asked to wrap."""
    seen: list[object] = []
    original = log.callWithLogger

    def counting(logger: Any, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        seen.append(logger)
        return original(logger, func, *args, **kw)

    monkeypatch.setattr(log, "callWithLogger", counting)
    return seen


@pytest.fixture
def logged() -> Iterator[list[LogEvent]]:
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)  # type: ignore[arg-type]
    yield events
    globalLogPublisher.removeObserver(events.append)  # type: ignore[arg-type]


class Reader(abstract.FileDescriptor):
    """A socket the reactor reads for us; records each read."""

    def __init__(self, reactor: Any, sock: socket.socket, prefix: str) -> None:
        super().__init__(reactor=reactor)
        self.sock = sock
        self.prefix = prefix
        self.reads: list[bytes] = []
        self.on_read: Callable[[], None] | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return self.prefix

    def doRead(self) -> None:
        self.reads.append(self.sock.recv(4096))
        if self.on_read is not None:
            self.on_read()


@pytest.fixture
def readers(reactor: epollreactor.EPollReactor) -> Iterator[list[tuple[Reader, socket.socket]]]:
    """Two readers on loopback pairs, with their peers (what a client writes to)."""
    made = []
    for prefix in ("first", "second"):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        reader = Reader(reactor, ours, prefix)
        reactor.addReader(reader)
        made.append((reader, theirs))
    yield made
    for reader, theirs in made:
        reactor.removeReader(reader)
        reader.sock.close()
        theirs.close()


def test_a_ready_socket_is_read_without_the_log_context(
    reactor: epollreactor.EPollReactor, readers: list[tuple[Reader, socket.socket]],
    wrapped: list[object],
) -> None:
    assert dispatch.use_lean_dispatch(reactor)
    (reader, peer), _ = readers
    peer.sendall(b"hello")
    reactor.doIteration(WAIT_S)
    assert reader.reads == [b"hello"]
    assert wrapped == []


def test_twisteds_own_dispatch_wraps_every_event(
    reactor: epollreactor.EPollReactor, readers: list[tuple[Reader, socket.socket]],
    wrapped: list[object],
) -> None:
    """What the lean dispatch saves: the same read, through the stock loop."""
    (reader, peer), _ = readers
    peer.sendall(b"hello")
    reactor.doIteration(WAIT_S)
    assert reader.reads == [b"hello"]
    assert wrapped == [reader]


def test_an_exception_escaping_one_event_is_logged_with_its_prefix_and_the_next_runs(
    reactor: epollreactor.EPollReactor, readers: list[tuple[Reader, socket.socket]],
    logged: list[LogEvent], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert dispatch.use_lean_dispatch(reactor)
    (first, first_peer), (second, second_peer) = readers
    stock = reactor._doReadOrWrite

    def failing_first(selectable: Any, fd: int, event: int) -> None:
        if selectable is first:
            raise ZeroDivisionError("a bug below the reactor")
        stock(selectable, fd, event)

    monkeypatch.setattr(reactor, "_doReadOrWrite", failing_first)
    first_peer.sendall(b"one")
    second_peer.sendall(b"two")
    reactor.doIteration(WAIT_S)
    assert second.reads == [b"two"]
    failures = [e for e in logged if e.get("isError")]  # legacy log.err's event
    assert len(failures) == 1
    assert failures[0]["failure"].check(ZeroDivisionError)
    assert failures[0].get("log_system") == "first"


class RecordingPoller:
    """The reactor's epoll object, keeping what each poll returned."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.returned: list[list[tuple[int, int]]] = []

    def poll(self, timeout: float, most: int) -> list[tuple[int, int]]:
        events: list[tuple[int, int]] = self.real.poll(timeout, most)
        self.returned.append(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_socket_removed_by_an_earlier_event_of_the_same_poll_is_skipped(
    reactor: epollreactor.EPollReactor, readers: list[tuple[Reader, socket.socket]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert dispatch.use_lean_dispatch(reactor)
    (first, first_peer), (second, second_peer) = readers
    first.on_read = lambda: reactor.removeReader(second)
    second.on_read = lambda: reactor.removeReader(first)
    first_peer.sendall(b"one")
    second_peer.sendall(b"two")
    poller = RecordingPoller(reactor._poller)
    monkeypatch.setattr(reactor, "_poller", poller)
    reactor.doIteration(WAIT_S)
    monkeypatch.setattr(reactor, "_poller", poller.real)
    # Both were ready in this one poll; whichever it listed first removed the
    # other before its turn came.
    assert {fd for fd, _ in poller.returned[0]} >= {first.fileno(), second.fileno()}
    assert len(first.reads) + len(second.reads) == 1


def test_an_interrupted_poll_returns_and_any_other_error_is_raised(
    reactor: epollreactor.EPollReactor, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert dispatch.use_lean_dispatch(reactor)

    class Failing:
        def __init__(self, code: int) -> None:
            self.code = code

        def poll(self, timeout: float, most: int) -> list[tuple[int, int]]:
            raise OSError(self.code, "from the test")

        def close(self) -> None:
            pass

    real = reactor._poller
    monkeypatch.setattr(reactor, "_poller", Failing(errno.EINTR))
    reactor.doIteration(WAIT_S)  # returns: the reactor loops again
    monkeypatch.setattr(reactor, "_poller", Failing(errno.EBADF))
    with pytest.raises(OSError):
        reactor.doIteration(WAIT_S)
    monkeypatch.setattr(reactor, "_poller", real)


def test_only_a_stock_epoll_reactor_is_changed(
    reactor: epollreactor.EPollReactor, logged: list[LogEvent],
) -> None:
    assert not dispatch.use_lean_dispatch(MemoryReactorClock())

    class OwnLoop(epollreactor.EPollReactor):
        def doPoll(self, timeout: float | None) -> None:
            pass

        doIteration = doPoll

    own = OwnLoop()
    try:
        assert not dispatch.use_lean_dispatch(own)
        assert "doIteration" not in vars(own)
        assert any("dispatch" in str(e.get("log_format")) for e in logged)
    finally:
        own.removeAll()
        own.waker.connectionLost(None)
        own._poller.close()

    assert dispatch.use_lean_dispatch(reactor)
    assert dispatch.use_lean_dispatch(reactor)  # twice is once
    assert reactor.doIteration.__func__ is dispatch.lean_poll  # type: ignore[attr-defined]
