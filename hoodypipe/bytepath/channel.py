"""
The HTTP/1.1 connection: Twisted's ``HTTPChannel`` with what a relay open to
strangers needs on top.

- A deadline for each request head (request line plus headers, and the body
  too unless it is a send's, which the registry times), started by the
  request's first byte; bytes trickling in do not move it (each of them
  resets Twisted's idle timer, which is why that timer alone lets a client
  hold a connection for hours inside the header size limit). Silent
  connections are left to the idle timer.
- The channel's own refusals (a line or head too long, too many headers, a
  malformed request line or header) answered like every other refusal: a
  status code with its reason phrase and an ``[ERROR]`` line, then a
  lingering close (write side closed, what the client still sends read and
  dropped for a while, so it reads the answer rather than a reset).
- ``Connection: close`` on every response after which the server closes.
- A sender that half-closes (sends FIN) after its whole body is still served.
- What a client sent along with its connect is read in the turn the
  connection is accepted (``connectionMade``), not one reactor turn later:
  the request a client writes right after ``connect()`` is usually there
  already, and a user waiting for a small transfer feels every turn.

What this relies on below Twisted's public API (``guard.check_twisted``
checks it at startup): ``HTTPChannel._respondToBadRequestAndDisconnect``, the
one method through which the channel refuses what it cannot parse; and the
``requests`` list of the channel (the first one is being answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http_headers import Headers
from zope.interface import implementer

from hoodypipe.bytepath.request import LINGER_SECONDS, RelayRequest, close_write_side

# What went wrong, by where the channel was when it refused (status, message, code).
Problem = tuple[int, str, str]
BAD_REQUEST_LINE: Problem = (400, "Malformed request line.", "bad_request_line")
BAD_HEADER: Problem = (400, "Malformed header field.", "bad_header")
BAD_FRAMING: Problem = (400, "Invalid Content-Length or Transfer-Encoding.", "bad_framing")
BAD_BODY: Problem = (400, "Malformed chunked body.", "bad_body")
_FRAMING_HEADERS = (b"content-length", b"transfer-encoding")
PHRASES = {
    400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
    431: b"Request Header Fields Too Large", 503: b"Service Unavailable",
}

RefusalSink = Callable[[int, str], None]


def refusal_bytes(status: int, message: str) -> bytes:
    """A whole ``Connection: close`` response carrying one ``[ERROR]`` line."""
    body = f"[ERROR] {message}\n".encode()
    return b"".join((
        b"HTTP/1.1 %d %s\r\n" % (status, PHRASES[status]),
        b"Content-Type: text/plain; charset=utf-8\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"Connection: close\r\n",
        b"Cache-Control: no-store\r\n",
        b"X-Content-Type-Options: nosniff\r\n",
        b"Server: hoodypipe\r\n",
        b"Date: " + http.datetimeToString() + b"\r\n",
        b"\r\n",
        body,
    ))


def _drop(*args: object) -> None:
    """What a refused connection does with what it still reads."""


@implementer(IHalfCloseableProtocol)
class RelayChannel(http.HTTPChannel):
    """One client connection; its site sets the three attributes below."""

    head_timeout: float | None = None
    on_refusal: RefusalSink | None = None
    on_lost: Callable[[], None] | None = None
    log = Logger()

    _awaiting_head = True
    _head_call: Any = None
    _in_request_line = True
    _head_size = 0
    _header_count = 0
    _problem: Problem = BAD_REQUEST_LINE
    _refused = False
    _read_closed = False
    _linger_call: Any = None

    # -- the first read ------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        self._read_at_once()

    def _read_at_once(self) -> None:
        """Read what the client already sent, now, as the reactor would next turn.

        One non-blocking ``recv`` on a plain TCP (or UNIX) socket; nothing
        there yet costs that one system call and leaves the socket to the
        reactor. An end of stream or a socket error is left in the socket,
        where the reactor's own read meets it and ends the connection its
        usual way. A failure while handling the bytes is logged and the
        connection aborted, as the reactor does with one raised from a read.
        """
        transport: Any = self.transport
        if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", True):
            return
        try:
            data = transport.getHandle().recv(transport.bufferSize)
        except OSError:
            return
        if not data:
            return
        try:
            self.dataReceived(data)
        except Exception:
            self.log.failure("handling the first read from {peer}", peer=_peer(transport))
            transport.abortConnection()

    # -- the head deadline ---------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._awaiting_head and self._head_call is None and self.head_timeout:
            self._head_call = self.callLater(self.head_timeout, self._head_expired)
        super().dataReceived(data)

    def _new_head(self) -> None:
        self._awaiting_head = True
        self._in_request_line = True
        self._head_size = 0
        self._header_count = 0
        self._problem = BAD_REQUEST_LINE

    def _head_done(self) -> None:
        self._awaiting_head = False
        call, self._head_call = self._head_call, None
        if call is not None and call.active():
            call.cancel()

    def _head_expired(self) -> None:
        self._head_call = None
        self._refuse(408, f"Request not received within {self.head_timeout:g} seconds.",
                     "request_timeout")

    def allHeadersReceived(self) -> None:
        self._awaiting_head = False
        self._problem = BAD_BODY
        super().allHeadersReceived()
        # A send's body is the registry's to time; any other body must arrive
        # within the same deadline as the head.
        request = self.requests[-1] if self.requests else None
        if isinstance(request, RelayRequest) and request.body is not None:
            self._head_done()

    def allContentReceived(self) -> None:
        self._head_done()
        super().allContentReceived()

    def requestDone(self, request: http.Request) -> None:
        if self.persistent:
            self._new_head()  # before the base replays what was pipelined
        super().requestDone(request)

    # -- telling an oversized head from a malformed one -------------------------

    def lineReceived(self, line: bytes) -> None:
        self._head_size += len(line)
        if self._in_request_line:
            self._problem = BAD_REQUEST_LINE
            if line:  # the channel skips one empty line before a request line
                self._in_request_line = False
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        self._header_count += 1
        name = line.partition(b":")[0].strip().lower()
        self._problem = BAD_FRAMING if name in _FRAMING_HEADERS else BAD_HEADER
        return bool(super().headerReceived(line))

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._in_request_line:
            self._refuse(414, f"Request line too long (max {self.MAX_LENGTH} bytes).",
                         "uri_too_long")
        else:
            self._refuse(431, f"Header field too long (max {self.MAX_LENGTH} bytes).",
                         "headers_too_large")

    def _respondToBadRequestAndDisconnect(self) -> None:
        if self._head_size > self.totalHeadersSize:
            self._refuse(431, "Request header fields too large "
                         f"(max {self.totalHeadersSize} bytes).", "headers_too_large")
        elif self._header_count > self.maxHeaders:
            self._refuse(431, f"Too many header fields (max {self.maxHeaders}).",
                         "headers_too_large")
        else:
            status, message, code = self._problem
            self._refuse(status, message, code)

    # -- refusing at the channel ----------------------------------------------

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer ``status`` with an ``[ERROR]`` line, then a lingering close."""
        if self._refused:
            return
        self._refused = True
        self._head_done()
        self.setTimeout(None)
        self.persistent = False
        # Drop everything the client still sends, whatever mode the parser is in.
        self.dataReceived = self.lineReceived = self.rawDataReceived = _drop  # type: ignore[method-assign,assignment]
        self.setRawMode()  # ends the parser's loop over what it has buffered
        transport: Any = self.transport
        self.log.info("refused {peer}: {status} {code}", peer=_peer(transport),
                      status=status, code=code)
        if self.on_refusal is not None:
            self.on_refusal(status, code)
        if any(request.startedWriting for request in self.requests):
            transport.abortConnection()  # too late for a status: never look complete
            return
        transport.write(refusal_bytes(status, message))
        close_write_side(transport)
        transport.resumeProducing()
        self._linger_call = self.callLater(LINGER_SECONDS, transport.abortConnection)

    # -- responses ----------------------------------------------------------

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        request = self.requests[0] if self.requests else None
        if isinstance(request, RelayRequest) and request.closes_connection():
            self.persistent = False
        if (not self.persistent and version == b"HTTP/1.1" and isinstance(headers, Headers)
                and not headers.hasHeader(b"connection")):
            headers.setRawHeaders(b"Connection", [b"close"])
        if not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)
            return
        # What HTTPChannel.writeHeaders writes, as one bytes object: it hands
        # the transport a sequence of four pieces per header, which the
        # transport checks and counts one by one (about 50 for a receiver's
        # head) on the way to a transfer's first byte.
        head = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        transport: Any = self.transport
        transport.write(b"".join(head))

    # -- half-close ---------------------------------------------------------

    def readConnectionLost(self) -> None:
        """The client sent FIN. Serve a send whose body is whole; else it left."""
        if self._read_closed:
            return  # read again after a resume: nothing new
        self._read_closed = True
        transport: Any = self.transport
        request = self.requests[0] if self.requests else None
        if self._refused or request is None:
            transport.loseConnection()  # after what is still buffered for it
        elif isinstance(request, RelayRequest) and request.lingering:
            transport.loseConnection()
        elif isinstance(request, RelayRequest) and request.read_closed():
            self.persistent = False
        else:
            # A departure, closed as the reactor closes a connection whose
            # protocol cannot half-close: at once, with a FIN.
            transport.connectionLost(Failure(ConnectionDone()))

    def writeConnectionLost(self) -> None:
        """Our FIN went out (a lingering close); the read side is still read."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        lost, self.on_lost = self.on_lost, None
        if lost is not None:
            lost()
        self._head_done()
        call, self._linger_call = self._linger_call, None
        if call is not None and call.active():
            call.cancel()
        super().connectionLost(reason)


def _peer(transport: Any) -> str:
    try:
        return str(transport.getPeer())
    except Exception:
        return "?"
