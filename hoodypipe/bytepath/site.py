"""
The site: one ``RelayChannel`` per connection, HTTP/1.1 only, and a cap on
open connections.

Over the cap a new connection is answered 503 with an ``[ERROR]`` line at
once (nothing is read or parsed) and closed, so the process keeps file
descriptors for its files and listeners instead of failing ``accept()``
with EMFILE while every client waits.

HTTP/2: with Twisted's http2 extra installed (``h2``, ``priority``), a stock
``Site`` offers ``h2`` through TLS ALPN, and Twisted's HTTP/2 streams have
none of what a streamed send needs (``RelayRequest`` reads the request line
from the HTTP/1.1 channel and swaps its body decoder). This site offers
``http/1.1`` only, and builds the HTTP/1.1 channel itself rather than
Twisted's wrapper that switches protocols after ALPN; an HTTP/2 client falls
back to HTTP/1.1.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, ITCPTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server

from hoodypipe.bytepath.channel import RefusalSink, RelayChannel, refusal_bytes
from hoodypipe.ops.accesslog import OptionalAccessLogSite

OVERLOADED = "Too many connections; try again later."
WARN_EVERY = 60.0


class _Overloaded(Protocol):
    """A connection over the cap: told so, never read, closed at once.

    The answer goes straight into the socket and the socket is closed before
    control returns to the reactor: Twisted accepts a hundred or more
    connections in one go, and refusals that each kept their descriptor
    until a later turn would run the process out of the very thing the cap
    protects. Over TLS no answer is possible without a handshake, so there
    the connection is only closed.
    """

    def connectionMade(self) -> None:
        transport: Any = self.transport
        plain = ITCPTransport.providedBy(transport)  # (a bool: no narrowing of Any)
        if plain:
            try:
                transport.getHandle().send(refusal_bytes(503, OVERLOADED))
            except OSError:
                pass  # its send buffer is fresh: a tiny answer fits, or the peer is gone
        lower: Any = transport
        while not plain and getattr(lower, "transport", None) is not None:
            lower = lower.transport  # the socket under TLS
            plain = ITCPTransport.providedBy(lower)
        if plain:
            # What the reactor itself calls on a lost connection: closes the socket now.
            lower.connectionLost(Failure(ConnectionDone()))
        else:
            transport.abortConnection()


class RelaySite(OptionalAccessLogSite):
    """The relay's HTTP face on every listener; all of them share one cap."""

    protocol = RelayChannel  # type: ignore[assignment]
    logger = Logger()  # (``log`` is the factory's access-log method)

    def __init__(
        self,
        root: resource.IResource,
        request_factory: type[server.Request],
        reactor: Any,
        timeout: float,
        head_timeout: float,
        max_connections: int,
        on_refusal: RefusalSink | None = None,
    ) -> None:
        super().__init__(root, requestFactory=request_factory, reactor=reactor,
                         timeout=timeout)
        self.displayTracebacks = False
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self.on_refusal = on_refusal
        self.connections = 0
        self._warned_at: float | None = None

    def acceptableProtocols(self) -> list[bytes]:
        """ALPN: HTTP/1.1 only, whatever Twisted could offer (see the module doc)."""
        return [b"http/1.1"]

    def buildProtocol(self, addr: IAddress | None) -> Any:
        if self.connections >= self.max_connections:
            now = self.reactor.seconds()
            if self._warned_at is None or now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                self.logger.warn("{count} connections open, the cap: new ones get 503",
                              count=self.connections)
            if self.on_refusal is not None:
                self.on_refusal(503, "connections")
            return _Overloaded()
        channel = super().buildProtocol(addr)
        assert isinstance(channel, RelayChannel)
        channel.head_timeout = self.head_timeout
        channel.on_refusal = self.on_refusal
        channel.on_lost = self._connection_lost
        self.connections += 1
        return channel

    def _connection_lost(self) -> None:
        self.connections -= 1
