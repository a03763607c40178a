"""
A twisted.web Request that hands a POST/PUT body on as it arrives.

Stock twisted.web gathers the whole body into ``request.content`` and only
then renders. ``RelayRequest`` starts rendering as soon as the headers are in
(one reactor turn later, so the channel's ``100 Continue`` goes out first)
and exposes the body as a ``RequestBody`` that a relay reads chunk by chunk,
pausing the sender's socket for backpressure.

This leans on documented-in-source but private parts of ``HTTPChannel``
(``_command``/``_path``/``_version`` before ``requestReceived``, and
``_transferDecoder``); the real-socket tests pin that behaviour down.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, server

from hoodypipe.bytepath.chunked import ChunkedScanner, MalformedChunkedBody
from hoodypipe.web.names import parse_query, parse_target

SEND_METHODS = (b"POST", b"PUT")
HOLD_LIMIT = 64 * 1024
LINGER_SECONDS = 5.0
PROBE_SECONDS = 1.0
_TCP_CLOSED_STATES = (7, 8)  # TCP_CLOSE, TCP_CLOSE_WAIT (linux/tcp_states.h)


def peer_has_closed(transport: object) -> bool:
    """Whether a TCP peer has sent FIN or RST, even while we are not reading.

    A paused socket is out of the reactor's read set, so a sender that dies
    while it waits for receivers would only be noticed when its wait ends.
    """
    handle = getattr(transport, "getHandle", None)
    if handle is None or not hasattr(socket, "TCP_INFO"):
        return False
    sock = handle()
    if not isinstance(sock, socket.socket) or sock.family not in (
        socket.AF_INET, socket.AF_INET6
    ):
        return False
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return True
    return state in _TCP_CLOSED_STATES

OnData = Callable[[bytes, int], None]


class RequestBody:
    """The body of a send, from the socket to one consumer.

    Until a consumer attaches, what arrives is held (the socket is paused once
    HOLD_LIMIT is held, so at most that plus one read); after ``discard()``
    everything is dropped.
    """

    log = Logger()

    def __init__(self, request: RelayRequest, chunked: bool) -> None:
        self.request = request
        self.chunked = chunked
        self.complete = False
        self.failed: str | None = None
        self._held: list[bytes] = []
        self._on_data: OnData | None = None
        self._on_end: Callable[[], None] | None = None
        self._on_error: Callable[[str], None] | None = None
        self._scanner: ChunkedScanner | None = None
        self._finish_channel_body: Callable[[bytes], None] | None = None
        self._discarding = False
        self._paused = False
        self._held_bytes = 0
        self._probe: Any = None

    # -- the channel side ---------------------------------------------------

    def raw_received(self, data: bytes) -> None:
        """A read of a chunked body, framing included."""
        if self._scanner is not None:
            try:
                self._scanner.dataReceived(data)
            except MalformedChunkedBody as e:
                self._broken(str(e))
        elif self._discarding:
            return
        else:
            self._hold(data)

    def payload_received(self, data: bytes) -> None:
        """A read of a Content-Length body."""
        on_data = self._on_data
        if on_data is not None:
            on_data(data, len(data))
        elif not self._discarding:
            self._hold(data)

    def ended(self) -> None:
        self.complete = True
        if self._on_end is not None and not self._discarding:
            self._on_end()

    def _hold(self, data: bytes) -> None:
        """Keep what comes before the transfer starts; past a small window, stop
        reading and look after the peer with a cheap periodic probe instead."""
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= HOLD_LIMIT and not self._paused:
            self.pause()
            self._schedule_probe()

    def _schedule_probe(self) -> None:
        self._probe = self.request.channel.callLater(
            PROBE_SECONDS, self._check_peer)

    def _check_peer(self) -> None:
        self._probe = None
        if self.request._disconnected:
            return
        if not self._paused or self._on_data is not None or self._scanner is not None:
            return
        if peer_has_closed(self.request.channel.transport):
            self.request.abort_connection()
            return
        self._schedule_probe()

    def _stop_probe(self) -> None:
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        self._probe = None

    def _broken(self, why: str) -> None:
        self.failed = why
        self.log.info("malformed body from {peer}: {why}",
                      peer=self.request.getClientAddress(), why=why)
        on_error = self._on_error
        self.discard()
        if on_error is not None:
            on_error(f"Malformed request body: {why}")
        else:
            self.request.abort_connection()

    # -- the relay side -----------------------------------------------------

    def attach(
        self,
        on_data: OnData,
        on_end: Callable[[], None],
        on_error: Callable[[str], None],
        decode: bool = False,
    ) -> None:
        """Start the flow: held reads first, then every read as it comes."""
        self._on_error = on_error
        self._stop_probe()
        held, self._held = self._held, []
        self._held_bytes = 0
        # Big reads only once the bytes have somewhere to go; while waiting,
        # a sender holds at most HOLD_LIMIT plus one ordinary read.
        transport: Any = self.request.channel.transport
        if self.request.read_size and transport is not None:
            transport.bufferSize = self.request.read_size
        # The socket was paused only to hold early reads; from here the relay's
        # valves govern it (replaying ``held`` below pauses it again if needed).
        self.resume()
        if self.chunked:
            finish = self._finish_channel_body
            assert finish is not None
            self._scanner = ChunkedScanner(on_data, finish, decode=decode)
            self._on_end = on_end
            for data in held:
                self.raw_received(data)
        else:
            self._on_data = on_data
            self._on_end = on_end
            for data in held:
                on_data(data, len(data))
            if self.complete:
                on_end()

    def discard(self) -> None:
        """Drop whatever arrives from now on, and keep the socket read."""
        self._discarding = True
        self._stop_probe()
        self._held = []
        self._on_data = None
        self._on_end = None
        self._on_error = None
        self._scanner = None
        self.resume()

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            transport: Any = self.request.channel.transport
            if transport is not None:
                transport.pauseProducing()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            transport: Any = self.request.channel.transport
            if transport is not None:
                transport.resumeProducing()


class _RawChunkedTap:
    """Stands in for the channel's chunked decoder: raw reads go to the body."""

    def __init__(self, body: RequestBody) -> None:
        self._body = body

    def dataReceived(self, data: bytes) -> None:
        self._body.raw_received(data)

    def noMoreData(self) -> None:
        pass


class RelayRequest(server.Request):
    """A Request that renders a send before its body has arrived."""

    body: RequestBody | None = None
    read_size: int = 0
    _saved_timeout: float | None = None
    _lingering: Any = None

    def gotLength(self, length: int | None) -> None:
        channel: Any = self.channel
        if channel._command not in SEND_METHODS:
            super().gotLength(length)
            return
        self.content = io.BytesIO()
        body = self.body = RequestBody(self, chunked=length is None)
        decoder = channel._transferDecoder
        if length is None and isinstance(decoder, http._ChunkedTransferDecoder):
            body._finish_channel_body = decoder.finishCallback
            channel._transferDecoder = _RawChunkedTap(body)
        # The channel's idle timer would cut a send that waits for receivers or
        # is paused by a slow one; the registry's own timers govern instead.
        self._saved_timeout = channel.setTimeout(None)
        self.method = channel._command
        self.uri = channel._path
        self.clientproto = channel._version
        self.path = self.uri.partition(b"?")[0]
        channel.callLater(0, self._render_send)

    def _render_send(self) -> None:
        if not self._disconnected:
            self.process()

    def handleContentChunk(self, data: bytes) -> None:
        if self.body is not None:
            self.body.payload_received(data)
        else:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.body is not None:
            self.body.ended()
            return
        super().requestReceived(command, path, version)

    def process(self) -> None:
        """Like Request.process, but ``postpath`` keeps the raw percent-encoding
        and bare query keys (``?progress``) are kept as empty values; an
        absolute-form target is served as its path (``web.names.parse_target``)."""
        self.path, query, authority = parse_target(self.uri)
        if authority is not None:
            self.requestHeaders.setRawHeaders(b"host", [authority])
        self.args = parse_query(query)
        channel: Any = self.channel
        self.site = channel.site
        self.setHeader(b"Server", b"hoodypipe")
        self.setHeader(b"Date", http.datetimeToString())
        self.prepath = []
        self.postpath = self.path[1:].split(b"/")
        try:
            self.render(self.site.getResourceFor(self))
        except BaseException:
            self.processingFailed(Failure())

    # -- ending a send whose body may still be coming ------------------------

    def finish_send(self) -> None:
        """Finish the response; if the body is still arriving, close after it.

        Finishing a keep-alive request whose body is still coming would make
        the channel parse the rest of the body as the next request. Instead
        the response is ended, the write side closed, and the remaining
        upload read and dropped for a little while (a lingering close, so
        the client sees the final lines rather than a reset).
        """
        if self.finished or self._disconnected or self._lingering is not None:
            return
        body = self.body
        if body is None or body.complete:
            self._restore_timeout()
            self.finish()
            return
        body.discard()
        if not self.startedWriting:
            self.write(b"")
        transport: Any = self.channel.transport
        if self.chunked:
            transport.write(b"0\r\n\r\n")
        self.channel.persistent = False
        transport.loseWriteConnection()
        self._lingering = self.channel.callLater(LINGER_SECONDS, self.abort_connection)

    def finish(self) -> None:
        """Never finish a keep-alive send while its body is still coming."""
        body = self.body
        if body is not None and not body.complete and not self.finished:
            self.finish_send()  # once lingering, a second finish is a no-op
            return
        super().finish()

    def processingFailed(self, reason: Failure) -> None:
        """A bug while handling a send: answer in one line, keep the channel in sync."""
        if self.body is None:
            super().processingFailed(reason)
            return
        self._log.failure("error handling {method} {uri}", reason,
                          method=self.method, uri=self.uri)
        if not self.startedWriting:
            self.setResponseCode(500)
            self.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        if not self.finished and not self._disconnected:
            self.write(b"[ERROR] Internal server error.\n")
            self.finish_send()

    def abort_connection(self) -> None:
        transport: Any = self.channel.transport if self.channel else None
        if transport is not None:
            transport.abortConnection()

    def _restore_timeout(self) -> None:
        """Give a keep-alive connection back its idle timer and read size."""
        if self._saved_timeout is not None and self.channel is not None:
            self.channel.setTimeout(self._saved_timeout)
            self._saved_timeout = None
            transport: Any = self.channel.transport
            if "bufferSize" in vars(transport):
                del transport.bufferSize

    def connectionLost(self, reason: Failure) -> None:
        lingering = self._lingering
        if lingering is not None and lingering.active():
            lingering.cancel()
        super().connectionLost(reason)
