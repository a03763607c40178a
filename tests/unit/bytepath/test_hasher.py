"""StreamHasher and HashPool: the ``?sha256`` consumer beside the byte path.

A fake runner stands in for the worker thread so each batch can be finished
by hand: that is how a hasher that falls behind is modelled, and how the
valve (``hold``/``release``) is checked against the queued byte count. The
real pool is then run once on real threads.
"""

from __future__ import annotations

import hashlib
import threading

import attrs
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from hoodypipe.bytepath.hasher import (
    HashFailed,
    HashPool,
    Piece,
    StreamHasher,
    update_all,
)
from tests.kit.hashing import FakeRunner


@attrs.define
class Valve:
    holds: int = 0
    releases: int = 0

    @property
    def shut(self) -> bool:
        return self.holds > self.releases


def make(
    high: int = 100, low: int | None = None, min_batch: int = 0
) -> tuple[StreamHasher, FakeRunner, Valve]:
    runner, valve = FakeRunner(), Valve()

    def hold() -> None:
        valve.holds += 1

    def release() -> None:
        valve.releases += 1

    hasher = StreamHasher(runner, hold, release, high_water=high, low_water=low,
                          min_batch=min_batch)
    return hasher, runner, valve


def result_of(d: Deferred[str]) -> str:
    got: list[str] = []

    def keep(value: str) -> str:
        got.append(value)
        return value

    d.addCallback(keep)
    assert got, "the digest is not ready"
    return got[0]


def test_one_batch_at_a_time_in_order_and_the_digest_waits_for_it() -> None:
    hasher, runner, _ = make(high=1 << 20)
    hasher.feed(b"first ")
    assert runner.in_flight == 1
    hasher.feed(b"second ")
    hasher.feed(b"third")
    assert runner.in_flight == 1, "reads wait while a batch is in the worker"
    digest = hasher.finish()
    assert not digest.called
    runner.finish_next()
    assert [bytes(p) for p in runner.batches[1].pieces] == [b"second ", b"third"]
    assert not digest.called, "the digest came before everything was hashed"
    runner.finish_next()
    assert result_of(digest) == hashlib.sha256(b"first second third").hexdigest()
    assert hasher.hexdigest == result_of(digest)
    assert hasher.queued == 0


def test_finish_with_nothing_fed_is_the_empty_digest() -> None:
    hasher, runner, _ = make()
    assert result_of(hasher.finish()) == hashlib.sha256(b"").hexdigest()
    assert runner.batches == []


def test_a_slice_is_a_view_of_the_read_not_a_copy() -> None:
    hasher, runner, _ = make(high=1 << 20)
    read = b"4\r\nabcd\r\n3\r\nefg\r\n"
    hasher.feed_slice(read, 3, 4)
    hasher.feed_slice(read, 12, 3)
    whole = b"all of it"
    hasher.feed_slice(whole, 0, len(whole))
    first = runner.batches[0].pieces[0]
    assert isinstance(first, memoryview) and first.obj is read
    assert runner.batches[0].pieces == [first]
    runner.finish_next()
    assert runner.batches[1].pieces[1] is whole
    runner.finish_next()
    assert result_of(hasher.finish()) == hashlib.sha256(b"abcdefgall of it").hexdigest()


def test_a_hasher_that_falls_behind_shuts_its_valve_until_it_catches_up() -> None:
    hasher, runner, valve = make(high=100, low=50)
    hasher.feed(b"a" * 40)  # into the worker at once
    hasher.feed(b"b" * 40)
    assert not valve.shut and hasher.queued == 80
    hasher.feed(b"c" * 30)
    assert valve.shut and valve.holds == 1, "110 bytes queued and the valve still open"
    hasher.feed(b"d" * 30)  # the rest of a read still comes after a pause
    assert valve.holds == 1
    runner.finish_next()  # 40 hashed; 100 left, all in the worker now
    assert valve.shut and hasher.queued == 100
    runner.finish_next()
    assert not valve.shut and valve.releases == 1 and hasher.queued == 0
    assert result_of(hasher.finish()) == hashlib.sha256(
        b"a" * 40 + b"b" * 40 + b"c" * 30 + b"d" * 30).hexdigest()


def test_the_valve_opens_at_low_water_not_only_when_empty() -> None:
    hasher, runner, valve = make(high=100)  # low water: half
    hasher.feed(b"x" * 120)
    assert valve.shut
    hasher.feed(b"y" * 50)
    runner.finish_next()  # the 50 bytes left go to the worker: at low water
    assert not valve.shut and hasher.queued == 50


def test_memory_is_bounded_by_the_valve_whatever_the_worker_speed() -> None:
    """Feeding only while the valve is open (as the socket does), the queue
    stays under high water plus one read."""
    hasher, runner, valve = make(high=1000)
    read = b"r" * 300
    expected = hashlib.sha256()
    most = 0
    for step in range(200):
        if not valve.shut:
            hasher.feed(read)
            expected.update(read)
        most = max(most, hasher.queued)
        if step % 7 == 0 and runner.in_flight:  # a slow worker
            runner.finish_next()
    assert most < 1000 + len(read)
    digest = hasher.finish()
    while runner.in_flight:
        runner.finish_next()
    assert result_of(digest) == expected.hexdigest()


def test_cancel_drops_what_waits_and_ignores_the_worker() -> None:
    hasher, runner, valve = make(high=10)
    hasher.feed(b"x" * 20)
    hasher.feed(b"y" * 20)
    assert valve.shut
    hasher.cancel()
    runner.finish_next()
    assert runner.in_flight == 0 and len(runner.batches) == 1
    assert valve.releases == 0
    assert hasher.queued == 0


def test_reads_are_gathered_into_batches_of_min_batch_bytes() -> None:
    hasher, runner, valve = make(high=1000, min_batch=300)
    for _ in range(2):
        hasher.feed(b"a" * 100)
    assert runner.batches == [], "sent before min_batch bytes were there"
    hasher.feed(b"b" * 100)
    assert [len(b.pieces) for b in runner.batches] == [3]
    hasher.feed(b"c" * 100)  # the worker is busy: waits
    runner.finish_next()
    assert len(runner.batches) == 1, "a batch under min_batch went to the worker"
    digest = hasher.finish()  # the end sends what is left, however small
    assert len(runner.batches) == 2
    runner.finish_next()
    assert result_of(digest) == hashlib.sha256(b"a" * 200 + b"b" * 100 + b"c" * 100).hexdigest()


def test_a_held_sender_never_waits_for_min_batch() -> None:
    """Holding with too little to send would stall the transfer for good."""
    hasher, runner, valve = make(high=100, min_batch=80)
    hasher.feed(b"x" * 90)
    hasher.feed(b"y" * 30)  # 120 queued: held; 30 pending, under min_batch
    assert valve.shut
    runner.finish_next()
    assert len(runner.batches) == 2 and not valve.shut
    runner.finish_next()
    assert hasher.queued == 0


def test_update_all_joins_small_pieces_and_hashes_big_ones_as_they_are() -> None:
    calls: list[int] = []

    class Recording:
        inner = hashlib.sha256()

        def update(self, data: Piece, /) -> None:
            calls.append(len(data))
            self.inner.update(data)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    small, big = b"s" * 20_000, b"B" * 200_000
    recording = Recording()
    update_all(recording, [small, memoryview(small), big, small, small, small, big, small])
    assert calls == [40_000, 200_000, 60_000, 200_000, 20_000]
    assert recording.hexdigest() == hashlib.sha256(
        small * 2 + big + small * 3 + big + small).hexdigest()


def test_a_failing_worker_fails_the_digest() -> None:
    hasher, runner, _ = make()
    hasher.feed(b"data")
    digest = hasher.finish()
    runner.fail_next()
    failures: list[BaseException] = []
    digest.addErrback(lambda f: failures.append(f.value))
    assert len(failures) == 1 and isinstance(failures[0], HashFailed)


# -- the real pool -----------------------------------------------------------


class ThreadNoting:
    """A sha256 that notes which threads did the hashing."""

    def __init__(self) -> None:
        self.inner = hashlib.sha256()
        self.threads: set[int] = set()

    def update(self, data: Piece, /) -> None:
        self.threads.add(threading.get_ident())
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


@pytest_twisted.ensureDeferred
async def test_the_pool_hashes_off_the_reactor_thread_in_order() -> None:
    pool = HashPool(reactor)  # type: ignore[arg-type]
    pool.startService()
    try:
        noting = ThreadNoting()
        hasher = StreamHasher(pool, lambda: None, lambda: None, digest=noting)
        expected = hashlib.sha256()
        for i in range(64):
            read = bytes([i]) * (64 * 1024 + i)
            expected.update(read[7:])
            hasher.feed_slice(read, 7, len(read) - 7)
        assert await hasher.finish() == expected.hexdigest()
        assert noting.threads and threading.get_ident() not in noting.threads
    finally:
        pool.stopService()
    assert not any(t.name.startswith("hoodypipe-sha256") and t.is_alive()
                   for t in threading.enumerate())
