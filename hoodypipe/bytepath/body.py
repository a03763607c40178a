"""
The body of a send, from the sender's socket to one consumer.

A body is in exactly one mode at a time, and every change of mode happens in
``RequestBody._enter``:

- ``HOLDING``: no consumer yet. Reads are kept; past ``HOLD_LIMIT`` the
  socket is paused and a cheap periodic probe looks after the peer instead.
- ``STREAMING``: a Content-Length body; each read goes to the consumer.
- ``RAW``: a chunked body passed on with its framing (the chunked scanner
  only counts payload and finds the end).
- ``DECODING``: a chunked body decoded to plain payload.
- ``DISCARDING``: the send was refused, failed or is over; reads are dropped.

Whether the body has fully arrived (``complete``) is a separate fact: a body
may be complete while it is still held.

The hot path is ``payload_received``/``raw_received``: each is an instance
attribute bound, on entering a mode, to that mode's handler, so a read costs
one attribute lookup and a call, with no test of flags.
"""

from __future__ import annotations

import enum
import fcntl
import socket
import termios
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from hoodypipe.bytepath.chunked import ChunkedScanner, MalformedChunkedBody, Tap

if TYPE_CHECKING:
    from hoodypipe.bytepath.request import RelayRequest

HOLD_LIMIT = 64 * 1024
PROBE_SECONDS = 1.0
_TCP_CLOSE, _TCP_CLOSE_WAIT = 7, 8  # linux/tcp_states.h

OnData = Callable[[bytes, int], None]


class Mode(enum.Enum):
    HOLDING = "holding"
    STREAMING = "streaming"
    RAW = "raw"
    DECODING = "decoding"
    DISCARDING = "discarding"


_NEXT: dict[Mode, frozenset[Mode]] = {
    Mode.HOLDING: frozenset({Mode.STREAMING, Mode.RAW, Mode.DECODING, Mode.DISCARDING}),
    Mode.STREAMING: frozenset({Mode.DISCARDING}),
    Mode.RAW: frozenset({Mode.DISCARDING}),
    Mode.DECODING: frozenset({Mode.DISCARDING}),
    Mode.DISCARDING: frozenset(),
}


class Peer(enum.Enum):
    """What a paused socket's TCP state says about the peer."""

    OPEN = "open"
    READ_CLOSED = "read closed"  # it sent FIN: nothing more will come; it may still read
    GONE = "gone"  # reset


def peer_state(transport: object) -> Peer:
    """The TCP state of ``transport``'s socket, read without reading from it.

    A paused socket is out of the reactor's read set, so a sender that dies
    while it waits for receivers would only be noticed when its wait ends.
    """
    handle = getattr(transport, "getHandle", None)
    if handle is None or not hasattr(socket, "TCP_INFO"):
        return Peer.OPEN
    sock = handle()
    if not isinstance(sock, socket.socket) or sock.family not in (
        socket.AF_INET, socket.AF_INET6
    ):
        return Peer.OPEN
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return Peer.GONE
    if state == _TCP_CLOSE:
        return Peer.GONE
    if state == _TCP_CLOSE_WAIT:
        return Peer.READ_CLOSED
    return Peer.OPEN


def unread_bytes(transport: object) -> int | None:
    """How many bytes wait in the socket's receive queue (FIONREAD), if known."""
    handle = getattr(transport, "getHandle", None)
    sock = handle() if handle is not None else None
    if not isinstance(sock, socket.socket):
        return None
    try:
        return int.from_bytes(
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little", signed=True)
    except OSError:
        return None


class RequestBody:
    """The body of one send; see the module docstring for its modes."""

    log = Logger()

    def __init__(
        self, request: RelayRequest, length: int | None,
        finish_channel_body: Callable[[bytes], None] | None = None,
    ) -> None:
        self.request = request
        self.length = length
        self.chunked = length is None
        self.complete = False
        self.mode = Mode.HOLDING
        self.payload_received: Callable[[bytes], None] = self._hold
        self.raw_received: Callable[[bytes], None] = self._hold
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._on_data: OnData | None = None
        self._on_end: Callable[[], None] | None = None
        self._on_error: Callable[[str], None] | None = None
        self._scan: Callable[[bytes], None] | None = None
        # A chunked body's end is found by our scanner; the channel is told
        # through its own decoder's callback (with what follows the body).
        self._finish_channel_body = finish_channel_body
        self._paused = False
        self._read_closed = False
        self._probe: Any = None

    # -- modes --------------------------------------------------------------

    def _enter(self, mode: Mode) -> None:
        """The one place a body changes mode, and what each mode reads with."""
        if mode not in _NEXT[self.mode]:
            raise RuntimeError(f"request body: no way from {self.mode.value} to {mode.value}")
        self.mode = mode
        self._stop_probe()
        if mode is Mode.STREAMING:
            self.payload_received = self._stream
        elif mode is Mode.RAW or mode is Mode.DECODING:
            self.raw_received = self._scan_read
        elif mode is Mode.DISCARDING:
            self.payload_received = self.raw_received = self._drop
            self._held = []
            self._held_bytes = 0
            self._on_data = self._on_end = self._on_error = None
            self._scan = None
            self.resume()

    # -- the channel side ---------------------------------------------------

    def _stream(self, data: bytes) -> None:
        on_data = self._on_data
        assert on_data is not None
        on_data(data, len(data))

    def _scan_read(self, data: bytes) -> None:
        scan = self._scan
        assert scan is not None
        try:
            scan(data)
        except MalformedChunkedBody as e:
            self._broken(str(e))

    def _drop(self, data: bytes) -> None:
        pass

    def _hold(self, data: bytes) -> None:
        """Keep what comes before the transfer starts; past a small window, stop
        reading and look after the peer with a cheap periodic probe instead."""
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= HOLD_LIMIT and not self._paused:
            self.pause()
            self._schedule_probe()

    def ended(self) -> None:
        """The channel has the whole body."""
        self.complete = True
        if self.mode is Mode.STREAMING or self.mode is Mode.RAW or self.mode is Mode.DECODING:
            on_end = self._on_end
            if on_end is not None:
                on_end()

    def read_closed(self) -> bool:
        """The sender sent FIN: whether its send can still be served.

        A complete body can; so can a held chunked body, whose end only the
        scanner can find once a consumer attaches (if it is not there, the
        sender is treated as gone then). Anything else was cut short. A FIN
        is also how a peer that closed for good looks until something is
        written to it, so a held body keeps probing the peer (a reset shows).
        """
        self._read_closed = True
        servable = self.complete or (self.mode is Mode.HOLDING and self.chunked)
        if servable and self.mode is Mode.HOLDING and self._probe is None:
            self._schedule_probe()
        return servable

    def _broken(self, why: str) -> None:
        self.log.info("malformed body from {peer}: {why}",
                      peer=self.request.getClientAddress(), why=why)
        on_error = self._on_error
        self.discard()
        if on_error is not None:
            on_error(f"Malformed request body: {why}")
        else:
            self.request.abort_connection()

    # -- looking after a paused sender ----------------------------------------

    def _schedule_probe(self) -> None:
        self._probe = self.request.call_later(PROBE_SECONDS, self._check_peer)

    def _check_peer(self) -> None:
        self._probe = None
        if self.mode is not Mode.HOLDING or not (self._paused or self._read_closed):
            return
        transport = self.request.transport
        peer = peer_state(transport)
        if peer is Peer.GONE or (peer is Peer.READ_CLOSED and self._cut_short(transport)):
            self.request.abort_connection()
            return
        self._schedule_probe()

    def _cut_short(self, transport: object) -> bool:
        """A sized body whose sender sent FIN before all of it was sent.

        A half-closed sender whose bytes all wait in the socket is kept (it is
        served when its receivers come); one that left for good is noticed
        when its next status line is answered with a reset.
        """
        if self.complete or self.length is None:
            return False
        queued = unread_bytes(transport)
        return queued is not None and self._held_bytes + queued < self.length

    def _stop_probe(self) -> None:
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        self._probe = None

    # -- the relay side -----------------------------------------------------

    def attach(
        self,
        on_data: OnData,
        on_end: Callable[[], None],
        on_error: Callable[[str], None],
        decode: bool = False,
        tap: Tap | None = None,
    ) -> None:
        """Start the flow: held reads first, then every read as it comes.

        ``tap`` (chunked bodies only) is shown the payload inside each raw read.
        """
        held, self._held = self._held, []
        self._held_bytes = 0
        self._on_data = on_data
        self._on_end = on_end
        self._on_error = on_error
        # Big reads only once the bytes have somewhere to go; while waiting,
        # a sender holds at most HOLD_LIMIT plus one ordinary read.
        self.request.use_read_size()
        if self.chunked:
            finish = self._finish_channel_body
            assert finish is not None
            self._scan = ChunkedScanner(on_data, finish, decode=decode, tap=tap).dataReceived
            self._enter(Mode.DECODING if decode else Mode.RAW)
        else:
            self._enter(Mode.STREAMING)
        # The socket was paused only to hold early reads; from here the relay's
        # valves govern it (replaying ``held`` below pauses it again if needed).
        self.resume()
        for data in held:
            if self.mode is Mode.DISCARDING:
                return
            if self.chunked:
                self.raw_received(data)
            else:
                on_data(data, len(data))
        if self.complete and not self.chunked:
            on_end()
        elif self._read_closed and not self.complete and self.mode is not Mode.DISCARDING:
            # A half-closed chunked sender whose body turned out to be cut short.
            self.request.abort_connection()

    def discard(self) -> None:
        """Drop whatever arrives from now on, and keep the socket read."""
        if self.mode is not Mode.DISCARDING:
            self._enter(Mode.DISCARDING)

    def close(self) -> None:
        """The request is over, however it ended: nothing more to do for it."""
        self.discard()

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self.request.pause_reading()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self.request.resume_reading()
