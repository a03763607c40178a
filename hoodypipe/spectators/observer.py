"""
Who watches which path, and what they are told.

The observer is a transfer observer. It never touches a pipe: transitions
arrive through ``pipe_changed``/``transfer_done``, and progress is read from
``registry.status(name).bytes`` on ONE timer per watched path, so a thousand
spectators cost the byte path nothing.  It also keeps what the registry
forgets at once: a finished transfer lingers on its path for ``linger``
seconds (latecomers still get its ``done``), and its result is kept longer
as the path's ``lastTransfer``.  Every event gets its id here, so ids
increase across a path's whole history.

Every spectator stream, live or lingering, is admitted by :meth:`add`: one
place counts it against the per-path and watched-path caps and keeps it in
its path's group until its response ends.  Turning requests into feeds, and
refusals into HTTP answers, is :mod:`hoodypipe.spectators.resource`.
"""

from __future__ import annotations

from typing import Protocol

import attrs
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
from hoodypipe.spectators import sse
from hoodypipe.spectators.feed import Block, SpectatorFeed
from hoodypipe.spectators.history import LastTransfers
from hoodypipe.spectators.rate import RateMeter


class Registry(Protocol):
    """What the observer needs from ``hoodypipe.core.registry.PipeRegistry``."""

    def status(self, name: str) -> PipeStatus: ...

    def add_observer(self, observer: ITransferObserver) -> None: ...


class Crowded(Exception):
    """A spectator is not admitted: ``limit`` (:data:`PATH` or :data:`PATHS`) is reached."""

    PATH = "path"
    """This path has ``max_spectators`` already."""
    PATHS = "paths"
    """``max_watched`` paths are watched already."""

    def __init__(self, limit: str, maximum: int) -> None:
        super().__init__(f"{limit} limit {maximum} reached")
        self.limit = limit
        self.maximum = maximum


@attrs.frozen
class Opening:
    """What an admitted feed starts with; ``final``: the stream ends after it."""

    blocks: tuple[Block, ...]
    final: bool


@attrs.define(eq=False)
class _Linger:
    """A finished transfer still shown on its path."""

    result: TransferResult
    status: PipeStatus
    done: Block
    state: Block
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


def _average(result: TransferResult) -> float:
    duration = result.duration_sec
    return result.bytes / duration if duration > 0 else 0.0


def _with_retry(block: Block) -> Block:
    return (block[0], block[1], f"retry: {sse.RETRY_MS}\n".encode() + block[2])


@implementer(ITransferObserver)
class SpectatorObserver:
    """The spectators of every path of one server."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        registry: Registry,
        settings: Settings,
        last_transfers: LastTransfers | None = None,
    ) -> None:
        self._clock = clock
        self._registry = registry
        self._settings = settings
        self._groups: dict[str, WatchGroup] = {}
        self._lingers: dict[str, _Linger] = {}
        self._last = last_transfers if last_transfers is not None else LastTransfers(
            settings.last_transfer_ttl, settings.last_transfer_max
        )
        # Event ids start at the clock in microseconds, so ids stay comparable
        # (Last-Event-ID) across a restart of the server.
        self._next_id = int(clock.seconds() * 1_000_000)
        registry.add_observer(self)

    # -- numbers for metrics and tests ---------------------------------------

    @property
    def watched_paths(self) -> int:
        return len(self._groups)

    @property
    def spectators(self) -> int:
        """Spectator streams open now, on every path, lingering ones included."""
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
        """
        The last progress, then ``done``, then the final ``state``: a client
        that stops at the first terminal event (the kit's CLI) still has the
        ``done``, and ids keep increasing in that order.
        """
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
        done = self._block("done", done_body)
        state = self._block("state", wire.state_event(status))
        self._last.remember(name, done_body, self._clock.seconds())
        self._end_linger(name)
        linger = _Linger(result, status, done, state)
        linger.expiry = self._clock.callLater(
            self._settings.linger, self._linger_over, name, linger
        )
        self._lingers[name] = linger
        while len(self._lingers) > self._settings.last_transfer_max:
            self._end_linger(next(iter(self._lingers)))  # the oldest first
        if group is not None:
            group.last_state = None
            group.streamed = False
            for feed in list(group.feeds):
                if progress is not None:
                    feed.progress(progress)
                feed.send(done)
                feed.send(state, final=True)

    # -- spectators coming and going -----------------------------------------

    def add(self, feed: SpectatorFeed, last_seen: int | None) -> Opening | None:
        """
        Admit ``feed`` to its path's group and say what it starts with.

        ``None`` when there is nothing to send: the client already has the
        lingering transfer's ``done`` (its ``Last-Event-ID`` is at or after
        it).  Raises :class:`Crowded` when a cap is reached.  The feed counts
        against the caps until it ends (``remove``), whether it watches a
        live path or gets a lingering result: a latecomer that cannot be
        written to holds its place like any other spectator.
        """
        name = feed.name
        linger = self._lingers.get(name)
        if linger is not None and last_seen is not None and last_seen >= linger.done[0]:
            return None
        group = self._admit(name)
        group.feeds.add(feed)
        self.log.debug(
            "spectator joined {name} ({count} watching)",
            name=name,
            count=len(group.feeds),
        )
        if linger is not None:
            # The done it missed, then the final state, then the end.
            return Opening((_with_retry(linger.done), linger.state), final=True)
        status = self._registry.status(name)
        body = self._state_body(status)
        group.last_state = body
        if status.state == STREAMING:
            self._start_ticker(group)
        return Opening((self._block("state", body, retry_ms=sse.RETRY_MS),), final=False)

    def remove(self, feed: SpectatorFeed) -> None:
        """``feed`` ended (however): it no longer counts."""
        group = self._groups.get(feed.name)
        if group is None or feed not in group.feeds:
            return
        group.feeds.discard(feed)
        if not group.feeds:
            self._stop_ticker(group)
            del self._groups[feed.name]

    def latest_progress(self, name: str) -> Block | None:
        """The newest progress of ``name``: what a feed catching up sends."""
        group = self._groups.get(name)
        return None if group is None else group.last_progress

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

    # -- internals -------------------------------------------------------

    def _admit(self, name: str) -> WatchGroup:
        group = self._groups.get(name)
        if group is None:
            if len(self._groups) >= self._settings.max_watched:
                raise Crowded(Crowded.PATHS, self._settings.max_watched)
            group = self._groups[name] = WatchGroup(name)
        elif len(group.feeds) >= self._settings.max_spectators:
            raise Crowded(Crowded.PATH, self._settings.max_spectators)
        return group

    def _allocate_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _block(
        self, kind: str, body: wire.JSONObject, retry_ms: int | None = None
    ) -> Block:
        event_id = self._allocate_id()
        return (event_id, kind, sse.encode(event_id, kind, body, retry_ms))

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
