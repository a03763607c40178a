"""
A twisted.web Request that hands a POST/PUT body on as it arrives.

Stock twisted.web gathers the whole body into ``request.content`` and only
then renders. ``RelayRequest`` starts rendering as soon as the headers are in
(one reactor turn later, so the channel's ``100 Continue`` goes out first;
at once if the whole body has come by then) and exposes the body as a
``RequestBody`` that a relay reads chunk by chunk, pausing the sender's
socket for backpressure.

What this module relies on below Twisted's public API (``guard.check_twisted``
verifies all of it when the service is built, and says which Twisted lacks
what; ``channel.py``, the channel subclass, lists its own needs too):

- ``HTTPChannel._command``, ``._path``, ``._version``: the request line, set
  on the channel before ``Request.requestReceived`` copies it; a send is
  rendered from ``gotLength``, before that.
- ``HTTPChannel._transferDecoder``: the channel's body decoder. For a chunked
  send it is swapped for a tap that gives the raw reads to the body.
- ``twisted.web.http._ChunkedTransferDecoder`` and its ``finishCallback``: how
  the channel is told where a chunked body ends (our scanner finds it).
- ``Request._disconnected``: read only through ``response_open`` below, so
  the rest of hoodypipe never touches it.

Everything else hoodypipe does with requests goes through public API:
``request.transport``, ``notifyFinish()``, ``write``/``finish``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import ITCPTransport
from twisted.python.failure import Failure
from twisted.web import http, server

# Names used per request, imported by name: ``twisted.web.http`` is wrapped in
# a deprecation proxy that makes every ``http.X`` lookup cost about 2 us.
from twisted.web.http import OK, _ChunkedTransferDecoder, datetimeToString

from hoodypipe.bytepath.body import Mode, RequestBody
from hoodypipe.web.names import parse_query, parse_target

SEND_METHODS = (b"POST", b"PUT")
LINGER_SECONDS = 5.0
HALF_CLOSED_LINE = b"[INFO] Upload received (connection half-closed).\n"


def response_open(request: http.Request) -> bool:
    """Whether ``request`` can still be answered: not finished, connection not lost."""
    return not request.finished and not request._disconnected


def abort(request: http.Request) -> None:
    """Cut ``request``'s connection at once (an answer that must not look complete)."""
    transport: Any = request.transport
    if transport is not None:
        transport.abortConnection()


def close_write_side(transport: Any) -> None:
    """FIN once what is buffered has gone, and keep reading (a lingering close).

    TLS in Twisted has no half-close that keeps the session sound, so there
    the whole connection is closed (after the buffered bytes).
    """
    if ITCPTransport.providedBy(transport):  # TCP or UNIX, not TLS
        transport.loseWriteConnection()
    else:
        transport.loseConnection()


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
    _call_later: Callable[..., Any] | None = None
    _pending_render: Any = None
    _lines: list[bytes] | None = None
    _lines_call: Any = None

    def gotLength(self, length: int | None) -> None:
        channel: Any = self.channel
        if channel._command not in SEND_METHODS:
            super().gotLength(length)
            return
        self.content = io.BytesIO()
        self._call_later = channel.callLater
        decoder = channel._transferDecoder
        if length is None and isinstance(decoder, _ChunkedTransferDecoder):
            body = self.body = RequestBody(self, None, decoder.finishCallback)
            channel._transferDecoder = _RawChunkedTap(body)
        else:
            self.body = RequestBody(self, length)
        # The channel's idle timer would cut a send that waits for receivers or
        # is paused by a slow one; the registry's own timers govern instead.
        self._saved_timeout = channel.setTimeout(None)
        self.method = channel._command
        self.uri = channel._path
        self.clientproto = channel._version
        self.path = self.uri.partition(b"?")[0]
        self._pending_render = channel.callLater(0, self._render_send)

    def _render_send(self) -> None:
        call, self._pending_render = self._pending_render, None
        if call is not None and call.active():
            call.cancel()
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
            if self._pending_render is not None:
                # A body that came whole with its headers (the 1 KiB message
                # a user waits for): no need to wait for the next turn.
                self._render_send()
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
        self.setHeader(b"Date", datetimeToString())
        self.prepath = []
        self.postpath = self.path[1:].split(b"/")
        try:
            self.render(self.site.getResourceFor(self))
        except BaseException:
            self.processingFailed(Failure())

    # -- what the body and the channel ask of the request ---------------------

    def call_later(self, delay: float, f: Callable[..., Any], *args: Any) -> Any:
        """The channel's clock, still there after the request has ended."""
        assert self._call_later is not None
        return self._call_later(delay, f, *args)

    def pause_reading(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.pauseProducing()

    def resume_reading(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.resumeProducing()

    def use_read_size(self) -> None:
        """Big socket reads from now on (a transfer has started)."""
        transport: Any = self.transport
        if self.read_size and transport is not None:
            transport.bufferSize = self.read_size

    def closes_connection(self) -> bool:
        """Whether the connection ends with the response whose head goes out now.

        An accepted send is answered 200 at once; any other status is a
        refusal, and one written while the body is still coming is followed
        by a lingering close (``finish_send``), so its head says so.
        """
        body = self.body
        return body is not None and not body.complete and self.code != OK

    @property
    def lingering(self) -> bool:
        """Answered and closing, while the rest of the body is read and dropped."""
        return self._lingering is not None

    def read_closed(self) -> bool:
        """The client sent FIN: whether this request can still be answered.

        Only a send whose body is whole (or may be) is; while it waits, one
        line is written at once, since a peer that closed for good (rather
        than half-closed) answers a write with a reset, which the body's
        probe then sees: a killed sender frees its pipe in a second.
        """
        body = self.body
        if body is None or not body.read_closed():
            return False
        self.write_lines()
        if (body.mode is Mode.HOLDING and self.startedWriting and self.code == OK
                and response_open(self)):
            self.write(HALF_CLOSED_LINE)
        return True

    # -- the sender's status lines --------------------------------------------

    def write_line(self, line: bytes) -> None:
        """Write a status line of a send at the end of this reactor turn.

        Lines come in bursts, just before the byte path's first write: a
        sender that fills a pipe is told three in the turn its receivers get
        their first bytes. Written at once, the response head and each line
        would be formatted and queued ahead of those bytes; held, they go
        out together once the receivers have theirs. Whatever else this
        module writes on a send (``read_closed``, ``processingFailed``,
        ``finish``, ``finish_send``) writes them first, so the order on the
        wire is the order they were told in. (``write`` itself is not
        overridden: receivers' requests are written per read.)
        """
        if self._lines is None:
            self._lines = [line]
            self._lines_call = self.call_later(0, self.write_lines)
        else:
            self._lines.append(line)

    def write_lines(self) -> None:
        """Write the held status lines now (if the response is still open)."""
        lines, self._lines = self._lines, None
        call, self._lines_call = self._lines_call, None
        if call is not None and call.active():
            call.cancel()
        if lines and response_open(self):
            super().write(b"".join(lines))

    # -- ending a send whose body may still be coming ------------------------

    def finish_send(self) -> None:
        """Finish the response; if the body is still arriving, close after it.

        Finishing a keep-alive request whose body is still coming would make
        the channel parse the rest of the body as the next request. Instead
        the response is ended, the write side closed, and the remaining
        upload read and dropped for a little while (a lingering close, so
        the client sees the final lines rather than a reset).
        """
        if not response_open(self) or self._lingering is not None:
            return
        self.write_lines()
        body = self.body
        if body is None or body.complete:
            self._restore_timeout()
            self.finish()
            return
        body.discard()
        if not self.startedWriting:
            self.write(b"")
        transport: Any = self.transport
        if self.chunked:
            transport.write(b"0\r\n\r\n")
        self.channel.persistent = False
        close_write_side(transport)
        self._lingering = self.call_later(LINGER_SECONDS, self.abort_connection)

    def finish(self) -> None:
        """Never finish a keep-alive send while its body is still coming."""
        if self._lines is not None:
            self.write_lines()
        body = self.body
        if body is not None and not self.finished:
            if not body.complete:
                self.finish_send()  # once lingering, a second finish is a no-op
                return
            body.close()
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
        if response_open(self):
            self.write_lines()
            self.write(b"[ERROR] Internal server error.\n")
            self.finish_send()

    def abort_connection(self) -> None:
        abort(self)

    def _restore_timeout(self) -> None:
        """Give a keep-alive connection back its idle timer and read size."""
        if self._saved_timeout is not None and self.channel is not None:
            self.channel.setTimeout(self._saved_timeout)
            self._saved_timeout = None
            transport: Any = self.transport
            if "bufferSize" in vars(transport):
                del transport.bufferSize

    def connectionLost(self, reason: Failure) -> None:
        self._lines = None
        call, self._lines_call = self._lines_call, None
        if call is not None and call.active():
            call.cancel()
        lingering = self._lingering
        if lingering is not None and lingering.active():
            lingering.cancel()
        if self.body is not None:
            self.body.close()
        super().connectionLost(reason)
