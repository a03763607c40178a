"""
Writing relayed bytes to a receiver's socket in the turn they were read.

Twisted's ``FileDescriptor.write`` only queues: it appends to the
transport's buffer, registers the socket for writability (an ``epoll_ctl``),
and sends on the reactor's next turn, after which it unregisters it again
(another ``epoll_ctl``). For a relay that is a wake-up and two system calls
per read, and a receiver sees nothing until everything else done in the
reading turn is over. ``DirectWriter`` does what libuv's ``uv_try_write``
does: when nothing is queued on the transport, it sends straight away, and
hands only what the kernel did not take to the transport's own ``write()``.
Queued bytes keep their order (whatever is queued goes first), and
backpressure is unchanged: whatever is left over sits in the transport's
buffer, which pauses its producer past ``bufferSize`` exactly as before.

This goes below Twisted's public API: it reads ``FileDescriptor``'s buffer
attributes (``dataBuffer``, ``_tempDataLen``, ``connected``,
``disconnecting``, ``_writeDisconnecting``) and calls its ``doWrite()``. It is
done for plain TCP transports only (``tcp.Connection`` without TLS, on an
``AF_INET``/``AF_INET6`` socket); ``twisted_supports_direct_writes()`` checks
at startup that those attributes are still there, and if they are not (or the
transport is anything else: TLS, a UNIX socket, a test's fake) every write
goes through ``transport.write`` as before.
"""

from __future__ import annotations

import socket
from functools import lru_cache
from typing import Any, Protocol

from twisted.internet import abstract, tcp
from twisted.logger import Logger

#: What the transport buffers before it pauses its producer (the relay's
#: valve). Twisted's default is 64 KiB, less than one 512 KiB read: the valve
#: would shut on every read. A receiver's transport gets at least a read's
#: worth, so it shuts only once a receiver is behind by more than a read on
#: top of its kernel buffer; a stalled receiver then holds at most two reads.
MIN_RECEIVER_BUFFER = 64 * 1024

_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_CLASS_ATTRIBUTES = (
    "dataBuffer", "connected", "disconnecting", "_writeDisconnecting",
    "doWrite", "write", "bufferSize",
)
_INSTANCE_ATTRIBUTES = ("_tempDataBuffer", "_tempDataLen")
_log = Logger()


class Writer(Protocol):
    """What the relay writes a read to: a transport, or a ``DirectWriter``."""

    def write(self, data: bytes) -> None: ...


@lru_cache(maxsize=1)
def twisted_supports_direct_writes() -> bool:
    """Whether this Twisted's TCP transports still look the way we rely on."""
    if not all(hasattr(tcp.Connection, name) for name in _CLASS_ATTRIBUTES):
        return False
    probe = abstract.FileDescriptor(reactor=_NoReactor())  # type: ignore[arg-type]
    return all(hasattr(probe, name) for name in _INSTANCE_ATTRIBUTES) and (
        probe.dataBuffer == b"" and probe._tempDataLen == 0)


def check_at_startup() -> bool:
    """Say once, at startup, when receivers' writes will all be queued."""
    supported = twisted_supports_direct_writes()
    if not supported:
        _log.warn("this Twisted's TCP transports are not what hoodypipe.bytepath."
                  "sockets expects: every write to a receiver is queued (slower)")
    return supported


class _NoReactor:
    """Enough of a reactor for FileDescriptor.__init__, which only stores it."""


def direct_writes_possible(transport: object) -> bool:
    """A plain (not TLS) TCP socket transport of a Twisted that passed the check."""
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", True):
        return False
    sock = getattr(transport, "socket", None)
    return (
        isinstance(sock, socket.socket)
        and sock.family in _FAMILIES
        and twisted_supports_direct_writes()
    )


def receiver_writer(transport: Any, buffer_size: int) -> Writer:
    """What a relay should write a receiver's bytes to.

    Also raises the transport's pause threshold to ``buffer_size`` (at least
    ``MIN_RECEIVER_BUFFER``); a transport that cannot be written directly gets
    the threshold all the same, as it still queues a whole read at a time.
    """
    transport.bufferSize = max(buffer_size, MIN_RECEIVER_BUFFER)
    if direct_writes_possible(transport):
        return DirectWriter(transport)
    return transport  # type: ignore[no-any-return]


class DirectWriter:
    """Sends to a TCP transport's socket at once when nothing is queued on it.

    Three cases, checked per write in this order:

    - the transport is closing, or the kernel refused bytes at its last try
      (``dataBuffer`` holds them): queue with ``transport.write``, and the
      reactor sends when the socket is writable, as stock Twisted does;
    - bytes were queued since the last send (a response head written by
      twisted.web in this turn): queue this read behind them and flush the
      lot now with ``doWrite()``, which is what the reactor would do on its
      next turn; the head and the first read then leave in one packet;
    - nothing queued: ``send()`` now; queue only the part not taken.

    A socket error is not handled here: the bytes are queued, and Twisted's
    own ``doWrite`` meets the error on the next turn and ends the connection
    its usual way.
    """

    __slots__ = ("transport", "_send")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._send = transport.socket.send

    def write(self, data: bytes) -> None:
        transport = self.transport
        if (
            transport.dataBuffer
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnecting
        ):
            transport.write(data)
            return
        if transport._tempDataLen:
            transport.write(data)
            transport.doWrite()
            return
        try:
            sent = self._send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            transport.write(data)
            return
        if sent < len(data):
            transport.write(data[sent:] if sent else data)
