"""
The spectator side of the server: who watches which path, and what they see.

The hub is a transfer observer.  It never touches a pipe: transitions arrive
through ``pipe_changed``/``transfer_done``, and progress is read from
``registry.status(name).bytes`` on ONE timer per watched path, so a thousand
spectators cost the byte path nothing.  It also keeps what the registry
forgets at once: a finished transfer lingers on its path for ``linger``
seconds (latecomers still get its ``done``), and its result is kept longer
as the path's ``lastTransfer``.
"""

from __future__ import annotations

import json
from typing import Protocol, Union
from urllib.parse import unquote_plus

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from hoodypipe.common import wire
from hoodypipe.core.events import (
    COMPLETE,
    FAILED,
    IDLE,
    STREAMING,
    WAITING,
    ITransferObserver,
    PipeStatus,
    TransferResult,
)
from hoodypipe.settings import Settings
from hoodypipe.spectators import dashboard, sse
from hoodypipe.spectators.feed import Block, SpectatorFeed, SpectatorRequest
from hoodypipe.spectators.history import LastTransfers
from hoodypipe.spectators.rate import RateMeter
from hoodypipe.web import negotiation

#: EventSource's reconnection delay hint, in milliseconds.
RETRY_MS = 2000


class Registry(Protocol):
    """What the hub needs from ``hoodypipe.core.registry.PipeRegistry``."""

    def status(self, name: str) -> PipeStatus: ...

    def add_observer(self, observer: ITransferObserver) -> None: ...


@attrs.define(eq=False)
class _Linger:
    """A finished transfer still shown on its path."""

    result: TransferResult
    status: PipeStatus
    state: Block
    done: Block
    expiry: IDelayedCall | None = None


@attrs.define(eq=False)
class WatchGroup:
    """The spectators of one path, and the one progress timer they share."""

    name: str
    feeds: set[SpectatorFeed] = attrs.field(factory=set)
    meter: RateMeter = attrs.field(factory=RateMeter)
    ticker: LoopingCall | None = None
    last_state: wire.JSONObject | None = None
    last_progress: Block | None = None
    streamed: bool = False


def _finished_status(result: TransferResult) -> PipeStatus:
    return PipeStatus(
        name=result.name,
        state=result.state,
        total_receivers=result.receivers,
        bytes=result.bytes,
        total_bytes=result.total_bytes,
        started_at=result.started_at,
        ended_at=result.ended_at,
        reason=result.reason,
        transfer_id=result.transfer_id,
    )


def _query_keys(uri: bytes) -> set[str]:
    """The query's parameter names, bare ones (``?status``) included."""
    query = uri.partition(b"?")[2].decode("latin-1")
    return {unquote_plus(part.partition("=")[0]) for part in query.split("&")}


def _average(result: TransferResult) -> float:
    duration = result.duration_sec
    return result.bytes / duration if duration > 0 else 0.0


@implementer(ITransferObserver)
class SpectatorHub:
    """Serves ``?progress`` and ``?status``; one per server."""

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        registry: Registry,
        settings: Settings,
        *,
        stall_timeout: float | None = None,
        max_queue: int = 32,
        send_buffer: int = 64 * 1024,
    ) -> None:
        self._clock = reactor
        self._registry = registry
        self._settings = settings
        self._stall_timeout = (
            stall_timeout
            if stall_timeout is not None
            else max(1.0, 2 * settings.heartbeat_interval)
        )
        self._max_queue = max_queue
        self._send_buffer = send_buffer
        self._groups: dict[str, WatchGroup] = {}
        self._lingers: dict[str, _Linger] = {}
        self._last = LastTransfers(
            settings.last_transfer_ttl, settings.last_transfer_max
        )
        # Event ids start at the clock in microseconds, so ids stay comparable
        # (Last-Event-ID) across a restart of the server.
        self._next_id = int(reactor.seconds() * 1_000_000)
        registry.add_observer(self)

    # -- numbers for metrics and tests ---------------------------------------

    @property
    def watched_paths(self) -> int:
        return len(self._groups)

    @property
    def spectators(self) -> int:
        return sum(len(group.feeds) for group in self._groups.values())

    def spectators_of(self, name: str) -> int:
        group = self._groups.get(name)
        return 0 if group is None else len(group.feeds)

    def lingering(self, name: str) -> bool:
        return name in self._lingers

    # -- ITransferObserver ---------------------------------------------------

    def pipe_changed(self, status: PipeStatus) -> None:
        if status.state in (WAITING, STREAMING):
            self._end_linger(status.name)
        if status.state in (COMPLETE, FAILED):
            return  # transfer_done tells the whole story, in order
        group = self._groups.get(status.name)
        if group is None or status.name in self._lingers:
            return
        self._broadcast_state(group, status)

    def transfer_done(self, result: TransferResult) -> None:
        name = result.name
        status = _finished_status(result)
        group = self._groups.get(name)
        progress: Block | None = None
        if group is not None:
            self._stop_ticker(group)
            if group.streamed or result.bytes > 0:
                group.meter.sample(self._clock.seconds(), result.bytes)
                body = wire.progress_event(status, result.ended_at, group.meter.rate())
                progress = self._block("progress", body)
                group.last_progress = progress
        done_body = wire.done_event(result)
        state = self._block("state", wire.state_event(status))
        done = self._block("done", done_body)
        self._last.remember(name, done_body, self._clock.seconds())
        self._end_linger(name)
        linger = _Linger(result, status, state, done)
        linger.expiry = self._clock.callLater(
            self._settings.linger, self._linger_over, name, linger
        )
        self._lingers[name] = linger
        while len(self._lingers) > self._settings.last_transfer_max:
            self._end_linger(next(iter(self._lingers)))  # the oldest first
        self.log.debug(
            "pipe {name} done ({state}), lingering {linger}s",
            name=name,
            state=result.state,
            linger=self._settings.linger,
        )
        if group is not None:
            group.last_state = None
            group.streamed = False
            for feed in list(group.feeds):
                if progress is not None:
                    feed.progress(progress)
                feed.send(state)
                feed.send(done, final=True)

    # -- the web layer's entry point ---------------------------------------

    def serve(
        self, request: SpectatorRequest, name: str
    ) -> Union[bytes, Deferred[None]]:
        """
        Answer a GET or HEAD with ``?progress`` or ``?status`` on pipe ``name``.

        Returns a complete small body, or (for an event stream) a Deferred
        that fires once the response is over.
        """
        if "status" in _query_keys(request.uri):
            return self._serve_snapshot(request, name)
        accept = request.requestHeaders.getRawHeaders(b"accept")
        kind = negotiation.negotiate(
            ", ".join(v.decode("latin-1") for v in accept) if accept else None
        )
        if kind == negotiation.HTML:
            return self._serve_dashboard(request, name)
        if kind == negotiation.JSON:
            return self._serve_snapshot(request, name)
        return self._serve_stream(request, name)

    def snapshot(self, name: str) -> wire.JSONObject:
        """The ``?status`` body for ``name``."""
        now = self._clock.seconds()
        last = self._last.get(name, now)
        linger = self._lingers.get(name)
        if linger is not None:
            result = linger.result
            body = wire.snapshot(linger.status, result.ended_at, _average(result), last)
            body["sha256"] = result.sha256
            return body
        status = self._registry.status(name)
        speed = 0.0
        if status.state == STREAMING:
            group = self._groups.get(name)
            if group is not None and group.ticker is not None:
                speed = group.meter.rate()
            elif status.started_at is not None and now > status.started_at:
                speed = status.bytes / (now - status.started_at)
        return wire.snapshot(status, now, speed, last)

    def stop(self) -> None:
        """End every stream and timer (server shutdown)."""
        for group in list(self._groups.values()):
            self._stop_ticker(group)
            for feed in list(group.feeds):
                feed.close()
        self._groups.clear()
        for name in list(self._lingers):
            self._end_linger(name)

    # -- responses -----------------------------------------------------------

    def _small(
        self,
        request: SpectatorRequest,
        code: int,
        content_type: bytes,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        for header, value in headers:
            request.setHeader(header, value)
        return body

    def _error(self, request: SpectatorRequest, code: int, message: str) -> bytes:
        return self._small(
            request,
            code,
            b"text/plain; charset=utf-8",
            f"[ERROR] {message}\n".encode(),
            ((b"Cache-Control", b"no-store"),),
        )

    def _serve_snapshot(self, request: SpectatorRequest, name: str) -> bytes:
        body = json.dumps(self.snapshot(name), separators=(",", ":")).encode()
        return self._small(
            request,
            200,
            b"application/json",
            body,
            ((b"Cache-Control", b"no-store"), (b"Access-Control-Allow-Origin", b"*")),
        )

    def _serve_dashboard(self, request: SpectatorRequest, name: str) -> bytes:
        page = dashboard.render(name)
        return self._small(
            request, 200, b"text/html; charset=utf-8", page.body, page.headers
        )

    def _serve_stream(
        self, request: SpectatorRequest, name: str
    ) -> Union[bytes, Deferred[None]]:
        if request.method == b"HEAD":
            request.setResponseCode(200)
            for header, value in sse.HEADERS:
                request.setHeader(header, value)
            return b""
        sent = request.requestHeaders.getRawHeaders(b"last-event-id")
        last_seen = sse.parse_last_event_id(sent[-1] if sent else None)
        linger = self._lingers.get(name)
        if linger is not None:
            if last_seen is not None and last_seen >= linger.done[0]:
                request.setResponseCode(204)
                request.setHeader(b"Cache-Control", b"no-cache")
                return b""
            feed = self._feed(request, name)
            first = self._with_retry(linger.state)
            return feed.start([first, linger.done], final=True)

        group = self._groups.get(name)
        if group is None:
            if len(self._groups) >= self._settings.max_watched:
                return self._error(
                    request,
                    429,
                    f"Too many watched pipes (max {self._settings.max_watched}).",
                )
            group = self._groups[name] = WatchGroup(name)
        elif len(group.feeds) >= self._settings.max_spectators:
            return self._error(
                request,
                429,
                "Too many spectators on this pipe "
                f"(max {self._settings.max_spectators}).",
            )
        status = self._registry.status(name)
        body = self._state_body(status)
        group.last_state = body
        feed = self._feed(request, name, group)
        group.feeds.add(feed)
        self.log.debug(
            "spectator joined {name} ({count} watching)",
            name=name,
            count=len(group.feeds),
        )
        if status.state == STREAMING:
            self._start_ticker(group)
        return feed.start([self._block("state", body, retry_ms=RETRY_MS)])

    # -- internals -------------------------------------------------------

    def _feed(
        self, request: SpectatorRequest, name: str, group: WatchGroup | None = None
    ) -> SpectatorFeed:
        settings = self._settings

        def latest() -> Block | None:
            return None if group is None else group.last_progress

        return SpectatorFeed(
            self._clock,
            request,
            name,
            heartbeat_interval=settings.heartbeat_interval,
            ttl=settings.spectator_ttl,
            stall_timeout=self._stall_timeout,
            max_queue=self._max_queue,
            send_buffer=self._send_buffer,
            latest_progress=latest,
            on_gone=self._feed_gone,
        )

    def _feed_gone(self, feed: SpectatorFeed) -> None:
        group = self._groups.get(feed.name)
        if group is None or feed not in group.feeds:
            return
        group.feeds.discard(feed)
        if not group.feeds:
            self._stop_ticker(group)
            del self._groups[feed.name]

    def _allocate_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _block(
        self, kind: str, body: wire.JSONObject, retry_ms: int | None = None
    ) -> Block:
        event_id = self._allocate_id()
        return (event_id, kind, sse.encode(event_id, kind, body, retry_ms))

    def _with_retry(self, block: Block) -> Block:
        return (block[0], block[1], f"retry: {RETRY_MS}\n".encode() + block[2])

    def _state_body(self, status: PipeStatus) -> wire.JSONObject:
        last = None
        if status.state == IDLE:
            last = self._last.get(status.name, self._clock.seconds())
        return wire.state_event(status, last)

    def _broadcast_state(self, group: WatchGroup, status: PipeStatus) -> None:
        body = self._state_body(status)
        if body != group.last_state:
            group.last_state = body
            block = self._block("state", body)
            for feed in list(group.feeds):
                feed.send(block)
        if status.state == STREAMING:
            self._start_ticker(group)
        else:
            self._stop_ticker(group)

    def _start_ticker(self, group: WatchGroup) -> None:
        if group.ticker is not None:
            return
        group.streamed = True
        group.meter.reset()
        moved = self._registry.status(group.name).bytes
        group.meter.sample(self._clock.seconds(), moved)
        ticker = LoopingCall(self._tick, group)
        ticker.clock = self._clock
        group.ticker = ticker
        ticker.start(self._settings.progress_interval, now=False)

    def _stop_ticker(self, group: WatchGroup) -> None:
        ticker, group.ticker = group.ticker, None
        if ticker is not None and ticker.running:
            ticker.stop()

    def _tick(self, group: WatchGroup) -> None:
        status = self._registry.status(group.name)
        if status.state != STREAMING:
            return
        now = self._clock.seconds()
        group.meter.sample(now, status.bytes)
        body = wire.progress_event(status, now, group.meter.rate())
        block = self._block("progress", body)
        group.last_progress = block
        for feed in list(group.feeds):
            feed.progress(block)

    def _end_linger(self, name: str) -> None:
        linger = self._lingers.pop(name, None)
        if linger is not None and linger.expiry is not None and linger.expiry.active():
            linger.expiry.cancel()

    def _linger_over(self, name: str, linger: _Linger) -> None:
        if self._lingers.get(name) is linger:
            del self._lingers[name]
