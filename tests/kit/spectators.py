"""
In-memory kit for the spectator tests (tested in tests/unit/kit/test_spectators_kit.py).

``Server`` puts a SpectatorObserver and its SpectatorResource behind a real
``twisted.web.server.Site`` whose connections run over ``StringTransport``,
driven by a ``Clock``: the requests are parsed, the responses chunked and the
producers paused exactly as over a socket, but deterministically and with no
I/O.  Refusals are rendered by the web layer's own ``write_refusal``, as the
routes do.  ``FakeRegistry`` stands in for the core's PipeRegistry
(status() and add_observer()).  The SSE reading helpers and
``never_reading_spectator`` serve the live spectator tests too.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Union

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from hoodypipe.core.errors import Refusal
from hoodypipe.core.events import (
    IDLE,
    STREAMING,
    WAITING,
    ITransferObserver,
    PipeStatus,
    TransferResult,
)
from hoodypipe.settings import Settings
from hoodypipe.spectators import SpectatorObserver, SpectatorResource
from hoodypipe.web.parties import write_refusal

# -- a stand-in for hoodypipe.core.registry.PipeRegistry ------------------------


class FakeRegistry:
    def __init__(self) -> None:
        self.observers: list[ITransferObserver] = []
        self.statuses: dict[str, PipeStatus] = {}
        self.status_calls = 0

    def add_observer(self, observer: ITransferObserver) -> None:
        self.observers.append(observer)

    def status(self, name: str) -> PipeStatus:
        self.status_calls += 1
        return self.statuses.get(name, PipeStatus(name=name, state=IDLE))

    def change(self, status: PipeStatus) -> None:
        if status.state == IDLE:
            self.statuses.pop(status.name, None)
        else:
            self.statuses[status.name] = status
        for observer in self.observers:
            observer.pipe_changed(status)

    def done(self, result: TransferResult) -> None:
        self.statuses.pop(result.name, None)
        for observer in self.observers:
            observer.transfer_done(result)

    # a whole transfer, step by step

    def waiting(self, name: str, clock: Clock, **kw: Any) -> PipeStatus:
        status = PipeStatus(
            name=name, state=WAITING, has_sender=True, total_receivers=1,
            transfer_id="t-" + name, **kw,
        )
        self.change(status)
        return status

    def streaming(self, name: str, clock: Clock, **kw: Any) -> PipeStatus:
        status = PipeStatus(
            name=name, state=STREAMING, has_sender=True, receivers=1,
            total_receivers=1, started_at=clock.seconds(), transfer_id="t-" + name,
            **kw,
        )
        self.change(status)
        return status

    def moved(self, name: str, count: int) -> None:
        """The byte path's counter: no observer call, as in the real registry."""
        self.statuses[name] = attrs.evolve(self.statuses[name], bytes=count)

    def finish(
        self, name: str, clock: Clock, ok: bool = True, reason: str | None = None
    ) -> TransferResult:
        status = self.statuses[name]
        assert status.started_at is not None
        result = TransferResult(
            name=name, transfer_id=status.transfer_id or "t", ok=ok,
            bytes=status.bytes, total_bytes=status.total_bytes,
            started_at=status.started_at, ended_at=clock.seconds(),
            receivers=status.total_receivers, reason=reason,
        )
        self.done(result)
        return result


# -- an HTTP exchange over StringTransport --


class SpectatorRoute(Resource):
    """What hoodypipe.web.routes does for ?progress/?status: hand the request
    to the spectator resource, and render what it refuses."""

    isLeaf = True

    def __init__(self, spectators: SpectatorResource) -> None:
        super().__init__()
        self.spectators = spectators
        self.refused: list[Refusal] = []

    def render(self, request: Request) -> Union[bytes, int]:
        name = request.path.decode().lstrip("/")
        try:
            result = self.spectators.serve(request, name)
        except Refusal as refusal:
            self.refused.append(refusal)
            return write_refusal(request, refusal)
        if isinstance(result, bytes):
            return result
        # Like Klein: the response is over when the Deferred fires, and a lost
        # connection cancels it.
        result.addErrback(lambda _: None)
        request.notifyFinish().addErrback(lambda _: result.cancel())
        return NOT_DONE_YET


@attrs.define(eq=False)
class Event:
    id: int | None
    event: str | None
    data: Any
    retry: int | None = None


def parse_events(stream: bytes) -> tuple[list[Event], int]:
    """Complete SSE events in ``stream``, and how many comment lines it had."""
    events: list[Event] = []
    comments = 0
    for block in stream.decode().split("\n\n")[:-1]:
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            events.append(
                Event(
                    int(fields["id"]) if "id" in fields else None,
                    fields.get("event"),
                    json.loads(fields["data"]),
                    int(fields["retry"]) if "retry" in fields else None,
                )
            )
    return events, comments


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body received so far; True once the last chunk came."""
    out = b""
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return out, True
        if len(rest) < size + 2:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out, False


class Connection:
    """One client connection to the in-memory site."""

    def __init__(self, site: Site) -> None:
        self.protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert self.protocol is not None
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.lost = False

    def request(
        self, target: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> None:
        lines = [f"{method} {target} HTTP/1.1", "Host: hoodypipe.test"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())

    @property
    def raw(self) -> bytes:
        return self.transport.value()

    @property
    def head(self) -> bytes:
        return self.raw.partition(b"\r\n\r\n")[0]

    @property
    def code(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode().partition(": ")
            if key.lower() == name.lower():
                return value
        return None

    @property
    def body(self) -> bytes:
        rest = self.raw.partition(b"\r\n\r\n")[2]
        if (self.header("Transfer-Encoding") or "").lower() == "chunked":
            return dechunk(rest)[0]
        return rest

    @property
    def ended(self) -> bool:
        """The response came to a clean end (terminating chunk)."""
        rest = self.raw.partition(b"\r\n\r\n")[2]
        return dechunk(rest)[1]

    @property
    def aborted(self) -> bool:
        return bool(self.transport.disconnected)

    def events(self) -> list[Event]:
        return parse_events(self.body)[0]

    def comments(self) -> int:
        return parse_events(self.body)[1]

    def pause(self) -> None:
        """The socket's send buffer is full (the client stopped reading)."""
        self.transport.producer.pauseProducing()

    def resume(self) -> None:
        self.transport.producer.resumeProducing()

    def close(self) -> None:
        """The client went away."""
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionDone()))


class Server:
    """The spectators behind a Site, with a fake registry and a Clock;
    ``feed_kw`` go to the SpectatorResource (stall_timeout, max_queue...)."""

    def __init__(
        self,
        settings: Settings | None = None,
        registry: Any = None,
        clock: Clock | None = None,
        **feed_kw: Any,
    ) -> None:
        self.clock = clock or Clock()
        if clock is None:
            self.clock.advance(1000.0)
        self.settings = settings or Settings()
        self.registry = FakeRegistry() if registry is None else registry
        self.observer = SpectatorObserver(self.clock, self.registry, self.settings)
        self.resource = SpectatorResource(
            self.clock, self.observer, self.settings, **feed_kw
        )
        self.route = SpectatorRoute(self.resource)
        self.site = Site(self.route, reactor=self.clock)
        self.connections: list[Connection] = []

    def get(
        self, target: str, method: str = "GET", **headers: str
    ) -> Connection:
        connection = Connection(self.site)
        connection.request(
            target, method, {k.replace("_", "-"): v for k, v in headers.items()}
        )
        self.connections.append(connection)
        return connection

    def advance(self, seconds: float, step: float = 0.05) -> None:
        """Move time in small steps so repeating timers fire as in real life."""
        remaining = seconds
        while remaining > 1e-9:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta

    def close_all(self) -> None:
        for connection in self.connections:
            connection.close()


def settled(d: Deferred[Any]) -> bool:
    return bool(d.called)


# -- helpers of the spectator tests --

FAST = Settings(
    progress_interval=0.25, heartbeat_interval=15.0, linger=30.0, spectator_ttl=1800.0
)


def kinds(events: list[Event]) -> list[str]:
    return [e.event or "" for e in events]


def assert_increasing_ids(events: list[Event]) -> None:
    ids = [e.id for e in events]
    assert all(i is not None for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids


def whole_transfer(server: Server, name: str = "p", size: int = 10_000_000) -> None:
    """waiting, then 2 s of streaming at 1 MB/s... then complete."""
    reg, clock = server.registry, server.clock
    reg.waiting(name, clock, total_bytes=size)
    server.advance(1.0)
    reg.streaming(name, clock, total_bytes=size)
    for step in range(1, 9):
        server.advance(0.25)
        reg.moved(name, step * 250_000)
    reg.finish(name, clock)


# -- over a real socket --


def never_reading_spectator(port: int, name: str) -> socket.socket:
    """A ``?progress`` client on loopback that sends its request and never
    reads (a small receive buffer, so the server's writes back up soon)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /{name}?progress HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return s
