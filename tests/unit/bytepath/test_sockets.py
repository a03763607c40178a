"""
DirectWriter on a real ``tcp.Connection`` whose socket is a script.

The fake socket takes what the test allows per ``send`` (all, part, nothing
with EAGAIN, or an error), so every branch of the direct path is driven by
hand; the transport around it is Twisted's own, on a ``MemoryReactor``, so
its buffer, its writer registration and its producer pausing are the real
ones. (Over real sockets the same path is covered by the live backpressure
and transfer tests.)
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from zope.interface import implementer

from hoodypipe.bytepath import sockets
from hoodypipe.bytepath.sockets import (
    MIN_RECEIVER_BUFFER,
    DirectWriter,
    direct_writes_possible,
    receiver_writer,
    twisted_supports_direct_writes,
)


class ScriptedSocket:
    """Takes at most ``allow`` bytes per send; ``None`` takes everything."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.allow: int | None = None
        self.error: OSError | None = None
        self.sent = bytearray()
        self.calls = 0

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def send(self, data: bytes | memoryview) -> int:
        self.calls += 1
        if self.error is not None:
            raise self.error
        take = len(data) if self.allow is None else min(self.allow, len(data))
        if take == 0:
            raise BlockingIOError(errno.EAGAIN, "try again")
        self.sent += bytes(data[:take])
        return take


@implementer(IPushProducer)
class Valve:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        self.resumed += 1

    def stopProducing(self) -> None:
        pass


class Setup:
    def __init__(self) -> None:
        self.reactor = MemoryReactor()
        self.sock = ScriptedSocket()
        self.transport = tcp.Connection(self.sock, Protocol(), self.reactor)  # type: ignore[arg-type]
        self.transport.connected = 1
        self.writer = DirectWriter(self.transport)
        self.valve = Valve()
        self.transport.registerProducer(self.valve, True)

    @property
    def queued(self) -> int:
        t = self.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    @property
    def registered(self) -> bool:
        return self.transport in self.reactor.getWriters()

    def drain(self) -> None:
        """What the reactor does while the socket is writable and something is queued."""
        self.sock.allow = None
        while self.registered:
            assert self.transport.doWrite() is None


@pytest.fixture
def setup() -> Iterator[Setup]:
    yield Setup()


def test_this_twisted_passes_the_startup_check() -> None:
    assert twisted_supports_direct_writes()
    assert sockets.check_at_startup()


def test_nothing_queued_sends_at_once_without_registering(setup: Setup) -> None:
    setup.writer.write(b"a" * 1000)
    setup.writer.write(b"b" * 1000)
    assert bytes(setup.sock.sent) == b"a" * 1000 + b"b" * 1000
    assert setup.sock.calls == 2
    assert setup.queued == 0 and not setup.registered
    assert setup.valve.paused == 0


def test_a_partial_send_queues_the_rest_and_later_writes_go_behind_it(setup: Setup) -> None:
    setup.sock.allow = 300
    setup.writer.write(b"a" * 1000)
    assert bytes(setup.sock.sent) == b"a" * 300
    assert setup.queued == 700 and setup.registered
    setup.transport.doWrite()  # the reactor's turn: 300 more leave
    calls = setup.sock.calls
    setup.writer.write(b"b" * 10)  # something is still queued: no send now
    assert setup.sock.calls == calls
    setup.drain()
    assert bytes(setup.sock.sent) == b"a" * 1000 + b"b" * 10
    assert not setup.registered
    setup.writer.write(b"c")  # all sent again: straight to the socket
    assert bytes(setup.sock.sent).endswith(b"c") and not setup.registered


def test_eagain_queues_everything(setup: Setup) -> None:
    setup.sock.allow = 0
    setup.writer.write(b"x" * 5000)
    assert setup.sock.sent == b"" and setup.queued == 5000 and setup.registered
    setup.drain()
    assert bytes(setup.sock.sent) == b"x" * 5000


def test_a_socket_error_is_left_for_twisted_to_find(setup: Setup) -> None:
    setup.sock.error = ConnectionResetError(errno.ECONNRESET, "reset")
    setup.writer.write(b"x" * 10)
    assert setup.queued == 10 and setup.registered
    assert isinstance(setup.transport.doWrite(), Exception)  # the reactor then drops it


def test_bytes_queued_this_turn_leave_first_and_together(setup: Setup) -> None:
    setup.transport.write(b"HEAD\r\n\r\n")  # a response head, queued by twisted.web
    setup.writer.write(b"body")
    assert bytes(setup.sock.sent) == b"HEAD\r\n\r\nbody"
    assert setup.sock.calls == 1
    assert setup.queued == 0 and not setup.registered


def test_the_valve_shuts_only_past_the_threshold_and_opens_when_drained(setup: Setup) -> None:
    setup.transport.bufferSize = 1000
    setup.sock.allow = 0
    setup.writer.write(b"a" * 1000)  # exactly the threshold queued: still open
    assert setup.valve.paused == 0
    setup.writer.write(b"b")
    assert setup.valve.paused == 1
    setup.drain()
    assert setup.valve.resumed == 1
    assert bytes(setup.sock.sent) == b"a" * 1000 + b"b"


def test_a_remainder_past_the_threshold_shuts_the_valve(setup: Setup) -> None:
    setup.transport.bufferSize = 100
    setup.sock.allow = 50
    setup.writer.write(b"z" * 500)
    assert setup.queued == 450 and setup.valve.paused == 1


def test_closing_transports_are_written_the_stock_way(setup: Setup) -> None:
    setup.transport.loseConnection()
    setup.writer.write(b"late")
    assert setup.sock.calls == 0 and setup.queued == 4


def test_only_plain_tcp_sockets_are_written_directly() -> None:
    assert not direct_writes_possible(StringTransport())
    assert not direct_writes_possible(tcp.Connection(ScriptedSocket(), Protocol(), MemoryReactor()))  # type: ignore[arg-type]
    a, b = socket.socketpair(socket.AF_UNIX)
    try:
        assert not direct_writes_possible(tcp.Connection(a, Protocol(), MemoryReactor()))
    finally:
        a.close()
        b.close()
    with socket.socket() as s:
        plain = tcp.Connection(s, Protocol(), MemoryReactor())
        assert direct_writes_possible(plain)
        plain.TLS = True
        assert not direct_writes_possible(plain)


def test_receiver_writer_raises_the_threshold_and_picks_the_path() -> None:
    fake = StringTransport()
    assert receiver_writer(fake, 512 * 1024) is fake
    assert fake.bufferSize == 512 * 1024  # type: ignore[attr-defined]
    with socket.socket() as s:
        plain = tcp.Connection(s, Protocol(), MemoryReactor())
        writer = receiver_writer(plain, 0)
        assert isinstance(writer, DirectWriter)
        assert plain.bufferSize == MIN_RECEIVER_BUFFER
