"""
Whole HTTP exchanges in memory: the real site, StringTransports, a Clock.

Each connection is ``site.buildProtocol(addr)`` on a ``Transport`` (a
StringTransport that is also a TCP transport, so half-closes are recorded);
the test writes raw request bytes into the protocol and reads raw response
bytes from the transport. Sends start rendering one reactor turn after their
headers (so ``100 Continue`` goes out first; at once when the whole body came
with them), hence ``advance(0)`` after every write. The relay writes to the
receivers' transports directly, which a StringTransport records like any
other write.
"""

from __future__ import annotations

import re

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from hoodypipe.service import HoodypipeService
from hoodypipe.settings import Settings
from tests.kit.observers import Recorder


@attrs.frozen
class Response:
    version: bytes
    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes
    raw_body: bytes
    complete: bool

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name.lower())
        return None if values is None else b", ".join(values)

    @property
    def lines(self) -> list[str]:
        return self.body.decode().splitlines()


def _dechunk(data: bytes) -> tuple[bytes, int, bool]:
    """Payload, bytes used, and whether the terminal chunk was seen."""
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol == -1:
            return b"".join(out), pos, False
        size_text = data[pos:eol].split(b";")[0]
        assert re.fullmatch(rb"[0-9a-fA-F]+", size_text), data[pos:eol]
        size = int(size_text, 16)
        if size == 0:
            end = data.find(b"\r\n\r\n", eol)
            if end == -1:
                return b"".join(out), pos, False
            return b"".join(out), end + 4, True
        start = eol + 2
        if len(data) < start + size + 2:
            out.append(data[start:start + size])
            return b"".join(out), len(data), False
        out.append(data[start:start + size])
        assert data[start + size:start + size + 2] == b"\r\n"
        pos = start + size + 2


def parse_responses(data: bytes, head: tuple[int, ...] = ()) -> list[Response]:
    """Every response in ``data``, in order; ``head`` lists which have no body."""
    responses: list[Response] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        assert end != -1, f"incomplete head: {data[pos:pos + 200]!r}"
        status_line, *header_lines = data[pos:end].split(b"\r\n")
        version, status, _ = status_line.split(b" ", 2)
        headers: dict[bytes, list[bytes]] = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        pos = end + 4
        code = int(status)
        no_body = code < 200 or code in (204, 304) or len(responses) in head
        if no_body:
            body, raw, complete = b"", b"", True
        elif headers.get(b"transfer-encoding") == [b"chunked"]:
            body, used, complete = _dechunk(data[pos:])
            raw = data[pos:pos + used]
            pos += used
        elif b"content-length" in headers:
            length = int(headers[b"content-length"][0])
            raw = body = data[pos:pos + length]
            complete = len(body) == length
            pos += len(body)
        else:
            raw = body = data[pos:]
            complete = True
            pos = len(data)
        responses.append(Response(version, code, headers, body, raw, complete))
    return responses


@implementer(ITCPTransport)
class Transport(StringTransport):
    """A StringTransport that is a TCP transport: it records half-closes."""

    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def getTcpNoDelay(self) -> bool:
        return True

    def setTcpKeepAlive(self, enabled: bool) -> None:
        pass

    def getTcpKeepAlive(self) -> bool:
        return False

    def getHandle(self) -> _Socket:
        return _Socket(self)

    def connectionLost(self, reason: object) -> None:
        """What the reactor calls when the socket is closed."""
        self.disconnected = True


class _Socket:
    """The socket under a Transport: what is sent to it goes out like a write."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def send(self, data: bytes) -> int:
        self._transport.io.write(data)
        return len(data)


class Connection:
    def __init__(self, server: Server, port: int) -> None:
        self.server = server
        self.protocol = server.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        self.transport = Transport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> Connection:
        self.protocol.dataReceived(data)
        self.server.reactor.advance(0)
        return self

    def request(self, method: bytes, path: bytes, *headers: bytes,
                body: bytes = b"", version: bytes = b"HTTP/1.1") -> Connection:
        lines = [method + b" " + path + b" " + version, b"Host: pipes.test",
                 *headers]
        if body:
            lines.append(b"Content-Length: %d" % len(body))
        return self.send(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    @property
    def output(self) -> bytes:
        return self.transport.value()

    def responses(self, head: tuple[int, ...] = ()) -> list[Response]:
        return parse_responses(self.output, head)

    def response(self) -> Response:
        (only,) = self.responses()
        return only

    def drop(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionLost("gone")))
        self.server.reactor.advance(0)


class Server:
    def __init__(self, settings: Settings | None = None) -> None:
        self.reactor = MemoryReactorClock()
        self.service = HoodypipeService(self.reactor, settings or Settings())
        self.site = self.service.site
        self.registry = self.service.registry
        self.observer = Recorder()
        self.registry.add_observer(self.observer)
        self._ports = iter(range(40000, 50000))

    def connect(self) -> Connection:
        return Connection(self, next(self._ports))

    def get(self, path: bytes, *headers: bytes) -> Response:
        return self.connect().request(b"GET", path, *headers).response()


TEXT = b"text/plain; charset=utf-8"

SENDER_LINES_1 = [
    "[INFO] Waiting for 1 receiver(s) to connect...",
    "[INFO] 1 receiver(s) already connected.",
    "[INFO] Streaming to 1 receiver(s)...",
    "[INFO] Upload complete.",
    "[INFO] Transfer complete.",
]


def error_body(response: Response) -> bytes:
    assert response.header(b"content-type") == TEXT
    assert response.body.count(b"\n") == 1 and response.body.endswith(b"\n")
    assert response.body.startswith(b"[ERROR] ")
    return response.body
