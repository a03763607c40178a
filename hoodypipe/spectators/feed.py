"""
One spectator's event stream: a push producer on its HTTP response.

The feed is registered as the producer of its own request, so the response's
transport tells it when the client stops reading.  While paused it writes
nothing: progress only marks itself pending (the watch group's latest one is
sent on resume, so a slow reader skips stale numbers rather than queueing
them), state and done blocks queue up to a small bound, and a client that
stays unwritable past ``stall_timeout`` is cut off.  Memory per spectator is
therefore a few small blocks, however long or fast the transfer.
"""

from __future__ import annotations

import enum
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.web.http_headers import Headers
from zope.interface import implementer

from hoodypipe.spectators import sse

#: An encoded event: (id, kind, block).
Block = tuple[int, str, bytes]


class SpectatorRequest(Protocol):
    """The part of ``twisted.web.server.Request`` the spectator feeds use."""

    @property
    def method(self) -> bytes: ...

    @property
    def uri(self) -> bytes: ...

    @property
    def requestHeaders(self) -> Headers: ...

    @property
    def transport(self) -> Any: ...

    def setResponseCode(self, code: int) -> None: ...

    def setHeader(self, name: bytes, value: bytes) -> None: ...

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def registerProducer(self, producer: Any, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def notifyFinish(self) -> Deferred[None]: ...


def limit_send_buffer(transport: object, size: int) -> bool:
    """
    Cap the kernel's send buffer of a spectator's socket.

    Linux grows a socket's send buffer up to megabytes for a reader that
    does not read; for a feed of a few hundred bytes a second that is hours
    of backlog held in kernel memory before the transport ever pushes back.
    A small fixed buffer makes a stalled reader show up as a paused producer
    within seconds.  Transports without a socket (tests, TLS) are left alone.
    """
    handle = getattr(transport, "getHandle", None)
    sock = handle() if callable(handle) else None
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError:
        return False
    return True


class Phase(enum.Enum):
    """Where a feed is in its life; it only ever moves down this list."""

    OPEN = "open"
    """Taking events."""
    ENDING = "ending"
    """The last event is accepted (written or queued); the response ends
    once it is written, and nothing more is taken."""
    GONE = "gone"
    """Over: timers cancelled, the observer told, the request no longer
    touched (ended by us, cut by us, or lost by the client)."""


@implementer(IPushProducer)
class SpectatorFeed:
    """Writes one path's events to one SSE response, never faster than it drains."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        request: SpectatorRequest,
        name: str,
        *,
        heartbeat_interval: float,
        ttl: float,
        stall_timeout: float,
        max_queue: int,
        send_buffer: int = 0,
        latest_progress: Callable[[], Block | None],
        on_gone: Callable[[SpectatorFeed], None],
    ) -> None:
        self._clock = clock
        self._request = request
        self.name = name
        self._heartbeat_interval = heartbeat_interval
        self._ttl = ttl
        self._stall_timeout = stall_timeout
        self._max_queue = max_queue
        self._send_buffer = send_buffer
        self._latest_progress = latest_progress
        self._on_gone = on_gone
        self._phase = Phase.OPEN
        # Whether the transport asked us to stop writing (IPushProducer):
        # independent of the phase, a feed can be paused in any of them.
        self._paused = False
        # A progress update is owed: the newest one is fetched when writing
        # resumes, so a slow reader skips stale numbers instead of queueing.
        self._progress_pending = False
        # State and done blocks waiting while paused; in ENDING the last one
        # is the final block.
        self._queue: deque[Block] = deque()
        # Set once at start: the socket was narrowed for this stream alone.
        self._close_transport = False
        self._last_id = -1
        self._last_write = clock.seconds()
        self._heartbeat: IDelayedCall | None = None
        self._ttl_call: IDelayedCall | None = None
        self._stall_call: IDelayedCall | None = None
        self.finished: Deferred[None] = Deferred(self._cancelled)

    # -- lifecycle -------------------------------------------------------

    def start(self, blocks: list[Block], final: bool = False) -> Deferred[None]:
        """Send headers and the first blocks; ``final`` ends the stream after them."""
        request = self._request
        request.setResponseCode(200)
        for header, value in sse.HEADERS:
            request.setHeader(header, value)
        request.notifyFinish().addBoth(self._request_over)
        if self._send_buffer and limit_send_buffer(
            request.transport, self._send_buffer
        ):
            # The socket is now only fit for this stream: never reuse it.
            self._close_transport = True
            request.setHeader(b"Connection", b"close")
        request.registerProducer(self, True)
        self._ttl_call = self._clock.callLater(self._ttl, self._ttl_expired)
        self._schedule_heartbeat(self._heartbeat_interval)
        for index, block in enumerate(blocks):
            self.send(block, final=final and index == len(blocks) - 1)
        if final and not blocks:
            self.close()
        return self.finished

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def progress_pending(self) -> bool:
        return self._progress_pending

    def close(self) -> None:
        """End the response cleanly (TTL, shutdown, or after the last event)."""
        if self._phase is Phase.GONE:
            return
        self._release()
        self._request.unregisterProducer()
        self._request.finish()
        if self._close_transport:
            self._request.transport.loseConnection()
        self._fire()

    def abort(self, why: str) -> None:
        """Drop the connection without ending the body cleanly."""
        if self._phase is Phase.GONE:
            return
        self.log.info("dropping spectator of {name}: {why}", name=self.name, why=why)
        self._release()
        self._request.unregisterProducer()
        self._request.transport.abortConnection()
        # ``finished`` fires when the request learns the connection is gone.

    # -- events from the watch group ---------------------------------------

    def send(self, block: Block, final: bool = False) -> None:
        """A state or done block: written now, or queued while paused."""
        if self._phase is not Phase.OPEN:
            return
        if final:
            self._phase = Phase.ENDING
        if self._paused or self._queue:
            kind = block[1]
            if self._queue and kind == "state" and self._queue[-1][1] == "state":
                # Only the newest of consecutive states matters.
                self._queue[-1] = block
            else:
                self._queue.append(block)
            if len(self._queue) > self._max_queue:
                self.abort("too many events queued while not reading")
            return
        self._write(block)
        if final:
            self.close()

    def progress(self, block: Block) -> None:
        """A progress block: written now, or remembered as pending while paused."""
        if self._phase is not Phase.OPEN:
            return
        if self._paused or self._queue:
            self._progress_pending = True
            return
        self._write(block)

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        if self._paused or self._phase is Phase.GONE:
            return
        self._paused = True
        self._stall_call = self._clock.callLater(self._stall_timeout, self._stalled)

    def resumeProducing(self) -> None:
        if not self._paused or self._phase is Phase.GONE:
            return
        self._paused = False
        if self._stall_call is not None and self._stall_call.active():
            self._stall_call.cancel()
        self._stall_call = None
        self._flush()

    def stopProducing(self) -> None:
        self._release()

    # -- internals ---------------------------------------------------------

    def _flush(self) -> None:
        while not self._paused and self._phase is not Phase.GONE:
            progress: Block | None = None
            if self._progress_pending:
                progress = self._latest_progress()
                if progress is None or progress[0] <= self._last_id:
                    self._progress_pending = False
                    progress = None
            head = self._queue[0] if self._queue else None
            if progress is not None and (head is None or progress[0] < head[0]):
                self._progress_pending = False
                self._write(progress)
                continue
            if head is None:
                return
            self._write(self._queue.popleft())
            if self._phase is Phase.ENDING and not self._queue:
                self.close()
                return

    def _write(self, block: Block) -> None:
        if block[0] <= self._last_id:
            return
        self._last_id = block[0]
        self._last_write = self._clock.seconds()
        self._request.write(block[2])

    def _schedule_heartbeat(self, delay: float) -> None:
        self._heartbeat = self._clock.callLater(delay, self._beat)

    def _beat(self) -> None:
        interval = self._heartbeat_interval
        quiet = self._clock.seconds() - self._last_write
        if self._paused:
            # Nothing can be written now; the stall timer decides its fate.
            self._schedule_heartbeat(interval)
        elif quiet >= interval:
            self._last_write = self._clock.seconds()
            self._request.write(sse.HEARTBEAT)
            self._schedule_heartbeat(interval)
        else:
            self._schedule_heartbeat(interval - quiet)

    def _ttl_expired(self) -> None:
        self._ttl_call = None
        self.log.debug("spectator of {name} reached its TTL", name=self.name)
        self.close()

    def _stalled(self) -> None:
        self._stall_call = None
        self.abort(f"not reading for {self._stall_timeout:g}s")

    def _request_over(self, result: object) -> None:
        # Called back after our own finish(), errbacked when the connection
        # went away first; either way the response is over.
        self._release()
        self._fire()

    def _cancelled(self, d: Deferred[None]) -> None:
        self._release()

    def _fire(self) -> None:
        if not self.finished.called:
            self.finished.callback(None)

    def _release(self) -> None:
        if self._phase is Phase.GONE:
            return
        self._phase = Phase.GONE
        for call in (self._heartbeat, self._ttl_call, self._stall_call):
            if call is not None and call.active():
                call.cancel()
        self._heartbeat = self._ttl_call = self._stall_call = None
        self._queue.clear()
        self._on_gone(self)
