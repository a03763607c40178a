"""
``?sha256``: the payload's digest, computed beside the byte path.

The reactor thread must never hash: at a gigabyte a second SHA-256 would be
most of its time. hashlib releases the GIL for buffers over 2047 bytes, so a
worker thread hashes while the reactor moves the next reads. The reactor
thread only hands over the very ``bytes`` objects the receivers got (for a
chunked send, ``memoryview`` slices of the payload inside them, never the
chunk framing): no copy, no hashing. The worker joins runs of small slices
before hashing them, since every ``update`` call is a GIL hand-over.

A hasher is one more consumer of the transfer, with its own valve: what is
waiting to be hashed is counted, and past ``high_water`` bytes the sender is
held back exactly as a full receiver holds it back, until the worker has
caught up to ``low_water``. So a slow hasher slows the transfer; it never
queues without limit.

Reads go to the worker in batches of at least ``MIN_BATCH`` bytes (fewer
trips), and each transfer has at most one batch in the worker at a time
(reads that come meanwhile wait for the next one), which keeps its pieces in
order whatever the pool; the one worker thread is shared by every hashed
transfer and is started and stopped with the service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol, Union

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

Piece = Union[bytes, memoryview]

#: Bytes waiting for (or in) the worker before the sender is held back: four
#: of the default 512 KiB reads, a couple of milliseconds of hashing.
HIGH_WATER = 2 * 1024 * 1024
#: Bytes gathered before they go to the worker (unless the sender is held or
#: the body has ended): fewer, bigger trips to the thread.
MIN_BATCH = 1024 * 1024
#: Pieces smaller than this are hashed joined: each ``update`` call drops and
#: retakes the GIL, and a chunked read holds dozens of 16-24 KiB chunks, so a
#: join (one memcpy) is much cheaper than that many hand-overs of the GIL.
JOIN_BELOW = 64 * 1024


class Digest(Protocol):
    """What a hasher needs of ``hashlib.sha256()`` (tests pass slow ones)."""

    def update(self, data: Piece, /) -> None: ...

    def hexdigest(self) -> str: ...


class HashRunner(Protocol):
    """Runs ``update_all(digest, pieces)`` somewhere else; fires when done."""

    def hash_pieces(self, digest: Digest, pieces: list[Piece]) -> Deferred[None]: ...


def update_all(digest: Digest, pieces: list[Piece]) -> None:
    """The worker's whole job for one batch (runs off the reactor thread)."""
    small: list[Piece] = []
    for piece in pieces:
        if len(piece) < JOIN_BELOW:
            small.append(piece)
            continue
        if small:
            digest.update(b"".join(small))
            small = []
        digest.update(piece)
    if small:
        digest.update(b"".join(small) if len(small) > 1 else small[0])


class HashPool(Service):
    """The one worker thread that hashes for every ``?sha256`` transfer.

    A child of the server's service: twistd's shutdown stops it after the
    drain, and stopping joins the thread once the work it was given is done.
    """

    log = Logger()

    def __init__(self, reactor: IReactorFromThreads, threads: int = 1) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=threads, name="hoodypipe-sha256")

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def stopService(self) -> None:
        super().stopService()
        self._pool.stop()

    def hash_pieces(self, digest: Digest, pieces: list[Piece]) -> Deferred[None]:
        return deferToThreadPool(self._reactor, self._pool, update_all, digest, pieces)


class HashFailed(Exception):
    """The worker raised while hashing; the transfer cannot have a receipt."""


class StreamHasher:
    """The SHA-256 of one transfer's payload, fed read by read, in order.

    ``hold``/``release`` are the transfer's valve: called when more than
    ``high_water`` bytes wait, and again once the worker is down to
    ``low_water`` (half of it unless given).
    """

    log = Logger()

    def __init__(
        self,
        runner: HashRunner,
        hold: Callable[[], None],
        release: Callable[[], None],
        high_water: int = HIGH_WATER,
        low_water: int | None = None,
        digest: Digest | None = None,
        min_batch: int | None = None,
    ) -> None:
        self._runner = runner
        self._hold = hold
        self._release = release
        self._high = high_water
        self._low = high_water // 2 if low_water is None else low_water
        self._digest: Digest = hashlib.sha256() if digest is None else digest
        self._min_batch = MIN_BATCH if min_batch is None else min_batch
        self._pending: list[Piece] = []
        self._pending_bytes = 0
        self._queued = 0  # bytes pending plus bytes in the worker
        self._in_worker = 0
        self._busy = False
        self._holding = False
        self._cancelled = False
        self._error: Failure | None = None
        self._finished: Deferred[str] | None = None
        self.hexdigest: str | None = None

    @property
    def queued(self) -> int:
        """Bytes handed to this hasher and not hashed yet."""
        return self._queued

    @property
    def holding(self) -> bool:
        return self._holding

    # -- from the byte path (the reactor thread) ------------------------------

    def feed(self, data: bytes) -> None:
        """A read of payload: hashed later, in order."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._queued += len(data)
        self._kick()

    def feed_slice(self, data: bytes, start: int, size: int) -> None:
        """``size`` payload bytes of a chunked read from ``start``, without a copy."""
        self._pending.append(
            data if size == len(data) else memoryview(data)[start:start + size])
        self._pending_bytes += size
        self._queued += size
        self._kick()

    def _kick(self) -> None:
        if self._queued >= self._high and not self._holding:
            self._holding = True
            self._hold()
        if not self._busy and (self._pending_bytes >= self._min_batch or self._holding):
            self._send()

    def _send(self) -> None:
        pieces, self._pending = self._pending, []
        self._in_worker, self._pending_bytes = self._pending_bytes, 0
        self._busy = True
        self._runner.hash_pieces(self._digest, pieces).addCallbacks(
            self._hashed, self._worker_failed)

    # -- back from the worker -----------------------------------------------

    def _hashed(self, _: object) -> None:
        self._busy = False
        if self._cancelled:
            return
        self._queued -= self._in_worker
        self._in_worker = 0
        if self._pending and (self._pending_bytes >= self._min_batch or self._holding
                              or self._finished is not None):
            self._send()
        if self._holding and self._queued <= self._low:
            self._holding = False
            self._release()
        if not self._busy and self._finished is not None:
            self._deliver()

    def _worker_failed(self, failure: Failure) -> None:
        self._busy = False
        if self._cancelled:
            return
        self.log.failure("hashing a transfer failed", failure)
        self._error = failure
        self._pending = []
        self._pending_bytes = 0
        if self._finished is not None:
            self._deliver()

    # -- the end ------------------------------------------------------------

    def finish(self) -> Deferred[str]:
        """The hex digest, once everything fed so far is hashed."""
        if self._finished is None:
            self._finished = Deferred()
            if not self._busy and self._pending:
                self._send()
            if not self._busy:
                self._deliver()
        return self._finished

    def _deliver(self) -> None:
        finished = self._finished
        assert finished is not None and not self._busy
        if self._error is not None:
            finished.errback(HashFailed(str(self._error.value)))
            return
        self.hexdigest = self._digest.hexdigest()
        finished.callback(self.hexdigest)

    def cancel(self) -> None:
        """The transfer failed: drop what waits; nobody will ask for the digest."""
        self._cancelled = True
        self._pending = []
        self._pending_bytes = 0
        self._queued = 0
